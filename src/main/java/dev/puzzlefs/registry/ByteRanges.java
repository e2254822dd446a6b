package dev.puzzlefs.registry;

import java.util.List;

/**
 * Parts of one blob fetched with one request: range {@code i} of those asked for is {@code
 * length(i)} bytes of {@link #bytes()} from {@code at(i)}. The parts share the array they arrived
 * in, so that nothing is copied before the caller cuts out what it needs.
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
  private final List<Range> ranges;

  ByteRanges(byte[] bytes, int[] at, List<Range> ranges) {
    this.bytes = bytes;
    this.at = at;
    this.ranges = ranges;
  }

  /** The array the parts are in. */
  public byte[] bytes() {
    return bytes;
  }

  /** Where part {@code i} starts in {@link #bytes()}. */
  public int at(int i) {
    return at[i];
  }

  /** Part {@code i}'s length. */
  public int length(int i) {
    return ranges.get(i).length();
  }

  /** How many parts there are: as many as were asked for. */
  public int count() {
    return at.length;
  }
}
