package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TextBytes;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class SeekableZstdTest {
  private static final int SEEKABLE_MAGIC = 0x8F92EAB1;
  private static final int SKIPPABLE_MAGIC = 0x184D2A5E;

  private static byte[] compressible(int n, long seed) {
    return TextBytes.of(n, seed);
  }

  private static int intAt(byte[] b, int at) {
    return ByteBuffer.wrap(b, at, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
  }

  private static void putInt(byte[] b, int at, int value) {
    ByteBuffer.wrap(b, at, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(value);
  }

  /** One frame of a hand-built blob: its stored bytes and what the table says about it. */
  private record Frame(byte[] bytes, int size, int checksum) {}

  /** A blob laid out by hand, independently of {@link SeekableZstd#compress}. */
  private static byte[] handBuilt(List<Frame> frames, boolean withChecksums) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Frame f : frames) {
      out.writeBytes(f.bytes());
    }
    int entry = withChecksums ? 12 : 8;
    ByteBuffer table =
        ByteBuffer.allocate(8 + frames.size() * entry + 9).order(ByteOrder.LITTLE_ENDIAN);
    table.putInt(SKIPPABLE_MAGIC).putInt(frames.size() * entry + 9);
    for (Frame f : frames) {
      table.putInt(f.bytes().length).putInt(f.size());
      if (withChecksums) {
        table.putInt(f.checksum());
      }
    }
    table.putInt(frames.size()).put((byte) (withChecksums ? 0x80 : 0)).putInt(SEEKABLE_MAGIC);
    out.writeBytes(table.array());
    return out.toByteArray();
  }

  /** Frames of {@code data} as zstd writes them with its own content checksum at the end. */
  private static List<Frame> checksummedFrames(byte[] data, int frameSize) {
    List<Frame> frames = new java.util.ArrayList<>();
    try (ZstdCompressCtx ctx = new ZstdCompressCtx()) {
      ctx.setLevel(5);
      ctx.setChecksum(true);
      for (int at = 0; at < data.length; at += frameSize) {
        byte[] part = Arrays.copyOfRange(data, at, Math.min(data.length, at + frameSize));
        byte[] frame = ctx.compress(part);
        frames.add(new Frame(frame, part.length, intAt(frame, frame.length - 4)));
      }
    }
    return frames;
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 4095, 4096, 4097, 262144})
  void compressThenRead_randomData_roundTrips(int size) throws Exception {
    byte[] data = TestData.random(size, size);
    SeekableZstd blob = SeekableZstd.open(SeekableZstd.compress(data));

    assertEquals(size, blob.uncompressedSize());
    assertEquals((size + 4095) / 4096, blob.frames());
    assertFalse(blob.hasChecksums());
    assertArrayEquals(data, blob.read(0, size));
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 4095, 4096, 4097, 262144})
  void compressThenRead_compressibleData_roundTripsAndShrinks(int size) throws Exception {
    byte[] data = compressible(size, size);
    byte[] stored = SeekableZstd.compress(data);

    assertEquals(size, SeekableZstd.uncompressedSize(stored));
    assertArrayEquals(data, SeekableZstd.open(stored).read(0, size));
    if (size >= 4096) {
      assertTrue(stored.length < size / 2, stored.length + " stored bytes for " + size);
    }
  }

  @Test
  void compress_emptyInput_isJustAnEmptySeekTable() {
    byte[] stored = SeekableZstd.compress(new byte[0]);
    assertEquals(17, stored.length);
    assertEquals(SKIPPABLE_MAGIC, intAt(stored, 0));
    assertEquals(9, intAt(stored, 4));
    assertEquals(0, intAt(stored, 8));
    assertEquals(0, stored[12]);
    assertEquals(SEEKABLE_MAGIC, intAt(stored, 13));
  }

  @Test
  void compress_sliceOfArray_compressesOnlyTheSlice() throws Exception {
    byte[] data = compressible(10_000, 3);
    byte[] stored = SeekableZstd.compress(data, 100, 5000);
    assertArrayEquals(Arrays.copyOfRange(data, 100, 5100), SeekableZstd.open(stored).read(0, 5000));
  }

  @Test
  void compress_sameInput_givesSameBytesAndLevelThreeFramesWithoutChecksums() throws Exception {
    byte[] data = compressible(3 * 4096 + 10, 4);
    byte[] first = SeekableZstd.compress(data);
    byte[] second = SeekableZstd.compress(data.clone());
    assertArrayEquals(first, second);

    // The frames are exactly what one-shot zstd at level 3 writes for each 4096-byte slice:
    // content size in the header, no content checksum, no dictionary id.
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    for (int at = 0; at < data.length; at += 4096) {
      expected.writeBytes(
          Zstd.compress(Arrays.copyOfRange(data, at, Math.min(data.length, at + 4096)), 3));
    }
    byte[] frames = expected.toByteArray();
    assertArrayEquals(frames, Arrays.copyOf(first, frames.length));
    assertEquals(first.length, frames.length + 8 + 4 * 8 + 9);
  }

  @Test
  void compress_output_decodesWithTheZstdCli() throws Exception {
    // zstd(1) knows nothing of seek tables but must skip the table's skippable frame and decode
    // the frames back to back: an independent check of the frame and skippable-frame layout.
    byte[] data = compressible(5 * 4096 + 77, 16);
    Processes.Result r = Processes.exec(60, SeekableZstd.compress(data), "zstd", "-d", "-c");
    assertEquals(0, r.exit(), r.stderr());
    assertArrayEquals(data, r.stdout());
  }

  @Test
  void read_rangesAroundFrameBoundaries_matchTheInput() throws Exception {
    byte[] data = compressible(5 * 4096 + 100, 5);
    SeekableZstd blob = SeekableZstd.open(SeekableZstd.compress(data));
    int[][] ranges = {
      {0, 1},
      {0, 4096},
      {4095, 1},
      {4095, 2},
      {4096, 1},
      {4096, 4096},
      {4095, 4098},
      {8191, 8194},
      {4096 * 5, 100},
      {4096 * 5 - 1, 101},
      {data.length - 1, 1},
      {0, data.length},
      {12288, 0},
      {data.length, 0}
    };
    for (int[] r : ranges) {
      byte[] dst = new byte[r[1] + 7];
      blob.read(r[0], dst, 7, r[1]);
      assertArrayEquals(
          Arrays.copyOfRange(data, r[0], r[0] + r[1]),
          Arrays.copyOfRange(dst, 7, dst.length),
          "range at " + r[0] + " of " + r[1]);
    }

    Random random = new Random(6);
    for (int i = 0; i < 300; i++) {
      int from = random.nextInt(data.length);
      int len = random.nextInt(data.length - from + 1);
      assertArrayEquals(Arrays.copyOfRange(data, from, from + len), blob.read(from, len));
    }
  }

  @Test
  void read_rangeOutsideTheContent_isRejected() throws Exception {
    SeekableZstd blob = SeekableZstd.open(SeekableZstd.compress(new byte[5000]));
    assertThrows(IllegalArgumentException.class, () -> blob.read(4000, 1001));
    assertThrows(IllegalArgumentException.class, () -> blob.read(-1, 1));
    assertThrows(IllegalArgumentException.class, () -> blob.read(5001, 0));
    assertThrows(IllegalArgumentException.class, () -> blob.read(0, -1));
  }

  @Test
  void read_decompressesOnlyTheFramesCoveringTheRange() throws Exception {
    byte[] data = compressible(4 * 4096, 7);
    byte[] stored = SeekableZstd.compress(data);
    int firstFrameSize = intAt(stored, stored.length - 9 - 4 * 8);
    // Ruin frame 0's compressed bytes (after its 4-byte magic); frames 1-3 must still read.
    Arrays.fill(stored, 4, firstFrameSize, (byte) 0x55);
    SeekableZstd blob = SeekableZstd.open(stored);

    assertArrayEquals(Arrays.copyOfRange(data, 4096, 16384), blob.read(4096, 12288));
    assertThrows(FormatException.class, () -> blob.read(4095, 2));
  }

  @Test
  void read_handBuiltTableWithChecksums_readsAndVerifiesThem() throws Exception {
    byte[] data = compressible(3 * 4096 + 1000, 8);
    List<Frame> frames = checksummedFrames(data, 4096);
    SeekableZstd blob = SeekableZstd.open(handBuilt(frames, true));

    assertTrue(blob.hasChecksums());
    assertEquals(4, blob.frames());
    assertArrayEquals(data, blob.read(0, data.length));
    assertArrayEquals(Arrays.copyOfRange(data, 5000, 13000), blob.read(5000, 8000));
  }

  @Test
  void read_checksumThatDoesNotMatch_isAFormatExceptionNamingTheFrame() throws Exception {
    byte[] data = compressible(3 * 4096, 9);
    List<Frame> frames = new java.util.ArrayList<>(checksummedFrames(data, 4096));
    Frame second = frames.get(1);
    frames.set(1, new Frame(second.bytes(), second.size(), second.checksum() ^ 1));
    SeekableZstd blob = SeekableZstd.open(handBuilt(frames, true));

    assertArrayEquals(Arrays.copyOf(data, 4096), blob.read(0, 4096));
    FormatException e = assertThrows(FormatException.class, () -> blob.read(4096, 10));
    assertTrue(
        e.getMessage().contains("frame 1") && e.getMessage().contains("checksum"), e.getMessage());
  }

  @Test
  void read_otherWritersLayout_unevenAndEmptyFramesRead() throws Exception {
    // Frames of any size, and an empty frame, as other seekable writers may produce.
    byte[] data = compressible(10_000, 10);
    List<Frame> frames = new java.util.ArrayList<>(checksummedFrames(data, 3000));
    frames.add(2, new Frame(Zstd.compress(new byte[0], 3), 0, 0));
    frames.add(new Frame(Zstd.compress(new byte[0], 3), 0, 0));
    SeekableZstd blob = SeekableZstd.open(handBuilt(frames, false));

    assertEquals(10_000, blob.uncompressedSize());
    assertEquals(6, blob.frames());
    assertArrayEquals(data, blob.read(0, data.length));
    assertArrayEquals(Arrays.copyOfRange(data, 5999, 6001), blob.read(5999, 2));
    assertArrayEquals(Arrays.copyOfRange(data, 6000, 9000), blob.read(6000, 3000));
  }

  private static FormatException malformed(byte[] blob) {
    return assertThrows(
        FormatException.class,
        () -> {
          SeekableZstd parsed = SeekableZstd.open(blob);
          parsed.read(0, (int) parsed.uncompressedSize());
        });
  }

  private static void assertMentions(FormatException e, String... words) {
    for (String w : words) {
      assertTrue(e.getMessage().contains(w), "'" + w + "' not in: " + e.getMessage());
    }
  }

  @Test
  void open_truncatedBlobs_areFormatExceptions() {
    byte[] stored = SeekableZstd.compress(compressible(3 * 4096, 11));
    assertMentions(malformed(new byte[0]), "too short");
    assertMentions(malformed(Arrays.copyOf(stored, 16)), "too short");
    assertMentions(malformed(Arrays.copyOf(stored, stored.length - 1)), "seekable magic");
    // Cut from the front: the table is intact but the frames no longer fill the space before it.
    assertMentions(
        malformed(Arrays.copyOfRange(stored, 10, stored.length)), "add up to", "precede");
    // Only the table is left: it names frames that are not there.
    assertMentions(
        malformed(Arrays.copyOfRange(stored, stored.length - 8 - 3 * 8 - 9, stored.length)),
        "add up to");
  }

  @Test
  void open_badMagicNumbers_areFormatExceptions() {
    byte[] stored = SeekableZstd.compress(compressible(2 * 4096, 12));
    byte[] badFooter = stored.clone();
    badFooter[badFooter.length - 1] ^= 0x10;
    assertMentions(malformed(badFooter), "seekable magic");

    byte[] badSkippable = stored.clone();
    badSkippable[badSkippable.length - 9 - 2 * 8 - 8] ^= 0x01;
    assertMentions(malformed(badSkippable), "skippable magic");

    byte[] reserved = stored.clone();
    reserved[reserved.length - 5] = 0x04;
    assertMentions(malformed(reserved), "reserved");
  }

  @Test
  void open_tableSizesThatDoNotAddUp_areFormatExceptions() {
    byte[] stored = SeekableZstd.compress(compressible(3 * 4096, 13));
    int table = stored.length - 9 - 3 * 8;

    byte[] longerFrame = stored.clone();
    putInt(longerFrame, table, intAt(longerFrame, table) + 1);
    assertMentions(malformed(longerFrame), "add up to");

    byte[] shorterFrame = stored.clone();
    putInt(shorterFrame, table + 8, intAt(shorterFrame, table + 8) - 1);
    assertMentions(malformed(shorterFrame), "add up to");

    byte[] frameSizeField = stored.clone();
    putInt(frameSizeField, table - 4, 3 * 8 + 9 + 1);
    assertMentions(malformed(frameSizeField), "frame says");

    byte[] moreFrames = stored.clone();
    putInt(moreFrames, stored.length - 9, 1000);
    assertMentions(malformed(moreFrames), "1000 frames");
  }

  @Test
  void read_decompressedSizeThatDisagreesWithTheFrame_isAFormatException() {
    byte[] stored = SeekableZstd.compress(compressible(2 * 4096, 14));
    int table = stored.length - 9 - 2 * 8;

    byte[] bigger = stored.clone();
    putInt(bigger, table + 4, 5000);
    assertMentions(malformed(bigger), "frame 0");

    byte[] smaller = stored.clone();
    putInt(smaller, table + 12, 4000);
    assertMentions(malformed(smaller), "frame 1");
  }

  @Test
  void read_zeroFilledFrameBytes_isAFormatException() {
    byte[] stored = SeekableZstd.compress(compressible(2 * 4096, 15));
    int firstFrameSize = intAt(stored, stored.length - 9 - 2 * 8);
    Arrays.fill(stored, 0, firstFrameSize, (byte) 0);
    assertMentions(malformed(stored), "frame 0", "does not decompress");
  }
}
