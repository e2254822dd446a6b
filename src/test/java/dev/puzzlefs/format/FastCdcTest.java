package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class FastCdcTest {
  /** Cuts all of {@code data} and returns the cuts in order. */
  static List<FastCdc.Cut> cutAll(FastCdc cdc, byte[] data) {
    List<FastCdc.Cut> cuts = new ArrayList<>();
    int off = 0;
    while (off < data.length) {
      FastCdc.Cut c = cdc.cutWithHash(data, off, data.length - off);
      assertTrue(c.length() > 0, "a cut makes progress");
      cuts.add(c);
      off += c.length();
    }
    return cuts;
  }

  static int[] lengths(List<FastCdc.Cut> cuts) {
    return cuts.stream().mapToInt(FastCdc.Cut::length).toArray();
  }

  @Test
  void gear_firstEntriesMatchFormat() {
    assertEquals(0x3b5d3c7d207e37dcL, FastCdc.gear(0));
    assertEquals(0x784d68ba91123086L, FastCdc.gear(1));
  }

  @Test
  void cut_sekienVectorsAt16k() {
    List<FastCdc.Cut> cuts = cutAll(new FastCdc(4096, 16384, 65535), TestData.sekien());

    assertArrayEquals(new int[] {21325, 17140, 28084, 18217, 24700}, lengths(cuts));
    String[] hashes = {
      "17968276318003433923",
      "8197189939299398838",
      "13019990849178155730",
      "4509236223063678303",
      "2504464741100432583"
    };
    for (int i = 0; i < hashes.length; i++) {
      assertEquals(hashes[i], Long.toUnsignedString(cuts.get(i).hash()), "hash of chunk " + i);
    }
  }

  @Test
  void cut_sekienVectorsAt32k() {
    List<FastCdc.Cut> cuts = cutAll(new FastCdc(8192, 32768, 131072), TestData.sekien());

    assertArrayEquals(new int[] {66549, 42917}, lengths(cuts));
  }

  @Test
  void cut_sekienVectorsAt64k() {
    List<FastCdc.Cut> cuts = cutAll(FastCdc.PUZZLEFS, TestData.sekien());

    assertArrayEquals(new int[] {109466}, lengths(cuts));
  }

  @Test
  void cut_intoTheMiddleOfAnArrayUsesOnlyThatRange() {
    byte[] sekien = TestData.sekien();
    byte[] padded = new byte[sekien.length + 1000];
    System.arraycopy(sekien, 0, padded, 500, sekien.length);
    FastCdc cdc = new FastCdc(4096, 16384, 65535);

    assertEquals(21325, cdc.cut(padded, 500, sekien.length));
    assertEquals(17140, cdc.cut(padded, 500 + 21325, sekien.length - 21325));
  }

  @Test
  void cut_chunksStayBetweenMinAndMax() {
    // Random bytes cut mostly by content; a long run of zeros is where the max limit has to act.
    byte[] data = new byte[6 << 20];
    System.arraycopy(TestData.random(4 << 20, 7), 0, data, 0, 4 << 20);
    FastCdc cdc = FastCdc.PUZZLEFS;

    List<FastCdc.Cut> cuts = cutAll(cdc, data);

    for (int i = 0; i < cuts.size(); i++) {
      int len = cuts.get(i).length();
      assertTrue(len <= cdc.max(), "chunk " + i + " has " + len + " bytes, over max");
      if (i < cuts.size() - 1) {
        assertTrue(len >= cdc.min(), "chunk " + i + " has " + len + " bytes, under min");
      }
    }
    assertTrue(cuts.stream().anyMatch(c -> c.length() == cdc.max()), "zeros give max chunks");
    assertTrue(cuts.size() > 40, "random data gives many chunks, got " + cuts.size());
  }

  @Test
  void cut_atMostMinBytesAreOneChunk() {
    FastCdc cdc = FastCdc.PUZZLEFS;
    byte[] data = TestData.random(cdc.min() + 1, 3);

    assertEquals(cdc.min(), cdc.cut(data, 0, cdc.min()));
    assertEquals(5, cdc.cut(data, 0, 5));
    assertEquals(0, cdc.cut(data, 0, 0));
  }

  @Test
  void constructor_rejectsUnsupportedSizes() {
    assertThrows(IllegalArgumentException.class, () -> new FastCdc(64, 256, 1024));
    assertThrows(IllegalArgumentException.class, () -> new FastCdc(1 << 20, 1 << 22, 1 << 24));
    assertThrows(IllegalArgumentException.class, () -> new FastCdc(70000, 65536, 262144));
  }
}
