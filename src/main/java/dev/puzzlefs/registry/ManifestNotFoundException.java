package dev.puzzlefs.registry;

/** The registry has no manifest under this tag or digest (HTTP 404); never retried. */
public class ManifestNotFoundException extends RegistryException {
  private static final long serialVersionUID = 1L;

  private final String reference;

  public ManifestNotFoundException(String message, String reference) {
    super(message);
    this.reference = reference;
  }

  /** The tag or digest that was asked for. */
  public String reference() {
    return reference;
  }
}
