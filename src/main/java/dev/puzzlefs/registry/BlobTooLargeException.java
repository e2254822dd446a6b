package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;

/**
 * The registry announced or sent a blob body longer than the blob can be (its expected size, or the
 * client's limit). The transfer is cut off when that shows, and the failure is not retried.
 */
public class BlobTooLargeException extends RegistryException {
  private static final long serialVersionUID = 1L;

  private final transient Digest digest;
  private final long limit;

  public BlobTooLargeException(String message, Digest digest, long limit) {
    super(message);
    this.digest = digest;
    this.limit = limit;
  }

  /** The blob asked for. */
  public Digest digest() {
    return digest;
  }

  /** The most bytes the blob could have had. */
  public long limit() {
    return limit;
  }
}
