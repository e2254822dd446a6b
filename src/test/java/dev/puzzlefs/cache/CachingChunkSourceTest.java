package dev.puzzlefs.cache;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.puzzlefs.testing.Futures.await;
import static dev.puzzlefs.testing.Futures.failure;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.reader.ChunkTimeoutException;
import dev.puzzlefs.registry.BlobDigestMismatchException;
import dev.puzzlefs.registry.RegistryClient;
import dev.puzzlefs.registry.RegistryClientOptions;
import dev.puzzlefs.testing.TestImages;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The cache over a local layout, fakes and WireMock: corruption, deadlines, eviction. */
class CachingChunkSourceTest {
  @TempDir Path tmp;
  private ExecutorService io;
  private TestImages.Image image;
  private final List<CachingChunkSource> sources = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    io = Executors.newFixedThreadPool(2);
    image = TestImages.create(tmp.resolve("oci"), "v1", 6, 3000, 21);
  }

  @AfterEach
  void tearDown() {
    sources.forEach(CachingChunkSource::close);
    io.shutdownNow();
  }

  private Path cacheDir() {
    return tmp.resolve("cache");
  }

  private Path diskEntry(Digest d) {
    return cacheDir().resolve("sha256").resolve(d.hex());
  }

  private CachingChunkSource source(BlobFetcher fetcher, long maxDiskBytes) throws Exception {
    CachingChunkSource source =
        CachingChunkSource.builder(fetcher)
            .diskCache(cacheDir(), maxDiskBytes)
            .fetchTimeout(Duration.ofSeconds(10))
            .executor(io)
            .build();
    sources.add(source);
    return source;
  }

  private CachingChunkSource layoutSource() throws Exception {
    return source(new LayoutBlobFetcher(image.layout(), io), 1 << 20);
  }

  /** A WireMock server standing in for a registry, and a client of it that retries quickly. */
  private interface RegistryTest {
    void run(WireMockServer server, RegistryClient client) throws Exception;
  }

  private static void withRegistry(RegistryTest test) throws Exception {
    WireMockServer server =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").dynamicPort());
    server.start();
    Vertx vertx = Vertx.vertx();
    try (RegistryClient client =
        new RegistryClient(
            vertx,
            "127.0.0.1:" + server.port(),
            new RegistryClientOptions().plainHttp(true).initialBackoff(Duration.ofMillis(10)))) {
      test.run(server, client);
    } finally {
      server.stop();
      await(vertx.close());
    }
  }

  /**
   * A fetcher whose first call fails with {@code message}; it counts its calls in {@code calls}.
   */
  private BlobFetcher failsOnce(AtomicInteger calls, String message) {
    return fake(
        blob ->
            calls.incrementAndGet() == 1
                ? CompletableFuture.failedFuture(new java.io.IOException(message))
                : CompletableFuture.completedFuture(bytes(blob)));
  }

  private Digest chunk(int i) {
    return image.chunks().get(i);
  }

  private byte[] bytes(Digest d) {
    return image.blobs().get(d);
  }

  @Test
  void fetch_layoutBlob_returnsItAndCountsOneFetch() throws Exception {
    CachingChunkSource source = layoutSource();

    assertArrayEquals(bytes(chunk(0)), await(source.fetch(chunk(0))));
    assertArrayEquals(bytes(chunk(0)), await(source.fetch(chunk(0))));

    assertEquals(1, source.fetches());
    assertEquals(1, source.memoryHits());
    assertEquals(bytes(chunk(0)).length, source.bytesFetched());
    assertEquals(bytes(chunk(0)).length, source.memoryBytes());
  }

  @Test
  void fetch_writesAPrivateDiskEntry_andLeavesNoTemporaryFile() throws Exception {
    CachingChunkSource source = layoutSource();

    await(source.fetch(chunk(0)));

    Path entry = diskEntry(chunk(0));
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (!Files.exists(entry) && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertArrayEquals(bytes(chunk(0)), Files.readAllBytes(entry));
    assertEquals(
        "rw-------",
        java.nio.file.attribute.PosixFilePermissions.toString(
            Files.getPosixFilePermissions(entry)));
    try (var names = Files.list(entry.getParent())) {
      assertEquals(List.of(entry), names.toList(), "only the entry, no temporary file");
    }
  }

  @Test
  void fetch_noMemoryCache_readsAndVerifiesTheBlobEveryTime() throws Exception {
    CachingChunkSource source =
        CachingChunkSource.builder(new LayoutBlobFetcher(image.layout(), io))
            .maxMemoryBytes(0)
            .executor(io)
            .build();
    sources.add(source);
    Digest d = chunk(2);

    assertArrayEquals(bytes(d), await(source.fetch(d)));
    assertArrayEquals(bytes(d), await(source.fetch(d)));
    assertEquals(2, source.fetches());
    assertEquals(0, source.memoryHits());
    assertEquals(0, source.memoryBytes());

    // Nothing verified earlier is trusted later: the blob changed on disk fails the next read.
    byte[] corrupt = bytes(d).clone();
    corrupt[corrupt.length - 1] ^= 0x01;
    Files.write(image.layout().blobPath(d), corrupt);
    assertInstanceOf(ChunkVerificationException.class, failure(source.fetch(d)));
  }

  @Test
  void fetch_corruptLayoutBlob_failsUntilRepairedAndIsNeverCached() throws Exception {
    CachingChunkSource source = layoutSource();
    Digest d = chunk(1);
    Path blobFile = image.layout().blobPath(d);
    byte[] corrupt = bytes(d).clone();
    corrupt[0] ^= 0x55;
    Files.write(blobFile, corrupt);

    Throwable e = failure(source.fetch(d));

    ChunkVerificationException bad = assertInstanceOf(ChunkVerificationException.class, e);
    assertEquals(d, bad.blob());
    assertTrue(e.getMessage().contains(d.toString()), e.getMessage());
    assertTrue(e.getMessage().contains(Digest.sha256(corrupt).toString()), e.getMessage());
    assertTrue(Files.notExists(diskEntry(d)));
    assertEquals(0, source.memoryBytes());

    Files.write(blobFile, bytes(d));
    assertArrayEquals(bytes(d), await(source.fetch(d)));
    assertEquals(2, source.fetches());
  }

  @Test
  void fetch_corruptDiskEntry_isDeletedAndFetchedAgain() throws Exception {
    Digest d = chunk(2);
    await(layoutSource().fetch(d));
    byte[] corrupt = bytes(d).clone();
    corrupt[corrupt.length - 1] ^= 1;
    Files.write(diskEntry(d), corrupt);
    CachingChunkSource fresh = layoutSource();

    assertArrayEquals(bytes(d), await(fresh.fetch(d)));

    assertEquals(1, fresh.corruptDiskEntries());
    assertEquals(0, fresh.diskHits());
    assertEquals(1, fresh.fetches());
    assertArrayEquals(bytes(d), Files.readAllBytes(diskEntry(d)));
  }

  @Test
  void fetch_symlinkDiskEntry_deletesTheLinkOnlyAndFetchesAgain() throws Exception {
    Digest d = chunk(3);
    Path target = tmp.resolve("outside");
    Files.write(target, bytes(d));
    FileTime old = FileTime.from(Instant.parse("2001-01-01T00:00:00Z"));
    Files.setLastModifiedTime(target, old);
    Files.createDirectories(diskEntry(d).getParent());
    Files.createSymbolicLink(diskEntry(d), target);
    CachingChunkSource source = layoutSource();

    assertArrayEquals(bytes(d), await(source.fetch(d)));

    assertEquals(1, source.corruptDiskEntries());
    assertEquals(0, source.diskHits());
    assertEquals(1, source.fetches());
    assertTrue(Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS));
    assertEquals(old, Files.getLastModifiedTime(target));
    assertArrayEquals(bytes(d), Files.readAllBytes(target));
    assertFalse(Files.isSymbolicLink(diskEntry(d)));
    assertArrayEquals(bytes(d), Files.readAllBytes(diskEntry(d)));
  }

  @Test
  void fetch_danglingLinkDiskEntry_isReplacedByTheEntry_andNothingIsWrittenThroughIt()
      throws Exception {
    Digest d = chunk(4);
    Path nowhere = tmp.resolve("nowhere");
    Files.createDirectories(diskEntry(d).getParent());
    Files.createSymbolicLink(diskEntry(d), nowhere);
    CachingChunkSource source = layoutSource();

    assertArrayEquals(bytes(d), await(source.fetch(d)));

    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (Files.isSymbolicLink(diskEntry(d)) && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertTrue(Files.isRegularFile(diskEntry(d), LinkOption.NOFOLLOW_LINKS));
    assertArrayEquals(bytes(d), Files.readAllBytes(diskEntry(d)));
    assertFalse(Files.exists(nowhere, LinkOption.NOFOLLOW_LINKS));
  }

  @Test
  void fetch_hugeDiskEntry_isDeletedUnreadAndFetchedAgain() throws Exception {
    // Read whole, a huge file in the cache's place of a chunk would fill the heap.
    Digest d = chunk(2);
    Files.createDirectories(diskEntry(d).getParent());
    try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(diskEntry(d).toFile(), "rw")) {
      f.setLength(1L << 32);
    }
    // A budget it fits in: a smaller one evicts it before any read.
    CachingChunkSource source = source(new LayoutBlobFetcher(image.layout(), io), 1L << 40);

    assertArrayEquals(bytes(d), await(source.fetch(d)));

    assertEquals(1, source.corruptDiskEntries());
    assertEquals(1, source.fetches());
    assertArrayEquals(bytes(d), Files.readAllBytes(diskEntry(d)));
  }

  @Test
  @Timeout(30)
  void fetch_fifoDiskEntry_doesNotHangAndFetchesAgain() throws Exception {
    Digest d = chunk(4);
    Files.createDirectories(diskEntry(d).getParent());
    Process mkfifo = new ProcessBuilder("mkfifo", diskEntry(d).toString()).start();
    assertEquals(0, mkfifo.waitFor());
    CachingChunkSource source = layoutSource();

    assertArrayEquals(bytes(d), await(source.fetch(d)));

    assertEquals(1, source.corruptDiskEntries());
    assertEquals(1, source.fetches());
    assertTrue(Files.isRegularFile(diskEntry(d), LinkOption.NOFOLLOW_LINKS));
    assertArrayEquals(bytes(d), Files.readAllBytes(diskEntry(d)));
  }

  @Test
  void fetch_missingLayoutBlob_failsNamingIt() throws Exception {
    Digest absent = Digest.sha256(new byte[] {4, 5, 6});

    Throwable e = failure(layoutSource().fetch(absent));

    assertInstanceOf(OciException.class, e);
    assertTrue(e.getMessage().contains(absent.toString()), e.getMessage());
  }

  @Test
  void fetch_failedFetch_isNotCachedAndNextReadTriesAgain() throws Exception {
    Digest d = chunk(3);
    AtomicInteger calls = new AtomicInteger();
    BlobFetcher flaky = failsOnce(calls, "first call fails");
    CachingChunkSource source = source(flaky, 1 << 20);

    Throwable e = failure(source.fetch(d));
    assertEquals("first call fails", e.getMessage());

    assertArrayEquals(bytes(d), await(source.fetch(d)));
    assertEquals(2, calls.get());
  }

  @Test
  void failureMemory_repeatsAWrongOrMissingBlobsFailure_withoutFetching_untilItEnds()
      throws Exception {
    Digest bad = chunk(0);
    Digest missing = chunk(1);
    byte[] wrong = bytes(bad).clone();
    wrong[3] ^= 0x01;
    String badPath = "/v2/lasting/repo/blobs/" + bad;
    String missingPath = "/v2/lasting/repo/blobs/" + missing;
    withRegistry(
        (server, client) -> {
          server.stubFor(get(badPath).willReturn(aResponse().withStatus(200).withBody(wrong)));
          server.stubFor(
              get(missingPath)
                  .willReturn(
                      aResponse()
                          .withStatus(404)
                          .withBody(
                              "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"x\"}]}")));
          CachingChunkSource source =
              CachingChunkSource.builder(new RegistryBlobFetcher(client, "lasting/repo"))
                  .diskCache(cacheDir(), 1 << 20)
                  .fetchTimeout(Duration.ofSeconds(10))
                  .executor(io)
                  .failureMemory(Duration.ofMillis(1500))
                  .build();
          sources.add(source);
          int attempts = new RegistryClientOptions().maxAttempts();

          assertInstanceOf(BlobDigestMismatchException.class, failure(source.fetch(bad)));
          failure(source.fetch(missing));
          int missingRequests = server.findAll(getRequestedFor(urlEqualTo(missingPath))).size();
          Throwable again = failure(source.fetch(bad));
          Throwable missingAgain = failure(source.fetch(missing));

          assertTrue(
              again.getMessage().contains(Digest.sha256(wrong).toString()), again.getMessage());
          assertTrue(
              again.getMessage().contains("the same failure less than 1500 ms ago"),
              again.getMessage());
          assertTrue(
              missingAgain.getMessage().contains("not fetched again"), missingAgain.getMessage());
          assertEquals(attempts, server.findAll(getRequestedFor(urlEqualTo(badPath))).size());
          assertEquals(
              missingRequests, server.findAll(getRequestedFor(urlEqualTo(missingPath))).size());

          // Once the memory ends, the next fetch asks again, and gets the repaired blob.
          server.stubFor(get(badPath).willReturn(aResponse().withStatus(200).withBody(bytes(bad))));
          Thread.sleep(1600);
          assertArrayEquals(bytes(bad), await(source.fetch(bad)));
          assertEquals(attempts + 1, server.findAll(getRequestedFor(urlEqualTo(badPath))).size());
        });
  }

  @Test
  void diskCache_inAFile_failsNamingTheDirectoryAndTheCause() throws Exception {
    Path file = Files.writeString(tmp.resolve("a-file"), "x");
    java.io.IOException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            java.io.IOException.class,
            () ->
                CachingChunkSource.builder(new LayoutBlobFetcher(image.layout(), io))
                    .diskCache(file, 1 << 20)
                    .executor(io)
                    .build());
    assertEquals(
        "cannot use the chunk cache directory "
            + file
            + " (--cache-dir, or cache.directory in the configuration): it is not a directory",
        e.getMessage());
  }

  @Test
  void failureMemory_keepsNoPassingFailure() throws Exception {
    Digest d = chunk(3);
    AtomicInteger calls = new AtomicInteger();
    BlobFetcher flaky = failsOnce(calls, "connection refused");
    CachingChunkSource source =
        CachingChunkSource.builder(flaky)
            .fetchTimeout(Duration.ofSeconds(10))
            .executor(io)
            .failureMemory(Duration.ofSeconds(10))
            .build();
    sources.add(source);

    assertEquals("connection refused", failure(source.fetch(d)).getMessage());
    assertArrayEquals(bytes(d), await(source.fetch(d)));
    assertEquals(2, calls.get());
  }

  @Test
  void fetch_fetcherSlowerThanDeadline_failsWithChunkTimeoutInTime() throws Exception {
    Digest d = chunk(4);
    CachingChunkSource source =
        CachingChunkSource.builder(fake(blob -> new CompletableFuture<>()))
            .fetchTimeout(Duration.ofMillis(300))
            .executor(io)
            .build();
    sources.add(source);
    long start = System.nanoTime();

    Throwable e = failure(source.fetch(d));

    long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
    ChunkTimeoutException late = assertInstanceOf(ChunkTimeoutException.class, e);
    assertEquals(d, late.blob());
    assertTrue(e.getMessage().contains("within 300 ms"), e.getMessage());
    assertTrue(elapsedMillis < 300 + 5000, elapsedMillis + " ms");
  }

  @Test
  void fetch_localFileReadSlowerThanDeadline_isWaitedForNotFailed() throws Exception {
    // A local file read that hangs would hang again if asked again: no deadline of the cache's own
    // (the readers keep theirs), and the bytes count whenever the read ends.
    Digest d = chunk(4);
    CompletableFuture<byte[]> read = new CompletableFuture<>();
    BlobFetcher local =
        new BlobFetcher() {
          @Override
          public CompletableFuture<byte[]> fetch(Digest blob) {
            return read;
          }

          @Override
          public String source() {
            return "a stuck disk";
          }

          @Override
          public boolean retriesHelpAHang() {
            return false;
          }
        };
    CachingChunkSource source =
        CachingChunkSource.builder(local).fetchTimeout(Duration.ofMillis(100)).executor(io).build();
    sources.add(source);

    CompletableFuture<byte[]> fetched = source.fetch(d);
    Thread.sleep(600);

    assertFalse(
        fetched.isDone(), "failed at the cache's deadline although asking again won't help");
    read.complete(bytes(d));
    assertArrayEquals(bytes(d), await(fetched));
    assertFalse(new LayoutBlobFetcher(image.layout(), io).retriesHelpAHang());
  }

  @Test
  void fetch_verityMismatch_failsAndKeepsNothing() throws Exception {
    assertVerityMismatchRefused(new LayoutBlobFetcher(image.layout(), io));
  }

  @Test
  void fetch_fromAFetcherThatVerifiesDigests_stillChecksVerity() throws Exception {
    assertVerityMismatchRefused(
        new BlobFetcher() {
          @Override
          public CompletableFuture<byte[]> fetch(Digest blob) {
            return CompletableFuture.completedFuture(bytes(blob));
          }

          @Override
          public String source() {
            return "verifying";
          }

          @Override
          public boolean verifiesDigests() {
            return true;
          }
        });
  }

  /**
   * Checks that a chunk from {@code fetcher} whose fs-verity digest is not the one expected is
   * refused and not kept, and that a chunk without an expected verity digest is served.
   */
  private void assertVerityMismatchRefused(BlobFetcher fetcher) throws Exception {
    Digest d = chunk(5);
    Function<byte[], byte[]> verityOf = b -> Digest.sha256(reversed(b)).bytes();
    Map<Digest, byte[]> expected = Map.of(d, new byte[32]);
    CachingChunkSource source =
        CachingChunkSource.builder(fetcher)
            .diskCache(cacheDir(), 1 << 20)
            .executor(io)
            .verity(expected::get, verityOf)
            .build();
    sources.add(source);

    Throwable e = failure(source.fetch(d));

    assertInstanceOf(ChunkVerificationException.class, e);
    assertTrue(e.getMessage().contains("fs-verity"), e.getMessage());
    assertTrue(Files.notExists(diskEntry(d)));
    // A chunk without a recorded verity digest is checked by sha256 alone.
    assertArrayEquals(bytes(chunk(0)), await(source.fetch(chunk(0))));
  }

  @Test
  void fetch_verityMatch_servesChunk() throws Exception {
    Digest d = chunk(5);
    Function<byte[], byte[]> verityOf = b -> Digest.sha256(reversed(b)).bytes();
    CachingChunkSource source =
        CachingChunkSource.builder(new LayoutBlobFetcher(image.layout(), io))
            .executor(io)
            .verity(blob -> verityOf.apply(bytes(blob)), verityOf)
            .build();
    sources.add(source);

    assertArrayEquals(bytes(d), await(source.fetch(d)));
  }

  @Test
  void fetch_overDiskBudget_evictsLeastRecentlyUsed() throws Exception {
    Random random = new Random(5);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci2"));
    List<Digest> blobs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      blobs.add(layout.putBlob(TestImages.randomBytes(random, 3000)));
    }
    CachingChunkSource source = source(new LayoutBlobFetcher(layout, io), 10_000);
    Instant past = Instant.now().minusSeconds(3600);
    for (int i = 0; i < 3; i++) {
      await(source.fetch(blobs.get(i)));
      Files.setLastModifiedTime(diskEntry(blobs.get(i)), FileTime.from(past.plusSeconds(i)));
    }

    await(source.fetch(blobs.get(3)));

    assertTrue(Files.notExists(diskEntry(blobs.get(0))), "oldest entry should be evicted");
    for (int i = 1; i < 4; i++) {
      assertTrue(Files.exists(diskEntry(blobs.get(i))), "entry " + i + " should remain");
    }
    assertEquals(9000, source.diskBytes());
  }

  @Test
  void fetch_registryServesWrongBytes_failsNamingBothDigestsCachesNothingAndRetries()
      throws Exception {
    Digest d = chunk(0);
    byte[] wrong = bytes(d).clone();
    wrong[7] ^= 0x10;
    String path = "/v2/corrupt/repo/blobs/" + d;
    withRegistry(
        (server, client) -> {
          server.stubFor(get(path).willReturn(aResponse().withStatus(200).withBody(wrong)));
          CachingChunkSource source =
              source(new RegistryBlobFetcher(client, "corrupt/repo"), 1 << 20);

          Throwable e = failure(source.fetch(d));

          BlobDigestMismatchException mismatch =
              assertInstanceOf(BlobDigestMismatchException.class, e);
          assertEquals(d, mismatch.expected());
          assertEquals(Digest.sha256(wrong), mismatch.actual());
          assertTrue(e.getMessage().contains(d.toString()), e.getMessage());
          assertTrue(e.getMessage().contains(Digest.sha256(wrong).toString()), e.getMessage());
          assertTrue(Files.notExists(diskEntry(d)));
          assertEquals(0, source.memoryBytes());

          failure(source.fetch(d));
          // Nothing was cached: the second fetch asks the registry again. The client retries a
          // mismatch (the bytes may have been damaged on the way), so each fetch is every attempt.
          int attempts = new RegistryClientOptions().maxAttempts();
          assertEquals(2 * attempts, server.findAll(getRequestedFor(urlEqualTo(path))).size());

          server.stubFor(get(path).willReturn(aResponse().withStatus(200).withBody(bytes(d))));
          assertArrayEquals(bytes(d), await(source.fetch(d)));
          assertArrayEquals(bytes(d), Files.readAllBytes(diskEntry(d)));
        });
  }

  private static byte[] reversed(byte[] b) {
    byte[] r = new byte[b.length];
    for (int i = 0; i < b.length; i++) {
      r[i] = b[b.length - 1 - i];
    }
    return r;
  }

  private static BlobFetcher fake(Function<Digest, CompletableFuture<byte[]>> answer) {
    return new BlobFetcher() {
      @Override
      public CompletableFuture<byte[]> fetch(Digest blob) {
        return answer.apply(blob);
      }

      @Override
      public String source() {
        return "fake";
      }
    };
  }
}
