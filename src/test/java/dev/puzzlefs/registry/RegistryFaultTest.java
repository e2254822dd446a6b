package dev.puzzlefs.registry;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static com.github.tomakehurst.wiremock.client.WireMock.put;
import static com.github.tomakehurst.wiremock.client.WireMock.putRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.client.WireMock.urlPathEqualTo;
import static dev.puzzlefs.testing.Futures.await;
import static dev.puzzlefs.testing.Futures.failure;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.http.Fault;
import com.github.tomakehurst.wiremock.stubbing.Scenario;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.testing.TestImages;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Registry faults a real registry will not produce, served by WireMock on 127.0.0.1. */
class RegistryFaultTest {
  /** Generous, so a cold JVM on a busy machine does not turn a slow first answer into a retry. */
  private static final Duration TIMEOUT = Duration.ofSeconds(5);

  /** For the one test that waits for timeouts on purpose. */
  private static final Duration SHORT_TIMEOUT = Duration.ofSeconds(1);

  private static final int ATTEMPTS = 3;
  private static final String REPO = "faults/repo";

  private static Vertx vertx;
  private WireMockServer server;
  private RegistryClient client;
  private final byte[] blob = TestImages.randomBytes(new Random(42), 20_000);
  private final Digest digest = Digest.sha256(blob);
  private final String blobPath = "/v2/" + REPO + "/blobs/" + digest;

  @BeforeAll
  static void startVertx() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stopVertx() throws Exception {
    await(vertx.close());
  }

  @BeforeEach
  void startServer() {
    server =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").dynamicPort());
    server.start();
    client = new RegistryClient(vertx, "127.0.0.1:" + server.port(), options());
  }

  @AfterEach
  void stopServer() {
    client.close();
    server.stop();
  }

  private static RegistryClientOptions options() {
    return options(TIMEOUT);
  }

  private static RegistryClientOptions options(Duration timeout) {
    return new RegistryClientOptions()
        .plainHttp(true)
        .connectTimeout(timeout)
        .idleTimeout(timeout)
        .requestTimeout(timeout)
        .maxAttempts(ATTEMPTS)
        .initialBackoff(Duration.ofMillis(50))
        .maxBackoff(Duration.ofMillis(200));
  }

  private int blobGets() {
    return server.findAll(getRequestedFor(urlEqualTo(blobPath))).size();
  }

  @Test
  void pullBlob_500Then200_retriesAndSucceeds() throws Exception {
    server.stubFor(
        get(blobPath)
            .inScenario("flaky")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withStatus(500))
            .willSetStateTo("healed"));
    server.stubFor(
        get(blobPath)
            .inScenario("flaky")
            .whenScenarioStateIs("healed")
            .willReturn(aResponse().withStatus(200).withBody(blob)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    assertEquals(2, blobGets());
    assertEquals(1, client.blobsFetched());
  }

  @Test
  void pullBlob_429WithRetryAfter_retriesAndSucceeds() throws Exception {
    server.stubFor(
        get(blobPath)
            .inScenario("busy")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withStatus(429).withHeader("Retry-After", "0"))
            .willSetStateTo("free"));
    server.stubFor(
        get(blobPath)
            .inScenario("busy")
            .whenScenarioStateIs("free")
            .willReturn(aResponse().withStatus(200).withBody(blob)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    assertEquals(2, blobGets());
  }

  @Test
  void pullBlob_always503_failsAfterEveryAttemptWithStatus() {
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(503)));

    Throwable e = failure(client.pullBlob(REPO, digest));

    UnexpectedResponseException response = assertInstanceOf(UnexpectedResponseException.class, e);
    assertEquals(503, response.status());
    assertTrue(e.getMessage().contains("HTTP 503"), e.getMessage());
    assertTrue(e.getMessage().endsWith("(3 attempts)"), e.getMessage());
    assertEquals(ATTEMPTS, blobGets());
  }

  @Test
  void pullBlob_connectionReset_failsWithinTimeoutAsUnreachable() {
    server.stubFor(get(blobPath).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
    long start = System.nanoTime();

    Throwable e = failure(client.pullBlob(REPO, digest));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    assertInstanceOf(RegistryUnreachableException.class, e);
    assertTrue(e.getMessage().startsWith("could not fetch blob " + digest), e.getMessage());
    assertTrue(e.getMessage().endsWith("(3 attempts)"), e.getMessage());
    assertEquals(ATTEMPTS, blobGets());
    assertTrue(elapsedMillis < TIMEOUT.toMillis() * ATTEMPTS + 5000, elapsedMillis + " ms");
  }

  @Test
  void pullBlob_delayLongerThanTimeout_failsWithinBoundAsTimedOut() {
    server.stubFor(
        get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob).withFixedDelay(4000)));
    long timeout = SHORT_TIMEOUT.toMillis();
    try (RegistryClient impatient =
        new RegistryClient(vertx, "127.0.0.1:" + server.port(), options(SHORT_TIMEOUT))) {
      long start = System.nanoTime();

      Throwable e = failure(impatient.pullBlob(REPO, digest));

      long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
      assertInstanceOf(RegistryUnreachableException.class, e);
      assertTrue(e.getMessage().contains("timed out"), e.getMessage());
      assertTrue(e.getMessage().endsWith("(3 attempts)"), e.getMessage());
      assertTrue(elapsedMillis < timeout * ATTEMPTS + 5000, elapsedMillis + " ms");
      assertTrue(elapsedMillis >= timeout * ATTEMPTS - 100, elapsedMillis + " ms");
    }
  }

  @Test
  void pullBlob_nothingListening_failsAsConnectionRefused() throws Exception {
    int port;
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = socket.getLocalPort();
    }
    try (RegistryClient closed = new RegistryClient(vertx, "127.0.0.1:" + port, options())) {
      Throwable e = failure(closed.pullBlob(REPO, digest));

      assertInstanceOf(RegistryUnreachableException.class, e);
      assertEquals(
          "could not fetch blob "
              + digest
              + " from 127.0.0.1:"
              + port
              + "/"
              + REPO
              + ": connection refused (3 attempts)",
          e.getMessage());
      assertEquals(ATTEMPTS, closed.requests());
    }
  }

  @Test
  void pullBlob_404_failsWithBlobNotFoundWithoutRetry() {
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(404)
                    .withBody(
                        "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"unknown\"}]}")));

    Throwable e = failure(client.pullBlob(REPO, digest));

    assertInstanceOf(BlobNotFoundException.class, e);
    assertTrue(e.getMessage().contains("BLOB_UNKNOWN"), e.getMessage());
    assertEquals(1, blobGets());
  }

  @Test
  void pullBlob_401_failsUnauthorizedWithoutRetry() {
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(401)
                    .withHeader("WWW-Authenticate", "Bearer realm=\"http://127.0.0.1/token\"")));

    Throwable e = failure(client.pullBlob(REPO, digest));

    assertInstanceOf(RegistryUnauthorizedException.class, e);
    assertTrue(e.getMessage().contains("Bearer realm"), e.getMessage());
    assertEquals(1, blobGets());
  }

  @Test
  void pullBlob_wrongBytes_failsWithMismatchNamingBothDigestsWithoutRetry() {
    byte[] wrong = blob.clone();
    wrong[100] ^= 1;
    Digest wrongDigest = Digest.sha256(wrong);
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(200).withBody(wrong)));

    Throwable e = failure(client.pullBlob(REPO, digest));

    BlobDigestMismatchException mismatch = assertInstanceOf(BlobDigestMismatchException.class, e);
    assertEquals(digest, mismatch.expected());
    assertEquals(wrongDigest, mismatch.actual());
    assertTrue(e.getMessage().contains(digest.toString()), e.getMessage());
    assertTrue(e.getMessage().contains(wrongDigest.toString()), e.getMessage());
    assertEquals(1, blobGets());
    assertEquals(0, client.blobsFetched());
  }

  @Test
  void pullBlob_largerThanLimit_failsWithoutKeepingIt() throws Exception {
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob)));
    try (RegistryClient small =
        new RegistryClient(
            vertx, "127.0.0.1:" + server.port(), options().maxBlobBytes(blob.length - 1))) {
      Throwable e = failure(small.pullBlob(REPO, digest));

      assertInstanceOf(RegistryException.class, e);
      assertTrue(e.getMessage().contains("more than the limit"), e.getMessage());
    }
  }

  @Test
  void pullBlob_bodyLongerThanExpectedSize_failsFastWithoutRetry() throws Exception {
    byte[] huge = TestImages.randomBytes(new Random(7), 4 << 20);
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withHeader("Content-Length", String.valueOf(huge.length))
                    .withBody(huge)));
    long start = System.nanoTime();

    Throwable e = failure(client.pullBlob(REPO, digest, blob.length));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    BlobTooLargeException tooLarge = assertInstanceOf(BlobTooLargeException.class, e);
    assertEquals(digest, tooLarge.digest());
    assertEquals(blob.length, tooLarge.limit());
    assertEquals(
        "could not fetch blob "
            + digest
            + " from 127.0.0.1:"
            + server.port()
            + "/"
            + REPO
            + ": the registry announced "
            + huge.length
            + " bytes, more than the limit of "
            + blob.length
            + " bytes for this blob",
        e.getMessage());
    assertEquals(1, blobGets());
    assertEquals(0, client.blobsFetched());
    assertTrue(elapsedMillis < TIMEOUT.toMillis(), elapsedMillis + " ms");
  }

  @Test
  void pullBlob_chunkedBodyLongerThanExpectedSize_isCutOffWithoutRetry() throws Exception {
    byte[] huge = TestImages.randomBytes(new Random(7), 4 << 20);
    // Chunked, with no Content-Length, and slow: 4 MiB over far longer than the request timeout.
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withBody(huge)
                    .withChunkedDribbleDelay(400, (int) TIMEOUT.toMillis() * 4)));
    long start = System.nanoTime();

    Throwable e = failure(client.pullBlob(REPO, digest, blob.length));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    BlobTooLargeException tooLarge = assertInstanceOf(BlobTooLargeException.class, e);
    assertTrue(
        e.getMessage().contains("sent more than the limit of " + blob.length), e.getMessage());
    assertEquals(digest, tooLarge.digest());
    assertEquals(1, blobGets());
    assertTrue(client.bytesFetched() < huge.length, client.bytesFetched() + " bytes");
    assertTrue(elapsedMillis < TIMEOUT.toMillis(), elapsedMillis + " ms");
  }

  @Test
  void pullBlob_expectedSize_servesBlobOfThatSize() throws Exception {
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest, blob.length)));
    assertEquals(1, client.blobsFetched());
  }

  @Test
  void pullBlob_redirect_followsToLocation() throws Exception {
    String storage = "/storage/blob-data?signature=abc";
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(307)
                    .withHeader("Location", "http://127.0.0.1:" + server.port() + storage)
                    .withBody("redirect body that must not be hashed")));
    server.stubFor(get(storage).willReturn(aResponse().withStatus(200).withBody(blob)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
  }

  @Test
  void pushBlob_relativeLocationWithQuery_putsThereWithDigest() throws Exception {
    server.stubFor(
        post("/v2/" + REPO + "/blobs/uploads/")
            .willReturn(aResponse().withStatus(202).withHeader("Location", "/up/1?_state=a%3D")));
    server.stubFor(
        put(urlPathEqualTo("/up/1"))
            .withQueryParam("_state", equalTo("a="))
            .withQueryParam("digest", equalTo(digest.toString()))
            .withHeader("Content-Type", equalTo("application/octet-stream"))
            .willReturn(aResponse().withStatus(201)));

    await(client.pushBlob(REPO, digest, blob));

    List<byte[]> bodies = new ArrayList<>();
    server.findAll(putRequestedFor(urlPathEqualTo("/up/1"))).forEach(r -> bodies.add(r.getBody()));
    assertEquals(1, bodies.size());
    assertArrayEquals(blob, bodies.get(0));
    assertEquals(1, client.blobsPushed());
    assertEquals(blob.length, client.bytesPushed());
  }

  @Test
  void pushBlob_absoluteLocationWithoutQuery_putsThereWithDigest() throws Exception {
    server.stubFor(
        post("/v2/" + REPO + "/blobs/uploads/")
            .willReturn(
                aResponse()
                    .withStatus(202)
                    .withHeader(
                        "Location", "http://127.0.0.1:" + server.port() + "/elsewhere/u-2")));
    server.stubFor(
        put(urlEqualTo("/elsewhere/u-2?digest=" + digest)).willReturn(aResponse().withStatus(201)));

    await(client.pushBlob(REPO, digest, blob));

    assertEquals(1, server.findAll(putRequestedFor(urlPathEqualTo("/elsewhere/u-2"))).size());
  }

  @Test
  void pullManifest_bytesNotMatchingDigest_failsWithDigestMismatch() {
    Digest claimed = Digest.sha256(new byte[] {9});
    server.stubFor(
        get("/v2/" + REPO + "/manifests/" + claimed)
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withHeader("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .withBody("{\"schemaVersion\":2}")));

    Throwable e = failure(client.pullManifest(REPO, claimed.toString()));

    DigestMismatchException mismatch = assertInstanceOf(DigestMismatchException.class, e);
    assertEquals(claimed, mismatch.expected());
  }

  @Test
  void pullBlob_manyAtOnce_neverExceedsConcurrencyBound() throws Exception {
    server.stubFor(
        get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob).withFixedDelay(300)));
    try (RegistryClient two =
        new RegistryClient(
            vertx, "127.0.0.1:" + server.port(), options().maxConcurrentRequests(2))) {
      long start = System.nanoTime();
      List<Future<byte[]>> pulls = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        pulls.add(two.pullBlob(REPO, digest));
      }
      for (Future<byte[]> pull : pulls) {
        assertArrayEquals(blob, await(pull));
      }
      long elapsedMillis = (System.nanoTime() - start) / 1_000_000;

      // 6 requests, 2 at a time, 300 ms each: at least 3 rounds.
      assertTrue(elapsedMillis >= 850, elapsedMillis + " ms");
    }
  }

  @Test
  void uploadUrl_locationForms_resolveAndAppendDigest() throws Exception {
    String post = "https://r.example:5000/v2/a/blobs/uploads/";
    Digest d = digest;

    assertEquals(
        "https://r.example:5000/v2/a/blobs/uploads/abc?digest=" + d,
        BlobPusher.uploadUrl(post, "abc", d));
    assertEquals(
        "https://r.example:5000/up/abc?x=1&digest=" + d,
        BlobPusher.uploadUrl(post, "/up/abc?x=1", d));
    assertEquals(
        "http://s3.example/u?digest=" + d, BlobPusher.uploadUrl(post, "http://s3.example/u?", d));
  }
}
