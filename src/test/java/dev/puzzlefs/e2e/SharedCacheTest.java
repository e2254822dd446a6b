package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two lazy mounts of one registry image (two processes) sharing one disk cache: many concurrent
 * readers on each, no error, every byte right, and each chunk fetched from the registry once over
 * both mounts. Then the cache survives the mounts: an entry corrupted between mounts is dropped and
 * fetched again, and a remount reads everything without fetching a chunk.
 */
class SharedCacheTest {
  private static final int READERS_PER_MOUNT = 16;

  @TempDir Path tmp;
  private TestRegistry registry;
  private Path src;
  private Path cache;
  private String ref;
  private int chunkBlobs;
  private final List<Path> mounts = new ArrayList<>();

  @BeforeEach
  void image() throws Exception {
    registry = TestRegistry.launch();
    src = Files.createDirectories(tmp.resolve("src"));
    Random random = new Random(17);
    for (int d = 0; d < 4; d++) {
      Path dir = Files.createDirectories(src.resolve("d" + d));
      for (int f = 0; f < 10; f++) {
        byte[] data = new byte[100_000 + random.nextInt(400_000)];
        random.nextBytes(data);
        Files.write(dir.resolve("f" + f), data);
      }
    }
    Path oci = tmp.resolve("oci");
    Cli.ok("build", src.toString(), oci.toString(), "v1");
    chunkBlobs =
        (int)
            OciLayout.open(oci).manifest("v1").layers().stream()
                .filter(d -> !d.mediaType().equals(MediaTypes.ROOTFS))
                .count();
    ref = "docker://" + registry.hostPort() + "/shared/cache:v1";
    Cli.ok("push", "--plain-http", oci.toString(), "v1", ref);
    cache = tmp.resolve("cache");
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (Path m : mounts) {
      Cli.unmountQuietly(m);
    }
    registry.close();
  }

  private Path mount(String name) throws Exception {
    Path m = Files.createDirectories(tmp.resolve(name));
    Cli.ok("mount", "--plain-http", "--cache-dir", cache.toString(), ref, m.toString());
    mounts.add(m);
    return m;
  }

  private static JsonNode stats(Path mnt) throws Exception {
    Processes.Result r =
        Processes.run(30, "getfattr", "--only-values", "-n", "user.puzzlefs.stats", mnt.toString());
    return new ObjectMapper().readTree(r.stdout());
  }

  private Map<Path, byte[]> sourceFiles() throws Exception {
    Map<Path, byte[]> files = new TreeMap<>();
    try (Stream<Path> all = Files.walk(src)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        if (Files.isRegularFile(p)) {
          files.put(src.relativize(p), Files.readAllBytes(p));
        }
      }
    }
    return files;
  }

  @Test
  void twoMountsSharingACache_concurrentReaders_noErrorsAndEachChunkFetchedOnce() throws Exception {
    Path a = mount("a");
    Path b = mount("b");
    Map<Path, byte[]> expected = sourceFiles();

    ExecutorService readers = Executors.newFixedThreadPool(2 * READERS_PER_MOUNT);
    try {
      List<Future<Integer>> done = new ArrayList<>();
      for (int r = 0; r < 2 * READERS_PER_MOUNT; r++) {
        Path root = r % 2 == 0 ? a : b;
        long seed = r;
        done.add(
            readers.submit(
                () -> {
                  List<Path> order = new ArrayList<>(expected.keySet());
                  Collections.shuffle(order, new Random(seed));
                  for (Path rel : order) {
                    assertArrayEquals(
                        expected.get(rel),
                        Files.readAllBytes(root.resolve(rel.toString())),
                        rel + "");
                  }
                  return order.size();
                }));
      }
      for (Future<Integer> f : done) {
        assertEquals(expected.size(), f.get(5, TimeUnit.MINUTES));
      }
    } finally {
      readers.shutdownNow();
    }

    JsonNode sa = stats(a);
    JsonNode sb = stats(b);
    long fetched = sa.get("fetchedBlobs").asLong() + sb.get("fetchedBlobs").asLong();
    assertEquals(chunkBlobs, fetched, "each chunk fetched once over both mounts: " + sa + " " + sb);
    assertTrue(
        sa.get("diskHits").asLong() + sb.get("diskHits").asLong() > 0,
        "one mount found chunks the other fetched: " + sa + " " + sb);
  }

  @Test
  void cacheSurvivesTheMount_corruptEntryRefetched_thenRemountFetchesNothing() throws Exception {
    Path first = mount("first");
    Map<Path, byte[]> expected = sourceFiles();
    for (Map.Entry<Path, byte[]> e : expected.entrySet()) {
      assertArrayEquals(e.getValue(), Files.readAllBytes(first.resolve(e.getKey().toString())));
    }
    Cli.ok("umount", first.toString());
    mounts.remove(first);

    // Corrupt one entry, keeping its name and size.
    Path entry;
    try (Stream<Path> entries = Files.list(cache.resolve("sha256"))) {
      entry = entries.filter(p -> !p.getFileName().toString().startsWith(".")).findFirst().get();
    }
    try (RandomAccessFile f = new RandomAccessFile(entry.toFile(), "rw")) {
      f.seek(f.length() / 2);
      int v = f.read();
      f.seek(f.length() / 2);
      f.write(v ^ 0x40);
    }

    Path second = mount("second");
    for (Map.Entry<Path, byte[]> e : expected.entrySet()) {
      assertArrayEquals(e.getValue(), Files.readAllBytes(second.resolve(e.getKey().toString())));
    }
    JsonNode s = stats(second);
    assertEquals(1, s.get("fetchedBlobs").asLong(), "only the corrupt entry was fetched: " + s);
    assertEquals(1, s.get("corruptDiskEntries").asLong(), s.toString());
    assertEquals(chunkBlobs - 1, s.get("diskHits").asLong(), s.toString());
    Cli.ok("umount", second.toString());
    mounts.remove(second);

    Path third = mount("third");
    for (Map.Entry<Path, byte[]> e : expected.entrySet()) {
      assertArrayEquals(e.getValue(), Files.readAllBytes(third.resolve(e.getKey().toString())));
    }
    assertEquals(0, stats(third).get("fetchedBlobs").asLong(), "no chunk fetched: warm cache");
  }
}
