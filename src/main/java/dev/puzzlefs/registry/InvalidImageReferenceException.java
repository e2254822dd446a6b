package dev.puzzlefs.registry;

/** An image reference string is malformed; the message quotes it and says what is wrong. */
public class InvalidImageReferenceException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public InvalidImageReferenceException(String input, String problem) {
    super("invalid image reference '" + input + "': " + problem);
  }
}
