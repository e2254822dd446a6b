package dev.puzzlefs.registry;

import java.io.IOException;

/**
 * A registry operation failed. Messages name the operation, the blob or manifest, the registry and
 * repository, and the cause, for example {@code could not fetch blob sha256:ab.. from
 * 127.0.0.1:5000/repo: connection refused (3 attempts)}.
 */
public class RegistryException extends IOException {
  private static final long serialVersionUID = 1L;

  public RegistryException(String message) {
    super(message);
  }

  public RegistryException(String message, Throwable cause) {
    super(message, cause);
  }
}
