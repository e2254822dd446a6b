package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.io.IOException;

/**
 * A chunk did not arrive within its source's fetch deadline. A read that gets it counts it as its
 * own time-out (the kernel's immediate retry then fails at once, see {@link RecentTimeouts}).
 */
public class ChunkTimeoutException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Digest blob;

  public ChunkTimeoutException(String message, Digest blob) {
    super(message);
    this.blob = blob;
  }

  /** The chunk that was late. */
  public Digest blob() {
    return blob;
  }
}
