package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;

/**
 * {@code PUT /v2/<repo>/manifests/<tag or digest>} with the manifest's media type. The registry
 * checks that every blob it names is present, so blobs must be pushed first.
 */
final class ManifestPusher implements RegistryOperation<Digest> {
  private final String repository;
  private final String reference;
  private final byte[] manifest;
  private final String mediaType;
  private final Digest digest;
  private final String where;

  ManifestPusher(
      RegistryHttp http, String repository, String reference, byte[] manifest, String mediaType) {
    this.repository = repository;
    this.reference = reference;
    this.manifest = manifest;
    this.mediaType = mediaType;
    this.digest = Digest.sha256(manifest);
    this.where = http.where(repository);
  }

  @Override
  public String scope() {
    return RegistryOperation.pushScope(repository);
  }

  @Override
  public String description() {
    return "push manifest " + digest + " as " + reference + " to " + where;
  }

  @Override
  public Future<Digest> attempt(RegistryHttp http) {
    return http.request(HttpMethod.PUT, "/v2/" + repository + "/manifests/" + reference)
        .putHeader("Content-Type", mediaType)
        .sendBuffer(Buffer.buffer(manifest))
        .compose(this::finish);
  }

  private Future<Digest> finish(HttpResponse<Buffer> response) {
    if (response.statusCode() != 201) {
      Buffer body = response.body();
      return Future.failedFuture(
          UnexpectedStatus.of(response, body == null ? null : body.getBytes()));
    }
    String stored = response.getHeader("Docker-Content-Digest");
    if (stored != null && stored.startsWith(Digest.ALGORITHM + ":")) {
      Digest actual = Digest.parse(stored);
      if (!actual.equals(digest)) {
        return Future.failedFuture(
            new DigestMismatchException(
                "could not " + description() + ": the registry stored it as " + actual,
                digest,
                actual));
      }
    }
    return Future.succeededFuture(digest);
  }

  @Override
  public RegistryException notFound(String message) {
    return new RegistryException(message + " (does the repository accept pushes?)");
  }
}
