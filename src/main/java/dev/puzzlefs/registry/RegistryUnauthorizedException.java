package dev.puzzlefs.registry;

/** The registry answered 401 or 403; retrying without credentials cannot help. */
public class RegistryUnauthorizedException extends RegistryException {
  private static final long serialVersionUID = 1L;

  public RegistryUnauthorizedException(String message) {
    super(message);
  }
}
