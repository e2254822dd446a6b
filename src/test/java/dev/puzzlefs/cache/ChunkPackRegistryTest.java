package dev.puzzlefs.cache;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.matching;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.puzzlefs.testing.Futures.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.client.ResponseDefinitionBuilder;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.http.Fault;
import com.github.tomakehurst.wiremock.matching.UrlPattern;
import dev.puzzlefs.builder.ImageBuilder;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.registry.ChunkPack;
import dev.puzzlefs.registry.ImagePusher;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.PushSummary;
import dev.puzzlefs.registry.RegistryClient;
import dev.puzzlefs.registry.RegistryClientOptions;
import dev.puzzlefs.testing.TestImages;
import dev.puzzlefs.testing.TestRegistry;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Chunk packs against a real registry: {@code push --pack} writes a pack the reader finds through
 * the referrers tag, the reader fetches runs of chunks with range requests, and every way a pack
 * can let it down (no pack, a corrupt segment, a registry that ignores ranges, a pack of another
 * image) still gives every chunk's right bytes.
 */
class ChunkPackRegistryTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(5);
  private static final long SEGMENT_BYTES = 1 << 20;

  private static TestRegistry registry;
  private static Vertx vertx;
  @TempDir static Path tmp;
  private static OciLayout layout;
  private static ImageManifest manifest;
  private static Digest manifestDigest;
  private static Map<Digest, Long> sizes;
  private static List<Digest> chunks;

  private final List<RegistryClient> clients = new ArrayList<>();
  private final List<CachingChunkSource> sources = new ArrayList<>();
  private final List<WireMockServer> proxies = new ArrayList<>();

  @BeforeAll
  static void buildImage() throws Exception {
    registry = TestRegistry.launch();
    vertx = Vertx.vertx();
    Path src = Files.createDirectories(tmp.resolve("src"));
    Random random = new Random(7);
    for (int f = 0; f < 8; f++) {
      Files.write(
          src.resolve("f" + f), TestImages.randomBytes(random, 200_000 + random.nextInt(400_000)));
    }
    layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    new ImageBuilder(2).build(src, layout, "v1");
    Descriptor desc = layout.resolveTag("v1");
    manifestDigest = desc.digestValue();
    manifest = layout.manifest("v1");
    sizes = new HashMap<>();
    chunks = new ArrayList<>();
    for (Descriptor layer : manifest.layers()) {
      sizes.put(layer.digestValue(), layer.size());
      if (!MediaTypes.ROOTFS.equals(layer.mediaType())) {
        chunks.add(layer.digestValue());
      }
    }
    assertTrue(chunks.size() > 20, "the image should have many chunks: " + chunks.size());
  }

  @AfterAll
  static void stop() throws Exception {
    if (vertx != null) {
      await(vertx.close());
    }
    if (registry != null) {
      registry.close();
    }
  }

  @AfterEach
  void close() {
    sources.forEach(CachingChunkSource::close);
    clients.forEach(RegistryClient::close);
    proxies.forEach(WireMockServer::stop);
  }

  private RegistryClient client(String hostPort) {
    RegistryClient c =
        new RegistryClient(
            vertx,
            hostPort,
            new RegistryClientOptions()
                .plainHttp(true)
                .connectTimeout(TIMEOUT)
                .idleTimeout(TIMEOUT)
                .requestTimeout(TIMEOUT)
                .maxAttempts(2)
                .initialBackoff(Duration.ofMillis(50)));
    clients.add(c);
    return c;
  }

  private PushSummary push(String repo, boolean pack) throws Exception {
    return push(repo, pack, SEGMENT_BYTES);
  }

  private PushSummary push(String repo, boolean pack, long segmentBytes) throws Exception {
    ImageReference ref =
        ImageReference.parse("docker://" + registry.hostPort() + "/" + repo + ":v1");
    return await(
        new ImagePusher(client(registry.hostPort()))
            .withPack(pack)
            .segmentBytes(segmentBytes)
            .push(layout, "v1", ref));
  }

  private PackedBlobFetcher fetcher(RegistryClient client, String repo) {
    return PackedBlobFetcher.find(
        client, repo, manifestDigest, sizes, new RegistryBlobFetcher(client, repo));
  }

  private CachingChunkSource source(BlobFetcher fetcher) throws Exception {
    CachingChunkSource source =
        CachingChunkSource.builder(fetcher).fetchTimeout(Duration.ofSeconds(30)).build();
    sources.add(source);
    return source;
  }

  /** Fetches every chunk at once and checks each against the layout's blob. */
  private static void fetchAllAndCheck(CachingChunkSource source) throws Exception {
    List<CompletableFuture<byte[]>> all = new ArrayList<>();
    for (Digest d : chunks) {
      all.add(source.fetch(d));
    }
    for (int i = 0; i < chunks.size(); i++) {
      assertArrayEquals(layout.readBlob(chunks.get(i)), await(all.get(i)), "chunk " + i);
    }
  }

  private static JsonNode referrers(String repo) throws Exception {
    java.net.http.HttpResponse<String> r =
        java.net.http.HttpClient.newHttpClient()
            .send(
                java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(
                            registry.url()
                                + "/v2/"
                                + repo
                                + "/manifests/"
                                + ChunkPack.referrersTag(manifestDigest)))
                    .header("Accept", MediaTypes.INDEX)
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), r.body());
    return new ObjectMapper().readTree(r.body());
  }

  /**
   * Stores {@code index} (an OCI index, as JSON) under the image's referrers tag in {@code repo}.
   */
  private static void listUnderReferrersTag(RegistryClient client, String repo, String index)
      throws Exception {
    await(
        client.pushManifest(
            repo,
            ChunkPack.referrersTag(manifestDigest),
            index.getBytes(StandardCharsets.UTF_8),
            MediaTypes.INDEX));
  }

  @Test
  void pushWithPack_readerFindsIt_andFetchesRunsOfChunksWithFewRequests() throws Exception {
    PushSummary pushed = push("pack/found", true);
    assertNotNull(pushed.pack());
    assertEquals(chunks.size(), pushed.pack().chunks());
    assertTrue(pushed.pack().segments() > 1, pushed.toString());
    assertTrue(
        pushed.toString().contains("chunk pack " + pushed.pack().manifest()), pushed.toString());

    RegistryClient client = client(registry.hostPort());
    PackedBlobFetcher fetcher = fetcher(client, "pack/found");
    ChunkPack pack = fetcher.search().get();
    assertNotNull(pack);
    assertEquals(chunks.size(), pack.chunks());
    assertTrue(source(fetcher).fetchesRunsCheaply(), "readers may fetch further ahead");
    long before = client.requests();
    fetchAllAndCheck(source(fetcher));
    long requests = client.requests() - before;
    Map<String, Long> stats = fetcher.stats();
    // Every chunk from a range, but for a chunk alone in its run (one per segment at most).
    assertEquals(
        chunks.size(), stats.get("packChunks") + stats.get("packChunksAsBlobs"), stats.toString());
    assertTrue(stats.get("packChunks") >= chunks.size() - pack.segments(), stats.toString());
    assertTrue(
        requests <= pack.segments() + 2,
        requests
            + " requests for "
            + chunks.size()
            + " chunks in "
            + pack.segments()
            + " segments");
  }

  /**
   * A prefetch list pushed with the pack comes back from the pack search: the image's chunks it
   * names, each once, in order; a digest the image lacks is left out at the push.
   */
  @Test
  void pushWithPackAndPrefetchList_searchReturnsTheListsChunksOfTheImageInOrder() throws Exception {
    Digest foreign = Digest.sha256(new byte[] {42});
    List<Digest> given =
        List.of(chunks.get(5), foreign, chunks.get(1), chunks.get(5), chunks.get(3));
    ImageReference ref =
        ImageReference.parse("docker://" + registry.hostPort() + "/pack/listed:v1");
    PushSummary pushed =
        await(
            new ImagePusher(client(registry.hostPort()))
                .withPack(true)
                .segmentBytes(SEGMENT_BYTES)
                .withPrefetch(given)
                .push(layout, "v1", ref));
    assertEquals(3, pushed.pack().prefetch());
    assertTrue(pushed.toString().contains("with a prefetch list of 3 chunks"), pushed.toString());

    ChunkPack pack = fetcher(client(registry.hostPort()), "pack/listed").search().get();
    assertEquals(List.of(chunks.get(5), chunks.get(1), chunks.get(3)), pack.prefetch());
    push("pack/unlisted", true);
    ChunkPack unlisted = fetcher(client(registry.hostPort()), "pack/unlisted").search().get();
    assertEquals(List.of(), unlisted.prefetch(), "no list pushed");
  }

  @Test
  void pushWithPackAgain_listsOnePackUnderTheReferrersTag_andKeepsOtherReferrers()
      throws Exception {
    push("pack/again", true);
    JsonNode first = referrers("pack/again");
    assertEquals(1, first.get("manifests").size(), first.toString());
    assertEquals(
        ChunkPack.ARTIFACT_TYPE, first.get("manifests").get(0).get("artifactType").asText());

    // another tool's referrer (a signature, say) listed beside the pack
    RegistryClient client = client(registry.hostPort());
    String foreign =
        "{\"manifests\":["
            + first.get("manifests").get(0)
            + ",{\"artifactType\":\"application/example.signature\",\"digest\":\""
            + manifestDigest
            + "\",\"mediaType\":\""
            + MediaTypes.MANIFEST
            + "\",\"size\":1}],\"mediaType\":\""
            + MediaTypes.INDEX
            + "\",\"schemaVersion\":2}";
    listUnderReferrersTag(client, "pack/again", foreign);

    push("pack/again", true);
    JsonNode second = referrers("pack/again");
    assertEquals(2, second.get("manifests").size(), second.toString());
    assertEquals(
        1,
        second.findValuesAsText("artifactType").stream()
            .filter(ChunkPack.ARTIFACT_TYPE::equals)
            .count(),
        second.toString());
    assertTrue(second.toString().contains("application/example.signature"), second.toString());
  }

  @Test
  void imageWithoutPack_searchFindsNone_andChunksComeAsBlobs() throws Exception {
    PushSummary pushed = push("pack/none", false);
    assertNull(pushed.pack());
    RegistryClient client = client(registry.hostPort());
    PackedBlobFetcher fetcher = fetcher(client, "pack/none");
    assertNull(fetcher.search().get());
    assertEquals(0, client.failures(), "a missing referrers tag is no registry failure");
    assertFalse(fetcher.fetchesRunsCheaply());
    fetchAllAndCheck(source(fetcher));
    assertEquals(0L, fetcher.stats().get("packRanges"));
    assertEquals((long) chunks.size(), client.blobsFetched());
  }

  @Test
  void corruptSegment_itsChunksComeFromTheirOwnBlobs_withTheRightBytes() throws Exception {
    push("pack/corrupt", true);
    RegistryClient client = client(registry.hostPort());
    PackedBlobFetcher fetcher = fetcher(client, "pack/corrupt");
    ChunkPack pack = fetcher.search().get();
    assertNotNull(pack);
    // Damage the registry's copy of the first segment, in the middle of its first chunk.
    ChunkPack.Location first = pack.locate(chunks.get(0));
    Path data =
        registry
            .storage()
            .resolve("docker/registry/v2/blobs/sha256")
            .resolve(first.segment().hex().substring(0, 2))
            .resolve(first.segment().hex())
            .resolve("data");
    byte[] bytes = Files.readAllBytes(data);
    bytes[(int) first.offset() + first.length() / 2] ^= 0x55;
    Files.write(data, bytes);

    fetchAllAndCheck(source(fetcher));
    Map<String, Long> stats = fetcher.stats();
    assertTrue(stats.get("packChunksAsBlobs") >= 1, stats.toString());
    assertTrue(stats.get("packChunks") >= 1, stats.toString());
  }

  /**
   * A client of a WireMock proxy in front of the real registry (stopped after the test) that
   * answers the range requests of GETs matching {@code url} with {@code rangeAnswer}; everything
   * else it passes through.
   */
  private RegistryClient throughProxy(UrlPattern url, ResponseDefinitionBuilder rangeAnswer) {
    return throughProxy(url, "bytes=.*", rangeAnswer);
  }

  /** As above, for the GETs whose {@code Range} header matches {@code range} (a regex). */
  private RegistryClient throughProxy(
      UrlPattern url, String range, ResponseDefinitionBuilder rangeAnswer) {
    return throughProxy(get(url).withHeader("Range", matching(range)).willReturn(rangeAnswer));
  }

  /** As above, answering the requests {@code special} matches as it says. */
  private RegistryClient throughProxy(
      com.github.tomakehurst.wiremock.client.MappingBuilder special) {
    WireMockServer proxy =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").dynamicPort());
    proxy.start();
    proxies.add(proxy);
    proxy.stubFor(any(anyUrl()).atPriority(10).willReturn(aResponse().proxiedFrom(registry.url())));
    proxy.stubFor(special.atPriority(1));
    return client("127.0.0.1:" + proxy.port());
  }

  /**
   * A client through a proxy that answers the range requests (those whose {@code Range} header
   * matches {@code range}) of the segment holding the first chunk of the image pushed to {@code
   * repo} with that whole segment, status 200: a registry that ignores them.
   */
  private RegistryClient answeringRangesWithTheWholeSegment(String repo, String range)
      throws Exception {
    RegistryClient direct = client(registry.hostPort());
    ChunkPack found = await(direct.findChunkPack(repo, manifestDigest, sizes));
    Digest segment = found.locate(chunks.get(0)).segment();
    byte[] whole = await(direct.pullBlob(repo, segment));
    return throughProxy(
        urlEqualTo("/v2/" + repo + "/blobs/" + segment),
        range,
        aResponse().withStatus(200).withBody(whole));
  }

  /**
   * Chunks of the image pushed with its pack in one segment, far enough apart that no two could
   * share one part of a range: one per 600 KB of the segment.
   */
  private static List<Digest> scattered(ChunkPack pack) {
    List<Digest> inOrder = new ArrayList<>(chunks);
    inOrder.sort(java.util.Comparator.comparingLong(d -> pack.locate(d).offset()));
    List<Digest> picked = new ArrayList<>();
    long next = 0;
    for (Digest d : inOrder) {
      if (pack.locate(d).offset() >= next) {
        picked.add(d);
        next = pack.locate(d).offset() + pack.locate(d).length() + 600_000;
      }
    }
    assertTrue(picked.size() >= 3, "scattered chunks: " + picked.size());
    return picked;
  }

  /** Fetches {@code wanted} at once and checks each against the layout's blob. */
  private static void fetchAndCheck(CachingChunkSource source, List<Digest> wanted)
      throws Exception {
    List<CompletableFuture<byte[]>> all = new ArrayList<>();
    for (Digest d : wanted) {
      all.add(source.fetch(d));
    }
    for (int i = 0; i < wanted.size(); i++) {
      assertArrayEquals(layout.readBlob(wanted.get(i)), await(all.get(i)), "chunk " + i);
    }
  }

  @Test
  void scatteredChunksOfOneSegment_comeAsPartsOfOneRequest_withoutTheBytesBetween()
      throws Exception {
    push("pack/scattered", true, 64 << 20);
    RegistryClient client = client(registry.hostPort());
    PackedBlobFetcher fetcher = fetcher(client, "pack/scattered");
    ChunkPack pack = fetcher.search().get();
    assertEquals(1, pack.segments());
    List<Digest> wanted = scattered(pack);
    long wantedBytes = 0;
    for (Digest d : wanted) {
      wantedBytes += pack.locate(d).length();
    }
    long requests = client.requests();
    long bytes = client.bytesFetched();

    fetchAndCheck(source(fetcher), wanted);

    Map<String, Long> stats = fetcher.stats();
    assertEquals(1, client.requests() - requests, stats.toString());
    assertEquals(1L, stats.get("packRanges"), stats.toString());
    assertEquals((long) wanted.size(), stats.get("packChunks"), stats.toString());
    long received = client.bytesFetched() - bytes;
    assertTrue(
        received >= wantedBytes && received < wantedBytes + 200L * wanted.size() + 200,
        received + " bytes received for " + wantedBytes + " bytes of chunks");
  }

  /**
   * A registry may send bytes of a part twice (RFC 9110 lets it answer overlapping ranges as asked,
   * or repeat them): each part here comes as its first 500 bytes, then whole. Every chunk is still
   * cut from the range, none is taken for corrupt, and nothing is fetched again.
   */
  @Test
  void partsWhoseBytesComeTwice_areCutOnceWhole_notTakenForCorrupt() throws Exception {
    push("pack/twice", true, 64 << 20);
    RegistryClient direct = client(registry.hostPort());
    ChunkPack pack = await(direct.findChunkPack("pack/twice", manifestDigest, sizes));
    List<Digest> wanted = scattered(pack).subList(0, 3);
    StringBuilder range = new StringBuilder("bytes=");
    java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
    for (Digest d : wanted) {
      ChunkPack.Location at = pack.locate(d);
      long last = at.offset() + at.length() - 1;
      range.append(range.length() > 6 ? "," : "").append(at.offset()).append('-').append(last);
      byte[] chunk = layout.readBlob(d);
      int head = Math.min(500, chunk.length);
      body.write(
          ("--XB\r\nContent-Range: bytes "
                  + at.offset()
                  + "-"
                  + (at.offset() + head - 1)
                  + "/*\r\n\r\n")
              .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
      body.write(chunk, 0, head);
      body.write(
          ("\r\n--XB\r\nContent-Range: bytes " + at.offset() + "-" + last + "/*\r\n\r\n")
              .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
      body.write(chunk);
      body.write("\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
    }
    body.write("--XB--\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
    Digest segment = pack.locate(wanted.get(0)).segment();
    RegistryClient twice =
        throughProxy(
            urlEqualTo("/v2/pack/twice/blobs/" + segment),
            java.util.regex.Pattern.quote(range.toString()),
            aResponse()
                .withStatus(206)
                .withHeader("Content-Type", "multipart/byteranges; boundary=XB")
                .withBody(body.toByteArray()));
    PackedBlobFetcher fetcher = fetcher(twice, "pack/twice");
    assertNotNull(fetcher.search().get());

    List<String> warned =
        warnings(PackedBlobFetcher.class, () -> fetchAndCheck(source(fetcher), wanted));

    assertEquals(List.of(), warned);
    Map<String, Long> stats = fetcher.stats();
    assertEquals((long) wanted.size(), stats.get("packChunks"), stats.toString());
    assertEquals(0L, stats.get("packChunksAsBlobs"), stats.toString());
  }

  /**
   * Checks that {@code client} (through a proxy that answers requests for several parts wrongly)
   * gets scattered chunks right, then asks for one part per request only: the pack stays on for
   * runs of neighbours.
   */
  private void assertSeveralPartsTurnedOff(RegistryClient client, String repo) throws Exception {
    PackedBlobFetcher fetcher = fetcher(client, repo);
    ChunkPack pack = fetcher.search().get();
    List<Digest> wanted = scattered(pack);
    fetchAndCheck(source(fetcher), wanted);
    Map<String, Long> stats = fetcher.stats();
    // The fetches are gathered into requests for several parts; on a loaded machine the gathering
    // may end early and split them into more than one request before the first answer is back.
    long ranges = stats.get("packRanges");
    WireMockServer proxy = proxies.get(proxies.size() - 1);
    long severalParts = severalPartRequests(proxy);
    assertTrue(severalParts >= 1 && severalParts <= ranges, stats.toString());
    assertTrue(stats.get("packChunksAsBlobs") >= 2, stats.toString());
    assertEquals(
        (long) wanted.size(),
        stats.get("packChunksAsBlobs") + stats.get("packChunks"),
        stats.toString());

    // Again, with an empty cache: each chunk alone as a blob, no request for several parts.
    fetchAndCheck(source(fetcher), wanted);
    assertEquals(ranges, fetcher.stats().get("packRanges"), fetcher.stats().toString());
    assertEquals(severalParts, severalPartRequests(proxy), "requests for several parts");
    // The pack is still used, one part per request: every chunk right, most from ranges.
    assertTrue(fetcher.fetchesRunsCheaply());
    fetchAllAndCheck(source(fetcher));
    stats = fetcher.stats();
    assertTrue(stats.get("packRanges") >= ranges + 1, stats.toString());
    assertTrue(stats.get("packChunks") >= chunks.size() / 2, stats.toString());
  }

  @Test
  void registryAnsweringSeveralPartsWithTheWholeBlob_getsOnePartPerRequestFromThenOn()
      throws Exception {
    push("pack/onepart", true, 64 << 20);
    RegistryClient client = answeringRangesWithTheWholeSegment("pack/onepart", "bytes=.*,.*");
    assertSeveralPartsTurnedOff(client, "pack/onepart");
  }

  @Test
  void registrySendingMalformedParts_getsOnePartPerRequestFromThenOn() throws Exception {
    push("pack/malformed", true, 64 << 20);
    // A multipart body whose part claims more bytes than it holds.
    RegistryClient client =
        throughProxy(
            anyUrl(),
            "bytes=.*,.*",
            aResponse()
                .withStatus(206)
                .withHeader("Content-Type", "multipart/byteranges; boundary=b0undary")
                .withBody(
                    "--b0undary\r\nContent-Range: bytes 0-99999/9999999\r\n\r\nshort"
                        + "\r\n--b0undary--\r\n"));
    assertSeveralPartsTurnedOff(client, "pack/malformed");
  }

  private static long severalPartRequests(WireMockServer proxy) {
    return proxy
        .findAll(
            com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor(anyUrl())
                .withHeader("Range", matching(".*,.*")))
        .size();
  }

  /**
   * Checks that after the ranges {@code fetcher} has sent, the pack is off: another fetch of every
   * chunk sends no range, and is done within {@code withinNanos}.
   */
  private void assertPackTurnedOff(PackedBlobFetcher fetcher, long withinNanos) throws Exception {
    assertFalse(fetcher.fetchesRunsCheaply());
    long ranges = fetcher.stats().get("packRanges");
    long start = System.nanoTime();
    fetchAllAndCheck(source(fetcher));
    long took = System.nanoTime() - start;
    assertEquals(ranges, fetcher.stats().get("packRanges"), "no range after the pack is off");
    assertTrue(took < withinNanos, "took " + took + " ns");
  }

  @Test
  void registryIgnoringRanges_turnsThePackOff_andEveryChunkStillArrives() throws Exception {
    push("pack/norange", true);
    RegistryClient client = answeringRangesWithTheWholeSegment("pack/norange", "bytes=.*");
    PackedBlobFetcher fetcher = fetcher(client, "pack/norange");
    assertNotNull(fetcher.search().get());
    fetchAllAndCheck(source(fetcher));
    Map<String, Long> stats = fetcher.stats();
    assertTrue(stats.get("packRanges") >= 1, stats.toString());
    assertTrue(stats.get("packChunksAsBlobs") >= 1, stats.toString());
    assertPackTurnedOff(fetcher, 30_000_000_000L);
  }

  @Test
  void rangeAnsweredWithTheWholeBlob_isCutOffWithoutAnErrorInTheLog() throws Exception {
    push("pack/nolog", true);
    RegistryClient client = answeringRangesWithTheWholeSegment("pack/nolog", "bytes=.*");
    ch.qos.logback.classic.Logger root =
        (ch.qos.logback.classic.Logger)
            org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> captured =
        new ch.qos.logback.core.read.ListAppender<>();
    captured.start();
    root.addAppender(captured);
    try {
      PackedBlobFetcher fetcher = fetcher(client, "pack/nolog");
      assertNotNull(fetcher.search().get());
      fetchAllAndCheck(source(fetcher));
      assertTrue(fetcher.stats().get("packRanges") >= 1, fetcher.stats().toString());
      Thread.sleep(200); // a reset stream is reported after the request has failed
    } finally {
      root.detachAppender(captured);
    }
    // The whole blob is refused and the request reset on purpose: that is no error of Vert.x's.
    List<String> errors = new ArrayList<>();
    for (ch.qos.logback.classic.spi.ILoggingEvent e : captured.list) {
      if (e.getLevel().isGreaterOrEqual(ch.qos.logback.classic.Level.ERROR)) {
        errors.add(e.getLoggerName() + ": " + e.getFormattedMessage());
      }
    }
    assertEquals(List.of(), errors);
  }

  /** The WARN events of {@code logger} while {@code body} runs. */
  private static List<String> warnings(Class<?> logger, ThrowingRunnable body) throws Exception {
    ch.qos.logback.classic.Logger log =
        (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(logger);
    ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> captured =
        new ch.qos.logback.core.read.ListAppender<>();
    captured.start();
    log.addAppender(captured);
    try {
      body.run();
    } finally {
      log.detachAppender(captured);
    }
    List<String> warnings = new ArrayList<>();
    for (ch.qos.logback.classic.spi.ILoggingEvent e : List.copyOf(captured.list)) {
      if (e.getLevel().isGreaterOrEqual(ch.qos.logback.classic.Level.WARN)) {
        warnings.add(e.getFormattedMessage());
      }
    }
    return warnings;
  }

  private interface ThrowingRunnable {
    void run() throws Exception;
  }

  @Test
  void clientClosedDuringASlowPackSearch_warnsOfNothing() throws Exception {
    push("pack/closedsearch", true);
    // The referrers tag answered after 3 s: a run that ends sooner closes the client first.
    RegistryClient client =
        throughProxy(
            get(com.github.tomakehurst.wiremock.client.WireMock.urlMatching(
                    ".*/manifests/sha256-.*"))
                .willReturn(aResponse().proxiedFrom(registry.url()).withFixedDelay(3_000)));
    List<String> warned =
        warnings(
            PackedBlobFetcher.class,
            () -> {
              PackedBlobFetcher fetcher = fetcher(client, "pack/closedsearch");
              Thread.sleep(200);
              client.close();
              assertNull(fetcher.search().get(10, java.util.concurrent.TimeUnit.SECONDS));
            });
    assertEquals(List.of(), warned);
  }

  @Test
  void clientClosedWhileARangeIsInFlight_warnsOfNothing() throws Exception {
    push("pack/closedrange", true);
    RegistryClient client =
        throughProxy(anyUrl(), aResponse().withStatus(206).withFixedDelay(3_000));
    List<String> warned =
        warnings(
            PackedBlobFetcher.class,
            () -> {
              PackedBlobFetcher fetcher = fetcher(client, "pack/closedrange");
              assertNotNull(fetcher.search().get());
              List<CompletableFuture<byte[]>> asked = new ArrayList<>();
              for (Digest d : chunks) {
                asked.add(fetcher.fetch(d));
              }
              Thread.sleep(300);
              client.close();
              for (CompletableFuture<byte[]> f : asked) {
                try {
                  f.get(10, java.util.concurrent.TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                  // failed for the closed client, as expected
                }
              }
            });
    assertEquals(List.of(), warned);
  }

  /** The first {@code n} chunks of the first chunk's segment, one after the other in it. */
  private static List<Digest> contiguous(ChunkPack pack, int n) {
    Digest segment = pack.locate(chunks.get(0)).segment();
    List<Digest> run = new ArrayList<>();
    for (Digest d : chunks) {
      if (pack.locate(d).segment().equals(segment)) {
        run.add(d);
      }
    }
    run.sort(java.util.Comparator.comparingLong(d -> pack.locate(d).offset()));
    run = run.subList(0, n);
    for (int i = 1; i < run.size(); i++) {
      ChunkPack.Location before = pack.locate(run.get(i - 1));
      assertEquals(before.offset() + before.length(), pack.locate(run.get(i)).offset());
    }
    return run;
  }

  /**
   * A registry whose ranges hold nothing but corrupt chunks: after {@link
   * PackedBlobFetcher#MAX_CORRUPT_IN_A_ROW} of them in a row the pack is turned off, with one
   * warning each until then and one that says so; every chunk still has its right bytes.
   */
  @Test
  void rangesOfCorruptChunksOnly_turnThePackOff_afterAFewInARow() throws Exception {
    push("pack/rotten", true);
    RegistryClient direct = client(registry.hostPort());
    ChunkPack pack = await(direct.findChunkPack("pack/rotten", manifestDigest, sizes));
    int n = PackedBlobFetcher.MAX_CORRUPT_IN_A_ROW + 4;
    List<Digest> run = contiguous(pack, n);
    long from = pack.locate(run.get(0)).offset();
    ChunkPack.Location last = pack.locate(run.get(n - 1));
    long to = last.offset() + last.length();
    RegistryClient rotten =
        throughProxy(
            urlEqualTo("/v2/pack/rotten/blobs/" + pack.locate(run.get(0)).segment()),
            "bytes=" + from + "-" + (to - 1),
            aResponse()
                .withStatus(206)
                .withHeader("Content-Range", "bytes " + from + "-" + (to - 1) + "/*")
                .withBody(new byte[(int) (to - from)]));
    PackedBlobFetcher fetcher = fetcher(rotten, "pack/rotten");
    assertNotNull(fetcher.search().get());

    List<String> warned =
        warnings(PackedBlobFetcher.class, () -> fetchAndCheck(source(fetcher), run));

    assertEquals(PackedBlobFetcher.MAX_CORRUPT_IN_A_ROW, warned.size(), warned.toString());
    assertTrue(
        warned.get(warned.size() - 1).contains("not using the chunk pack"), warned.toString());
    assertFalse(fetcher.fetchesRunsCheaply(), "the pack is off");
    assertEquals((long) n, fetcher.stats().get("packChunksAsBlobs"));
  }

  /**
   * A range's chunks are handed over as their bytes arrive: from a registry that sends a range of
   * six chunks in ten pieces over three seconds, the first chunk is there while the last is still
   * on its way, and every chunk has its right bytes.
   */
  @Test
  void rangeArrivingSlowly_itsFirstChunkIsHandedOverBeforeTheRangeEnds() throws Exception {
    push("pack/slow", true);
    RegistryClient direct = client(registry.hostPort());
    ChunkPack pack = await(direct.findChunkPack("pack/slow", manifestDigest, sizes));
    Digest segment = pack.locate(chunks.get(0)).segment();
    List<Digest> run = contiguous(pack, 6);
    long from = pack.locate(run.get(0)).offset();
    ChunkPack.Location last = pack.locate(run.get(run.size() - 1));
    long to = last.offset() + last.length();
    // A segment holds its chunks' blobs one after the other (another test corrupts a segment in
    // the registry's storage, which all repositories share).
    java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
    for (Digest d : run) {
      body.write(layout.readBlob(d));
    }
    RegistryClient slow =
        throughProxy(
            urlEqualTo("/v2/pack/slow/blobs/" + segment),
            "bytes=" + from + "-" + (to - 1),
            aResponse()
                .withStatus(206)
                .withHeader("Content-Range", "bytes " + from + "-" + (to - 1) + "/*")
                .withBody(body.toByteArray())
                .withChunkedDribbleDelay(10, 3000));
    PackedBlobFetcher fetcher = fetcher(slow, "pack/slow");
    assertNotNull(fetcher.search().get());

    List<CompletableFuture<byte[]>> got = new ArrayList<>();
    for (Digest d : run) {
      got.add(fetcher.fetch(d));
    }
    long[] doneAt = new long[run.size()];
    for (int i = 0; i < run.size(); i++) {
      int c = i;
      got.get(i).whenComplete((b, e) -> doneAt[c] = System.nanoTime());
    }
    for (int i = 0; i < run.size(); i++) {
      assertArrayEquals(layout.readBlob(run.get(i)), got.get(i).get(10, TimeUnit.SECONDS));
    }
    long apartMillis = (doneAt[run.size() - 1] - doneAt[0]) / 1_000_000;
    // The pieces come 300 ms apart: the first chunk about 2.7 s before the last.
    assertTrue(apartMillis > 1000, "first and last chunk " + apartMillis + " ms apart");
    assertEquals(1L, fetcher.stats().get("packRanges"), fetcher.stats().toString());
    assertEquals((long) run.size(), fetcher.stats().get("packChunks"));
  }

  @Test
  void registryStallingRanges_chunksComeFromTheirBlobs_beforeTheReadTimesOut() throws Exception {
    push("pack/stall", true);
    // Range requests that never complete within the client's request timeout.
    RegistryClient client =
        throughProxy(anyUrl(), aResponse().withStatus(206).withFixedDelay(60_000));
    PackedBlobFetcher fetcher = fetcher(client, "pack/stall");
    assertNotNull(fetcher.search().get());
    // One request time-out (5 s) for the range, then the chunks' own blobs: well within the
    // read's 8 s. Retrying the range (twice 5 s) would use it all up before the first blob.
    CachingChunkSource source =
        CachingChunkSource.builder(fetcher).fetchTimeout(Duration.ofSeconds(8)).build();
    sources.add(source);
    fetchAllAndCheck(source);
    Map<String, Long> stats = fetcher.stats();
    assertTrue(stats.get("packRanges") >= 1, stats.toString());
    assertEquals(0L, stats.get("packChunks"), stats.toString());
    // Later runs of chunks go straight to their blobs instead of each waiting out a stalled range.
    assertPackTurnedOff(fetcher, 4_000_000_000L);
  }

  /**
   * A client through a proxy that answers every {@code every}th range request, the first one
   * included, with {@code answer}, and passes everything else on; {@code answered} counts them.
   */
  private RegistryClient answeringEveryNthRange(
      int every, ResponseDefinitionBuilder answer, AtomicInteger answered) {
    AtomicInteger ranges = new AtomicInteger();
    return throughProxy(
        get(anyUrl())
            .andMatching(
                request -> {
                  boolean hit =
                      request.containsHeader("Range") && ranges.getAndIncrement() % every == 0;
                  if (hit) {
                    answered.incrementAndGet();
                  }
                  return com.github.tomakehurst.wiremock.matching.MatchResult.of(hit);
                })
            .willReturn(answer));
  }

  private static ResponseDefinitionBuilder droppedConnection() {
    return aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER);
  }

  @Test
  void rangeConnectionsDroppedNowAndThen_keepThePackOn_andCostOnlyTheirOwnChunksAsBlobs()
      throws Exception {
    push("pack/dropped", true);
    AtomicInteger dropped = new AtomicInteger();
    RegistryClient client = answeringEveryNthRange(4, droppedConnection(), dropped);
    PackedBlobFetcher fetcher = fetcher(client, "pack/dropped");
    ChunkPack pack = fetcher.search().get();
    assertNotNull(pack);

    for (int round = 0; round < 2; round++) {
      // Each round with an empty cache: every chunk is asked for again.
      Map<String, Long> before = fetcher.stats();
      long requestsBefore = client.requests();

      fetchAllAndCheck(source(fetcher));

      Map<String, Long> stats = fetcher.stats();
      long requests = client.requests() - requestsBefore;
      long ranges = stats.get("packRanges") - before.get("packRanges");
      long asBlobs = stats.get("packChunksAsBlobs") - before.get("packChunksAsBlobs");
      String what =
          "round " + round + ", " + dropped + " dropped: " + requests + " requests, " + stats;
      assertTrue(fetcher.fetchesRunsCheaply(), what);
      assertTrue(ranges >= 1, what);
      assertTrue(asBlobs < chunks.size(), what);
      // Beyond the chunks of the dropped ranges, as many requests as without a fault.
      assertTrue(requests <= pack.segments() + 2 + asBlobs, what);
    }
    assertTrue(dropped.get() >= 2, "one dropped range in each round at least: " + dropped);
  }

  @Test
  void rangeConnectionsDroppedEveryTime_turnThePackOffAfterAFewInARow() throws Exception {
    push("pack/alldropped", true);
    AtomicInteger dropped = new AtomicInteger();
    RegistryClient client = answeringEveryNthRange(1, droppedConnection(), dropped);
    assertFailingRangesTurnThePackOff(client, "pack/alldropped");
  }

  /**
   * Checks that every chunk of {@code repo} arrives through {@code client}, whose range requests
   * all fail, and that the pack is off after {@link PackedBlobFetcher#MAX_FAILED_RANGES_IN_A_ROW}
   * of them.
   */
  private void assertFailingRangesTurnThePackOff(RegistryClient client, String repo)
      throws Exception {
    PackedBlobFetcher fetcher = fetcher(client, repo);
    ChunkPack pack = fetcher.search().get();
    assertNotNull(pack);
    assertTrue(pack.segments() >= PackedBlobFetcher.MAX_FAILED_RANGES_IN_A_ROW);
    fetchAllAndCheck(source(fetcher));
    Map<String, Long> stats = fetcher.stats();
    assertTrue(
        stats.get("packRanges") >= PackedBlobFetcher.MAX_FAILED_RANGES_IN_A_ROW, stats.toString());
    assertEquals(0L, stats.get("packChunks"), stats.toString());
    assertPackTurnedOff(fetcher, 30_000_000_000L);
  }

  @Test
  void oneRangeThatStalls_turnsThePackOffAtOnce() throws Exception {
    push("pack/onestall", true);
    // The first range request never answered within the client's request timeout (5 s); the
    // others are. Waiting that out again for each later stall would cost far more than the blobs.
    AtomicInteger stalled = new AtomicInteger();
    RegistryClient client =
        answeringEveryNthRange(
            Integer.MAX_VALUE, aResponse().withStatus(206).withFixedDelay(60_000), stalled);
    PackedBlobFetcher fetcher = fetcher(client, "pack/onestall");
    assertNotNull(fetcher.search().get());
    fetchAllAndCheck(source(fetcher));
    Map<String, Long> stats = fetcher.stats();
    assertEquals(1, stalled.get(), stats.toString());
    assertTrue(stats.get("packChunks") >= 1, "the other ranges were answered: " + stats);
    assertPackTurnedOff(fetcher, 4_000_000_000L);
  }

  @Test
  void rangesFailingAgainAndAgain_turnThePackOff_andEveryChunkStillArrives() throws Exception {
    push("pack/failing", true);
    RegistryClient client = throughProxy(anyUrl(), aResponse().withStatus(500));
    assertFailingRangesTurnThePackOff(client, "pack/failing");
  }

  @Test
  void packOfAnotherImage_isNotUsed() throws Exception {
    push("pack/other", true);
    RegistryClient client = client(registry.hostPort());
    // The same image's referrers tag, but it lists a pack made for another subject.
    Digest otherImage = Digest.sha256("another image".getBytes(StandardCharsets.UTF_8));
    JsonNode listed = referrers("pack/other").get("manifests").get(0);
    byte[] packManifest =
        await(client.pullManifest("pack/other", listed.get("digest").asText())).bytes();
    String rewritten =
        new String(packManifest, StandardCharsets.UTF_8)
            .replace(manifestDigest.toString(), otherImage.toString());
    byte[] bytes = rewritten.getBytes(StandardCharsets.UTF_8);
    Digest rewrittenDigest = Digest.sha256(bytes);
    await(
        client.pushManifest("pack/other", rewrittenDigest.toString(), bytes, MediaTypes.MANIFEST));
    String index =
        "{\"manifests\":[{\"artifactType\":\""
            + ChunkPack.ARTIFACT_TYPE
            + "\",\"digest\":\""
            + rewrittenDigest
            + "\",\"mediaType\":\""
            + MediaTypes.MANIFEST
            + "\",\"size\":"
            + bytes.length
            + "}],\"mediaType\":\""
            + MediaTypes.INDEX
            + "\",\"schemaVersion\":2}";
    listUnderReferrersTag(client, "pack/other", index);

    Exception e =
        assertThrows(
            Exception.class,
            () -> await(client.findChunkPack("pack/other", manifestDigest, sizes)));
    assertTrue(e.getMessage().contains("not to this image"), e.getMessage());
    PackedBlobFetcher fetcher = fetcher(client, "pack/other");
    assertNull(fetcher.search().get());
    fetchAllAndCheck(source(fetcher));
    assertEquals(0L, fetcher.stats().get("packRanges"));
  }

  @Test
  void pushWithPack_ofAnImageWhoseRootfsDoesNotDecode_failsAfterTheImageIsPushed()
      throws Exception {
    TestImages.Image broken = TestImages.create(tmp.resolve("broken"), "b", 3, 1000, 5);
    ImageReference ref = ImageReference.parse("docker://" + registry.hostPort() + "/pack/broken:b");
    RegistryClient client = client(registry.hostPort());
    Exception e =
        assertThrows(
            Exception.class,
            () -> await(new ImagePusher(client).withPack(true).push(broken.layout(), "b", ref)));
    assertTrue(e.getMessage().contains("cannot make a chunk pack of " + ref), e.getMessage());
    assertTrue(e.getMessage().contains("its rootfs does not decode"), e.getMessage());
    assertTrue(e.getMessage().contains("the image itself was pushed"), e.getMessage());
    // The image itself is there, as without --pack.
    assertNotNull(await(client.pullManifest("pack/broken", "b")));
  }

  @Test
  void pushWithPack_ofAnImageWithoutFileData_succeedsSayingNoPackIsNeeded() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("nodata/src/dir"));
    Files.write(src.resolveSibling("empty"), new byte[0]);
    OciLayout nodata = OciLayout.openOrCreate(tmp.resolve("nodata/oci"));
    new ImageBuilder(1).build(src.getParent(), nodata, "n");
    ImageReference ref = ImageReference.parse("docker://" + registry.hostPort() + "/pack/nodata:n");
    RegistryClient client = client(registry.hostPort());
    PushSummary pushed = await(new ImagePusher(client).withPack(true).push(nodata, "n", ref));
    assertTrue(
        pushed.toString().endsWith("; no chunk pack (the image has no file data)"),
        pushed.toString());
    assertNotNull(await(client.pullManifest("pack/nodata", "n")));
    PackedBlobFetcher fetcher =
        PackedBlobFetcher.find(
            client,
            "pack/nodata",
            pushed.manifestDigest(),
            Map.of(),
            new RegistryBlobFetcher(client, "pack/nodata"));
    assertNull(fetcher.search().get(), "no referrers tag was written");
  }
}
