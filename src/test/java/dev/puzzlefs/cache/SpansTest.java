package dev.puzzlefs.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.BitSet;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SpansTest {
  @Test
  void add_countsEachByteOnce_whateverTheOrderAndOverlaps() {
    PackedBlobFetcher.Spans s = new PackedBlobFetcher.Spans();
    assertEquals(10, s.add(0, 10));
    assertEquals(10, s.add(0, 10), "the same bytes again");
    assertEquals(10, s.add(2, 5), "inside");
    assertEquals(20, s.add(20, 30));
    assertEquals(25, s.add(15, 20), "touching the right one");
    assertEquals(30, s.add(5, 17), "bridging both");
    Random random = new Random(5);
    for (int trial = 0; trial < 500; trial++) {
      PackedBlobFetcher.Spans spans = new PackedBlobFetcher.Spans();
      BitSet expected = new BitSet();
      for (int i = 0; i < 20; i++) {
        int from = random.nextInt(200);
        int to = from + 1 + random.nextInt(40);
        expected.set(from, to);
        assertEquals(expected.cardinality(), spans.add(from, to));
      }
    }
  }
}
