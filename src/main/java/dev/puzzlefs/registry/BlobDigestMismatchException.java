package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;

/** A blob's bytes, as received, hash to something other than the blob's digest. */
public class BlobDigestMismatchException extends DigestMismatchException {
  private static final long serialVersionUID = 1L;

  public BlobDigestMismatchException(String message, Digest expected, Digest actual) {
    super(message, expected, actual);
  }
}
