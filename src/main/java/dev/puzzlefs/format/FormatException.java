package dev.puzzlefs.format;

import java.io.IOException;

/** An image's bytes do not follow the PuzzleFS format; the message names what and where. */
public class FormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public FormatException(String message) {
    super(message);
  }

  public FormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
