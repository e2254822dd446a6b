package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.registry.ByteRanges.Range;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code GET /v2/<repo>/blobs/<digest>} with {@code Range: bytes=A-B[,C-D]...}: parts of a blob,
 * exactly the ones asked for, in one request. The answer must be 206: for one part, with a {@code
 * Content-Range} of that part; for several, a {@code multipart/byteranges} body whose parts cover
 * them (or one part that covers them all, for a registry that joins them, as long as the answer
 * holds no more than {@link #MULTIPART_BYTES_PER_PART} bytes per part beyond those asked for: a
 * covering part with larger gaps is refused). Anything else is cut off at once: a 200 (the registry
 * ignores ranges) or another part fails with {@link RangeNotSupportedException}, or with {@link
 * MultiRangeNotSupportedException} when several parts were asked for (the registry may still serve
 * one at a time). The bytes go to a {@link RangeSink} as they arrive, and the operation succeeds
 * once the answer has ended as it should. They are not verified here: a part is not a blob of its
 * own, so its caller checks what it cuts out of it. Never retried: its caller fetches the chunks as
 * blobs instead, which are.
 */
final class RangePuller implements RegistryOperation<Void> {
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
  private final RangeSink sink;

  RangePuller(
      RegistryHttp http, String repository, Digest digest, List<Range> ranges, RangeSink sink) {
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
    this.sink = sink;
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
  public Future<Void> attempt(RegistryHttp http) {
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

  private Future<Void> refuse(HttpClientResponse response, String what) {
    // Set before the reset: without a handler Vert.x logs the reset stream at ERROR.
    response.exceptionHandler(e -> {});
    response.handler(null);
    response.request().reset();
    return Future.failedFuture(unsupported(what));
  }

  private Future<Void> receive(RegistryHttp http, HttpClientResponse response) {
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
      MultipartStream parts = new MultipartStream(boundary, sink);
      return receiveBody(
          http,
          response,
          announced,
          most,
          new Body() {
            @Override
            public void take(Buffer data) {
              parts.feed(data, 0, data.length());
            }

            @Override
            public String end() {
              parts.end();
              return uncovered(parts.parts());
            }
          });
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
    long length = part[1] - part[0];
    return receiveBody(
        http,
        response,
        length,
        length,
        new Body() {
          long next = part[0];

          @Override
          public void take(Buffer data) {
            sink.arrived(next, data, 0, data.length());
            next += data.length();
          }

          @Override
          public String end() {
            return null;
          }
        });
  }

  /** What a body's bytes go to, as they arrive. */
  private interface Body {
    /**
     * Takes the next bytes.
     *
     * @throws IllegalArgumentException when the body is not what it claims to be
     */
    void take(Buffer data);

    /**
     * The body ended: why it is not whole, or null.
     *
     * @throws IllegalArgumentException when it ended before it should
     */
    String end();
  }

  /** Why the parts received do not hold every range asked for, or null when they do. */
  private String uncovered(List<long[]> parts) {
    for (Range r : ranges) {
      boolean covered = false;
      for (long[] p : parts) {
        if (p[0] <= r.offset() && r.end() <= p[1]) {
          covered = true;
          break;
        }
      }
      if (!covered) {
        return "the registry's multipart/byteranges body lacks bytes " + r;
      }
    }
    return null;
  }

  /**
   * Hands the body to {@code into} as it arrives; {@code exact} bytes when that is known (not
   * negative), and more than {@code most} bytes, or fewer than {@code exact}, fail.
   */
  private Future<Void> receiveBody(
      RegistryHttp http, HttpClientResponse response, long exact, long most, Body into) {
    Promise<Void> done = Promise.promise();
    response.exceptionHandler(done::tryFail);
    long[] received = {0};
    response.handler(
        data -> {
          if (done.future().isComplete()) {
            return;
          }
          int n = data.length();
          http.received(n);
          String wrong = null;
          if (received[0] + n > most || (exact >= 0 && received[0] + n > exact)) {
            wrong = "the registry sent more than asked for";
          } else {
            received[0] += n;
            try {
              into.take(data);
            } catch (IllegalArgumentException e) {
              wrong = malformed(e);
            } catch (RuntimeException e) { // the sink's: the request fails, rather than hangs
              done.tryFail(e);
              response.handler(null);
              response.request().reset();
              return;
            }
          }
          if (wrong != null) {
            done.tryFail(unsupported(wrong));
            response.handler(null);
            response.request().reset();
          }
        });
    response.endHandler(
        v -> {
          if (exact >= 0 && received[0] != exact) {
            done.tryFail(
                unsupported("the registry sent " + received[0] + " of the " + exact + " bytes"));
            return;
          }
          String wrong;
          try {
            wrong = into.end();
          } catch (IllegalArgumentException e) {
            wrong = malformed(e);
          }
          if (wrong != null) {
            done.tryFail(unsupported(wrong));
          } else {
            done.tryComplete();
          }
        });
    response.resume();
    return done.future();
  }

  private static String malformed(IllegalArgumentException e) {
    return "the registry sent a malformed multipart/byteranges body: " + e.getMessage();
  }

  private Future<Void> receiveError(HttpClientResponse response) {
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
   * The parts of a whole {@code multipart/byteranges} body, each as {start, end, where its bytes
   * begin in {@code body}} ({@link MultipartStream}).
   *
   * @throws IllegalArgumentException when the body is not that
   */
  static List<long[]> parseMultipart(byte[] body, String boundary) {
    List<Long> starts = new ArrayList<>();
    // Fed whole, the body gives each part in one piece.
    MultipartStream stream =
        new MultipartStream(boundary, (offset, data, from, length) -> starts.add((long) from));
    stream.feed(Buffer.buffer(body), 0, body.length);
    stream.end();
    List<long[]> parts = new ArrayList<>();
    for (int i = 0; i < stream.parts().size(); i++) {
      long[] p = stream.parts().get(i);
      parts.add(new long[] {p[0], p[1], starts.get(i)});
    }
    return parts;
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
