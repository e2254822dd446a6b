package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;

/**
 * {@code GET /v2/<repo>/blobs/<digest>} with {@code Range: bytes=A-B}: one part of a blob, exactly
 * {@code length} bytes from {@code offset}. The answer must be 206 with a matching {@code
 * Content-Range}; a 200 (the registry ignores ranges) is cut off at once and fails with {@link
 * RangeNotSupportedException}, as does a part of another length. The bytes are not verified here:
 * the part is not a blob of its own, so its caller checks what it cuts out of it. Never retried:
 * its caller fetches the chunks as blobs instead, which are.
 */
final class RangePuller implements RegistryOperation<byte[]> {
  private static final int MAX_ERROR_BYTES = 64 << 10;

  private final String repository;
  private final Digest digest;
  private final long offset;
  private final int length;
  private final String where;

  RangePuller(RegistryHttp http, String repository, Digest digest, long offset, int length) {
    if (offset < 0 || length <= 0) {
      throw new IllegalArgumentException("bad range: " + length + " bytes at " + offset);
    }
    this.repository = repository;
    this.digest = digest;
    this.offset = offset;
    this.length = length;
    this.where = http.where(repository);
  }

  @Override
  public String scope() {
    return RegistryOperation.pullScope(repository);
  }

  @Override
  public String description() {
    return "fetch bytes "
        + offset
        + " to "
        + (offset + length)
        + " of blob "
        + digest
        + " from "
        + where;
  }

  @Override
  public Future<byte[]> attempt(RegistryHttp http) {
    return http.get(
            "/v2/" + repository + "/blobs/" + digest,
            "Range",
            "bytes=" + offset + "-" + (offset + length - 1))
        .compose(response -> receive(http, response));
  }

  private Future<byte[]> receive(RegistryHttp http, HttpClientResponse response) {
    int status = response.statusCode();
    Promise<Void> body = Promise.promise();
    response.exceptionHandler(body::tryFail);
    if (status == 200 || (status == 206 && !rangeMatches(response.getHeader("Content-Range")))) {
      String what =
          status == 200
              ? "the registry sent the whole blob (it ignores Range requests)"
              : "the registry sent another part (Content-Range: "
                  + response.getHeader("Content-Range")
                  + ")";
      response.handler(null);
      response.request().reset();
      return Future.failedFuture(
          new RangeNotSupportedException("could not " + description() + ": " + what));
    }
    boolean ok = status == 206;
    // The part goes straight into an array of its size; an error body into a small buffer.
    byte[] part = ok ? new byte[length] : null;
    Buffer error = ok ? null : Buffer.buffer(256);
    int[] received = {0};
    response.handler(
        data -> {
          int n = data.length();
          if (!ok) {
            if (error.length() + n > MAX_ERROR_BYTES) {
              body.tryComplete(); // the start of an error body is enough for the message
              response.handler(null);
              response.request().reset();
            } else {
              error.appendBuffer(data);
            }
            return;
          }
          http.bytesFetched.addAndGet(n);
          if (received[0] + n > length) {
            body.tryFail(
                new RangeNotSupportedException(
                    "could not " + description() + ": the registry sent more than asked for"));
            response.handler(null);
            response.request().reset();
            return;
          }
          data.getBytes(0, n, part, received[0]);
          received[0] += n;
        });
    response.endHandler(v -> body.tryComplete());
    response.resume();
    return body.future()
        .compose(
            v -> {
              if (!ok) {
                return Future.failedFuture(UnexpectedStatus.of(response, error.getBytes()));
              }
              if (received[0] != length) {
                return Future.failedFuture(
                    new RangeNotSupportedException(
                        "could not "
                            + description()
                            + ": the registry sent "
                            + received[0]
                            + " of the "
                            + length
                            + " bytes"));
              }
              return Future.succeededFuture(part);
            });
  }

  /** Whether {@code header} is {@code bytes A-B/TOTAL} for exactly the part asked for. */
  private boolean rangeMatches(String header) {
    if (header == null) {
      return false;
    }
    String expected = "bytes " + offset + "-" + (offset + length - 1) + "/";
    return header.trim().startsWith(expected);
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
