package dev.puzzlefs.registry;

import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a {@code multipart/byteranges} body as it arrives, in pieces of any size: each part's bytes
 * go to {@link RangeSink} with where they lie in the blob, as soon as they are in, and nothing is
 * kept but a part's delimiter and headers. Each part's length comes from its {@code Content-Range},
 * and a delimiter must follow it. Anything else fails with {@link IllegalArgumentException}, at the
 * byte where the body stops being what it claims.
 */
final class MultipartStream {
  /** The most bytes of a preamble, a delimiter line or a part's headers. */
  static final int MAX_HEAD_BYTES = 16 << 10;

  private enum State {
    /** Before the first delimiter. */
    PREAMBLE,
    /** After a delimiter: {@code --} ends the body, a line end starts a part's headers. */
    DELIMITED,
    HEADERS,
    BODY,
    /** After a part's bytes: a line end and a delimiter must come. */
    AFTER_BODY,
    /** After the closing delimiter: the rest is ignored. */
    DONE
  }

  private final byte[] delimiter;
  private final byte[] afterBody;
  private final RangeSink sink;
  private final List<long[]> parts = new ArrayList<>();
  private State state = State.PREAMBLE;
  private byte[] head = new byte[128];
  private int headLength;
  private int lineStart;
  private long[] range;
  private long at;

  MultipartStream(String boundary, RangeSink sink) {
    this.delimiter = ("--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
    this.afterBody = ("\r\n--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
    this.sink = sink;
  }

  /** The parts read whole so far, each as {start, end} in the blob. */
  List<long[]> parts() {
    return parts;
  }

  /** Takes {@code length} more bytes of the body, from {@code from} in {@code data}. */
  void feed(Buffer data, int from, int length) {
    int i = from;
    int end = from + length;
    while (i < end) {
      if (state == State.BODY) {
        int n = (int) Math.min(end - i, range[1] - at);
        sink.arrived(at, data, i, n);
        at += n;
        i += n;
        if (at == range[1]) {
          parts.add(new long[] {range[0], range[1]});
          state = State.AFTER_BODY;
          headLength = 0;
        }
      } else if (state == State.DONE) {
        return;
      } else {
        take(data.getByte(i++));
      }
    }
  }

  /** The body ended: fails unless it ended with its closing delimiter. */
  void end() {
    switch (state) {
      case DONE -> {}
      case PREAMBLE -> throw new IllegalArgumentException("no boundary");
      case BODY -> throw new IllegalArgumentException("a part longer than the body");
      case HEADERS -> throw new IllegalArgumentException("headers without an end");
      case AFTER_BODY -> throw new IllegalArgumentException("no boundary after a part");
      case DELIMITED -> throw new IllegalArgumentException("no closing boundary");
    }
  }

  private void take(byte b) {
    if (headLength == MAX_HEAD_BYTES) {
      throw new IllegalArgumentException(
          state == State.HEADERS ? "headers without an end" : "no boundary");
    }
    if (headLength == head.length) {
      head = java.util.Arrays.copyOf(head, Math.min(MAX_HEAD_BYTES, 2 * head.length));
    }
    head[headLength++] = b;
    switch (state) {
      case PREAMBLE -> {
        // The first delimiter opens the body, or ends a line of the preamble.
        if (endsWith(delimiter)
            && (headLength == delimiter.length
                || (headLength >= delimiter.length + 2
                    && head[headLength - delimiter.length - 2] == '\r'
                    && head[headLength - delimiter.length - 1] == '\n'))) {
          delimited();
        }
      }
      case DELIMITED -> afterDelimiter(b);
      case HEADERS -> {
        if (b == '\n' && headLength - lineStart >= 2 && head[headLength - 2] == '\r') {
          header();
        }
      }
      case AFTER_BODY -> {
        if (b != afterBody[headLength - 1]) {
          throw new IllegalArgumentException("no boundary after a part");
        }
        if (headLength == afterBody.length) {
          delimited();
        }
      }
      default -> throw new IllegalStateException(state.name());
    }
  }

  private void delimited() {
    state = State.DELIMITED;
    headLength = 0;
  }

  /** {@code --}, or blanks and a line end. */
  private void afterDelimiter(byte b) {
    if (headLength <= 2 && head[0] == '-') {
      if (headLength == 2) {
        if (b != '-') {
          throw new IllegalArgumentException("no line end after a boundary");
        }
        state = State.DONE;
      }
      return;
    }
    if (b == '\n' && headLength >= 2 && head[headLength - 2] == '\r') {
      state = State.HEADERS;
      headLength = 0;
      lineStart = 0;
      range = null;
    } else if (b != ' ' && b != '\t' && b != '\r'
        || (headLength >= 2 && head[headLength - 2] == '\r')) {
      throw new IllegalArgumentException("no line end after a boundary");
    }
  }

  /** A header line ended; an empty one ends the headers, and the part's bytes follow. */
  private void header() {
    int lineEnd = headLength - 2;
    if (lineEnd == lineStart) {
      if (range == null) {
        throw new IllegalArgumentException("a part without Content-Range");
      }
      state = State.BODY;
      at = range[0];
      headLength = 0;
      return;
    }
    String line = new String(head, lineStart, lineEnd - lineStart, StandardCharsets.ISO_8859_1);
    int colon = line.indexOf(':');
    if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase("Content-Range")) {
      range = RangePuller.parseContentRange(line.substring(colon + 1));
      if (range == null) {
        throw new IllegalArgumentException("a part's Content-Range is " + line.trim());
      }
    }
    lineStart = headLength;
  }

  private boolean endsWith(byte[] s) {
    if (headLength < s.length) {
      return false;
    }
    for (int j = 0; j < s.length; j++) {
      if (head[headLength - s.length + j] != s[j]) {
        return false;
      }
    }
    return true;
  }
}
