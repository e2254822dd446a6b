package dev.puzzlefs.format;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A chunk blob in the zstd seekable format: independent zstd frames of {@value #FRAME_SIZE}
 * uncompressed bytes each, then a seek table in a trailing skippable frame.
 *
 * <p>The layout, all numbers little-endian: the frames, back to back; then the skippable magic
 * {@code 0x184D2A5E}, the u32 size of what follows, one entry per frame (compressed size u32,
 * decompressed size u32, and a u32 checksum when the table has them), and a 9-byte footer: the
 * number of frames u32, a descriptor byte (bit 7 says entries carry checksums, bits 6-2 are
 * reserved and must be 0) and the seekable magic {@code 0x8F92EAB1}, which ends the blob. A
 * checksum is the low 32 bits of XXH64 (seed 0) of the frame's decompressed bytes.
 *
 * <p>Why it works this way: a read of a few KiB in the middle of a 256 KiB chunk should cost a few
 * KiB of decompression, so every frame is compressed on its own and the table says where each
 * starts in both spaces. Output must be the same on every run, because the blob is named by its
 * sha256: the level is fixed, zstd runs single-threaded, frames carry their content size and no
 * content checksum, and this writer emits tables without checksums (they add nothing over the
 * blob's sha256). Tables with checksums, as other writers make them, are read and verified.
 *
 * <p>An instance is a parsed view over one blob; it is immutable and safe for concurrent use.
 */
public final class SeekableZstd {
  /** The zstd compression level chunks are compressed at. */
  public static final int LEVEL = 3;

  /** Uncompressed bytes per frame (the last frame may be shorter). */
  public static final int FRAME_SIZE = 4096;

  private static final int SKIPPABLE_MAGIC = 0x184D2A5E;
  private static final int SEEKABLE_MAGIC = 0x8F92EAB1;
  private static final int SKIPPABLE_HEADER = 8;
  private static final int FOOTER = 9;
  private static final int CHECKSUM_FLAG = 0x80;
  private static final int RESERVED_BITS = 0x7c;

  /** The largest frame this reader decompresses; the seekable format's own limit is 1-2 GiB. */
  private static final int MAX_FRAME_CONTENT = 1 << 30;

  private static final VarHandle INTS =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

  // Contexts are costly to create and not thread-safe; each call borrows one. The pools grow to
  // the peak number of concurrent callers and keep those contexts for the life of the JVM.
  private static final Queue<ZstdCompressCtx> COMPRESSORS = new ConcurrentLinkedQueue<>();
  private static final Queue<ZstdDecompressCtx> DECOMPRESSORS = new ConcurrentLinkedQueue<>();

  private final byte[] blob;
  private final int[] compressedStarts;
  private final long[] starts;
  private final int[] checksums;

  private SeekableZstd(byte[] blob, int[] compressedStarts, long[] starts, int[] checksums) {
    this.blob = blob;
    this.compressedStarts = compressedStarts;
    this.starts = starts;
    this.checksums = checksums;
  }

  /** Compresses all of {@code data} into one seekable blob. */
  public static byte[] compress(byte[] data) {
    return compress(data, 0, data.length);
  }

  /**
   * Compresses {@code data[off, off+len)} into one seekable blob. The same bytes always give the
   * same blob (for one zstd version).
   */
  public static byte[] compress(byte[] data, int off, int len) {
    Objects.checkFromIndexSize(off, len, data.length);
    int frames = (len + FRAME_SIZE - 1) / FRAME_SIZE;
    long capacity =
        (long) frames * Zstd.compressBound(FRAME_SIZE)
            + SKIPPABLE_HEADER
            + (long) frames * 8
            + FOOTER;
    if (capacity > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException(len + " bytes are too many for one seekable blob");
    }
    byte[] out = new byte[(int) capacity];
    int[] compressedSizes = new int[frames];
    int pos = 0;
    ZstdCompressCtx ctx = borrowCompressor();
    try {
      for (int i = 0; i < frames; i++) {
        int from = off + i * FRAME_SIZE;
        int n = Math.min(FRAME_SIZE, off + len - from);
        compressedSizes[i] = ctx.compressByteArray(out, pos, out.length - pos, data, from, n);
        pos += compressedSizes[i];
      }
    } finally {
      COMPRESSORS.add(ctx);
    }

    putInt(out, pos, SKIPPABLE_MAGIC);
    putInt(out, pos + 4, frames * 8 + FOOTER);
    pos += SKIPPABLE_HEADER;
    for (int i = 0; i < frames; i++) {
      putInt(out, pos, compressedSizes[i]);
      putInt(out, pos + 4, Math.min(FRAME_SIZE, len - i * FRAME_SIZE));
      pos += 8;
    }
    putInt(out, pos, frames);
    out[pos + 4] = 0;
    putInt(out, pos + 5, SEEKABLE_MAGIC);
    pos += FOOTER;
    return Arrays.copyOf(out, pos);
  }

  private static ZstdCompressCtx borrowCompressor() {
    ZstdCompressCtx ctx = COMPRESSORS.poll();
    if (ctx == null) {
      ctx = new ZstdCompressCtx();
      ctx.setLevel(LEVEL);
      ctx.setWorkers(0);
      ctx.setChecksum(false);
      ctx.setContentSize(true);
      ctx.setDictID(false);
    }
    return ctx;
  }

  /**
   * Parses the seek table of {@code blob} and checks it against the blob's length. The blob is
   * kept, not copied, and must not be modified.
   *
   * @throws FormatException if there is no well-formed seek table or its frames do not add up to
   *     the bytes before it
   */
  public static SeekableZstd open(byte[] blob) throws FormatException {
    int length = blob.length;
    if (length < SKIPPABLE_HEADER + FOOTER) {
      throw new FormatException(
          "seekable zstd blob of "
              + length
              + " bytes is too short for a seek table (at least "
              + (SKIPPABLE_HEADER + FOOTER)
              + ")");
    }
    int magic = getInt(blob, length - 4);
    if (magic != SEEKABLE_MAGIC) {
      throw new FormatException(
          String.format(
              "seekable zstd blob does not end with the seekable magic 0x%08x but 0x%08x",
              SEEKABLE_MAGIC, magic));
    }
    int descriptor = blob[length - 5] & 0xff;
    if ((descriptor & RESERVED_BITS) != 0) {
      throw new FormatException(
          String.format("seek table descriptor 0x%02x sets reserved bits", descriptor));
    }
    boolean hasChecksums = (descriptor & CHECKSUM_FLAG) != 0;
    long frames = Integer.toUnsignedLong(getInt(blob, length - FOOTER));
    int entrySize = hasChecksums ? 12 : 8;
    long tableSize = SKIPPABLE_HEADER + frames * entrySize + FOOTER;
    if (tableSize > length) {
      throw new FormatException(
          "seek table of "
              + frames
              + " frames needs "
              + tableSize
              + " bytes but the blob has only "
              + length);
    }
    int tableStart = length - (int) tableSize;
    int skippable = getInt(blob, tableStart);
    if (skippable != SKIPPABLE_MAGIC) {
      throw new FormatException(
          String.format(
              "seek table at byte %d does not start with the skippable magic 0x%08x but 0x%08x",
              tableStart, SKIPPABLE_MAGIC, skippable));
    }
    long frameSize = Integer.toUnsignedLong(getInt(blob, tableStart + 4));
    if (frameSize != tableSize - SKIPPABLE_HEADER) {
      throw new FormatException(
          "seek table frame says it has "
              + frameSize
              + " bytes but "
              + frames
              + " entries and the footer take "
              + (tableSize - SKIPPABLE_HEADER));
    }
    return parseEntries(blob, (int) frames, hasChecksums, tableStart);
  }

  private static SeekableZstd parseEntries(
      byte[] blob, int frames, boolean hasChecksums, int tableStart) throws FormatException {
    int entrySize = hasChecksums ? 12 : 8;
    int[] compressedStarts = new int[frames + 1];
    long[] starts = new long[frames + 1];
    int[] checksums = hasChecksums ? new int[frames] : null;
    long compressedEnd = 0;
    int at = tableStart + SKIPPABLE_HEADER;
    for (int i = 0; i < frames; i++, at += entrySize) {
      long compressedSize = Integer.toUnsignedLong(getInt(blob, at));
      long size = Integer.toUnsignedLong(getInt(blob, at + 4));
      if (size > MAX_FRAME_CONTENT) {
        throw new FormatException(
            "seek table says frame "
                + i
                + " holds "
                + size
                + " bytes, more than this reader takes");
      }
      compressedEnd += compressedSize;
      if (compressedEnd > tableStart) {
        break;
      }
      compressedStarts[i + 1] = (int) compressedEnd;
      starts[i + 1] = starts[i] + size;
      if (hasChecksums) {
        checksums[i] = getInt(blob, at + 8);
      }
    }
    if (compressedEnd != tableStart) {
      throw new FormatException(
          "seek table frames' compressed sizes add up to "
              + (compressedEnd > tableStart ? "more than " : "")
              + compressedEnd
              + " bytes but "
              + tableStart
              + " bytes precede the table");
    }
    return new SeekableZstd(blob, compressedStarts, starts, checksums);
  }

  /**
   * The number of uncompressed bytes {@code blob} holds, from its seek table.
   *
   * @throws FormatException as {@link #open} does
   */
  public static long uncompressedSize(byte[] blob) throws FormatException {
    return open(blob).uncompressedSize();
  }

  /** The number of uncompressed bytes this blob holds. */
  public long uncompressedSize() {
    return starts[starts.length - 1];
  }

  /** The number of frames the seek table lists. */
  public int frames() {
    return compressedStarts.length - 1;
  }

  /** True when the seek table carries a checksum per frame (and reads verify them). */
  public boolean hasChecksums() {
    return checksums != null;
  }

  /** The uncompressed bytes {@code [from, from+len)}; see {@link #read(long, byte[], int, int)}. */
  public byte[] read(long from, int len) throws FormatException {
    if (len < 0) {
      throw new IllegalArgumentException("negative length " + len);
    }
    byte[] out = new byte[len];
    read(from, out, 0, len);
    return out;
  }

  /**
   * Decompresses the uncompressed bytes {@code [from, from+len)} into {@code dst} at {@code
   * dstOff}, decompressing only the frames that hold them.
   *
   * @throws IllegalArgumentException if the range is not inside the uncompressed content
   * @throws FormatException if a frame does not decompress to what the seek table says
   */
  public void read(long from, byte[] dst, int dstOff, int len) throws FormatException {
    Objects.checkFromIndexSize(dstOff, len, dst.length);
    long size = uncompressedSize();
    if (from < 0 || from > size - len) {
      throw new IllegalArgumentException(
          "bytes ["
              + from
              + ", "
              + (from + len)
              + ") are not inside the "
              + size
              + " uncompressed bytes");
    }
    long end = from + len;
    ZstdDecompressCtx ctx = borrowDecompressor();
    try {
      for (int i = firstFrameEndingAfter(from); i < frames() && starts[i] < end; i++) {
        long frameStart = starts[i];
        long frameEnd = starts[i + 1];
        if (frameStart == frameEnd) {
          continue;
        }
        long lo = Math.max(from, frameStart);
        long hi = Math.min(end, frameEnd);
        int at = dstOff + (int) (lo - from);
        if (lo == frameStart && hi == frameEnd) {
          decompressFrame(ctx, i, dst, at);
        } else {
          byte[] frame = new byte[(int) (frameEnd - frameStart)];
          decompressFrame(ctx, i, frame, 0);
          System.arraycopy(frame, (int) (lo - frameStart), dst, at, (int) (hi - lo));
        }
      }
    } finally {
      DECOMPRESSORS.add(ctx);
    }
  }

  private static ZstdDecompressCtx borrowDecompressor() {
    ZstdDecompressCtx ctx = DECOMPRESSORS.poll();
    return ctx != null ? ctx : new ZstdDecompressCtx();
  }

  /** The first frame whose uncompressed bytes end after {@code position}. */
  private int firstFrameEndingAfter(long position) {
    int lo = 0;
    int hi = frames();
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (starts[mid + 1] <= position) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  private void decompressFrame(ZstdDecompressCtx ctx, int frame, byte[] dst, int at)
      throws FormatException {
    int size = (int) (starts[frame + 1] - starts[frame]);
    int compressedStart = compressedStarts[frame];
    int compressedSize = compressedStarts[frame + 1] - compressedStart;
    int n;
    try {
      n = ctx.decompressByteArray(dst, at, size, blob, compressedStart, compressedSize);
    } catch (ZstdException e) {
      throw new FormatException(
          "zstd frame "
              + frame
              + " (bytes "
              + compressedStart
              + ".."
              + (compressedStart + compressedSize)
              + " of the blob) does not decompress to the "
              + size
              + " bytes the seek table says: "
              + e.getMessage(),
          e);
    }
    if (n != size) {
      throw new FormatException(
          "zstd frame " + frame + " decompresses to " + n + " bytes, the seek table says " + size);
    }
    if (checksums != null) {
      int actual = (int) XxHash64.hash(dst, at, size);
      if (actual != checksums[frame]) {
        throw new FormatException(
            String.format(
                "zstd frame %d fails its checksum: the seek table says %08x, the bytes give %08x",
                frame, checksums[frame], actual));
      }
    }
  }

  private static int getInt(byte[] b, int at) {
    return (int) INTS.get(b, at);
  }

  private static void putInt(byte[] b, int at, int value) {
    INTS.set(b, at, value);
  }
}
