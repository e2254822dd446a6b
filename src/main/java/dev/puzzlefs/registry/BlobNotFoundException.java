package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;

/** The registry has no blob with this digest in the repository (HTTP 404); never retried. */
public class BlobNotFoundException extends RegistryException {
  private static final long serialVersionUID = 1L;

  private final transient Digest digest;

  public BlobNotFoundException(String message, Digest digest) {
    super(message);
    this.digest = digest;
  }

  /** The missing blob. */
  public Digest digest() {
    return digest;
  }
}
