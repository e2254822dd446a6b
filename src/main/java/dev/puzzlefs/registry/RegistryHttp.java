package dev.puzzlefs.registry;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.WebClient;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What an operation needs to talk to one registry: requests aimed at it with the configured
 * timeouts, the limits, and the counters. Package-private; {@link RegistryClient} owns it.
 */
final class RegistryHttp {
  final AtomicLong requests = new AtomicLong();
  final AtomicLong bytesFetched = new AtomicLong();
  final AtomicLong blobsFetched = new AtomicLong();
  final AtomicLong bytesPushed = new AtomicLong();
  final AtomicLong blobsPushed = new AtomicLong();

  private final WebClient client;
  private final String registry;
  private final String host;
  private final int port;
  private final boolean ssl;
  private final RegistryClientOptions options;

  RegistryHttp(
      WebClient client,
      String registry,
      String host,
      int port,
      boolean ssl,
      RegistryClientOptions options) {
    this.client = client;
    this.registry = registry;
    this.host = host;
    this.port = port;
    this.ssl = ssl;
    this.options = options;
  }

  /**
   * A request for {@code pathOrUrl}: a path on this registry, or an absolute URL as found in a
   * Location header. Redirects are followed for GET and HEAD.
   */
  HttpRequest<Buffer> request(HttpMethod method, String pathOrUrl) {
    requests.incrementAndGet();
    HttpRequest<Buffer> request =
        isAbsolute(pathOrUrl)
            ? client.requestAbs(method, pathOrUrl)
            : client.request(method, port, host, pathOrUrl).ssl(ssl);
    return request
        .connectTimeout(options.connectTimeout().toMillis())
        .idleTimeout(
            Math.min(options.idleTimeout().toMillis(), options.requestTimeout().toMillis()))
        .followRedirects(method == HttpMethod.GET || method == HttpMethod.HEAD);
  }

  /** {@code http[s]://host:port}, the base that relative Location headers resolve against. */
  String baseUrl() {
    return (ssl ? "https" : "http") + "://" + registry;
  }

  /** {@code host:port/repository}, as messages name a repository. */
  String where(String repository) {
    return registry + "/" + repository;
  }

  /** The largest body an operation may accept. */
  long maxBodyBytes() {
    return options.maxBlobBytes();
  }

  private static boolean isAbsolute(String pathOrUrl) {
    return pathOrUrl.startsWith("http://") || pathOrUrl.startsWith("https://");
  }
}
