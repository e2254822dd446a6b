package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.MediaTypes;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.codec.BodyCodec;

/**
 * {@code GET /v2/<repo>/manifests/<tag or digest>}, accepting OCI manifests and indexes and their
 * Docker v2 equivalents. When the reference is a digest, or the registry sends a
 * Docker-Content-Digest header, the bytes must hash to it.
 */
final class ManifestPuller implements RegistryOperation<PulledManifest> {
  /** Docker's v2 image manifest, the same shape as an OCI manifest. */
  static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

  /** Docker's manifest list, the same shape as an OCI index. */
  static final String DOCKER_MANIFEST_LIST =
      "application/vnd.docker.distribution.manifest.list.v2+json";

  private static final String ACCEPT =
      String.join(
          ", ", MediaTypes.MANIFEST, MediaTypes.INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST);

  /** Manifests are small; the distribution spec suggests registries accept at least 4 MiB. */
  private static final long MAX_MANIFEST_BYTES = 4L << 20;

  private final String repository;
  private final String reference;
  private final String where;

  ManifestPuller(RegistryHttp http, String repository, String reference) {
    this.repository = repository;
    this.reference = reference;
    this.where = http.where(repository);
  }

  @Override
  public String description() {
    return "fetch manifest " + reference + " from " + where;
  }

  @Override
  public Future<PulledManifest> attempt(RegistryHttp http) {
    DigestingSink sink = new DigestingSink(MAX_MANIFEST_BYTES);
    return http.request(HttpMethod.GET, "/v2/" + repository + "/manifests/" + reference)
        .putHeader("Accept", ACCEPT)
        .as(BodyCodec.pipe(sink))
        .send()
        .compose(response -> check(response, sink));
  }

  private Future<PulledManifest> check(HttpResponse<?> response, DigestingSink sink) {
    if (response.statusCode() != 200) {
      return Future.failedFuture(UnexpectedStatus.of(response, sink.bytes()));
    }
    if (sink.overflowed()) {
      return Future.failedFuture(
          new RegistryException(
              "could not "
                  + description()
                  + ": it is larger than "
                  + MAX_MANIFEST_BYTES
                  + " bytes"));
    }
    Digest actual = sink.digest();
    Digest expected = expectedDigest(response);
    if (expected != null && !expected.equals(actual)) {
      return Future.failedFuture(
          new DigestMismatchException(
              "could not "
                  + description()
                  + ": expected "
                  + expected
                  + " but it hashes to "
                  + actual,
              expected,
              actual));
    }
    String type = response.getHeader("Content-Type");
    if (type != null && type.indexOf(';') >= 0) {
      type = type.substring(0, type.indexOf(';')).trim();
    }
    return Future.succeededFuture(new PulledManifest(sink.bytes(), type, actual));
  }

  /** The digest the bytes must have: the reference if it is one, else the registry's header. */
  private Digest expectedDigest(HttpResponse<?> response) {
    if (reference.startsWith(Digest.ALGORITHM + ":")) {
      return Digest.parse(reference);
    }
    String header = response.getHeader("Docker-Content-Digest");
    if (header != null && header.startsWith(Digest.ALGORITHM + ":")) {
      try {
        return Digest.parse(header);
      } catch (IllegalArgumentException e) {
        return null;
      }
    }
    return null;
  }

  @Override
  public RegistryException notFound(String message) {
    return new ManifestNotFoundException(message, reference);
  }
}
