package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prefetch, readahead and the mount's counters, on lazy mounts from a real registry: after a
 * complete prefetch the registry can go away; a prefetch list comes first; a sequential read stalls
 * on fewer chunks than it reads; {@code puzzlefs stats}, the Prometheus endpoint and the unmount
 * log show the counters.
 */
class PrefetchAndStatsTest {
  @TempDir Path tmp;
  private TestRegistry registry;
  private Path src;
  private String ref;
  private Path oci;
  private final List<Path> mounts = new ArrayList<>();

  @BeforeEach
  void image() throws Exception {
    registry = TestRegistry.launch();
    src = Files.createDirectories(tmp.resolve("src"));
    Random random = new Random(23);
    for (String dir : List.of("first", "second")) {
      Files.createDirectories(src.resolve(dir));
      for (int f = 0; f < 5; f++) {
        byte[] data = new byte[200_000 + random.nextInt(300_000)];
        random.nextBytes(data);
        Files.write(src.resolve(dir + "/f" + f), data);
      }
    }
    byte[] big = new byte[24 << 20];
    random.nextBytes(big);
    Files.write(src.resolve("big"), big);
    oci = tmp.resolve("oci");
    Cli.ok("build", src.toString(), oci.toString(), "v1");
    ref = "docker://" + registry.hostPort() + "/prefetch/test:v1";
    Cli.ok("push", "--plain-http", oci.toString(), "v1", ref);
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (Path m : mounts) {
      Cli.unmountQuietly(m);
    }
    registry.close();
  }

  private Path mount(String name, String... options) throws Exception {
    Path m = Files.createDirectories(tmp.resolve(name));
    List<String> args = new ArrayList<>(List.of("mount", "--plain-http", "--read-timeout", "5"));
    args.addAll(List.of("--cache-dir", tmp.resolve("cache-" + name).toString()));
    args.addAll(List.of(options));
    args.add(ref);
    args.add(m.toString());
    Cli.ok(args.toArray(String[]::new));
    mounts.add(m);
    return m;
  }

  private static JsonNode stats(Path mnt) throws Exception {
    return new ObjectMapper().readTree(Cli.ok("stats", "--json", mnt.toString()).out());
  }

  private static JsonNode awaitPrefetch(Path mnt) throws Exception {
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (true) {
      JsonNode s = stats(mnt);
      long planned = s.get("prefetchPlanned").asLong();
      if (planned > 0 && s.get("prefetchFetched").asLong() == planned) {
        return s;
      }
      assertTrue(System.nanoTime() < deadline, "prefetch did not finish: " + s);
      Thread.sleep(100);
    }
  }

  private void assertSameFile(Path mnt, String rel) throws Exception {
    assertArrayEquals(Files.readAllBytes(src.resolve(rel)), Files.readAllBytes(mnt.resolve(rel)));
  }

  @Test
  void prefetchAll_thenRegistryStopped_wholeTreeStillReads() throws Exception {
    Path log = tmp.resolve("prefetch.log");
    Path m = mount("all", "--prefetch", "all", "--log-file", log.toString());
    JsonNode s = awaitPrefetch(m);
    assertEquals(0, s.get("prefetchFailed").asLong(), s.toString());
    assertTrue(s.get("prefetchedBytes").asLong() > 24 << 20, s.toString());
    String logged = "";
    for (int i = 0; i < 50 && !logged.contains("prefetch done"); i++) {
      Thread.sleep(100);
      logged = Files.readString(log);
    }
    assertTrue(
        logged.matches("(?s).*prefetch done: \\d+ chunks \\(\\d+ bytes\\) fetched, 0 failed.*"),
        logged);

    registry.stop();
    for (String dir : List.of("first", "second")) {
      for (int f = 0; f < 5; f++) {
        assertSameFile(m, dir + "/f" + f);
      }
    }
    assertSameFile(m, "big");
  }

  @Test
  void prefetchList_fetchesTheListedDirectoryOnly() throws Exception {
    Path list = Files.writeString(tmp.resolve("prefetch.list"), "# warm this first\n/second\n\n");
    Path m = mount("list", "--prefetch-list", list.toString());
    JsonNode s = awaitPrefetch(m);
    long planned = s.get("prefetchPlanned").asLong();
    assertTrue(planned >= 5 && planned < 40, "only the listed directory's chunks: " + s);

    registry.stop();
    for (int f = 0; f < 5; f++) {
      assertSameFile(m, "second/f" + f);
    }
    Processes.Result r = Processes.exec(30, null, "cat", m.resolve("first/f0").toString());
    assertNotEquals(0, r.exit(), "an unlisted file needs the registry");
  }

  /**
   * A mount records which files it served, and which parts of the ones read only in part, keeping
   * the list up to date; a mount given that list fetches just those before anything is read (the
   * registry is stopped after).
   */
  @Test
  void recordPrefetchList_writtenAtUnmount_replayFetchesWhatWasRead() throws Exception {
    Path list = tmp.resolve("recorded.list");
    Path m = mount("rec", "--record-prefetch-list", list.toString());
    assertSameFile(m, "second/f3");
    try (java.io.RandomAccessFile big =
        new java.io.RandomAccessFile(m.resolve("big").toFile(), "r")) {
      big.seek(12 << 20);
      big.readFully(new byte[4096]);
    }
    Cli.ok("umount", m.toString());
    mounts.remove(m);

    // Kept up to date while mounted (within 0.1 s of a read), and written once more at the end.
    List<String> lines = List.of();
    for (int i = 0; i < 100 && !lines.stream().anyMatch(l -> l.startsWith("/big\t")); i++) {
      Thread.sleep(50);
      lines = Files.exists(list) ? Files.readAllLines(list) : List.of();
    }
    assertTrue(lines.get(0).startsWith("# prefetch list of " + ref), lines.toString());
    assertTrue(lines.contains("/second/f3"), lines.toString());
    String bigLine = lines.stream().filter(l -> l.startsWith("/big\t")).findFirst().orElseThrow();
    String[] ranges = bigLine.substring("/big\t".length()).split(",");
    assertTrue(ranges.length >= 1 && ranges.length <= 2, bigLine);
    long start = Long.parseLong(ranges[0].split("\\+")[0]);
    assertTrue(start <= 12 << 20 && start > 11 << 20, "the chunk(s) around 12 MiB: " + bigLine);

    Path replay = mount("replay", "--prefetch-list", list.toString());
    JsonNode s = awaitPrefetch(replay);
    assertTrue(s.get("prefetchPlanned").asLong() <= 12, "a few chunks, not the image: " + s);
    registry.stop();
    assertSameFile(replay, "second/f3");
    Processes.Result r = Processes.exec(30, null, "cat", replay.resolve("first/f0").toString());
    assertNotEquals(0, r.exit(), "an unrecorded file needs the registry");
  }

  @Test
  void prefetchList_unreadableFile_failsBeforeMounting() throws Exception {
    Path m = Files.createDirectories(tmp.resolve("never"));
    Processes.Result r =
        Cli.run(
            "mount",
            "--plain-http",
            "--prefetch-list",
            tmp.resolve("absent").toString(),
            ref,
            m.toString());
    assertNotEquals(0, r.exit());
    assertTrue(r.stderr().contains("--prefetch-list " + tmp.resolve("absent")), r.stderr());
  }

  @Test
  void packedImage_lazyReadOfEveryFile_fetchesRunsOfChunksWithRangeRequests() throws Exception {
    String unpacked = ref;
    assertTrue(
        Cli.ok("inspect", "--plain-http", unpacked).out().contains("\nchunk pack:   none\n"));
    ref = "docker://" + registry.hostPort() + "/prefetch/packed:v1";
    String pushed = Cli.ok("push", "--plain-http", "--pack", oci.toString(), "v1", ref).stderr();
    assertTrue(pushed.contains("; chunk pack sha256:"), pushed);
    String inspected = Cli.ok("inspect", "--plain-http", ref).out();
    assertTrue(
        inspected.matches("(?s).*\nchunk pack:   sha256:[0-9a-f]{64}, \\d+ chunks in .*"),
        inspected);
    Path m = mount("packed");
    for (String dir : List.of("first", "second")) {
      for (int f = 0; f < 5; f++) {
        assertSameFile(m, dir + "/f" + f);
      }
    }
    assertSameFile(m, "big");
    JsonNode s = stats(m);
    long fetched = s.get("fetchedBlobs").asLong();
    assertTrue(s.get("packRanges").asLong() > 0, s.toString());
    assertTrue(s.get("packChunks").asLong() > fetched / 2, s.toString());
    assertTrue(s.get("registryRequests").asLong() < fetched / 2, s.toString());
  }

  @Test
  void sequentialRead_readaheadKeepsStallsBelowTheChunkCount() throws Exception {
    Path m = mount("seq");
    JsonNode before = stats(m);
    assertSameFile(m, "big");
    JsonNode after = stats(m);
    long fetched = after.get("fetchedBlobs").asLong() - before.get("fetchedBlobs").asLong();
    long stalls = after.get("readStalls").asLong() - before.get("readStalls").asLong();
    assertTrue(fetched > 100, "a 24 MiB file is hundreds of chunks: " + after);
    assertTrue(after.get("readaheadChunks").asLong() > 0, after.toString());
    assertTrue(stalls < fetched, "readahead: " + stalls + " stalls for " + fetched + " chunks");
  }

  @Test
  void statsCommand_metricsEndpoint_andUnmountLog_showTheCounters() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Path log = tmp.resolve("mount.log");
    Path m = mount("stats", "--metrics", "127.0.0.1:" + port, "--log-file", log.toString());
    assertSameFile(m, "first/f1");

    String text = Cli.ok("stats", m.toString()).out();
    assertTrue(text.matches("(?s).*fetchedBytes\\s+[1-9][0-9]*\n.*"), text);

    HttpResponse<String> metrics =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
    assertEquals(200, metrics.statusCode());
    assertTrue(
        metrics.body().contains("# TYPE puzzlefs_fetched_bytes_total counter"), metrics.body());
    assertTrue(
        metrics
            .body()
            .matches("(?s).*puzzlefs_fetched_bytes_total\\{mount=\"" + m + "\"\\} [1-9].*"),
        metrics.body());
    assertTrue(metrics.body().contains("# TYPE puzzlefs_disk_cache_bytes gauge"), metrics.body());

    Cli.ok("umount", m.toString());
    mounts.remove(m);
    String logged = "";
    for (int i = 0; i < 50 && !logged.contains("counters of the mount"); i++) {
      Thread.sleep(100);
      logged = Files.readString(log);
    }
    assertTrue(logged.matches("(?s).*counters of the mount on .*fetchedBytes=[1-9].*"), logged);
  }

  @Test
  void statsCommand_onAPlainDirectory_saysItIsNotAMount() throws Exception {
    Processes.Result r = Cli.run("stats", tmp.toString());
    assertEquals(1, r.exit(), r.stderr());
    assertTrue(r.stderr().contains(tmp + " is not a puzzlefs mount"), r.stderr());
  }
}
