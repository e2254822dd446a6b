package dev.puzzlefs.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.MediaTypes;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.codec.BodyCodec;
import java.io.IOException;
import java.util.List;

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

  private static final List<String> KNOWN =
      List.of(MediaTypes.MANIFEST, MediaTypes.INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST);

  private static final ObjectMapper MAPPER = new ObjectMapper();

  /**
   * The largest manifest fetched. The distribution spec asks registries to accept at least 4 MiB,
   * and most (docker-registry among them) refuse a larger one, so {@link ImagePusher} refuses to
   * push one: what can be pushed can be mounted.
   */
  static final long MAX_MANIFEST_BYTES = 4L << 20;

  private final String repository;
  private final String reference;
  private final String where;

  private final boolean mayBeMissing;

  ManifestPuller(RegistryHttp http, String repository, String reference) {
    this(http, repository, reference, false);
  }

  /** With {@code mayBeMissing}, a 404 is not counted as the client's failure. */
  ManifestPuller(RegistryHttp http, String repository, String reference, boolean mayBeMissing) {
    this.repository = repository;
    this.reference = reference;
    this.where = http.where(repository);
    this.mayBeMissing = mayBeMissing;
  }

  @Override
  public boolean notFoundIsAnAnswer() {
    return mayBeMissing;
  }

  @Override
  public String scope() {
    return RegistryOperation.pullScope(repository);
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
    byte[] bytes = sink.bytes();
    return Future.succeededFuture(new PulledManifest(bytes, mediaType(bytes, type), actual));
  }

  /**
   * What the document is, from the document itself when it says: its {@code mediaType} field if it
   * names a known type, else its shape (an index lists {@code manifests}, an image manifest has
   * {@code config} and {@code layers}). Registries and proxies do send wrong Content-Types ({@code
   * application/octet-stream}, or a manifest type for an index); the header is used only when the
   * body tells nothing.
   */
  static String mediaType(byte[] document, String contentType) {
    JsonNode root;
    try {
      root = MAPPER.readTree(document);
    } catch (IOException e) {
      return contentType;
    }
    if (root == null || !root.isObject()) {
      return contentType;
    }
    String declared = root.path("mediaType").asText("");
    if (KNOWN.contains(declared)) {
      return declared;
    }
    boolean dockerHeader = contentType != null && contentType.startsWith("application/vnd.docker.");
    if (root.path("manifests").isArray()) {
      return dockerHeader ? DOCKER_MANIFEST_LIST : MediaTypes.INDEX;
    }
    if (root.has("config") && root.path("layers").isArray()) {
      return dockerHeader ? DOCKER_MANIFEST : MediaTypes.MANIFEST;
    }
    return contentType;
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

  /** Bytes that hash to something else may have been damaged on the way: ask again. */
  @Override
  public boolean retryable(RegistryException failure) {
    return failure instanceof DigestMismatchException;
  }

  @Override
  public RegistryException notFound(String message) {
    return new ManifestNotFoundException(message, reference);
  }
}
