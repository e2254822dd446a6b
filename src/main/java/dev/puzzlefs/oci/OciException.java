package dev.puzzlefs.oci;

import java.io.IOException;

/** An OCI layout or document is missing, malformed or inconsistent; the message says which. */
public class OciException extends IOException {
  private static final long serialVersionUID = 1L;

  public OciException(String message) {
    super(message);
  }

  public OciException(String message, Throwable cause) {
    super(message, cause);
  }
}
