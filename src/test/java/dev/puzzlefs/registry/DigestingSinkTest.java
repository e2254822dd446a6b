package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import io.vertx.core.buffer.Buffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** A body received in pieces: as announced, longer, shorter, unannounced, or over the limit. */
class DigestingSinkTest {
  private static final byte[] BODY = random(100_000);

  private static byte[] random(int size) {
    byte[] b = new byte[size];
    new Random(7).nextBytes(b);
    return b;
  }

  /** Writes {@code body} in pieces of 8,191 bytes, as a network would hand it over. */
  private static DigestingSink receive(DigestingSink sink, byte[] body) {
    for (int at = 0; at < body.length; at += 8191) {
      sink.write(Buffer.buffer(Arrays.copyOfRange(body, at, Math.min(body.length, at + 8191))));
    }
    return sink;
  }

  private static void assertReceived(byte[] body, DigestingSink sink) {
    assertFalse(sink.overflowed());
    assertEquals(body.length, sink.received());
    assertArrayEquals(body, sink.bytes());
    assertEquals(Digest.sha256(body), sink.digest());
  }

  @Test
  void announcedSize_bodyKeptWholeAndHashed() {
    assertReceived(BODY, receive(new DigestingSink(1 << 20, BODY.length), BODY));
  }

  @Test
  void notAnnounced_bodyKeptWholeAndHashed() {
    assertReceived(BODY, receive(new DigestingSink(1 << 20), BODY));
  }

  @Test
  void longerThanAnnounced_everyByteKept() {
    assertReceived(BODY, receive(new DigestingSink(1 << 20, 50_000), BODY));
  }

  @Test
  void shorterThanAnnounced_onlyWhatCameAndItsHash() {
    byte[] part = Arrays.copyOf(BODY, 30_000);
    assertReceived(part, receive(new DigestingSink(1 << 20, BODY.length), part));
  }

  @Test
  void overTheLimit_overflowsAndKeepsNoMore() {
    DigestingSink sink = receive(new DigestingSink(40_000, BODY.length), BODY);
    assertTrue(sink.overflowed());
    assertEquals(BODY.length, sink.received());
    assertTrue(sink.bytes().length <= 40_000);
  }

  @Test
  void hugeAnnouncedSize_isNotAllocatedUpFront() {
    // An announced size past the bound (a header alone) still receives what comes, exactly.
    assertReceived(
        BODY, receive(new DigestingSink(1L << 40, DigestingSink.MAX_PRESIZED + 1L), BODY));
  }
}
