package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.io.IOException;

/** The bytes of one chunk blob could not be had for a read of one file. */
public class ChunkReadException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Digest blob;
  private final long ino;

  public ChunkReadException(Digest blob, long ino, String reason, Throwable cause) {
    super("could not read chunk " + blob + " of file ino " + ino + ": " + reason, cause);
    this.blob = blob;
    this.ino = ino;
  }

  /** The chunk blob that failed. */
  public Digest blob() {
    return blob;
  }

  /** The inode of the file being read. */
  public long ino() {
    return ino;
  }
}
