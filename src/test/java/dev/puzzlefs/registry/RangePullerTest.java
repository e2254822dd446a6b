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
}
