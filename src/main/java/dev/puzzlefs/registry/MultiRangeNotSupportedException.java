package dev.puzzlefs.registry;

/**
 * The registry answered a request for several parts of a blob with something other than those parts
 * (the whole blob, one part only, a malformed {@code multipart/byteranges} body). It may still
 * serve one part per request: a reader goes on asking for one part at a time.
 */
public class MultiRangeNotSupportedException extends RangeNotSupportedException {
  private static final long serialVersionUID = 1L;

  public MultiRangeNotSupportedException(String message) {
    super(message);
  }
}
