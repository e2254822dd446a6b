package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.http.HttpClientResponse;

/**
 * {@code GET /v2/<repo>/blobs/<digest>}, following redirects (registries often send blobs from
 * object storage). The body is hashed as it streams in; only bytes that hash to the digest are
 * returned. A body announced or found to be longer than {@code limit} is cut off at once (the
 * connection is reset) and fails with {@link BlobTooLargeException}, which is not retried.
 */
final class BlobPuller implements RegistryOperation<byte[]> {
  /** The most of an error body kept for the message. */
  private static final long MAX_ERROR_BYTES = 64 << 10;

  private final String repository;
  private final Digest digest;
  private final String where;
  private final long limit;

  BlobPuller(RegistryHttp http, String repository, Digest digest, long limit) {
    this.repository = repository;
    this.digest = digest;
    this.where = http.where(repository);
    this.limit = limit;
  }

  @Override
  public String scope() {
    return RegistryOperation.pullScope(repository);
  }

  @Override
  public String description() {
    return "fetch blob " + digest + " from " + where;
  }

  @Override
  public Future<byte[]> attempt(RegistryHttp http) {
    return http.get("/v2/" + repository + "/blobs/" + digest)
        .compose(response -> receive(http, response));
  }

  private Future<byte[]> receive(RegistryHttp http, HttpClientResponse response) {
    boolean ok = response.statusCode() == 200;
    long max = ok ? limit : MAX_ERROR_BYTES;
    long announced = RegistryHttp.contentLength(response);
    DigestingSink sink = new DigestingSink(max, ok ? announced : -1);
    Promise<Void> body = Promise.promise();
    // Set before any reset: without a handler Vert.x logs the reset stream at ERROR.
    response.exceptionHandler(body::tryFail);
    if (ok && announced > limit) {
      abort(response, body, "announced " + announced + " bytes, more than");
    } else {
      response.handler(
          data -> {
            sink.write(data);
            if (sink.overflowed()) {
              if (ok) {
                http.received(data.length());
                abort(response, body, "sent more than");
              } else {
                // The message needs only the start of an error body; stop reading the rest.
                response.request().reset();
                body.tryComplete();
              }
            } else if (ok) {
              http.received(data.length());
            }
          });
      response.endHandler(v -> body.tryComplete());
      response.resume();
    }
    return body.future()
        .compose(
            v -> {
              if (!ok) {
                return Future.failedFuture(UnexpectedStatus.of(response, sink.bytes()));
              }
              Digest actual = sink.digest();
              if (!actual.equals(digest)) {
                return Future.failedFuture(
                    new BlobDigestMismatchException(
                        "could not "
                            + description()
                            + ": expected "
                            + digest
                            + " but the "
                            + sink.received()
                            + " bytes received hash to "
                            + actual,
                        digest,
                        actual));
              }
              http.blobsFetched.incrementAndGet();
              return Future.succeededFuture(sink.bytes());
            });
  }

  /** Resets the request (closing the connection) and fails {@code body} with the typed error. */
  private void abort(HttpClientResponse response, Promise<Void> body, String what) {
    body.tryFail(
        new BlobTooLargeException(
            "could not "
                + description()
                + ": the registry "
                + what
                + " the limit of "
                + limit
                + " bytes for this blob",
            digest,
            limit));
    response.handler(null);
    response.request().reset();
  }

  /** Bytes that hash to something else may have been damaged on the way: ask again. */
  @Override
  public boolean retryable(RegistryException failure) {
    return failure instanceof DigestMismatchException;
  }

  @Override
  public RegistryException notFound(String message) {
    return new BlobNotFoundException(message, digest);
  }
}
