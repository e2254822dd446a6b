package dev.puzzlefs.registry;

import java.util.concurrent.TimeoutException;

/** The registry could not be reached (refused, reset, timed out) on every attempt. */
public class RegistryUnreachableException extends RegistryException {
  private static final long serialVersionUID = 1L;

  public RegistryUnreachableException(String message, Throwable cause) {
    super(message, cause);
  }

  /**
   * True when the last attempt timed out: the registry did not answer, or stopped sending, for a
   * time-out; false when the connection was refused, reset or closed.
   */
  public boolean timedOut() {
    return getCause() instanceof TimeoutException;
  }
}
