package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.testing.DebianRootfs;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code puzzlefs run} through the mount server: the server mounts, the launcher starts the
 * container's command with its own standard input and output, passes on SIGTERM, and reports the
 * exit status; nothing is left behind, also when the client is killed. The client side runs with
 * JVM options no JVM accepts, so a run that started a JVM of its own fails.
 */
@Tag("e2e")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ServerRunTest {
  private static final Path LAUNCHER = Path.of("bin/puzzlefs").toAbsolutePath();

  private Path work;
  private Path rootfs;
  private Path jvmTmp;
  private TestRegistry registry;
  private String ref;

  @BeforeAll
  void startAll() throws Exception {
    assertTrue(Files.isExecutable(Path.of("/usr/sbin/runc")), "runc is missing: .ci/setup-debian");
    rootfs = DebianRootfs.get();
    work = Files.createTempDirectory("puzzlefs-server-run-");
    jvmTmp = Files.createDirectories(work.resolve("jvm-tmp"));
    Path oci = work.resolve("oci");
    Cli.ok("build", rootfs.toString(), oci.toString(), "bookworm");
    registry = TestRegistry.launch();
    ref = "docker://" + registry.hostPort() + "/served/debian:bookworm";
    Cli.ok("push", "--plain-http", oci.toString(), "bookworm", ref);
    // The server's temporary directory is the test's, so leftovers of a run can be seen.
    startServer();
  }

  /** The server's temporary directory is the test's; its collections are logged. */
  private String serverJvmOptions() {
    return "-Djava.io.tmpdir=" + jvmTmp + " -Xlog:gc:file=" + work.resolve("server-gc.log");
  }

  /** How many full collections the server ran because it was idle. */
  private long idleCollections() throws IOException {
    Path log = work.resolve("server-gc.log");
    if (!Files.exists(log)) {
      return 0;
    }
    try (var lines = Files.lines(log)) {
      return lines.filter(l -> l.contains("Pause Full (System.gc())")).count();
    }
  }

  @Test
  void run_thenIdle_serverCollectsOnceTheRunHasEnded() throws Exception {
    // Let whatever an earlier test left pending be collected first.
    Thread.sleep(1500);
    long before = idleCollections();

    Processes.Result r = served("run", "oci:bookworm", "--", "true");
    assertEquals(0, r.exit(), r.stderr());

    long deadline = System.nanoTime() + 10_000_000_000L;
    while (idleCollections() == before && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertEquals(before + 1, idleCollections(), "one idle collection after the run");
  }

  @AfterAll
  void stopAll() throws Exception {
    if (work == null) {
      return;
    }
    launch(Map.of(), "serve", "--stop");
    if (registry != null) {
      registry.close();
    }
    Processes.exec(120, null, "rm", "-rf", work.toString());
  }

  private Map<String, String> env(Map<String, String> extra) {
    Map<String, String> env = new HashMap<>();
    env.put("PUZZLEFS_CLASSPATH", System.getProperty("java.class.path"));
    env.put("JAVA_HOME", System.getProperty("java.home"));
    env.put("PUZZLEFS_SERVER_DIR", work.resolve("server").toString());
    env.put("XDG_CACHE_HOME", work.resolve("xdg-cache").toString());
    env.put("PUZZLEFS_STATE_DIR", work.resolve("state").toString());
    env.put("PUZZLEFS_SYSLOG_SOCKET", "");
    env.putAll(extra);
    return env;
  }

  private Processes.Result launch(Map<String, String> extra, String... args)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(LAUNCHER.toString()));
    cmd.addAll(List.of(args));
    return Processes.execInWithEnv(work, 300, env(extra), cmd.toArray(String[]::new));
  }

  /** A client that cannot start a JVM: it works only through the server. */
  private Map<String, String> noJvm() {
    return Map.of("PUZZLEFS_JAVA_OPTS", "-XX:+NoSuchOptionSoNoJvmStarts");
  }

  private Processes.Result served(String... args) throws IOException, InterruptedException {
    return launch(noJvm(), args);
  }

  @Test
  void run_fromTheRegistry_withAnEmptyCache_throughTheServer() throws Exception {
    Processes.Result r =
        served(
            "run",
            "--plain-http",
            "--stats",
            "--cache-dir",
            "empty-cache",
            ref,
            "--",
            "cat",
            "/etc/os-release");

    assertEquals(0, r.exit(), r.stderr());
    assertEquals(Files.readString(rootfs.resolve("etc/os-release")), r.out());
    List<String> err = r.stderr().lines().toList();
    JsonNode stats = new ObjectMapper().readTree(err.get(err.size() - 1));
    long fetched = stats.get("fetchedBytes").asLong();
    long image = stats.get("imageBytes").asLong();
    assertTrue(fetched > 0 && fetched < image / 20, "fetched " + fetched + " of " + image);
    assertTrue(Files.isDirectory(work.resolve("empty-cache")), "the client's relative cache dir");
    assertNothingLeft();
  }

  @Test
  void exitStatus_andStandardInput_passThrough_withBothRuntimes() throws Exception {
    for (String runtime : List.of("runc", "unshare")) {
      Processes.Result seven =
          served("run", "--runtime", runtime, "oci:bookworm", "--", "sh", "-c", "exit 7");
      assertEquals(7, seven.exit(), runtime + ": " + seven.stderr());
      Processes.Result missing =
          served("run", "--runtime", runtime, "oci:bookworm", "--", "no-such-command");
      assertEquals(127, missing.exit(), runtime + ": " + missing.stderr());
      assertTrue(
          missing.stderr().contains("puzzlefs run: no-such-command: not found in the image"),
          runtime + ": " + missing.stderr());

      Map<String, String> env = env(noJvm());
      Processes.Result echoed =
          Processes.execInWithEnv(
              work,
              120,
              env,
              "bash",
              "-c",
              "echo from-stdin | "
                  + LAUNCHER
                  + " run --runtime "
                  + runtime
                  + " oci:bookworm -- cat");
      assertEquals(0, echoed.exit(), runtime + ": " + echoed.stderr());
      assertEquals("from-stdin\n", echoed.out(), runtime);
    }
    assertNothingLeft();
  }

  @Test
  void twoRunsAtOnce_bothSucceed() throws Exception {
    List<CompletableFuture<Processes.Result>> runs = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      runs.add(
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return served(
                      "run",
                      "--plain-http",
                      "--cache-dir",
                      "shared-cache",
                      ref,
                      "--",
                      "cat",
                      "/etc/debian_version");
                } catch (IOException | InterruptedException e) {
                  throw new IllegalStateException(e);
                }
              }));
    }
    for (CompletableFuture<Processes.Result> run : runs) {
      Processes.Result r = run.join();
      assertEquals(0, r.exit(), r.stderr());
      assertEquals(Files.readString(rootfs.resolve("etc/debian_version")), r.out());
    }
    assertNothingLeft();
  }

  @Test
  void sigtermToTheClient_reachesTheCommand_andEverythingIsTakenDown() throws Exception {
    Process client = startClient("--stop-timeout", "2", "oci:bookworm", "--", "sleep", "987");
    awaitCommand("987");

    client.destroy(); // SIGTERM
    assertTrue(client.waitFor(30, TimeUnit.SECONDS), "run ends after SIGTERM");

    // sleep, PID 1 of its namespace, has no handler: it is killed after --stop-timeout.
    assertEquals(137, client.exitValue());
    assertNothingLeft();
  }

  @Test
  void withUnshare_aCommandKilledBySigkill_exits137_byTheStopTimeoutOrFromOutside()
      throws Exception {
    Path err = work.resolve("sigkill-stop-timeout.err");
    Process client =
        startClient(
            err,
            "--runtime",
            "unshare",
            "--stop-timeout",
            "2",
            "oci:bookworm",
            "--",
            "sleep",
            "985");
    awaitCommand("985");

    client.destroy(); // SIGTERM: sleep, PID 1 of its namespace, ignores it and is killed later
    assertTrue(client.waitFor(30, TimeUnit.SECONDS), "run ends after SIGTERM");

    assertEquals(137, client.exitValue(), Files.readString(err));
    // util-linux's unshare --fork said "sigprocmask unblock failed" and exited 1 here
    assertFalse(Files.readString(err).contains("sigprocmask"), Files.readString(err));

    err = work.resolve("sigkill-from-outside.err");
    client = startClient(err, "--runtime", "unshare", "oci:bookworm", "--", "sleep", "986");
    awaitCommand("986");

    for (long pid : commands("986")) {
      ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly); // SIGKILL
    }
    assertTrue(client.waitFor(30, TimeUnit.SECONDS), "run ends after its command");

    assertEquals(137, client.exitValue(), Files.readString(err));
    assertFalse(Files.readString(err).contains("sigprocmask"), Files.readString(err));
    assertNothingLeft();
  }

  @Test
  void aKilledClient_getsItsCommandKilled_andEverythingIsTakenDown() throws Exception {
    Process client = startClient("oci:bookworm", "--", "sleep", "988");
    awaitCommand("988");

    client.destroyForcibly(); // SIGKILL: the client cannot clean up anything
    client.waitFor();

    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!commands("988").isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertEquals(List.of(), commands("988"), "the command is killed");
    assertNothingLeft();
  }

  @Test
  void theCommand_getsOnlyTheStandardStreams_andSigintNotIgnored() throws Exception {
    // The launcher's own descriptors, and one the caller leaves open (a directory outside the
    // container's root), must not reach the command.
    Processes.Result r =
        Processes.execInWithEnv(
            work,
            120,
            env(noJvm()),
            "bash",
            "-c",
            "exec 8</; "
                + LAUNCHER
                + " run --runtime unshare oci:bookworm -- sh -c"
                + " 'ls /proc/self/fd; grep SigIgn /proc/self/status'");
    assertEquals(0, r.exit(), r.stderr());
    List<String> lines = r.out().lines().toList();
    // ls itself holds one more descriptor, for the directory it lists.
    assertEquals(List.of("0", "1", "2", "3"), lines.subList(0, lines.size() - 1), r.out());
    long ignored = Long.parseLong(lines.get(lines.size() - 1).replaceAll(".*\\s", ""), 16);
    assertEquals(0, ignored & 0x6, "SIGINT and SIGQUIT are not ignored: " + r.out());
  }

  @Test
  void sigtermWhileTheImageMounts_cancelsTheRun_beforeTheCommandStarts() throws Exception {
    Path persist = work.resolve("cancelled-persist");
    long registryPid = registry.pid();
    Processes.run(10, "kill", "-STOP", Long.toString(registryPid));
    Process client;
    try {
      client =
          startClient(
              "--plain-http",
              "--cache-dir",
              "stalled-cache",
              "--persist",
              persist.toString(),
              ref,
              "--",
              "touch",
              "/ran");
      Thread.sleep(1500); // the server is waiting for the registry
      client.destroy(); // SIGTERM
      Thread.sleep(500);
    } finally {
      Processes.run(10, "kill", "-CONT", Long.toString(registryPid));
    }
    assertTrue(client.waitFor(120, TimeUnit.SECONDS), "run ends");
    assertEquals(128 + 15, client.exitValue());
    assertTrue(!Files.exists(persist.resolve("upper/ran")), "the command did not run");
    assertNothingLeft();
  }

  @Test
  void stoppingTheServer_endsTheRunsItServes_andTakesThemDown() throws Exception {
    Path err = work.resolve("stopped-server.err");
    Process client =
        startClient(
            err,
            "--runtime",
            "unshare",
            "oci:bookworm",
            "--",
            "sh",
            "-c",
            "trap 'exit 42' TERM; sleep 990 & wait");
    awaitCommand("990");
    try {
      long server = serverPid();
      Processes.Result stop = launch(Map.of(), "serve", "--stop");
      assertEquals(0, stop.exit(), stop.stderr());
      assertTrue(client.waitFor(60, TimeUnit.SECONDS), "run ends with the server");
      assertEquals(42, client.exitValue(), "the command got SIGTERM and exited its way");
      assertEquals(
          "puzzlefs: the mount server (pid "
              + server
              + ") was stopped during this run; it passed SIGTERM on to the command and took"
              + " down its mounts\n",
          Files.readString(err));
      assertNothingLeft();
    } finally {
      client.destroyForcibly();
      startServer();
    }
  }

  @Test
  void aKilledServer_getsTheCommandOfItsRunStopped_byTheClient_andEverythingTakenDown()
      throws Exception {
    // runc with the default --stop-timeout (sleep, PID 1, ignores SIGTERM: killed 10 s later);
    // unshare, whose command is the child of the process the client started.
    for (String runtime : List.of("runc", "unshare")) {
      String seconds = runtime.equals("runc") ? "991" : "992";
      Path err = work.resolve("killed-server-" + runtime + ".err");
      List<String> args = new ArrayList<>(List.of("--runtime", runtime));
      if (runtime.equals("unshare")) {
        args.addAll(List.of("--stop-timeout", "2"));
      }
      args.addAll(List.of("oci:bookworm", "--", "sleep", seconds));
      Process client = startClient(err, args.toArray(String[]::new));
      try {
        awaitCommand(seconds);
        List<String> exec = commandOfTheRun();
        // runc run --bundle DIR/bundle ID, or unshare ... DIR/rootfs ...
        String runDir =
            exec.stream()
                .filter(w -> w.startsWith(jvmTmp + "/puzzlefs-run-"))
                .map(w -> Path.of(w).getParent().toString())
                .findFirst()
                .orElseThrow();
        long server = serverPid();

        Processes.run(10, "kill", "-KILL", Long.toString(server));

        assertTrue(
            client.waitFor(20, TimeUnit.SECONDS), runtime + ": run ends, though sleep would not");
        String stderr = Files.readString(err);
        assertTrue(client.exitValue() != 0, runtime + ": " + client.exitValue() + ", " + stderr);
        // The command is stopped, unless it died first: a page it faults in from the dead image
        // mount is a SIGBUS, and the loader may fail to read a library from it (and say so first).
        assertTrue(
            stderr.contains(
                    "puzzlefs: the mount server (pid "
                        + server
                        + ") died during this run (killed by SIGKILL?); ")
                && (stderr.contains("; stopped the command and took down its mounts")
                    || stderr.contains("; the command had exited (")
                        && stderr.contains("); took down its mounts")),
            runtime + ": " + stderr);
        assertEquals(List.of(), commands(seconds), runtime + ": the command is stopped");
        assertNothingLeft();
        assertTrue(
            Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .noneMatch(l -> l.contains(runDir)),
            runtime + ": no mount of the run's");
        try (Stream<Path> states = Files.list(work.resolve("state"))) {
          for (Path state : (Iterable<Path>) states::iterator) {
            assertTrue(
                !Files.readString(state).contains(runDir), runtime + ": state file " + state);
          }
        }
        if (runtime.equals("runc")) {
          Processes.Result state =
              Processes.exec(10, null, "runc", "state", exec.get(exec.size() - 1));
          assertTrue(state.exit() != 0, "no container left: " + state.out());
        }
        try (Stream<Path> s = Files.list(work.resolve("server"))) {
          // What any server killed with SIGKILL leaves (the next one replaces it), no request.
          List<String> left = s.map(p -> p.getFileName().toString()).toList();
          assertTrue(
              List.of("jar", "log", "pid", "requests").containsAll(left), runtime + ": " + left);
        }
      } finally {
        client.destroyForcibly();
        startServer();
      }
    }
  }

  private Process startClient(String... runArgs) throws IOException {
    return startClient(null, runArgs);
  }

  /** A client of {@code run runArgs} whose standard error goes to {@code err} (null: nowhere). */
  private Process startClient(Path err, String... runArgs) throws IOException {
    List<String> cmd = new ArrayList<>(List.of(LAUNCHER.toString(), "run"));
    cmd.addAll(List.of(runArgs));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(work.toFile());
    pb.environment().putAll(env(noJvm()));
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
    pb.redirectError(
        err == null ? ProcessBuilder.Redirect.DISCARD : ProcessBuilder.Redirect.to(err.toFile()));
    return pb.start();
  }

  private long serverPid() throws IOException {
    return Long.parseLong(Files.readString(work.resolve("server/pid")).strip());
  }

  private void startServer() throws IOException, InterruptedException {
    Processes.Result r = launch(Map.of("PUZZLEFS_MOUNT_JAVA_OPTS", serverJvmOptions()), "serve");
    assertEquals(0, r.exit(), r.stderr());
  }

  /** The command line the launcher runs for the one run under way ({@code exec} in its request). */
  private List<String> commandOfTheRun() throws IOException {
    List<Path> runs;
    try (Stream<Path> s = Files.list(work.resolve("server"))) {
      runs =
          s.filter(p -> p.getFileName().toString().startsWith("req."))
              .map(p -> p.resolve("exec"))
              .filter(Files::exists)
              .toList();
    }
    assertEquals(1, runs.size(), "one run under way: " + runs);
    return List.of(Files.readString(runs.get(0)).split("\0"));
  }

  /** The pids of {@code sleep SECONDS} processes. */
  private static List<Long> commands(String seconds) {
    return ProcessHandle.allProcesses()
        .filter(
            p ->
                p.info().command().map(c -> c.endsWith("/sleep")).orElse(false)
                    && p.info()
                        .arguments()
                        .map(a -> List.of(a).equals(List.of(seconds)))
                        .orElse(false))
        .map(ProcessHandle::pid)
        .toList();
  }

  private static void awaitCommand(String seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (commands(seconds).isEmpty()) {
      assertTrue(System.nanoTime() < deadline, "the command started");
      Thread.sleep(50);
    }
  }

  /** No mount under the server's temporary directory, which is empty, within a few seconds. */
  private void assertNothingLeft() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (true) {
      List<String> mounted =
          Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
              .filter(l -> l.contains(jvmTmp.toString()))
              .toList();
      List<Path> left;
      try (Stream<Path> s = Files.list(jvmTmp)) {
        left = s.filter(p -> p.getFileName().toString().startsWith("puzzlefs-run-")).toList();
      }
      if (mounted.isEmpty() && left.isEmpty()) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("left behind: mounts " + mounted + ", directories " + left);
      }
      Thread.sleep(100);
    }
  }
}
