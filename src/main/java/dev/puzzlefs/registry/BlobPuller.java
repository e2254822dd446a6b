package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.codec.BodyCodec;

/**
 * {@code GET /v2/<repo>/blobs/<digest>}, following redirects (registries often send blobs from
 * object storage). The body is hashed as it streams in; only bytes that hash to the digest are
 * returned.
 */
final class BlobPuller implements RegistryOperation<byte[]> {
  private final String repository;
  private final Digest digest;
  private final String where;

  BlobPuller(RegistryHttp http, String repository, Digest digest) {
    this.repository = repository;
    this.digest = digest;
    this.where = http.where(repository);
  }

  @Override
  public String description() {
    return "fetch blob " + digest + " from " + where;
  }

  @Override
  public Future<byte[]> attempt(RegistryHttp http) {
    DigestingSink sink = new DigestingSink(http.maxBodyBytes());
    return http.request(HttpMethod.GET, "/v2/" + repository + "/blobs/" + digest)
        .as(BodyCodec.pipe(sink))
        .send()
        .compose(
            response -> {
              if (response.statusCode() != 200) {
                return Future.failedFuture(UnexpectedStatus.of(response, sink.bytes()));
              }
              http.bytesFetched.addAndGet(sink.received());
              if (sink.overflowed()) {
                return Future.failedFuture(
                    new RegistryException(
                        "could not "
                            + description()
                            + ": the registry sent more than the limit of "
                            + http.maxBodyBytes()
                            + " bytes"));
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

  @Override
  public RegistryException notFound(String message) {
    return new BlobNotFoundException(message, digest);
  }
}
