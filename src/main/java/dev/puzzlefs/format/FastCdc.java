package dev.puzzlefs.format;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * Content-defined chunking with FastCDC, the 2020 variant at normalization level 1.
 *
 * <p>Why it works this way: a cut point depends only on the bytes after the previous cut (at most
 * {@code max} of them), so identical content yields identical chunks wherever it sits in the
 * stream. The gear hash takes two bytes per loop step, using tables and masks shifted left by one
 * bit for the first byte of the pair; this is the "rolling two bytes" form of FastCDC 2020 and it
 * cuts at exactly the same places as the reference implementation that PuzzleFS images are built
 * with. Below {@code avg} the stricter small mask makes a cut unlikely, past it the looser large
 * mask makes one likely, which narrows the spread of chunk sizes (normalization).
 *
 * <p>Instances are immutable and safe to share between threads.
 */
public final class FastCdc {
  /** The gear table: entry i is the first 8 bytes, big-endian, of MD5 of 64 bytes equal to i. */
  private static final long[] GEAR = gearTable();

  /** The gear table shifted left by one bit, used for the first byte of each pair. */
  private static final long[] GEAR_SHIFTED = shifted(GEAR);

  /** The FastCDC 2020 masks for 2^13 .. 2^18 bytes; other sizes are not supported here. */
  private static final long[] MASKS = {
    0x0000d90303530000L, // 13
    0x0000d90313530000L, // 14
    0x0000d90f03530000L, // 15
    0x0000d90303537000L, // 16
    0x0000d90703537000L, // 17
    0x0000d90707537000L, // 18
  };

  private static final int FIRST_MASK_BITS = 13;

  /** The parameters PuzzleFS images use: min 16 KiB, average 64 KiB, max 256 KiB. */
  public static final FastCdc PUZZLEFS = new FastCdc(16384, 65536, 262144);

  private final int min;
  private final int avg;
  private final int max;
  private final long maskSmall;
  private final long maskSmallShifted;
  private final long maskLarge;
  private final long maskLargeShifted;

  /** Where the next chunk ends ({@code length} bytes) and the gear hash at that point. */
  public record Cut(int length, long hash) {}

  /** A chunker with the given minimum, average and maximum chunk sizes in bytes. */
  public FastCdc(int min, int avg, int max) {
    if (min <= 0 || min > avg || avg > max) {
      throw new IllegalArgumentException(
          "need 0 < min <= avg <= max, got " + min + ", " + avg + ", " + max);
    }
    int bits = (int) Math.round(Math.log(avg) / Math.log(2));
    int small = bits + 1 - FIRST_MASK_BITS;
    int large = bits - 1 - FIRST_MASK_BITS;
    if (large < 0 || small >= MASKS.length) {
      throw new IllegalArgumentException(
          "average chunk size " + avg + " is outside the supported 2^14 .. 2^17 bytes");
    }
    this.min = min;
    this.avg = avg;
    this.max = max;
    this.maskSmall = MASKS[small];
    this.maskSmallShifted = MASKS[small] << 1;
    this.maskLarge = MASKS[large];
    this.maskLargeShifted = MASKS[large] << 1;
  }

  /** The minimum chunk size; only the last chunk of a stream may be shorter. */
  public int min() {
    return min;
  }

  /** The average (target) chunk size. */
  public int avg() {
    return avg;
  }

  /** The maximum chunk size. */
  public int max() {
    return max;
  }

  /**
   * The length of the next chunk of {@code buf[off, off+len)}, where those bytes are either at
   * least {@link #max()} bytes of the stream or everything left of it.
   */
  public int cut(byte[] buf, int off, int len) {
    return cutWithHash(buf, off, len).length();
  }

  /** Like {@link #cut} but also returns the gear hash at the cut, as the reference vectors do. */
  public Cut cutWithHash(byte[] buf, int off, int len) {
    if (off < 0 || len < 0 || len > buf.length - off) {
      throw new IndexOutOfBoundsException(
          "range [" + off + ", " + off + "+" + len + ") of " + buf.length + " bytes");
    }
    if (len <= min) {
      return new Cut(len, 0);
    }
    int remaining = len;
    int center = avg;
    if (remaining > max) {
      remaining = max;
    } else if (remaining < center) {
      center = remaining;
    }

    long[] gear = GEAR;
    long[] gearShifted = GEAR_SHIFTED;
    long hash = 0;
    int i = min / 2;
    int end = center / 2;
    long mask = maskSmall;
    long maskShifted = maskSmallShifted;
    for (int pass = 0; pass < 2; pass++) {
      for (; i < end; i++) {
        int a = off + 2 * i;
        hash = (hash << 2) + gearShifted[buf[a] & 0xff];
        if ((hash & maskShifted) == 0) {
          return new Cut(2 * i, hash);
        }
        hash += gear[buf[a + 1] & 0xff];
        if ((hash & mask) == 0) {
          return new Cut(2 * i + 1, hash);
        }
      }
      end = remaining / 2;
      mask = maskLarge;
      maskShifted = maskLargeShifted;
    }
    return new Cut(remaining, hash);
  }

  /** GEAR[i] as the format defines it; exposed for tests. */
  static long gear(int i) {
    return GEAR[i];
  }

  private static long[] gearTable() {
    MessageDigest md5;
    try {
      md5 = MessageDigest.getInstance("MD5");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JDK has no MD5", e);
    }
    long[] table = new long[256];
    byte[] input = new byte[64];
    for (int i = 0; i < 256; i++) {
      Arrays.fill(input, (byte) i);
      byte[] sum = md5.digest(input);
      long v = 0;
      for (int k = 0; k < 8; k++) {
        v = (v << 8) | (sum[k] & 0xff);
      }
      table[i] = v;
    }
    return table;
  }

  private static long[] shifted(long[] table) {
    long[] out = new long[table.length];
    for (int i = 0; i < table.length; i++) {
      out[i] = table[i] << 1;
    }
    return out;
  }
}
