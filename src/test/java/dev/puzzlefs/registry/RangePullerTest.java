package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The parsing of answers to range requests: headers and {@code multipart/byteranges} bodies. */
class RangePullerTest {
  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  private static String part(List<long[]> parts, byte[] body, int i) {
    long[] p = parts.get(i);
    return new String(body, (int) p[2], (int) (p[1] - p[0]), StandardCharsets.ISO_8859_1);
  }

  @Test
  void contentRange_parsesBytesFromToTotal_andRefusesAnythingElse() {
    assertArrayEquals(new long[] {0, 10}, RangePuller.parseContentRange("bytes 0-9/100"));
    assertArrayEquals(new long[] {5, 6}, RangePuller.parseContentRange(" Bytes 5-5/*"));
    assertNull(RangePuller.parseContentRange(null));
    assertNull(RangePuller.parseContentRange("bytes */100"));
    assertNull(RangePuller.parseContentRange("bytes 9-0/100"));
    assertNull(RangePuller.parseContentRange("bytes -1-5/100"));
    assertNull(RangePuller.parseContentRange("items 0-9/100"));
    assertNull(RangePuller.parseContentRange("bytes 0-9"));
  }

  @Test
  void contentRange_refusesAnEndPastTheLargestOffset() {
    // B + 1 would overflow to a negative end.
    assertNull(RangePuller.parseContentRange("bytes 0-9223372036854775807/*"));
    assertNull(RangePuller.parseContentRange("bytes 5-9223372036854775807/*"));
    assertArrayEquals(
        new long[] {0, Long.MAX_VALUE},
        RangePuller.parseContentRange("bytes 0-9223372036854775806/*"));
  }

  @Test
  void multipart_refusesAPartWhoseEndOverflows() {
    String body = "--B\r\nContent-Range: bytes 0-9223372036854775807/*\r\n\r\n\r\n--B--\r\n";
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> RangePuller.parseMultipart(bytes(body), "B"));
    assertTrue(e.getMessage().contains("Content-Range"), e.getMessage());
  }

  @Test
  void boundary_isTakenFromMultipartByterangesOnly() {
    assertEquals("abc", RangePuller.multipartBoundary("multipart/byteranges; boundary=abc"));
    assertEquals(
        "a b", RangePuller.multipartBoundary("Multipart/ByteRanges;charset=x; BOUNDARY=\"a b\""));
    assertNull(RangePuller.multipartBoundary("application/octet-stream"));
    assertNull(RangePuller.multipartBoundary("multipart/mixed; boundary=abc"));
    assertNull(RangePuller.multipartBoundary("multipart/byteranges"));
    assertNull(RangePuller.multipartBoundary("multipart/byteranges; boundary=" + "x".repeat(71)));
  }

  @Test
  void multipart_givesEachPartsRangeAndBytes_afterAPreambleAndWithOtherHeaders() {
    byte[] body =
        bytes(
            "preamble\r\n--XY\r\nContent-Type: application/octet-stream\r\n"
                + "content-range: bytes 10-14/100\r\n\r\nhello\r\n--XY \r\n"
                + "Content-Range: bytes 50-52/100\r\n\r\n--X\r\n--XY--\r\n");
    List<long[]> parts = RangePuller.parseMultipart(body, "XY");
    assertEquals(2, parts.size());
    assertEquals(10, parts.get(0)[0]);
    assertEquals(15, parts.get(0)[1]);
    assertEquals("hello", part(parts, body, 0));
    assertEquals(50, parts.get(1)[0]);
    assertEquals("--X", part(parts, body, 1), "a part's bytes may look like a delimiter");
  }

  @Test
  void multipart_refusesBodiesThatAreNotWhatTheyClaim() {
    String ok = "--B\r\nContent-Range: bytes 0-4/9\r\n\r\nhello\r\n--B--\r\n";
    assertEquals(1, RangePuller.parseMultipart(bytes(ok), "B").size());
    for (String[] bad :
        new String[][] {
          {"no boundary", "hello"},
          {"a part longer than the body", "--B\r\nContent-Range: bytes 0-99/100\r\n\r\nhello"},
          {"no boundary after a part", "--B\r\nContent-Range: bytes 0-2/9\r\n\r\nhello\r\n--B--"},
          {"a part without Content-Range", "--B\r\nContent-Type: x\r\n\r\nhello\r\n--B--"},
          {"a part's Content-Range", "--B\r\nContent-Range: bytes 4-0/9\r\n\r\nhello\r\n--B--"},
          {"headers without an end", "--B\r\nContent-Range: bytes 0-4/9"},
          {"no line end after a boundary", "--Bx"},
        }) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> RangePuller.parseMultipart(bytes(bad[1]), "B"),
              bad[1]);
      assertTrue(e.getMessage().contains(bad[0]), bad[0] + ": " + e.getMessage());
    }
  }

  /**
   * A body fed in pieces of any size, split anywhere (inside a delimiter, a header, a part), gives
   * each part's bytes with where they lie in the blob, as soon as they are in; what is not a body
   * fails as soon as it shows.
   */
  @Test
  void multipartStream_fedInPiecesOfAnySize_givesTheSameBytesAsTheyArrive() {
    byte[] body =
        bytes(
            "pre\r\n--XY\r\nContent-Type: a\r\ncontent-range: bytes 10-14/100\r\n\r\nhello"
                + "\r\n--XY \r\nContent-Range: bytes 50-52/100\r\n\r\n--X\r\n--XY--\r\nepilogue");
    java.util.Random random = new java.util.Random(3);
    for (int trial = 0; trial < 300; trial++) {
      byte[] blob = new byte[100];
      StringBuilder order = new StringBuilder();
      MultipartStream stream =
          new MultipartStream(
              "XY",
              (offset, data, from, length) -> {
                data.getBytes(from, from + length, blob, (int) offset);
                order.append(offset).append('+').append(length).append(' ');
              });
      int at = 0;
      while (at < body.length) {
        int n = trial == 0 ? 1 : 1 + random.nextInt(trial % 40 + 1);
        n = Math.min(n, body.length - at);
        stream.feed(io.vertx.core.buffer.Buffer.buffer(body), at, n);
        at += n;
        if (at == body.length - "epilogue".length()) {
          assertEquals(2, stream.parts().size(), "both parts whole before the epilogue");
        }
      }
      stream.end();
      assertEquals("hello", new String(blob, 10, 5, StandardCharsets.ISO_8859_1), order.toString());
      assertEquals("--X", new String(blob, 50, 3, StandardCharsets.ISO_8859_1));
      assertArrayEquals(new long[] {10, 15}, stream.parts().get(0));
      assertArrayEquals(new long[] {50, 53}, stream.parts().get(1));
    }
    // A wrong byte fails where it comes, before the rest arrives.
    MultipartStream wrong = new MultipartStream("B", (offset, data, from, length) -> {});
    byte[] bad = bytes("--B\r\nContent-Range: bytes 0-1/9\r\n\r\nab\r\n-X");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> wrong.feed(io.vertx.core.buffer.Buffer.buffer(bad), 0, bad.length));
    assertTrue(e.getMessage().contains("no boundary after a part"), e.getMessage());
    // Headers without an end are not kept past a bound.
    MultipartStream endless = new MultipartStream("B", (offset, data, from, length) -> {});
    byte[] head = bytes("--B\r\nX-Long: " + "y".repeat(MultipartStream.MAX_HEAD_BYTES));
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> endless.feed(io.vertx.core.buffer.Buffer.buffer(head), 0, head.length));
    assertTrue(e.getMessage().contains("headers without an end"), e.getMessage());
  }
}
