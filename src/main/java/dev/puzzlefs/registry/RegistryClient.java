package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.PoolOptions;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.net.ConnectException;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client for one registry host, speaking the OCI distribution API.
 *
 * <p>Every operation is a small {@link RegistryOperation}; an {@link OperationRunner} runs them. It
 * bounds how many requests are in flight (later ones queue without blocking), authenticates
 * (anonymous, basic, or bearer tokens from the registry's token server, with credentials from
 * {@link RegistryClientOptions#credentials()}), gives each attempt a deadline, retries connection
 * failures, timeouts, 5xx, 429 and corrupted bodies with jittered exponential backoff within {@link
 * RegistryClientOptions#maxAttempts()} and {@link RegistryClientOptions#maxRetryTime()}, and turns
 * what is left into typed {@link RegistryException}s. A 404, other 4xx or a body larger than
 * allowed is never retried: asking again would get the same answer. Redirects of downloads are
 * followed without the registry's credentials when they lead elsewhere.
 *
 * <p>All methods return Vert.x futures and never block; use {@code toCompletionStage()} to bridge.
 * The futures complete on a Vert.x event loop, so callers must not block in their callbacks.
 */
public final class RegistryClient implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(RegistryClient.class);

  private final Vertx vertx;
  private final boolean ownsVertx;
  private final HttpClient httpClient;
  private final WebClient client;
  private final RegistryHttp http;
  private final RegistryClientOptions options;
  private final OperationRunner runner;
  private final String registry;
  private volatile boolean closed;

  /**
   * A client for {@code registry} ({@code HOST[:PORT]}, as {@link ImageReference#registry()} gives
   * it) running on {@code vertx}, which the caller keeps and closes.
   */
  public RegistryClient(Vertx vertx, String registry, RegistryClientOptions options) {
    this(vertx, false, registry, options);
  }

  /**
   * A client with a Vert.x instance of its own, closed by {@link #close()}; or, in a process that
   * called {@link #shareOneVertx}, on the process's one instance, left open.
   */
  public static RegistryClient create(String registry, RegistryClientOptions options) {
    Vertx shared = sharedVertx;
    return shared != null
        ? new RegistryClient(shared, false, registry, options)
        : new RegistryClient(newVertx(), true, registry, options);
  }

  private static volatile Vertx sharedVertx;

  /**
   * A Vert.x instance without its class-path file cache: we never serve files from the class path,
   * and the cache's directory (/tmp/vertx-cache-*) outlived every JVM that was killed.
   */
  static Vertx newVertx() {
    return Vertx.vertx(
        new io.vertx.core.VertxOptions()
            .setFileSystemOptions(
                new io.vertx.core.file.FileSystemOptions()
                    .setClassPathResolvingEnabled(false)
                    .setFileCachingEnabled(false)));
  }

  /**
   * From now on, every client {@link #create} makes uses one Vert.x instance, which lives as long
   * as the process: for a process that opens many images (the mount server), where a Vert.x
   * instance of each mount's own (its threads, its file cache, its resolver) would cost
   * milliseconds per mount.
   */
  public static synchronized void shareOneVertx() {
    if (sharedVertx == null) {
      sharedVertx = newVertx();
    }
  }

  private RegistryClient(
      Vertx vertx, boolean ownsVertx, String registry, RegistryClientOptions options) {
    this.vertx = vertx;
    this.ownsVertx = ownsVertx;
    this.options = options.copy();
    this.registry = registry;

    boolean ssl = !this.options.plainHttp();
    String host = hostOf(registry);
    int port = portOf(registry, ssl ? 443 : 80);
    WebClientOptions web =
        new WebClientOptions()
            .setSsl(ssl)
            .setVerifyHost(true)
            .setTrustAll(false)
            .setKeepAlive(true)
            .setConnectTimeout((int) this.options.connectTimeout().toMillis())
            .setIdleTimeout((int) this.options.idleTimeout().toMillis())
            .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
            .setFollowRedirects(true)
            .setMaxRedirects(5)
            .setUserAgent(this.options.userAgent());
    PoolOptions pool = new PoolOptions().setHttp1MaxSize(this.options.maxConcurrentRequests());
    // Without a handler of our own, Vert.x logs every reset connection at ERROR; the failure
    // already reaches the request, which retries and reports it.
    this.httpClient =
        vertx
            .httpClientBuilder()
            .with(web)
            .with(pool)
            .withRedirectHandler(Redirects::follow)
            .withConnectHandler(
                connection ->
                    connection.exceptionHandler(
                        e -> LOG.debug("connection to {} failed: {}", registry, e.toString())))
            .build();
    this.client = WebClient.wrap(httpClient, web);
    this.http = new RegistryHttp(client, httpClient, registry, host, port, ssl, this.options);
    this.runner = new OperationRunner(vertx, http, this.options, !ssl, registry, () -> closed);
  }

  /** The registry this client talks to, {@code HOST[:PORT]}. */
  public String registry() {
    return registry;
  }

  /** The Vert.x instance the client runs on. */
  public Vertx vertx() {
    return vertx;
  }

  /** Whether the registry has blob {@code digest} in {@code repository} (HEAD). */
  public Future<Boolean> hasBlob(String repository, Digest digest) {
    return run(new BlobChecker(http, repository, digest));
  }

  /**
   * The bytes of blob {@code digest}, verified: fails with {@link BlobDigestMismatchException} if
   * they hash to anything else, {@link BlobNotFoundException} on 404.
   */
  public Future<byte[]> pullBlob(String repository, Digest digest) {
    return run(new BlobPuller(http, repository, digest, options.maxBlobBytes()));
  }

  /**
   * Like {@link #pullBlob(String, Digest)} for a blob known to be {@code expectedSize} bytes long
   * (as its descriptor says): a response announcing or sending more than that, or more than {@link
   * RegistryClientOptions#maxBlobBytes()}, is cut off as soon as it does and fails at once, without
   * retries, with {@link BlobTooLargeException}.
   */
  public Future<byte[]> pullBlob(String repository, Digest digest, long expectedSize) {
    if (expectedSize < 0) {
      throw new IllegalArgumentException("negative expected size " + expectedSize);
    }
    long limit = Math.min(expectedSize, options.maxBlobBytes());
    return run(new BlobPuller(http, repository, digest, limit));
  }

  /**
   * Parts {@code ranges} of blob {@code digest} (in order, not overlapping, at most {@link
   * RangePuller#MAX_RANGES}), with one range request, handed to {@code sink} as they arrive. Not
   * verified (a part of a blob has no digest of its own): the caller checks what it cuts out of
   * them. Succeeds once the answer has ended with every part; fails with {@link
   * RangeNotSupportedException} when the registry sends anything but those parts, a {@link
   * MultiRangeNotSupportedException} when several were asked for. Never retried (a time-out, a 5xx,
   * a dropped connection fail at once): the caller fetches the parts' chunks as blobs instead, and
   * a stalled range retried would use up the time a read has for that.
   */
  public Future<Void> pullRanges(
      String repository, Digest digest, java.util.List<ByteRanges.Range> ranges, RangeSink sink) {
    return run(new RangePuller(http, repository, digest, ranges, sink));
  }

  /** As {@link #pullRanges(String, Digest, java.util.List, RangeSink)}, the parts in one array. */
  public Future<ByteRanges> pullRanges(
      String repository, Digest digest, java.util.List<ByteRanges.Range> ranges) {
    ByteRanges.Collector into = new ByteRanges.Collector(ranges);
    return pullRanges(repository, digest, ranges, into).map(v -> into.collected());
  }

  /** The most parts {@link #pullRanges} asks for in one request. */
  public static int maxRangesPerRequest() {
    return RangePuller.MAX_RANGES;
  }

  /**
   * The chunk pack that refers to image manifest {@code image} in {@code repository} (see {@link
   * ChunkPack}), checked against the image's chunk sizes {@code chunkSizes}; null when there is
   * none. Fails when there is one that cannot be fetched or does not fit the image.
   */
  public Future<ChunkPack> findChunkPack(
      String repository, Digest image, java.util.Map<Digest, Long> chunkSizes) {
    return new PackFinder(this, repository).find(image, chunkSizes);
  }

  /**
   * Uploads {@code data} as blob {@code digest} in one request. The bytes are not hashed again here
   * (callers read them from a verifying store, and this may run on an event loop); the registry
   * checks them and a mismatch fails with its DIGEST_INVALID error.
   */
  public Future<Void> pushBlob(String repository, Digest digest, byte[] data) {
    return run(new BlobPusher(http, repository, digest, data));
  }

  /**
   * The manifest or index under {@code reference} (a tag or {@code sha256:<hex>}); fails with
   * {@link ManifestNotFoundException} on 404 and {@link DigestMismatchException} when its bytes do
   * not hash to the digest asked for or announced.
   */
  public Future<PulledManifest> pullManifest(String repository, String reference) {
    return run(new ManifestPuller(http, repository, reference));
  }

  /**
   * Like {@link #pullManifest} for a manifest that is often not there (a referrers tag): its 404
   * fails the future as usual but is not counted in {@link #failures()}.
   */
  Future<PulledManifest> pullManifestIfAny(String repository, String reference) {
    return run(new ManifestPuller(http, repository, reference, true));
  }

  /** Stores {@code manifest} under {@code reference}; completes with its digest. */
  public Future<Digest> pushManifest(
      String repository, String reference, byte[] manifest, String mediaType) {
    return run(new ManifestPusher(http, repository, reference, manifest, mediaType));
  }

  /**
   * HTTP requests sent so far, retries and both halves of an upload included; redirects that Vert.x
   * follows are not counted.
   */
  public long requests() {
    return http.requests.get();
  }

  /** Requests sent again after a retryable failure (429, 5xx, transport, corrupt body). */
  public long retries() {
    return runner.retries.sum();
  }

  /** Operations that failed for good, after their retries. */
  public long failures() {
    return runner.failures.sum();
  }

  /** Blob body bytes received so far, verified or not. */
  public long bytesFetched() {
    return http.bytesFetched.get();
  }

  /** Blobs fetched and verified so far. */
  public long blobsFetched() {
    return http.blobsFetched.get();
  }

  /** Blob bytes uploaded so far. */
  public long bytesPushed() {
    return http.bytesPushed.get();
  }

  /** Blobs uploaded so far. */
  public long blobsPushed() {
    return http.blobsPushed.get();
  }

  /** Whether {@link #close()} was called: requests failing since fail because of it. */
  public boolean isClosed() {
    return closed;
  }

  /** Closes the connections, and the Vert.x instance if this client created it. */
  @Override
  public void close() {
    closed = true;
    client.close();
    httpClient.close();
    if (ownsVertx) {
      vertx.close();
    }
  }

  /** Runs {@code operation} with retries; the future fails only with a RegistryException. */
  <T> Future<T> run(RegistryOperation<T> operation) {
    return runner.run(operation);
  }

  /** A short lower-case account of a transport failure, for messages. */
  static String reason(Throwable cause) {
    String message = cause.getMessage() == null ? "" : cause.getMessage();
    if (cause instanceof UnexpectedStatus) {
      return message;
    }
    if (cause instanceof DigestMismatchException m && m.actual() != null) {
      return "the bytes received hash to " + m.actual() + ", not " + m.expected();
    }
    if (cause instanceof RegistryException && !message.isEmpty()) {
      return message;
    }
    if (refused(cause)) {
      return "connection refused";
    }
    if (cause instanceof ConnectException) {
      return "cannot connect (" + message + ")";
    }
    if (cause instanceof TimeoutException) {
      return "timed out (" + message + ")";
    }
    if (message.toLowerCase(Locale.ROOT).contains("reset")) {
      return "connection reset";
    }
    if (closedConnection(cause)) {
      return "connection closed by the registry";
    }
    if (tls(cause)) {
      // The usual cause: a registry that speaks plain HTTP, as a local docker-registry does.
      return "the TLS handshake failed ("
          + message
          + "); if this registry speaks plain HTTP, pass --plain-http or list it under"
          + " registry.insecure in the configuration";
    }
    return cause.getClass().getSimpleName() + (message.isEmpty() ? "" : ": " + message);
  }

  /** Whether {@code cause} is Vert.x's word that the connection of a request was closed. */
  static boolean closedConnection(Throwable cause) {
    return cause instanceof VertxException
        && cause.getMessage() != null
        && cause.getMessage().toLowerCase(Locale.ROOT).contains("closed");
  }

  /**
   * Whether the registry refused the connection: nothing listens on its port (yet). Netty's connect
   * timeout is a ConnectException too, and so is "no route to host": neither is a refusal.
   */
  static boolean refused(Throwable cause) {
    for (Throwable t = cause; t != null; t = t.getCause()) {
      if (t instanceof ConnectException
          && !t.getClass().getSimpleName().contains("Timeout")
          && String.valueOf(t.getMessage()).toLowerCase(Locale.ROOT).contains("refused")) {
        return true;
      }
    }
    return false;
  }

  private static boolean tls(Throwable cause) {
    for (Throwable t = cause; t != null; t = t.getCause()) {
      if (t instanceof javax.net.ssl.SSLException) {
        return true;
      }
    }
    return false;
  }

  private static String hostOf(String registry) {
    String host = registry;
    int colon = registry.lastIndexOf(':');
    if (colon >= 0 && colon > registry.lastIndexOf(']')) {
      host = registry.substring(0, colon);
    }
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    if (host.isEmpty()) {
      throw new IllegalArgumentException("no host in registry '" + registry + "'");
    }
    return host;
  }

  private static int portOf(String registry, int defaultPort) {
    int colon = registry.lastIndexOf(':');
    if (colon < 0 || colon < registry.lastIndexOf(']')) {
      return defaultPort;
    }
    try {
      return Integer.parseInt(registry.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("bad port in registry '" + registry + "'", e);
    }
  }
}
