package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;
import java.net.URI;
import java.net.URISyntaxException;

/**
 * A monolithic upload: {@code POST /v2/<repo>/blobs/uploads/} opens an upload session, then one
 * {@code PUT <Location>?digest=<digest>} sends the whole blob. Each attempt opens a new session.
 */
final class BlobPusher implements RegistryOperation<Void> {
  private final String repository;
  private final Digest digest;
  private final byte[] data;
  private final String where;

  BlobPusher(RegistryHttp http, String repository, Digest digest, byte[] data) {
    this.repository = repository;
    this.digest = digest;
    this.data = data;
    this.where = http.where(repository);
  }

  @Override
  public String scope() {
    return RegistryOperation.pushScope(repository);
  }

  @Override
  public String description() {
    return "push blob " + digest + " to " + where;
  }

  @Override
  public Future<Void> attempt(RegistryHttp http) {
    return http.request(HttpMethod.POST, "/v2/" + repository + "/blobs/uploads/")
        .putHeader("Content-Length", "0")
        .send()
        .compose(response -> upload(http, response));
  }

  private Future<Void> upload(RegistryHttp http, HttpResponse<?> opened) {
    if (opened.statusCode() != 202) {
      return Future.failedFuture(UnexpectedStatus.of(opened, bodyOf(opened)));
    }
    String location = opened.getHeader("Location");
    if (location == null || location.isEmpty()) {
      return Future.failedFuture(
          new RegistryException(
              "could not " + description() + ": the registry opened an upload without a Location"));
    }
    String url;
    try {
      url = uploadUrl(http.baseUrl() + "/v2/" + repository + "/blobs/uploads/", location, digest);
    } catch (URISyntaxException e) {
      return Future.failedFuture(
          new RegistryException(
              "could not " + description() + ": bad upload Location '" + location + "'", e));
    }
    return http.request(HttpMethod.PUT, url)
        .putHeader("Content-Type", "application/octet-stream")
        .sendBuffer(Buffer.buffer(data))
        .compose(response -> finish(http, response));
  }

  private Future<Void> finish(RegistryHttp http, HttpResponse<?> response) {
    if (response.statusCode() != 201) {
      return Future.failedFuture(UnexpectedStatus.of(response, bodyOf(response)));
    }
    String stored = response.getHeader("Docker-Content-Digest");
    if (stored != null && stored.startsWith("sha256:") && !stored.equals(digest.toString())) {
      return Future.failedFuture(
          new BlobDigestMismatchException(
              "could not " + description() + ": the registry stored it as " + stored,
              digest,
              parseOrSame(stored)));
    }
    http.bytesPushed.addAndGet(data.length);
    http.blobsPushed.incrementAndGet();
    return Future.succeededFuture();
  }

  /**
   * The PUT target: {@code location} resolved against the POST's URL (it may be absolute, or
   * relative with or without a leading slash), with {@code digest=} added to any query it has.
   */
  static String uploadUrl(String postUrl, String location, Digest digest)
      throws URISyntaxException {
    String resolved = new URI(postUrl).resolve(new URI(location)).toString();
    int hash = resolved.indexOf('#');
    if (hash >= 0) {
      resolved = resolved.substring(0, hash);
    }
    String separator = resolved.indexOf('?') < 0 ? "?" : (resolved.endsWith("?") ? "" : "&");
    return resolved + separator + "digest=" + digest;
  }

  private static byte[] bodyOf(HttpResponse<?> response) {
    Object body = response.body();
    return body instanceof Buffer ? ((Buffer) body).getBytes() : null;
  }

  private Digest parseOrSame(String text) {
    try {
      return Digest.parse(text);
    } catch (IllegalArgumentException e) {
      return digest;
    }
  }

  @Override
  public RegistryException notFound(String message) {
    return new RegistryException(message + " (does the repository accept uploads?)");
  }
}
