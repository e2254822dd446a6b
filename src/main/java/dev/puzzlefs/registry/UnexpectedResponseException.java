package dev.puzzlefs.registry;

/** The registry answered with a status the operation does not expect (after any retries). */
public class UnexpectedResponseException extends RegistryException {
  private static final long serialVersionUID = 1L;

  private final int status;

  public UnexpectedResponseException(String message, int status) {
    super(message);
    this.status = status;
  }

  /** The HTTP status of the last response. */
  public int status() {
    return status;
  }
}
