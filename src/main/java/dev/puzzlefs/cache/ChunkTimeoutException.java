package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import java.io.IOException;

/** A chunk did not arrive within the cache's fetch deadline. */
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
