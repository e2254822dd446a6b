package dev.puzzlefs.registry;

/**
 * Parts of one blob fetched with one request: range {@code i} of those asked for is its length in
 * bytes of {@link #bytes()} from {@code at(i)}. The parts share one array.
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

  /** Collects the parts asked for, each at its place in one array, as they arrive. */
  static final class Collector implements RangeSink {
    private final java.util.List<Range> ranges;
    private final byte[] bytes;
    private final int[] at;

    Collector(java.util.List<Range> ranges) {
      this.ranges = java.util.List.copyOf(ranges);
      long sum = 0;
      at = new int[ranges.size()];
      for (int i = 0; i < at.length; i++) {
        at[i] = (int) sum;
        sum += ranges.get(i).length();
      }
      if (sum > RangePuller.MAX_BODY_BYTES) {
        throw new IllegalArgumentException("more than one array holds: " + sum + " bytes");
      }
      bytes = new byte[(int) sum];
    }

    @Override
    public void arrived(long offset, io.vertx.core.buffer.Buffer data, int from, int length) {
      long end = offset + length;
      for (int i = 0; i < at.length; i++) {
        Range r = ranges.get(i);
        long start = Math.max(offset, r.offset());
        long stop = Math.min(end, r.end());
        if (start < stop) {
          data.getBytes(
              from + (int) (start - offset),
              from + (int) (stop - offset),
              bytes,
              at[i] + (int) (start - r.offset()));
        }
      }
    }

    ByteRanges collected() {
      return new ByteRanges(bytes, at);
    }
  }
}
