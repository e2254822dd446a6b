package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;

/** {@code HEAD /v2/<repo>/blobs/<digest>}: true when the registry has the blob. */
final class BlobChecker implements RegistryOperation<Boolean> {
  private final String repository;
  private final Digest digest;
  private final String where;

  BlobChecker(RegistryHttp http, String repository, Digest digest) {
    this.repository = repository;
    this.digest = digest;
    this.where = http.where(repository);
  }

  @Override
  public String scope() {
    return RegistryOperation.pullScope(repository);
  }

  @Override
  public String description() {
    return "check for blob " + digest + " in " + where;
  }

  @Override
  public Future<Boolean> attempt(RegistryHttp http) {
    return http.request(HttpMethod.HEAD, "/v2/" + repository + "/blobs/" + digest)
        .send()
        .compose(
            response -> {
              switch (response.statusCode()) {
                case 200:
                  return Future.succeededFuture(true);
                case 404:
                  return Future.succeededFuture(false);
                default:
                  return Future.failedFuture(UnexpectedStatus.of(response, null));
              }
            });
  }

  @Override
  public RegistryException notFound(String message) {
    return new BlobNotFoundException(message, digest);
  }
}
