package dev.puzzlefs.registry;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.head;
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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.http.Fault;
import com.github.tomakehurst.wiremock.stubbing.Scenario;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.testing.TestImages;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
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
  void pullRanges_onePartCoveringMoreThanAnArrayHolds_isRefusedAsSeveralPartsUnsupported() {
    // Two parts 3 GB apart, answered with one part covering both: more than one array can hold.
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(206)
                    .withHeader("Content-Range", "bytes 0-3000000009/4000000000")
                    .withBody(new byte[16])));
    List<ByteRanges.Range> asked =
        List.of(new ByteRanges.Range(0, 10), new ByteRanges.Range(3_000_000_000L, 10));

    Exception e =
        assertThrows(Exception.class, () -> await(client.pullRanges(REPO, digest, asked)));

    assertInstanceOf(MultiRangeNotSupportedException.class, e, e.toString());
    assertTrue(e.getMessage().contains("another part"), e.getMessage());
    assertEquals(1, blobGets(), "never retried");
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
  void pullBlob_trickledPastTheDeadline_failsAndStopsReceiving() throws Exception {
    // Never idle for long (a chunk every 50 ms), but far slower than the request's deadline.
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse().withStatus(200).withBody(blob).withChunkedDribbleDelay(200, 10_000)));
    RegistryClientOptions impatient =
        options(Duration.ofSeconds(5)).requestTimeout(Duration.ofMillis(600)).maxAttempts(2);
    try (RegistryClient c = new RegistryClient(vertx, "127.0.0.1:" + server.port(), impatient)) {
      Throwable e = failure(c.pullBlob(REPO, digest));

      assertInstanceOf(RegistryUnreachableException.class, e);
      assertTrue(e.getMessage().contains("no complete response within"), e.getMessage());
      // The attempts past their deadline were reset: nothing more arrives on their connections.
      long received = c.bytesFetched();
      Thread.sleep(1000);
      assertEquals(received, c.bytesFetched(), "bytes still arriving after the operation failed");
    }
  }

  /**
   * A registry that sends the headers and the start of the body, then nothing: the client's idle
   * timeout closes the connection well before the request's deadline, and the failure says it timed
   * out (and after how long), not that the registry closed the connection.
   */
  @Test
  void pullRangesAndPullBlob_bodyStalledPastTheIdleTimeout_failAsTimedOut() throws Exception {
    HttpServer stalling =
        vertx
            .createHttpServer()
            .requestHandler(
                request -> {
                  boolean ranged = request.getHeader("Range") != null;
                  request
                      .response()
                      .setStatusCode(ranged ? 206 : 200)
                      .putHeader("Content-Range", "bytes 0-999/" + blob.length)
                      .putHeader("Content-Length", ranged ? "1000" : String.valueOf(blob.length))
                      .write(Buffer.buffer(java.util.Arrays.copyOf(blob, 100)));
                });
    await(stalling.listen(0, "127.0.0.1"));
    RegistryClientOptions idle =
        options().idleTimeout(Duration.ofMillis(500)).requestTimeout(TIMEOUT).maxAttempts(1);
    try (RegistryClient c = new RegistryClient(vertx, "127.0.0.1:" + stalling.actualPort(), idle)) {
      long start = System.nanoTime();
      List<Future<?>> stalled =
          List.of(
              c.pullRanges(REPO, digest, List.of(new ByteRanges.Range(0, 1000))),
              c.pullBlob(REPO, digest));
      for (Future<?> f : stalled) {
        Throwable e = failure(f);

        long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
        assertInstanceOf(RegistryUnreachableException.class, e);
        assertTrue(
            e.getMessage().contains("timed out (the registry sent nothing for "), e.getMessage());
        assertTrue(elapsedMillis < TIMEOUT.toMillis(), elapsedMillis + " ms: before the deadline");
      }
    } finally {
      await(stalling.close());
    }
  }

  @Test
  void pullBlob_connectionNeverAccepted_failsAfterTheConnectTimeout() throws Exception {
    List<Socket> fillers = new ArrayList<>();
    try (ServerSocket full = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      // The socket never accepts; once its backlog is full the kernel ignores new connections.
      InetSocketAddress address =
          new InetSocketAddress(InetAddress.getLoopbackAddress(), full.getLocalPort());
      for (int i = 0; i < 8; i++) {
        Socket filler = new Socket();
        fillers.add(filler);
        try {
          filler.connect(address, 200);
        } catch (IOException e) {
          break;
        }
      }
      RegistryClientOptions impatient =
          options().connectTimeout(Duration.ofMillis(500)).maxAttempts(2);
      try (RegistryClient c =
          new RegistryClient(vertx, "127.0.0.1:" + full.getLocalPort(), impatient)) {
        long start = System.nanoTime();

        Throwable e = failure(c.pullBlob(REPO, digest));

        long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
        assertInstanceOf(RegistryUnreachableException.class, e);
        assertTrue(e.getMessage().contains("timed out"), e.getMessage());
        assertTrue(e.getMessage().endsWith("(2 attempts)"), e.getMessage());
        assertTrue(elapsedMillis >= 900, elapsedMillis + " ms");
        assertTrue(elapsedMillis < TIMEOUT.toMillis(), elapsedMillis + " ms");
      }
    } finally {
      for (Socket filler : fillers) {
        filler.close();
      }
    }
  }

  /** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
  private static int freePort() throws java.io.IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  @Test
  void pullBlob_nothingListening_failsAsConnectionRefused() throws Exception {
    int port = freePort();
    try (RegistryClient closed =
        new RegistryClient(vertx, "127.0.0.1:" + port, options().refusedPatience(Duration.ZERO))) {
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
  void pullBlob_registryListeningOnlyAfterTheAttempts_isWaitedForWhileRefused() throws Exception {
    int port = freePort();
    WireMockServer late =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").port(port));
    late.stubFor(get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob)));
    // 3 attempts 50 to 200 ms apart are over long before the registry comes back, 1.5 s later.
    try (RegistryClient restarting =
        new RegistryClient(
            vertx, "127.0.0.1:" + port, options().maxBackoff(Duration.ofMillis(400)))) {
      var pull = restarting.pullBlob(REPO, digest);
      Thread.sleep(1500);
      late.start();

      assertArrayEquals(blob, await(pull));
      assertTrue(
          restarting.requests() > ATTEMPTS, "tried past the attempts: " + restarting.requests());
    } finally {
      late.stop();
    }
  }

  @Test
  void pullBlob_refusedLongerThanThePatience_failsNamingTheAttempts() throws Exception {
    int port = freePort();
    RegistryClientOptions o =
        options().refusedPatience(Duration.ofMillis(700)).maxBackoff(Duration.ofMillis(100));
    try (RegistryClient down = new RegistryClient(vertx, "127.0.0.1:" + port, o)) {
      long start = System.nanoTime();
      Throwable e = failure(down.pullBlob(REPO, digest));
      long millis = (System.nanoTime() - start) / 1_000_000;

      assertInstanceOf(RegistryUnreachableException.class, e);
      assertTrue(e.getMessage().contains(": connection refused ("), e.getMessage());
      // No retry starts after the patience: the last one is at most one backoff (100 ms) before.
      assertTrue(millis >= 600 && millis < 5000, "gave up at the patience: " + millis + " ms");
      assertTrue(down.requests() > ATTEMPTS, "tried past the attempts: " + down.requests());
    }
  }

  @Test
  void pullBlob_httpsToAPlainHttpRegistry_saysToPassPlainHttp() throws Exception {
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob)));
    try (RegistryClient tls =
        new RegistryClient(vertx, "127.0.0.1:" + server.port(), options().plainHttp(false))) {
      Throwable e = failure(tls.pullBlob(REPO, digest));

      assertTrue(e.getMessage().contains("the TLS handshake failed"), e.getMessage());
      assertTrue(e.getMessage().contains("pass --plain-http"), e.getMessage());
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
  void pullBlob_wrongBytesEveryTime_failsWithMismatchNamingBothDigestsAfterEveryAttempt() {
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
    assertTrue(e.getMessage().endsWith("(3 attempts)"), e.getMessage());
    assertEquals(ATTEMPTS, blobGets());
    assertEquals(0, client.blobsFetched());
  }

  @Test
  void pullBlob_wrongBytesThenRight_retriesAndReturnsOnlyVerifiedBytes() throws Exception {
    byte[] wrong = blob.clone();
    wrong[5] ^= 1;
    server.stubFor(
        get(blobPath)
            .inScenario("corrupt")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withStatus(200).withBody(wrong))
            .willSetStateTo("clean"));
    server.stubFor(
        get(blobPath)
            .inScenario("corrupt")
            .whenScenarioStateIs("clean")
            .willReturn(aResponse().withStatus(200).withBody(blob)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest, blob.length)));
    assertEquals(2, blobGets());
    assertEquals(1, client.blobsFetched());
  }

  @Test
  void pullBlob_truncatedBodyThenWhole_retriesAndSucceeds() throws Exception {
    server.stubFor(
        get(blobPath)
            .inScenario("truncated")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withFault(Fault.MALFORMED_RESPONSE_CHUNK))
            .willSetStateTo("whole"));
    server.stubFor(
        get(blobPath)
            .inScenario("truncated")
            .whenScenarioStateIs("whole")
            .willReturn(aResponse().withStatus(200).withBody(blob)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest, blob.length)));
    assertEquals(2, blobGets());
    assertEquals(1, client.blobsFetched());
  }

  @Test
  void pullBlob_truncatedBodyEveryTime_failsNamingTheTransportCause() {
    server.stubFor(get(blobPath).willReturn(aResponse().withFault(Fault.MALFORMED_RESPONSE_CHUNK)));

    Throwable e = failure(client.pullBlob(REPO, digest, blob.length));

    assertInstanceOf(RegistryUnreachableException.class, e);
    assertTrue(e.getMessage().startsWith("could not fetch blob " + digest), e.getMessage());
    assertTrue(e.getMessage().endsWith("(3 attempts)"), e.getMessage());
    assertTrue(e.getCause() != null, "the transport failure is kept as the cause");
    assertEquals(ATTEMPTS, blobGets());
    assertEquals(0, client.blobsFetched());
  }

  @Test
  void pullBlob_429TwiceWithRetryAfter2_waitsAsAskedThenSucceeds() throws Exception {
    server.stubFor(
        get(blobPath)
            .inScenario("busy2")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withStatus(429).withHeader("Retry-After", "2"))
            .willSetStateTo("still busy"));
    server.stubFor(
        get(blobPath)
            .inScenario("busy2")
            .whenScenarioStateIs("still busy")
            .willReturn(aResponse().withStatus(429).withHeader("Retry-After", "2"))
            .willSetStateTo("free"));
    server.stubFor(
        get(blobPath)
            .inScenario("busy2")
            .whenScenarioStateIs("free")
            .willReturn(aResponse().withStatus(200).withBody(blob)));
    long start = System.nanoTime();

    // maxBackoff is 200 ms here: the registry's longer Retry-After still wins.
    assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    assertEquals(3, blobGets());
    assertTrue(elapsedMillis >= 3900, elapsedMillis + " ms");
    assertTrue(elapsedMillis < 10_000, elapsedMillis + " ms");
  }

  @Test
  void pullBlob_503WithRetryAfterHttpDate_waitsUntilThatDate() throws Exception {
    String inTwoSeconds =
        DateTimeFormatter.RFC_1123_DATE_TIME.format(
            ZonedDateTime.now(ZoneOffset.UTC).plusSeconds(2));
    server.stubFor(
        get(blobPath)
            .inScenario("maintenance")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withStatus(503).withHeader("Retry-After", inTwoSeconds))
            .willSetStateTo("back"));
    server.stubFor(
        get(blobPath)
            .inScenario("maintenance")
            .whenScenarioStateIs("back")
            .willReturn(aResponse().withStatus(200).withBody(blob)));
    long start = System.nanoTime();

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    // The date has a resolution of one second: between 1 and 2 s from now.
    assertTrue(elapsedMillis >= 900, elapsedMillis + " ms");
    assertTrue(elapsedMillis < 6000, elapsedMillis + " ms");
  }

  @Test
  void pullBlob_always503WithManyAttempts_stopsAtRetryTimeLimitNamingRegistryBlobAndStatus() {
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(503)));
    try (RegistryClient bounded =
        new RegistryClient(
            vertx,
            "127.0.0.1:" + server.port(),
            options().maxAttempts(1000).maxRetryTime(Duration.ofSeconds(2)))) {
      long start = System.nanoTime();

      Throwable e = failure(bounded.pullBlob(REPO, digest));

      long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
      UnexpectedResponseException response = assertInstanceOf(UnexpectedResponseException.class, e);
      assertEquals(503, response.status());
      String message = e.getMessage();
      assertTrue(message.contains(digest.toString()), message);
      assertTrue(message.contains("127.0.0.1:" + server.port() + "/" + REPO), message);
      assertTrue(message.contains("HTTP 503"), message);
      assertTrue(message.contains("retry time limit of 2 s"), message);
      assertTrue(elapsedMillis < 4000, elapsedMillis + " ms");
      assertTrue(blobGets() > ATTEMPTS && blobGets() < 1000, blobGets() + " requests");
    }
  }

  @Test
  void pullBlob_retryAfterBeyondRetryTimeLimit_failsAtOnceSayingSo() {
    server.stubFor(
        get(blobPath).willReturn(aResponse().withStatus(429).withHeader("Retry-After", "3600")));
    long start = System.nanoTime();

    Throwable e = failure(client.pullBlob(REPO, digest));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    assertInstanceOf(UnexpectedResponseException.class, e);
    assertTrue(e.getMessage().contains("HTTP 429"), e.getMessage());
    assertTrue(e.getMessage().contains("asked to wait 3600 s"), e.getMessage());
    assertEquals(1, blobGets());
    assertTrue(elapsedMillis < 2000, elapsedMillis + " ms");
  }

  @Test
  void pullBlob_chunkedWithoutContentLength_takesSizeFromDescriptor() throws Exception {
    server.stubFor(
        get(blobPath)
            .willReturn(aResponse().withStatus(200).withBody(blob).withChunkedDribbleDelay(5, 50)));

    assertArrayEquals(blob, await(client.pullBlob(REPO, digest, blob.length)));
    assertEquals(1, blobGets());
  }

  @Test
  void hasBlob_headWithoutContentLength_answersTrue() throws Exception {
    server.stubFor(head(urlEqualTo(blobPath)).willReturn(aResponse().withStatus(200)));

    assertTrue(await(client.hasBlob(REPO, digest)));
  }

  @Test
  void pullManifest_chunkedBody_isReadToTheEnd() throws Exception {
    byte[] manifest = manifestBytes(300);
    server.stubFor(
        get("/v2/" + REPO + "/manifests/v1")
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withHeader("Content-Type", MediaTypes.MANIFEST)
                    .withBody(manifest)
                    .withChunkedDribbleDelay(20, 100)));

    PulledManifest pulled = await(client.pullManifest(REPO, "v1"));

    assertArrayEquals(manifest, pulled.bytes());
    assertEquals(Digest.sha256(manifest), pulled.digest());
  }

  @Test
  void pullManifest_chunkedBodyOverTheCap_failsWithoutRetry() {
    byte[] huge = TestImages.randomBytes(new Random(3), (4 << 20) + 1);
    server.stubFor(
        get("/v2/" + REPO + "/manifests/big")
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withHeader("Content-Type", MediaTypes.MANIFEST)
                    .withBody(huge)
                    .withChunkedDribbleDelay(4, 100)));

    Throwable e = failure(client.pullManifest(REPO, "big"));

    assertInstanceOf(RegistryException.class, e);
    assertTrue(e.getMessage().contains("larger than 4194304 bytes"), e.getMessage());
    assertEquals(
        1, server.findAll(getRequestedFor(urlEqualTo("/v2/" + REPO + "/manifests/big"))).size());
  }

  @Test
  void fetchManifest_wrongContentTypes_recognisesIndexAndManifestFromTheirBodies()
      throws Exception {
    byte[] manifest = manifestBytes(2);
    Digest manifestDigest = Digest.sha256(manifest);
    byte[] index =
        ("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\""
                + MediaTypes.MANIFEST
                + "\",\"digest\":\""
                + manifestDigest
                + "\",\"size\":"
                + manifest.length
                + ",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}")
            .getBytes(StandardCharsets.UTF_8);
    // The index is served as an image manifest, the manifest as a byte stream.
    server.stubFor(
        get("/v2/" + REPO + "/manifests/multi")
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withHeader("Content-Type", MediaTypes.MANIFEST)
                    .withBody(index)));
    server.stubFor(
        get("/v2/" + REPO + "/manifests/" + manifestDigest)
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withHeader("Content-Type", "application/octet-stream")
                    .withBody(manifest)));

    PulledImage pulled =
        await(
            new ImagePuller(client)
                .fetchManifest(
                    ImageReference.parse(
                        "docker://127.0.0.1:" + server.port() + "/" + REPO + ":multi")));

    assertEquals(manifestDigest, pulled.digest());
    assertEquals(2, pulled.manifest().layers().size());
  }

  @Test
  void fetchManifest_schemaVersionNot2OrASecondRootfsLayer_isRefusedNamingTheManifest()
      throws Exception {
    String good = new String(manifestBytes(3), StandardCharsets.UTF_8);
    String octets = "\"application/octet-stream\"";
    String rootfs = "\"" + MediaTypes.ROOTFS + "\"";
    Map<String, String> crafted =
        Map.of(
            "schema1", good.replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
            "tworootfs", good.replace(octets, rootfs));
    Map<String, String> expected =
        Map.of("schema1", "schemaVersion 1", "tworootfs", "3 rootfs layers");
    for (Map.Entry<String, String> c : crafted.entrySet()) {
      byte[] body = c.getValue().getBytes(StandardCharsets.UTF_8);
      server.stubFor(
          get("/v2/" + REPO + "/manifests/" + c.getKey())
              .willReturn(
                  aResponse()
                      .withStatus(200)
                      .withHeader("Content-Type", MediaTypes.MANIFEST)
                      .withBody(body)));

      Throwable e =
          failure(
              new ImagePuller(client)
                  .fetchManifest(
                      ImageReference.parse(
                          "docker://127.0.0.1:" + server.port() + "/" + REPO + ":" + c.getKey())));

      assertTrue(e.getMessage().contains("manifest " + Digest.sha256(body)), e.getMessage());
      assertTrue(e.getMessage().contains(expected.get(c.getKey())), e.getMessage());
    }
  }

  @Test
  void pullBlob_sequentialRequests_reuseKeptAliveConnections() throws Exception {
    AtomicInteger connections = new AtomicInteger();
    List<String> ranges = new ArrayList<>();
    HttpServer plain =
        vertx
            .createHttpServer()
            .connectionHandler(c -> connections.incrementAndGet())
            .requestHandler(
                request -> {
                  ranges.add(String.valueOf(request.getHeader("Range")));
                  request.response().end(Buffer.buffer(blob));
                });
    await(plain.listen(0, "127.0.0.1"));
    try (RegistryClient kept =
        new RegistryClient(vertx, "127.0.0.1:" + plain.actualPort(), options())) {
      for (int i = 0; i < 10; i++) {
        assertArrayEquals(blob, await(kept.pullBlob(REPO, digest, blob.length)));
      }
    } finally {
      await(plain.close());
    }

    // A request can start before the previous one's connection is back in the pool, so a second
    // connection may open; without keep-alive there would be ten.
    assertTrue(connections.get() <= 2, connections.get() + " connections");
    // Chunks are whole blobs: no ranged requests, so no 200-for-a-Range case to handle.
    assertEquals(List.of("null"), ranges.stream().distinct().toList());
  }

  /** An image manifest naming {@code layers} made-up layers. */
  private static byte[] manifestBytes(int layers) {
    StringBuilder json = new StringBuilder();
    json.append("{\"schemaVersion\":2,\"mediaType\":\"").append(MediaTypes.MANIFEST);
    json.append("\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",");
    json.append("\"digest\":\"").append(Digest.sha256(new byte[] {1})).append("\",\"size\":1},");
    json.append("\"layers\":[");
    for (int i = 0; i < layers; i++) {
      json.append(i == 0 ? "" : ",");
      json.append("{\"mediaType\":\"application/octet-stream\",\"digest\":\"");
      json.append(Digest.sha256(new byte[] {(byte) i, 2})).append("\",\"size\":2}");
    }
    return json.append("]}").toString().getBytes(StandardCharsets.UTF_8);
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
