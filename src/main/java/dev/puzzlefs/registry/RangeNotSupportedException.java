package dev.puzzlefs.registry;

/**
 * The registry answered a request for part of a blob with something other than that part: the whole
 * blob (it ignores {@code Range}), or a part that is not the one asked for. Not retried; a reader
 * falls back to fetching the blobs one by one.
 */
public class RangeNotSupportedException extends RegistryException {
  private static final long serialVersionUID = 1L;

  public RangeNotSupportedException(String message) {
    super(message);
  }
}
