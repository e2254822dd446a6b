package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import java.io.IOException;

/** A chunk's bytes do not match its sha256 or its expected fs-verity digest; never served. */
public class ChunkVerificationException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Digest blob;

  public ChunkVerificationException(String message, Digest blob) {
    super(message);
    this.blob = blob;
  }

  /** The chunk that failed verification. */
  public Digest blob() {
    return blob;
  }
}
