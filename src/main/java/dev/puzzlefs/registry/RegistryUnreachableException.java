package dev.puzzlefs.registry;

/** The registry could not be reached (refused, reset, timed out) on every attempt. */
public class RegistryUnreachableException extends RegistryException {
  private static final long serialVersionUID = 1L;

  public RegistryUnreachableException(String message, Throwable cause) {
    super(message, cause);
  }
}
