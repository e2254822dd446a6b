package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;

/**
 * Content received from (or acknowledged by) the registry does not hash to the digest it was asked
 * for; never retried, and the bytes are never used.
 */
public class DigestMismatchException extends RegistryException {
  private static final long serialVersionUID = 1L;

  private final transient Digest expected;
  private final transient Digest actual;

  public DigestMismatchException(String message, Digest expected, Digest actual) {
    super(message);
    this.expected = expected;
    this.actual = actual;
  }

  /** The digest that was asked for. */
  public Digest expected() {
    return expected;
  }

  /** The digest of what arrived. */
  public Digest actual() {
    return actual;
  }
}
