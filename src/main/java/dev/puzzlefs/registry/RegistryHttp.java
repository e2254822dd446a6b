package dev.puzzlefs.registry;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.WebClient;
import java.net.URI;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What an operation needs to talk to one registry: requests aimed at it with the configured
 * timeouts and, for one attempt, its {@code Authorization} header; the limits; and the counters.
 * Package-private; {@link RegistryClient} owns it.
 *
 * <p>The header goes only to the registry's own origin (scheme, host and port): never to an upload
 * Location or a redirect elsewhere, such as the object storage that serves blobs.
 */
final class RegistryHttp {
  final AtomicLong requests;
  final AtomicLong bytesFetched;
  final AtomicLong blobsFetched;
  final AtomicLong bytesPushed;
  final AtomicLong blobsPushed;

  private final WebClient client;
  private final HttpClient httpClient;
  private final String registry;
  private final String host;
  private final int port;
  private final boolean ssl;
  private final RegistryClientOptions options;
  private final String authorization;

  /** The streamed requests of one attempt, for {@link #abandon}; null outside an attempt. */
  private final java.util.List<HttpClientRequest> opened;

  /**
   * When the attempt's streamed request was last sent or heard from (its headers or its body's
   * bytes), as {@link System#nanoTime()}; 0 before that, and null outside an attempt.
   */
  private final AtomicLong heard;

  RegistryHttp(
      WebClient client,
      HttpClient httpClient,
      String registry,
      String host,
      int port,
      boolean ssl,
      RegistryClientOptions options) {
    this.client = client;
    this.httpClient = httpClient;
    this.registry = registry;
    this.host = host;
    this.port = port;
    this.ssl = ssl;
    this.options = options;
    this.authorization = null;
    this.opened = null;
    this.heard = null;
    this.requests = new AtomicLong();
    this.bytesFetched = new AtomicLong();
    this.blobsFetched = new AtomicLong();
    this.bytesPushed = new AtomicLong();
    this.blobsPushed = new AtomicLong();
  }

  private RegistryHttp(
      RegistryHttp base,
      String authorization,
      java.util.List<HttpClientRequest> opened,
      AtomicLong heard) {
    this.client = base.client;
    this.httpClient = base.httpClient;
    this.registry = base.registry;
    this.host = base.host;
    this.port = base.port;
    this.ssl = base.ssl;
    this.options = base.options;
    this.authorization = authorization;
    this.opened = opened;
    this.heard = heard;
    this.requests = base.requests;
    this.bytesFetched = base.bytesFetched;
    this.blobsFetched = base.blobsFetched;
    this.bytesPushed = base.bytesPushed;
    this.blobsPushed = base.blobsPushed;
  }

  /**
   * The same for one attempt of an operation, sending {@code authorization} (null: none): it keeps
   * the requests whose bodies it streams ({@link #get}), so that an attempt past its deadline can
   * {@link #abandon} them.
   */
  RegistryHttp forAttempt(String authorization) {
    return new RegistryHttp(
        this,
        authorization,
        java.util.Collections.synchronizedList(new java.util.ArrayList<>()),
        new AtomicLong());
  }

  /** Counts {@code bytes} of a streamed body as fetched, and as word from the registry. */
  void received(int bytes) {
    bytesFetched.addAndGet(bytes);
    heard();
  }

  private void heard() {
    if (heard != null) {
      heard.set(System.nanoTime());
    }
  }

  /**
   * {@code failure} of this attempt, or a time-out in its place when it is a closed connection on
   * which the registry had sent nothing for the idle timeout. The client closes such a connection
   * itself: Vert.x stops a request's own idle timer once the headers are in, so a body that stalls
   * is caught by the connection's idle timeout, and the request fails as "connection was closed",
   * which reads as if the registry had closed it.
   */
  Throwable explain(Throwable failure) {
    long last = heard == null ? 0 : heard.get();
    if (last == 0 || !RegistryClient.closedConnection(failure)) {
      return failure;
    }
    long silentMillis = (System.nanoTime() - last) / 1_000_000;
    // A little early: the bytes reach us a moment after the connection saw them.
    if (silentMillis < idleMillis() * 9 / 10) {
      return failure;
    }
    return new java.util.concurrent.TimeoutException(
        "the registry sent nothing for " + silentMillis + " ms");
  }

  private long idleMillis() {
    return Math.min(options.idleTimeout().toMillis(), options.requestTimeout().toMillis());
  }

  /**
   * Resets the requests this attempt streams: an attempt past its deadline must not keep its
   * connection busy, which a registry sending a trickle of bytes (never idle long enough for the
   * idle timeout) would otherwise do until the whole body had come, long after nobody wants it.
   */
  void abandon() {
    if (opened == null) {
      return;
    }
    java.util.List<HttpClientRequest> all;
    synchronized (opened) {
      all = java.util.List.copyOf(opened);
    }
    for (HttpClientRequest request : all) {
      request.reset();
    }
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
    if (authorization != null && (!isAbsolute(pathOrUrl) || isRegistry(pathOrUrl))) {
      request.putHeader("Authorization", authorization);
    }
    // No per-request connect timeout: the client's covers the TCP connect, and a per-request one
    // also arms a timer on the wait for a pooled connection, which Vert.x 5.0 can fire after the
    // request got its connection ("Promise already completed", logged at ERROR). The limiter
    // keeps requests from queueing in the pool, and the idle and operation timeouts bound them.
    return request
        .idleTimeout(idleMillis())
        .followRedirects(method == HttpMethod.GET || method == HttpMethod.HEAD);
  }

  /**
   * A GET of {@code path} on this registry through the plain HTTP client, following redirects. The
   * response body is left to the caller, which reads it as it arrives and may reset the request to
   * stop it early (what {@link #request} cannot do once a body codec is set).
   */
  Future<HttpClientResponse> get(String path) {
    return get(path, null, null);
  }

  /** The same, with one more request header (none when {@code header} is null). */
  Future<HttpClientResponse> get(String path, String header, String value) {
    requests.incrementAndGet();
    RequestOptions request =
        new RequestOptions()
            .setMethod(HttpMethod.GET)
            .setHost(host)
            .setPort(port)
            .setSsl(ssl)
            .setURI(path)
            .setFollowRedirects(true)
            .setIdleTimeout(idleMillis())
            .putHeader("User-Agent", options.userAgent());
    if (authorization != null) {
      request.putHeader("Authorization", authorization);
    }
    if (header != null) {
      request.putHeader(header, value);
    }
    // Paused as soon as it arrives, on the event loop: the caller attaches its body handlers in a
    // later callback (after retries' and limiters' hops), and must then resume() it, so no
    // buffer of a multi-buffer body is delivered before anyone listens.
    return httpClient
        .request(request)
        .compose(
            req -> {
              if (opened != null) {
                opened.add(req);
              }
              heard();
              return req.send()
                  .map(
                      response -> {
                        heard();
                        response.pause();
                        // Until the operation sets its own: a reset before then (an attempt
                        // abandoned at its deadline) is expected, not an error for Vert.x to log.
                        response.exceptionHandler(ignored -> {});
                        return response;
                      });
            });
  }

  /** The Content-Length header, or -1 when absent or unreadable. */
  static long contentLength(HttpClientResponse response) {
    String header = response.getHeader("Content-Length");
    if (header == null) {
      return -1;
    }
    try {
      return Long.parseLong(header.trim());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** {@code http[s]://host:port}, the base that relative Location headers resolve against. */
  String baseUrl() {
    return (ssl ? "https" : "http") + "://" + registry;
  }

  /** {@code host:port}, as messages name the registry. */
  String registry() {
    return registry;
  }

  /** {@code host:port/repository}, as messages name a repository. */
  String where(String repository) {
    return registry + "/" + repository;
  }

  /** The largest body an operation may accept. */
  long maxBodyBytes() {
    return options.maxBlobBytes();
  }

  /** True when the absolute {@code url} is on this registry's origin. */
  private boolean isRegistry(String url) {
    try {
      return Redirects.sameOrigin(URI.create(baseUrl()), URI.create(url));
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static boolean isAbsolute(String pathOrUrl) {
    return pathOrUrl.startsWith("http://") || pathOrUrl.startsWith("https://");
  }
}
