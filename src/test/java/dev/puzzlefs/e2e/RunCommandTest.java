package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.testing.DebianRootfs;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code puzzlefs run} and {@code puzzlefs bundle} on the debootstrap image, lazily from a real
 * registry on 127.0.0.1, with both runtimes (runc and the unshare fallback): output, exit status,
 * the container's view, signals, a shared cache, and nothing left behind.
 */
@Tag("e2e")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RunCommandTest {
  private static final String TAG = "bookworm";

  private Path work;
  private Path rootfs;
  private TestRegistry registry;
  private String ref;
  private Isolated cli;
  private Path warmCache;

  @BeforeAll
  void buildAndPush() throws Exception {
    assertTrue(
        Files.isExecutable(Path.of("/usr/sbin/runc")), "runc is missing: run .ci/setup-debian");
    rootfs = DebianRootfs.get();
    work = Files.createTempDirectory("puzzlefs-run-e2e-");
    Path oci = work.resolve("oci");
    Cli.ok("build", rootfs.toString(), oci.toString(), TAG);
    registry = TestRegistry.launch();
    ref = "docker://" + registry.hostPort() + "/run/debian:" + TAG;
    Cli.ok("push", "--plain-http", oci.toString(), TAG, ref);
    cli = new Isolated(work);
    warmCache = work.resolve("warm-cache");
  }

  @AfterAll
  void cleanUp() throws Exception {
    if (registry != null) {
      registry.close();
    }
    Processes.exec(120, null, "rm", "-rf", work.toString());
  }

  /** {@code puzzlefs run} with the runtime forced, on the class's warm cache. */
  private String[] run(String runtime, String... command) {
    return run(runtime, List.of(), command);
  }

  private String[] run(String runtime, List<String> options, String... command) {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "run", "--plain-http", "--cache-dir", warmCache.toString(), "--runtime", runtime));
    args.addAll(options);
    args.add(ref);
    args.addAll(List.of(command));
    return args.toArray(String[]::new);
  }

  /** {@code p}'s standard output, once the command has printed its first line, "ready". */
  private static BufferedReader afterReady(Process p) throws java.io.IOException {
    BufferedReader out =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    assertEquals("ready", out.readLine());
    return out;
  }

  /** {@code run [OPTIONS] IMAGE -- cat /etc/os-release} on cache {@code cache}; must succeed. */
  private Processes.Result catOsRelease(Path cache, String... options) throws Exception {
    return catOsRelease(ref, cache, options);
  }

  /** As {@link #catOsRelease(Path, String...)}, of {@code image}. */
  private Processes.Result catOsRelease(String image, Path cache, String... options)
      throws Exception {
    List<String> args =
        new java.util.ArrayList<>(List.of("run", "--plain-http", "--cache-dir", cache.toString()));
    args.addAll(List.of(options));
    args.addAll(List.of(image, "--", "cat", "/etc/os-release"));
    return cli.ok(args.toArray(String[]::new));
  }

  /** The counters {@code run --stats} printed: the last line of its standard error. */
  private static JsonNode stats(Processes.Result r) throws Exception {
    List<String> err = r.stderr().lines().toList();
    return new ObjectMapper().readTree(err.get(err.size() - 1));
  }

  @Test
  void run_fromRegistryWithEmptyCache_catsOsReleaseAndFetchesASmallShare() throws Exception {
    Processes.Result r = catOsRelease(work.resolve("empty-cache"), "--stats");

    assertEquals(Files.readString(rootfs.resolve("etc/os-release")), r.out());
    JsonNode stats = stats(r);
    long fetched = stats.get("fetchedBytes").asLong();
    long image = stats.get("imageBytes").asLong();
    assertTrue(fetched > 0 && image > 100_000_000, stats.toString());
    assertTrue(fetched < image / 20, "fetched " + fetched + " of " + image + " bytes");
    cli.assertNothingLeft(work.resolve("oci"));
  }

  /**
   * A run records what its command read; a later run with an empty cache, given that list, fetches
   * those chunks before the command asks: its reads seldom wait (only when the command overtakes
   * the fetches, a race on a loaded machine), far less than without the list, and nothing else is
   * fetched.
   */
  @Test
  void run_recordedPrefetchList_nextRunFetchesItUpFrontAndHardlyStalls() throws Exception {
    Path list = work.resolve("cat.prefetch");
    Processes.Result first =
        catOsRelease(
            work.resolve("record-cache"), "--stats", "--record-prefetch-list", list.toString());
    assertEquals(Files.readString(rootfs.resolve("etc/os-release")), first.out());
    List<String> lines = Files.readAllLines(list);
    assertTrue(lines.get(0).startsWith("# prefetch list of " + ref), lines.toString());
    assertTrue(lines.contains("/usr/bin/cat"), lines.toString());
    assertTrue(
        lines.stream().anyMatch(l -> l.matches("/usr/lib/x86_64-linux-gnu/libc\\.so\\.6(\t.*)?")),
        lines.toString());
    assertTrue(lines.stream().anyMatch(l -> l.endsWith("os-release")), lines.toString());
    long chunkLines = lines.stream().filter(l -> l.matches("#chunk sha256:[0-9a-f]{64}")).count();

    Processes.Result second =
        catOsRelease(work.resolve("replay-cache"), "--stats", "--prefetch-list", list.toString());

    assertEquals(first.out(), second.out());
    JsonNode stats = stats(second);
    long planned = stats.get("prefetchPlanned").asLong();
    assertTrue(planned > 5, stats.toString());
    assertEquals(planned, stats.get("prefetchFetched").asLong(), stats.toString());
    // The recorded chunks were fetched by digest, before the image was open: the same chunks.
    assertEquals(planned, chunkLines, lines.toString());
    assertEquals(chunkLines, stats.get("earlyChunksPlanned").asLong(), stats.toString());
    assertEquals(chunkLines, stats.get("earlyChunksFetched").asLong(), stats.toString());
    long unlisted = stats(first).get("readStalls").asLong();
    long stalls = stats.get("readStalls").asLong();
    assertTrue(
        stalls <= 4 && stalls < unlisted,
        "reads found their chunks: " + stalls + " stalls against " + unlisted + ": " + stats);
    assertTrue(
        stats.get("fetchedBlobs").asLong() <= planned + 2 + Image.READAHEAD_CHUNKS,
        "the list, and little else: " + stats);
    cli.assertNothingLeft();
  }

  @Test
  void run_listOfChunksOnly_fetchesThemBeforeTheImageIsOpen_andSkipsOnesTheImageLacks()
      throws Exception {
    Path recorded = work.resolve("chunks-source.prefetch");
    catOsRelease(
        work.resolve("chunks-record-cache"), "--record-prefetch-list", recorded.toString());
    List<String> chunks =
        Files.readAllLines(recorded).stream().filter(l -> l.startsWith("#chunk ")).toList();
    assertTrue(chunks.size() > 5, chunks.toString());
    Path list = work.resolve("chunks-only.prefetch");
    List<String> text = new java.util.ArrayList<>(chunks);
    text.addAll(chunks); // each listed twice: fetched and counted once
    text.add("#chunk sha256:" + "ab".repeat(32)); // no chunk of this image
    Files.write(list, text);

    Processes.Result r =
        catOsRelease(
            work.resolve("chunks-only-cache"), "--stats", "--prefetch-list", list.toString());

    assertEquals(Files.readString(rootfs.resolve("etc/os-release")), r.out());
    JsonNode stats = stats(r);
    assertEquals(chunks.size(), stats.get("earlyChunksPlanned").asLong(), stats.toString());
    assertEquals(chunks.size(), stats.get("earlyChunksFetched").asLong(), stats.toString());
    assertEquals(0, stats.get("earlyChunksFailed").asLong(), stats.toString());
    assertEquals(0, stats.get("fetchErrors").asLong(), "the unknown digest was not asked for");
    cli.assertNothingLeft();
  }

  /**
   * A list published with the image's chunk pack ({@code push --pack --prefetch-list}) is fetched
   * up front by a run given no list, each chunk once; {@code --no-published-list} fetches none of
   * it. {@code push --prefetch-list} without {@code --pack} is a usage error.
   */
  @Test
  void run_listPublishedWithThePack_isFetchedUpFrontWithoutBeingGiven() throws Exception {
    Path recorded = work.resolve("published-source.prefetch");
    catOsRelease(
        work.resolve("published-record-cache"), "--record-prefetch-list", recorded.toString());
    long chunks =
        Files.readAllLines(recorded).stream().filter(l -> l.startsWith("#chunk ")).count();
    assertTrue(chunks > 5, "recorded " + chunks + " chunks");
    String listed = "docker://" + registry.hostPort() + "/run/listed:" + TAG;
    Processes.Result noPack =
        Cli.run(
            "push",
            "--plain-http",
            "--prefetch-list",
            recorded.toString(),
            work.resolve("oci").toString(),
            TAG,
            listed);
    assertEquals(2, noPack.exit(), noPack.stderr());
    assertTrue(noPack.stderr().contains("add --pack"), noPack.stderr());
    Processes.Result pushed =
        Cli.ok(
            "push",
            "--plain-http",
            "--pack",
            "--prefetch-list",
            recorded.toString(),
            work.resolve("oci").toString(),
            TAG,
            listed);
    String said = pushed.stderr() + pushed.out();
    assertTrue(said.contains("with a prefetch list of " + chunks + " chunks"), said);

    String osRelease = Files.readString(rootfs.resolve("etc/os-release"));
    Processes.Result r = catOsRelease(listed, work.resolve("published-cache"), "--stats");
    assertEquals(osRelease, r.out());
    JsonNode stats = stats(r);
    assertEquals(chunks, stats.get("earlyChunksPlanned").asLong(), stats.toString());
    assertEquals(chunks, stats.get("earlyChunksFetched").asLong(), stats.toString());

    Processes.Result without =
        catOsRelease(listed, work.resolve("unpublished-cache"), "--stats", "--no-published-list");
    assertEquals(osRelease, without.out());
    JsonNode none = stats(without);
    assertTrue(
        none.get("earlyChunksPlanned") == null || none.get("earlyChunksPlanned").asLong() == 0,
        none.toString());
    // With no list at all, the packed image's run still fetched cat whole ahead of its start, and
    // what it links: the dynamic loader and libc.
    assertTrue(none.get("linkedFiles").asLong() >= 2, none.toString());
    assertTrue(none.get("wholeFiles").asLong() >= 3, none.toString());
    cli.assertNothingLeft();
  }

  @Test
  void run_recordPrefetchListThatCannotBeWrittenAtTheEnd_exitsOneThoughTheCommandSucceeded()
      throws Exception {
    Path dir = Files.createDirectories(work.resolve("vanishing"));
    Path list = dir.resolve("list");
    Process p =
        cli.start(
            run(
                "runc",
                List.of("--record-prefetch-list", list.toString()),
                "sh",
                "-c",
                "echo ready; sleep 2"));
    CompletableFuture<byte[]> err = Isolated.drain(p.getErrorStream());
    BufferedReader out = afterReady(p);
    Files.delete(dir); // after the check at the start, before the list is written

    assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
    String stderr = new String(err.get(), StandardCharsets.UTF_8);
    assertEquals(1, p.exitValue(), stderr);
    assertTrue(stderr.contains("cannot write --record-prefetch-list " + list), stderr);
    cli.assertNothingLeft();
  }

  @Test
  void run_recordPrefetchListInMissingDirectory_failsBeforeRunning() throws Exception {
    Path list = work.resolve("no-such-dir/list");
    Processes.Result r =
        cli.run(run("runc", List.of("--record-prefetch-list", list.toString()), "true"));

    assertEquals(1, r.exit(), r.stderr());
    assertTrue(r.stderr().contains("cannot write --record-prefetch-list " + list), r.stderr());
    cli.assertNothingLeft();
  }

  @ParameterizedTest
  @ValueSource(strings = {"runc", "unshare"})
  void run_commandExitsSeven_runExitsSevenAndLeavesNothing(String runtime) throws Exception {
    Processes.Result r = cli.run(run(runtime, "sh", "-c", "echo out; exit 7"));

    assertEquals(7, r.exit(), r.stderr());
    assertEquals("out\n", r.out());
    cli.assertNothingLeft();
  }

  @Test
  void run_commandNotInTheImage_exits127AndOneNotExecutable126_leavingNothing() throws Exception {
    Processes.Result missing = cli.run(run("runc", "--", "no-such-command", "arg"));
    Processes.Result notExecutable = cli.run(run("runc", "--", "/etc/os-release"));

    assertEquals(127, missing.exit(), missing.stderr());
    assertTrue(
        missing
            .stderr()
            .contains(
                "puzzlefs run: no-such-command: not found in the image (PATH=/usr/local/sbin:"),
        missing.stderr());
    assertEquals(126, notExecutable.exit(), notExecutable.stderr());
    assertTrue(
        notExecutable.stderr().contains("/etc/os-release: not an executable file in the image"),
        notExecutable.stderr());
    cli.assertNothingLeft();
  }

  @ParameterizedTest
  @ValueSource(strings = {"runc", "unshare"})
  void run_container_hasItsOwnNamespacesProcDevSysAndTheHostsDns(String runtime) throws Exception {
    String script =
        String.join(
            "; ",
            "echo pid=$$",
            "echo host=$(hostname)",
            "echo pwd=$(pwd)",
            "echo var=$GREETING",
            "echo procs=$(ls /proc | grep -c '^[0-9]')",
            "echo dev=$(ls /dev | tr '\\n' ' ')",
            "head -c 4 /dev/urandom | wc -c | sed 's/^/urandom=/'",
            "touch /sys/x 2>/dev/null && echo sys=rw || echo sys=ro",
            "cat /etc/resolv.conf",
            "echo written > /root/note && cat /root/note");
    Processes.Result r =
        cli.ok(
            run(runtime, List.of("--env", "GREETING=hi", "--workdir", "/usr"), "sh", "-c", script));

    String out = r.out();
    assertTrue(out.contains("pid=1\n"), out);
    assertTrue(out.contains("host=puzzlefs\n"), out);
    assertTrue(out.contains("pwd=/usr\n"), out);
    assertTrue(out.contains("var=hi\n"), out);
    assertTrue(out.contains("urandom=4\n"), out);
    assertTrue(out.contains("sys=ro\n"), out);
    assertTrue(out.contains("written\n"), out);
    for (String dev : List.of("null", "zero", "full", "random", "urandom", "tty", "pts", "shm")) {
      assertTrue(out.matches("(?s).*dev=.*\\b" + dev + "\\b.*"), dev + " in " + out);
    }
    assertTrue(out.contains(Files.readString(Path.of("/etc/resolv.conf"))), out);
    int procs = Integer.parseInt(out.replaceAll("(?s).*procs=(\\d+).*", "$1"));
    assertTrue(procs < 5, "its own PID namespace shows only its processes: " + out);
    cli.assertNothingLeft();
  }

  @ParameterizedTest
  @ValueSource(strings = {"runc", "unshare"})
  void run_sigtermToRun_reachesTheCommandAndEverythingIsTakenDown(String runtime) throws Exception {
    Process p =
        cli.start(
            run(
                runtime,
                "sh",
                "-c",
                "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done"));
    CompletableFuture<byte[]> err = Isolated.drain(p.getErrorStream());
    BufferedReader out = afterReady(p);
    CompletableFuture<String> rest =
        CompletableFuture.supplyAsync(() -> out.lines().collect(Collectors.joining("\n")));

    p.toHandle()
        .destroy(); // (Process.destroy would close our end of its pipes) SIGTERM to run itself

    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "run exits after SIGTERM");
    assertEquals("got-term", rest.join());
    assertEquals(42, p.exitValue(), () -> new String(err.join(), StandardCharsets.UTF_8));
    cli.assertNothingLeft();
  }

  @ParameterizedTest
  @ValueSource(strings = {"runc", "unshare"})
  void run_commandIgnoringSigterm_isKilledAfterTheStopTimeout(String runtime) throws Exception {
    Process p =
        cli.start(
            run(runtime, List.of("--stop-timeout", "2"), "sh", "-c", "echo ready; exec sleep 600"));
    BufferedReader out =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<byte[]> err = Isolated.drain(p.getErrorStream());
    assertEquals("ready", out.readLine());
    CompletableFuture<Long> rest = CompletableFuture.supplyAsync(() -> out.lines().count());

    p.toHandle()
        .destroy(); // (Process.destroy would close our end of its pipes) sleep is PID 1 of its
    // namespace and has no handler: it ignores SIGTERM

    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "run exits");
    String stderr = new String(err.join(), StandardCharsets.UTF_8);
    assertEquals(128 + 9, p.exitValue(), stderr);
    assertFalse(stderr.contains("sigprocmask"), stderr);
    assertEquals(0, rest.join());
    cli.assertNothingLeft();
  }

  @ParameterizedTest
  @ValueSource(strings = {"runc", "unshare"})
  void run_commandKilledBySigkillFromOutside_exits137(String runtime) throws Exception {
    Process p = cli.start(run(runtime, "sh", "-c", "echo ready; exec sleep 601"));
    CompletableFuture<byte[]> err = Isolated.drain(p.getErrorStream());
    BufferedReader out = afterReady(p);
    CompletableFuture<Long> rest = CompletableFuture.supplyAsync(() -> out.lines().count());

    sleepUnder(p, "601").destroyForcibly(); // SIGKILL, from a process that is not run

    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "run exits");
    String stderr = new String(err.join(), StandardCharsets.UTF_8);
    assertEquals(128 + 9, p.exitValue(), stderr);
    // util-linux's unshare --fork said "sigprocmask unblock failed" and exited 1 here
    assertFalse(stderr.contains("sigprocmask"), stderr);
    assertEquals(0, rest.join());
    cli.assertNothingLeft();
  }

  /** The {@code sleep SECONDS} that {@code run} started, once it runs. */
  private static ProcessHandle sleepUnder(Process run, String seconds) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      Optional<ProcessHandle> sleep =
          run.toHandle()
              .descendants()
              .filter(
                  h ->
                      h.info().command().map(c -> c.endsWith("/sleep")).orElse(false)
                          && h.info()
                              .arguments()
                              .map(a -> List.of(a).equals(List.of(seconds)))
                              .orElse(false))
              .findFirst();
      if (sleep.isPresent()) {
        return sleep.get();
      }
      assertTrue(System.nanoTime() < deadline, "sleep " + seconds + " started");
      Thread.sleep(50);
    }
  }

  @Test
  void run_twoAtOnce_bothSucceedAndShareOneCache() throws Exception {
    Path cache = work.resolve("shared-cache");
    String[] args = {
      "run",
      "--plain-http",
      "--stats",
      "--cache-dir",
      cache.toString(),
      ref,
      "--",
      "sh",
      "-c",
      "cat /etc/os-release; ls -R /usr/lib >/dev/null"
    };
    CompletableFuture<Processes.Result> a = CompletableFuture.supplyAsync(() -> call(args));
    CompletableFuture<Processes.Result> b = CompletableFuture.supplyAsync(() -> call(args));

    String expected = Files.readString(rootfs.resolve("etc/os-release"));
    for (Processes.Result r : List.of(a.join(), b.join())) {
      assertEquals(0, r.exit(), r.stderr());
      assertEquals(expected, r.out());
    }
    JsonNode stats = stats(cli.ok(args));
    // What the command reads comes from the shared cache; only speculative readahead may reach
    // chunks the earlier runs had not finished fetching when they unmounted.
    assertTrue(
        stats.get("fetchedBlobs").asLong()
            <= dev.puzzlefs.reader.Image.READAHEAD_CHUNKS
                + dev.puzzlefs.reader.Image.STREAM_AHEAD_CHUNKS,
        "all but readahead from the shared cache: " + stats);
    // Most of what it reads is disk hits: the command reads some 70 distinct chunks, and at most
    // the 16 of readahead above are fetched (the earlier runs' readahead decides how many, by
    // timing). With all 16 fetched, the disk gave the other 55 or so (a CI run: 55 disk hits, 10
    // memory hits of chunks read twice, 16 fetched), so three times the fetches is the bound.
    assertTrue(
        stats.get("diskHits").asLong() > 3 * stats.get("fetchedBlobs").asLong(), stats.toString());
    cli.assertNothingLeft();
  }

  private Processes.Result call(String[] args) {
    try {
      return cli.run(args);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void bundle_runsWithRuncAndUmountTakesItDown() throws Exception {
    Path bundle = work.resolve("bundle");
    cli.ok("bundle", "--plain-http", "--cache-dir", warmCache.toString(), ref, bundle.toString());
    ObjectMapper json = new ObjectMapper();
    ObjectNode config = (ObjectNode) json.readTree(bundle.resolve("config.json").toFile());
    assertEquals("rootfs", config.get("root").get("path").asText());
    ArrayNode args = ((ObjectNode) config.get("process")).putArray("args");
    args.add("sh").add("-c").add("cat /etc/os-release && echo from-runc > /root/out");
    json.writeValue(bundle.resolve("config.json").toFile(), config);

    Processes.Result r =
        Processes.exec(120, null, "runc", "run", "--bundle", bundle.toString(), "puzzlefs-test");

    assertEquals(0, r.exit(), r.stderr());
    assertEquals(Files.readString(rootfs.resolve("etc/os-release")), r.out());
    assertEquals("from-runc\n", Files.readString(bundle.resolve("rootfs/root/out")));
    cli.ok("umount", bundle.resolve("rootfs").toString());
    assertNotEquals(
        "overlay", Files.getFileStore(bundle.resolve("rootfs")).type(), "overlay unmounted");
    cli.assertNothingLeft(bundle);
    // The rootfs keeps the image's set-user-ID programs for the container: a bundle directory the
    // command makes is its owner's alone, and one that others may enter gets a warning.
    assertEquals(
        java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"),
        Files.getPosixFilePermissions(bundle));
    Path open =
        Files.createDirectory(
            work.resolve("open-bundle"),
            java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x")));
    Processes.Result warned =
        cli.ok("bundle", "--plain-http", "--cache-dir", warmCache.toString(), ref, open.toString());
    assertTrue(
        warned.stderr().contains(open + " is open to every user")
            && warned.stderr().contains("chmod 700 " + open),
        warned.stderr());
    cli.ok("umount", open.resolve("rootfs").toString());
  }
}
