package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.registry.ByteRanges.Range;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code GET /v2/<repo>/blobs/<digest>} with {@code Range: bytes=A-B[,C-D]...}: parts of a blob,
 * exactly the ones asked for, in one request. The answer must be 206: for one part, with a {@code
 * Content-Range} of that part; for several, a {@code multipart/byteranges} body whose parts cover
 * them (or one part that covers them all, for a registry that joins them). Anything else is cut off
 * at once: a 200 (the registry ignores ranges) or another part fails with {@link
 * RangeNotSupportedException}, or with {@link MultiRangeNotSupportedException} when several parts
 * were asked for (the registry may still serve one at a time). The bytes are not verified here: a
 * part is not a blob of its own, so its caller checks what it cuts out of it. Never retried: its
 * caller fetches the chunks as blobs instead, which are.
 */
final class RangePuller implements RegistryOperation<ByteRanges> {
  private static final int MAX_ERROR_BYTES = 64 << 10;

  /** The most parts one request asks for (a header of about 1.5 KB; servers cap their count). */
  static final int MAX_RANGES = 64;

  /** The longest body received: it goes into one array. */
  static final int MAX_BODY_BYTES = Integer.MAX_VALUE - 8;

  /** What a multipart body may hold beyond its parts, per part: its delimiter and headers. */
  static final int MULTIPART_BYTES_PER_PART = 1024;

  private final String repository;
  private final Digest digest;
  private final List<Range> ranges;
  private final String where;

  RangePuller(RegistryHttp http, String repository, Digest digest, List<Range> ranges) {
    if (ranges.isEmpty() || ranges.size() > MAX_RANGES) {
      throw new IllegalArgumentException("between 1 and " + MAX_RANGES + " ranges: " + ranges);
    }
    for (int i = 1; i < ranges.size(); i++) {
      if (ranges.get(i).offset() < ranges.get(i - 1).end()) {
        throw new IllegalArgumentException("ranges out of order or overlapping: " + ranges);
      }
    }
    this.repository = repository;
    this.digest = digest;
    this.ranges = List.copyOf(ranges);
    this.where = http.where(repository);
  }

  @Override
  public String scope() {
    return RegistryOperation.pullScope(repository);
  }

  @Override
  public String description() {
    Range first = ranges.get(0);
    String what =
        ranges.size() == 1
            ? "bytes " + first.offset() + " to " + first.end()
            : ranges.size()
                + " parts ("
                + sum()
                + " bytes) between bytes "
                + first.offset()
                + " and "
                + last().end();
    return "fetch " + what + " of blob " + digest + " from " + where;
  }

  private Range last() {
    return ranges.get(ranges.size() - 1);
  }

  private long sum() {
    long sum = 0;
    for (Range r : ranges) {
      sum += r.length();
    }
    return sum;
  }

  @Override
  public Future<ByteRanges> attempt(RegistryHttp http) {
    StringBuilder header = new StringBuilder("bytes=");
    for (Range r : ranges) {
      header.append(header.length() > 6 ? "," : "").append(r);
    }
    return http.get("/v2/" + repository + "/blobs/" + digest, "Range", header.toString())
        .compose(response -> receive(http, response));
  }

  private RangeNotSupportedException unsupported(String what) {
    String message = "could not " + description() + ": " + what;
    return ranges.size() == 1
        ? new RangeNotSupportedException(message)
        : new MultiRangeNotSupportedException(message);
  }

  private Future<ByteRanges> refuse(HttpClientResponse response, String what) {
    // Set before the reset: without a handler Vert.x logs the reset stream at ERROR.
    response.exceptionHandler(e -> {});
    response.handler(null);
    response.request().reset();
    return Future.failedFuture(unsupported(what));
  }

  private Future<ByteRanges> receive(RegistryHttp http, HttpClientResponse response) {
    int status = response.statusCode();
    if (status == 200) {
      return refuse(response, "the registry sent the whole blob (it ignores this Range request)");
    }
    if (status != 206) {
      return receiveError(response);
    }
    String boundary =
        ranges.size() > 1 ? multipartBoundary(response.getHeader("Content-Type")) : null;
    if (boundary != null) {
      long most =
          Math.min(MAX_BODY_BYTES, sum() + (long) MULTIPART_BYTES_PER_PART * (ranges.size() + 1));
      long announced = RegistryHttp.contentLength(response);
      if (announced > most) {
        return refuse(
            response, "the registry announced " + announced + " bytes for " + sum() + " asked for");
      }
      return receiveBody(http, response, announced, most)
          .compose(body -> fromMultipart(body, boundary));
    }
    String contentRange = response.getHeader("Content-Range");
    long[] part = parseContentRange(contentRange);
    if (part == null
        || part[0] > ranges.get(0).offset()
        || part[1] < last().end()
        || part[1] - part[0] > last().end() - ranges.get(0).offset()
        || part[1] - part[0] > MAX_BODY_BYTES) {
      return refuse(
          response, "the registry sent another part (Content-Range: " + contentRange + ")");
    }
    int length = (int) (part[1] - part[0]);
    return receiveBody(http, response, length, length)
        .compose(
            body -> {
              int[] at = new int[ranges.size()];
              for (int i = 0; i < at.length; i++) {
                at[i] = (int) (ranges.get(i).offset() - part[0]);
              }
              return Future.succeededFuture(new ByteRanges(body, at));
            });
  }

  /**
   * The body, into an array of {@code exact} bytes when that is known (not negative), else one that
   * grows; more than {@code most} bytes, or fewer than {@code exact}, fail.
   */
  private Future<byte[]> receiveBody(
      RegistryHttp http, HttpClientResponse response, long exact, long most) {
    Promise<byte[]> body = Promise.promise();
    response.exceptionHandler(body::tryFail);
    byte[][] buf = {new byte[(int) (exact >= 0 ? exact : Math.min(most, 64 << 10))]};
    int[] received = {0};
    response.handler(
        data -> {
          int n = data.length();
          http.received(n);
          if (received[0] + (long) n > most || (exact >= 0 && received[0] + n > exact)) {
            body.tryFail(unsupported("the registry sent more than asked for"));
            response.handler(null);
            response.request().reset();
            return;
          }
          if (received[0] + n > buf[0].length) {
            int size = (int) Math.min(most, Math.max(2L * buf[0].length, received[0] + n));
            buf[0] = java.util.Arrays.copyOf(buf[0], size);
          }
          data.getBytes(0, n, buf[0], received[0]);
          received[0] += n;
        });
    response.endHandler(
        v -> {
          if (exact >= 0 && received[0] != exact) {
            body.tryFail(
                unsupported("the registry sent " + received[0] + " of the " + exact + " bytes"));
          } else {
            byte[] all = buf[0];
            body.tryComplete(
                all.length == received[0] ? all : java.util.Arrays.copyOf(all, received[0]));
          }
        });
    response.resume();
    return body.future();
  }

  private Future<ByteRanges> receiveError(HttpClientResponse response) {
    Promise<Void> body = Promise.promise();
    response.exceptionHandler(body::tryFail);
    Buffer error = Buffer.buffer(256);
    response.handler(
        data -> {
          if (error.length() + data.length() > MAX_ERROR_BYTES) {
            body.tryComplete(); // the start of an error body is enough for the message
            response.handler(null);
            response.request().reset();
          } else {
            error.appendBuffer(data);
          }
        });
    response.endHandler(v -> body.tryComplete());
    response.resume();
    return body.future()
        .compose(v -> Future.failedFuture(UnexpectedStatus.of(response, error.getBytes())));
  }

  /** Where each range asked for starts in a multipart body; fails when one is not in it. */
  private Future<ByteRanges> fromMultipart(byte[] body, String boundary) {
    List<long[]> parts;
    try {
      parts = parseMultipart(body, boundary);
    } catch (IllegalArgumentException e) {
      return Future.failedFuture(
          unsupported(
              "the registry sent a malformed multipart/byteranges body: " + e.getMessage()));
    }
    int[] at = new int[ranges.size()];
    for (int i = 0; i < at.length; i++) {
      Range r = ranges.get(i);
      at[i] = -1;
      for (long[] p : parts) {
        if (p[0] <= r.offset() && r.end() <= p[1]) {
          at[i] = (int) (p[2] + r.offset() - p[0]);
          break;
        }
      }
      if (at[i] < 0) {
        return Future.failedFuture(
            unsupported("the registry's multipart/byteranges body lacks bytes " + r));
      }
    }
    return Future.succeededFuture(new ByteRanges(body, at));
  }

  /** The boundary of a {@code multipart/byteranges} content type; null for any other type. */
  static String multipartBoundary(String contentType) {
    if (contentType == null) {
      return null;
    }
    String[] params = contentType.split(";");
    if (!params[0].trim().equalsIgnoreCase("multipart/byteranges")) {
      return null;
    }
    for (int i = 1; i < params.length; i++) {
      String p = params[i].trim();
      int eq = p.indexOf('=');
      if (eq > 0 && p.substring(0, eq).trim().equalsIgnoreCase("boundary")) {
        String b = p.substring(eq + 1).trim();
        if (b.length() >= 2 && b.startsWith("\"") && b.endsWith("\"")) {
          b = b.substring(1, b.length() - 1);
        }
        return b.isEmpty() || b.length() > 70 ? null : b;
      }
    }
    return null;
  }

  /** {@code bytes A-B/TOTAL} (or {@code /*}) as {A, B + 1}; null when it is not that. */
  static long[] parseContentRange(String header) {
    if (header == null) {
      return null;
    }
    String h = header.trim();
    if (!h.regionMatches(true, 0, "bytes ", 0, 6)) {
      return null;
    }
    int dash = h.indexOf('-', 6);
    int slash = h.indexOf('/', 6);
    if (dash < 0 || slash < dash) {
      return null;
    }
    try {
      long from = Long.parseLong(h.substring(6, dash).trim());
      long to = Long.parseLong(h.substring(dash + 1, slash).trim());
      // to + 1 must not overflow into a negative end.
      return from < 0 || to < from || to == Long.MAX_VALUE ? null : new long[] {from, to + 1};
    } catch (NumberFormatException e) {
      return null;
    }
  }

  /**
   * The parts of a {@code multipart/byteranges} body, each as {start, end, where its bytes begin in
   * {@code body}}. Each part's length comes from its {@code Content-Range}, and a delimiter must
   * follow it.
   *
   * @throws IllegalArgumentException when the body is not that
   */
  static List<long[]> parseMultipart(byte[] body, String boundary) {
    byte[] delimiter = ("--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
    int i = indexOf(body, delimiter, 0);
    if (i < 0) {
      throw new IllegalArgumentException("no boundary");
    }
    List<long[]> parts = new ArrayList<>();
    while (true) {
      i += delimiter.length;
      if (startsWith(body, i, "--")) {
        return parts;
      }
      while (i < body.length && (body[i] == ' ' || body[i] == '\t')) {
        i++;
      }
      if (!startsWith(body, i, "\r\n")) {
        throw new IllegalArgumentException("no line end after a boundary");
      }
      i += 2;
      long[] range = null;
      while (true) {
        int eol = indexOf(body, new byte[] {'\r', '\n'}, i);
        if (eol < 0) {
          throw new IllegalArgumentException("headers without an end");
        }
        if (eol == i) {
          i += 2;
          break;
        }
        String line = new String(body, i, eol - i, StandardCharsets.ISO_8859_1);
        int colon = line.indexOf(':');
        if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase("Content-Range")) {
          range = parseContentRange(line.substring(colon + 1));
          if (range == null) {
            throw new IllegalArgumentException("a part's Content-Range is " + line.trim());
          }
        }
        i = eol + 2;
      }
      if (range == null) {
        throw new IllegalArgumentException("a part without Content-Range");
      }
      long length = range[1] - range[0];
      if (length > body.length - i) {
        throw new IllegalArgumentException("a part longer than the body");
      }
      parts.add(new long[] {range[0], range[1], i});
      i += (int) length;
      if (!startsWith(body, i, "\r\n") || !startsWith(body, i + 2, delimiter)) {
        throw new IllegalArgumentException("no boundary after a part");
      }
      i += 2;
    }
  }

  private static boolean startsWith(byte[] body, int at, String s) {
    return startsWith(body, at, s.getBytes(StandardCharsets.ISO_8859_1));
  }

  private static boolean startsWith(byte[] body, int at, byte[] s) {
    if (at < 0 || at + s.length > body.length) {
      return false;
    }
    for (int j = 0; j < s.length; j++) {
      if (body[at + j] != s[j]) {
        return false;
      }
    }
    return true;
  }

  private static int indexOf(byte[] body, byte[] s, int from) {
    for (int at = from; at + s.length <= body.length; at++) {
      if (startsWith(body, at, s)) {
        return at;
      }
    }
    return -1;
  }

  @Override
  public boolean retries() {
    return false;
  }

  @Override
  public RegistryException notFound(String message) {
    return new BlobNotFoundException(message, digest);
  }
}
