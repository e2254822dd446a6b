package dev.puzzlefs.registry;

/**
 * Parts of one blob fetched with one request: range {@code i} of those asked for is its length in
 * bytes of {@link #bytes()} from {@code at(i)}. The parts share the array they arrived in, so that
 * nothing is copied before the caller cuts out what it needs.
 */
public final class ByteRanges {
  /**
   * {@code length} bytes of a blob from {@code offset}.
   *
   * @param offset where the part starts in the blob
   * @param length the part's length, positive
   */
  public record Range(long offset, int length) {
    public Range {
      if (offset < 0 || length <= 0) {
        throw new IllegalArgumentException("bad range: " + length + " bytes at " + offset);
      }
    }

    /** The offset just past the part. */
    public long end() {
      return offset + length;
    }

    @Override
    public String toString() {
      return offset + "-" + (end() - 1);
    }
  }

  private final byte[] bytes;
  private final int[] at;

  ByteRanges(byte[] bytes, int[] at) {
    this.bytes = bytes;
    this.at = at;
  }

  /** The array the parts are in. */
  public byte[] bytes() {
    return bytes;
  }

  /** Where part {@code i} starts in {@link #bytes()}. */
  public int at(int i) {
    return at[i];
  }
}
