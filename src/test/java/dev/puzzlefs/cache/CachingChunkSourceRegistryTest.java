package dev.puzzlefs.cache;

import static dev.puzzlefs.testing.Futures.await;
import static dev.puzzlefs.testing.Futures.failure;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.registry.ImagePusher;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.RegistryClient;
import dev.puzzlefs.registry.RegistryClientOptions;
import dev.puzzlefs.registry.RegistryUnreachableException;
import dev.puzzlefs.testing.TestImages;
import dev.puzzlefs.testing.TestRegistry;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cache in front of a real registry process. */
class CachingChunkSourceRegistryTest {
  private static final String REPO = "cache/image";
  private static final Duration TIMEOUT = Duration.ofSeconds(2);
  private static final int ATTEMPTS = 2;

  private static TestRegistry registry;
  private static Vertx vertx;
  private static TestImages.Image image;
  @TempDir static Path layoutDir;

  @TempDir Path cacheDir;
  private RegistryClient client;
  private final List<CachingChunkSource> sources = new ArrayList<>();

  @BeforeAll
  static void pushImage() throws Exception {
    assertTrue(TestRegistry.available(), TestRegistry.BINARY + " is not installed");
    registry = TestRegistry.launch();
    vertx = Vertx.vertx();
    image = TestImages.create(layoutDir, "v1", 8, 50_000, 11);
    try (RegistryClient pusher = new RegistryClient(vertx, registry.hostPort(), options())) {
      ImageReference ref = ImageReference.parse("docker://" + registry.hostPort() + "/" + REPO);
      await(new ImagePusher(pusher).push(image.layout(), "v1", ref));
    }
  }

  @AfterAll
  static void stopRegistry() throws Exception {
    if (vertx != null) {
      await(vertx.close());
    }
    if (registry != null) {
      registry.close();
    }
  }

  private static RegistryClientOptions options() {
    return new RegistryClientOptions()
        .plainHttp(true)
        .connectTimeout(TIMEOUT)
        .idleTimeout(TIMEOUT)
        .requestTimeout(TIMEOUT)
        .maxAttempts(ATTEMPTS)
        .initialBackoff(Duration.ofMillis(100));
  }

  @BeforeEach
  void newClient() {
    client = new RegistryClient(vertx, registry.hostPort(), options());
  }

  @AfterEach
  void close() {
    sources.forEach(CachingChunkSource::close);
    client.close();
  }

  private CachingChunkSource newSource() throws Exception {
    CachingChunkSource source =
        CachingChunkSource.builder(new RegistryBlobFetcher(client, REPO))
            .maxMemoryBytes(1 << 20)
            .diskCache(cacheDir, 1 << 20)
            .fetchTimeout(Duration.ofSeconds(30))
            .build();
    sources.add(source);
    return source;
  }

  private Path diskEntry(Digest d) {
    return cacheDir.resolve("sha256").resolve(d.hex());
  }

  @Test
  void fetch_firstRead_comesFromRegistryAndLandsOnDisk() throws Exception {
    CachingChunkSource source = newSource();
    Digest chunk = image.chunks().get(0);

    assertArrayEquals(image.blobs().get(chunk), await(source.fetch(chunk)));

    assertEquals(1, source.fetches());
    assertEquals(0, source.memoryHits());
    assertEquals(0, source.diskHits());
    assertEquals(image.blobs().get(chunk).length, source.bytesFetched());
    assertEquals(1, client.blobsFetched());
    assertArrayEquals(image.blobs().get(chunk), Files.readAllBytes(diskEntry(chunk)));
  }

  @Test
  void fetch_blobCorruptInTheRegistry_failsNamingTheMismatch_andKeepsNothing() throws Exception {
    // The registry fetcher checks each body's digest, so the cache does not hash it again: a
    // corrupt blob must still never be served or kept.
    Digest chunk = image.chunks().get(1);
    Path data =
        registry
            .storage()
            .resolve("docker/registry/v2/blobs/sha256")
            .resolve(chunk.hex().substring(0, 2))
            .resolve(chunk.hex())
            .resolve("data");
    byte[] good = Files.readAllBytes(data);
    byte[] bad = good.clone();
    bad[bad.length / 2] ^= 0x20;
    Files.write(data, bad);
    try {
      CachingChunkSource source = newSource();
      Exception e = assertThrows(Exception.class, () -> await(source.fetch(chunk)));
      assertTrue(e.getMessage().contains("hash to"), e.getMessage());
      assertTrue(Files.notExists(diskEntry(chunk)), "no cache entry of a corrupt blob");
      assertEquals(0, source.bytesFetched());
    } finally {
      Files.write(data, good);
    }
  }

  @Test
  void fetch_secondRead_comesFromMemory() throws Exception {
    CachingChunkSource source = newSource();
    Digest chunk = image.chunks().get(1);
    await(source.fetch(chunk));
    long requests = client.requests();

    assertArrayEquals(image.blobs().get(chunk), await(source.fetch(chunk)));

    assertEquals(1, source.memoryHits());
    assertEquals(1, source.fetches());
    assertEquals(requests, client.requests());
  }

  @Test
  void fetch_newSourceOverSameDiskDir_comesFromDisk() throws Exception {
    Digest chunk = image.chunks().get(2);
    await(newSource().fetch(chunk));
    long requests = client.requests();
    CachingChunkSource second = newSource();

    assertArrayEquals(image.blobs().get(chunk), await(second.fetch(chunk)));

    assertEquals(1, second.diskHits());
    assertEquals(0, second.fetches());
    assertEquals(requests, client.requests());
  }

  @Test
  void fetch_sixteenConcurrentReadsOfOneDigest_sendOneRegistryGet() throws Exception {
    CachingChunkSource source = newSource();
    Digest chunk = image.chunks().get(3);
    long requests = client.requests();
    ExecutorService readers = Executors.newFixedThreadPool(16);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<CompletableFuture<byte[]>>> started = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        started.add(
            readers.submit(
                () -> {
                  go.await();
                  return source.fetch(chunk);
                }));
      }
      go.countDown();
      for (Future<CompletableFuture<byte[]>> f : started) {
        assertArrayEquals(image.blobs().get(chunk), await(f.get()));
      }
    } finally {
      readers.shutdownNow();
    }

    assertEquals(1, client.requests() - requests);
    assertEquals(1, source.fetches());
    assertEquals(15, source.memoryHits() + source.inFlightJoins());
  }

  @Test
  void fetch_registryKilled_failsWithinTimeoutThenWorksAfterRestart() throws Exception {
    CachingChunkSource source = newSource();
    Digest chunk = image.chunks().get(4);
    await(source.fetch(image.chunks().get(5))); // a pooled keep-alive connection exists
    registry.stop();
    try {
      long start = System.nanoTime();

      Throwable e = failure(source.fetch(chunk));

      long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
      assertInstanceOf(RegistryUnreachableException.class, e);
      assertTrue(e.getMessage().contains(chunk.toString()), e.getMessage());
      assertTrue(
          elapsedMillis < TIMEOUT.toMillis() * ATTEMPTS + 5000, "took " + elapsedMillis + " ms");
      assertTrue(Files.notExists(diskEntry(chunk)));
    } finally {
      registry.start();
    }

    assertArrayEquals(image.blobs().get(chunk), await(source.fetch(chunk)));
    assertEquals(3, source.fetches());
  }
}
