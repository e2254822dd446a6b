package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.fuse.MountTable;
import dev.puzzlefs.testing.FuseTesting;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mount server, as users meet it: {@code bin/puzzlefs serve} starts it, background mounts
 * through the launcher go to it (no JVM of their own), with the client's relative paths, exit
 * statuses and messages; what it does not serve runs as without it; stopping it unmounts what it
 * serves.
 */
class ServerTest {
  private static final Path LAUNCHER = Path.of("bin/puzzlefs").toAbsolutePath();

  @TempDir Path tmp;
  private Path serverDir;
  private final List<Path> mounts = new ArrayList<>();

  @BeforeEach
  void image() throws Exception {
    FuseTesting.assumeFuse();
    Path src = Files.createDirectories(tmp.resolve("src/etc"));
    Files.writeString(src.resolve("motd"), "from the image\n");
    Files.write(src.resolve("data"), new byte[300_000]);
    Cli.ok("build", src.getParent().toString(), tmp.resolve("oci").toString(), "v1");
    serverDir = tmp.resolve("server");
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (Path m : mounts) {
      Cli.unmountQuietly(m);
    }
    pfs("serve", "--stop");
  }

  /** {@code bin/puzzlefs args} in {@code tmp}, with the test's server directory and caches. */
  private Processes.Result pfs(String... args) throws IOException, InterruptedException {
    return pfsWith(Map.of(), args);
  }

  /** The launcher's environment in these tests: the server's, unless a test says otherwise. */
  private Map<String, String> env() {
    Map<String, String> env = new HashMap<>();
    env.put("PUZZLEFS_CLASSPATH", System.getProperty("java.class.path"));
    env.put("JAVA_HOME", System.getProperty("java.home"));
    env.put("PUZZLEFS_SERVER_DIR", serverDir.toString());
    env.put("XDG_CACHE_HOME", tmp.resolve("xdg-cache").toString());
    env.put("PUZZLEFS_STATE_DIR", tmp.resolve("state").toString());
    env.put("PUZZLEFS_SYSLOG_SOCKET", "");
    return env;
  }

  /** Fails unless {@code r} succeeded without the server (a JVM of its own did the work). */
  private static void assertRanWithoutServer(Processes.Result r) {
    assertEquals(0, r.exit(), r.stderr());
    assertFalse(r.stderr().contains("served by the mount server"), r.stderr());
  }

  private Processes.Result pfsWith(Map<String, String> extra, String... args)
      throws IOException, InterruptedException {
    Map<String, String> env = env();
    env.putAll(extra);
    List<String> cmd = new ArrayList<>(List.of(LAUNCHER.toString()));
    cmd.addAll(List.of(args));
    return Processes.execInWithEnv(tmp, 120, env, cmd.toArray(String[]::new));
  }

  private Processes.Result ok(String... args) throws IOException, InterruptedException {
    Processes.Result r = pfs(args);
    assertEquals(0, r.exit(), () -> "puzzlefs " + String.join(" ", args) + ":\n" + r.stderr());
    return r;
  }

  private Path mountpoint(String name) throws IOException {
    Path m = Files.createDirectories(tmp.resolve(name));
    mounts.add(m);
    return m;
  }

  private long serverPid() throws IOException {
    return Long.parseLong(Files.readString(serverDir.resolve("pid")).strip());
  }

  @Test
  void backgroundMounts_goToTheServer_withTheClientsRelativePaths() throws Exception {
    Processes.Result started = ok("serve");
    assertTrue(
        started.stderr().contains("mount server listening on " + serverDir), started.stderr());
    long pid = serverPid();
    assertTrue(ok("serve", "--status").out().contains("pid " + pid));
    Path mnt = mountpoint("mnt");
    Path ready = tmp.resolve("ready");
    Processes.run(10, "mkfifo", ready.toString());
    CompletableFuture<String> word =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return Files.readString(ready);
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });

    // Relative paths: the image, the mount point and the readiness FIFO mean the client's
    // directory.
    Processes.Result r = ok("mount", "-i", "ready", "oci", "v1", "mnt");

    assertTrue(r.stderr().contains("served by the mount server, pid " + pid), r.stderr());
    assertEquals("s", word.get(30, java.util.concurrent.TimeUnit.SECONDS));
    assertEquals("from the image\n", Files.readString(mnt.resolve("etc/motd")));
    assertEquals("fuse.puzzlefs", MountTable.typeAt(mnt));
    ok("umount", "mnt");
    assertEquals(null, MountTable.typeAt(mnt));
    // The same mount point again, and the server is still the one serving.
    r = ok("mount", "oci:oci:v1", "mnt");
    assertTrue(r.stderr().contains("pid " + pid), r.stderr());
    assertEquals(300_000, Files.size(mnt.resolve("etc/data")));
    ok("umount", "mnt");
  }

  @Test
  void failuresAndUsageErrors_reachTheClient_withTheirStatus() throws Exception {
    ok("serve");
    mountpoint("mnt");

    Processes.Result badTag = pfs("mount", "oci", "nope", "mnt");
    assertEquals(1, badTag.exit(), badTag.stderr());
    assertTrue(badTag.stderr().contains("tag 'nope' does not exist"), badTag.stderr());

    Processes.Result usage = pfs("mount", "--bogus", "oci", "v1", "mnt");
    assertEquals(2, usage.exit(), usage.stderr());
    assertTrue(usage.stderr().contains("Unknown option: '--bogus'"), usage.stderr());

    Processes.Result noDir = pfs("mount", "oci", "v1", "missing");
    assertEquals(1, noDir.exit(), noDir.stderr());
    assertTrue(noDir.stderr().contains(tmp.resolve("missing") + " does not exist"), noDir.stderr());

    Processes.Result help = pfs("mount", "--help");
    assertEquals(0, help.exit(), help.stderr());
    assertTrue(help.out().contains("Usage: puzzlefs mount"), help.out());
    // None of these left a mount, and the server still answers.
    assertEquals(null, MountTable.typeAt(tmp.resolve("mnt")));
    ok("mount", "oci", "v1", "mnt");
    ok("umount", "mnt");
  }

  @Test
  void aClientWithAnotherEnvironment_mountsWithoutTheServer() throws Exception {
    ok("serve");
    Path mnt = mountpoint("mnt");
    Path otherCache = tmp.resolve("other-cache");

    Processes.Result r =
        pfsWith(Map.of("XDG_CACHE_HOME", otherCache.toString()), "mount", "oci", "v1", "mnt");

    assertRanWithoutServer(r);
    assertTrue(r.stderr().contains(otherCache.toString()), "its own log: " + r.stderr());
    assertEquals("from the image\n", Files.readString(mnt.resolve("etc/motd")));
    ok("umount", "mnt");
    // PUZZLEFS_NO_SERVER bypasses it too.
    r = pfsWith(Map.of("PUZZLEFS_NO_SERVER", "1"), "mount", "oci", "v1", "mnt");
    assertRanWithoutServer(r);
    ok("umount", "mnt");
  }

  @Test
  void writableMounts_andConcurrentMounts_throughTheServer() throws Exception {
    ok("serve");
    Path mnt = mountpoint("mnt");
    Path persist = tmp.resolve("persist");
    ok("mount", "--writable", "--persist", "persist", "oci", "v1", "mnt");
    Files.writeString(mnt.resolve("etc/new"), "written\n");
    ok("umount", "mnt");
    assertEquals(null, MountTable.typeAt(mnt));
    assertEquals("written\n", Files.readString(persist.resolve("upper/etc/new")));

    List<CompletableFuture<Processes.Result>> all = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      String name = "m" + i;
      mountpoint(name);
      all.add(
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return pfs("mount", "oci", "v1", name);
                } catch (IOException | InterruptedException e) {
                  throw new IllegalStateException(e);
                }
              }));
    }
    for (int i = 0; i < 4; i++) {
      Processes.Result r = all.get(i).join();
      assertEquals(0, r.exit(), r.stderr());
      assertTrue(r.stderr().contains("served by the mount server"), r.stderr());
      assertEquals("from the image\n", Files.readString(tmp.resolve("m" + i + "/etc/motd")));
    }
    for (int i = 0; i < 4; i++) {
      ok("umount", "m" + i);
    }
  }

  /**
   * A server stopped with SIGSTOP would take requests and answer none: the launcher says so at once
   * instead of after its 10 s wait, {@code --status} says so, and {@code --stop} still ends it
   * (SIGTERM waits for SIGCONT, which it sends too). Once it goes on, it serves again.
   */
  @Test
  void stoppedServer_isReportedAtOnce_andServeStopStillEndsIt() throws Exception {
    FuseTesting.assumeFuse();
    ok("serve");
    long pid = serverPid();
    Path src = Files.createDirectories(tmp.resolve("src/etc"));
    Files.writeString(src.resolve("motd"), "from the image\n");
    Cli.ok("build", src.getParent().toString(), tmp.resolve("oci").toString(), "v1");
    mountpoint("a");
    Processes.run(10, "kill", "-STOP", Long.toString(pid));
    try {
      long start = System.nanoTime();
      Processes.Result r = pfs("mount", "oci", "v1", "a");
      long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start);
      assertEquals(1, r.exit(), r.stderr());
      assertTrue(
          r.stderr().contains("(pid " + pid + ") is stopped (SIGSTOP, Ctrl-Z or a debugger)")
              && r.stderr().contains("kill -CONT " + pid),
          r.stderr());
      assertTrue(seconds < 5, "told after " + seconds + " s");
      assertEquals(null, MountTable.typeAt(tmp.resolve("a")));
      Processes.Result status = ok("serve", "--status");
      assertTrue(
          status.stderr().contains("is stopped by a signal (SIGSTOP or SIGTSTP)"), status.stderr());
    } finally {
      Processes.run(10, "kill", "-CONT", Long.toString(pid));
    }
    Processes.Result served = ok("mount", "oci", "v1", "a");
    assertTrue(served.stderr().contains("served by the mount server"), served.stderr());
    ok("umount", "a");

    Processes.run(10, "kill", "-STOP", Long.toString(pid));
    Processes.Result stopped = ok("serve", "--stop");
    assertTrue(
        stopped.stderr().contains("stopped the mount server (pid " + pid + ")"), stopped.stderr());
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
  }

  @Test
  void stop_unmountsWhatItServes_andLaterMountsRunWithoutIt() throws Exception {
    ok("serve");
    long pid = serverPid();
    Processes.Result again = pfs("serve");
    assertEquals(1, again.exit(), again.stderr());
    assertTrue(again.stderr().contains("already runs on " + serverDir + " (pid " + pid + ")"));
    Path a = mountpoint("a");
    Path b = mountpoint("b");
    ok("mount", "oci", "v1", "a");
    ok("mount", "--writable", "oci", "v1", "b");

    ok("serve", "--stop");

    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
    assertEquals(null, MountTable.typeAt(a));
    assertFalse(Files.exists(serverDir.resolve("pid")));
    assertFalse(Files.exists(serverDir.resolve("requests")));
    Processes.Result status = pfs("serve", "--status");
    assertEquals(1, status.exit(), status.stderr());
    // The writable mount, overlay and image under it, was taken down by the server too.
    assertEquals(null, MountTable.typeAt(b));
    assertTrue(emptyDir(tmp.resolve("state")), "no writable mount state left");
    Processes.Result r = ok("mount", "oci", "v1", "a");
    assertFalse(r.stderr().contains("served by the mount server"), r.stderr());
    ok("umount", "a");
  }

  @Test
  void aKilledServer_isReplaced_andItsLeftoversIgnored() throws Exception {
    ok("serve");
    long pid = serverPid();
    Processes.run(10, "kill", "-KILL", Long.toString(pid));
    ProcessHandle.of(pid).ifPresent(p -> p.onExit().join());
    Path mnt = mountpoint("mnt");

    // Its pid file and FIFO are left; the launcher sees the pid is gone and mounts on its own.
    Processes.Result r = ok("mount", "oci", "v1", "mnt");
    assertFalse(r.stderr().contains("served by the mount server"), r.stderr());
    ok("umount", "mnt");

    ok("serve");
    assertTrue(serverPid() != pid);
    r = ok("mount", "oci", "v1", "mnt");
    assertTrue(r.stderr().contains("served by the mount server"), r.stderr());
    ok("umount", "mnt");
  }

  private static boolean emptyDir(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return true;
    }
    try (var s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  @Test
  void serve_onADirectoryItCannotUse_failsSayingWhy() throws Exception {
    Files.writeString(serverDir, "not a directory\n");
    Processes.Result file = pfs("serve");
    assertEquals(1, file.exit(), file.stderr());
    assertTrue(file.stderr().contains("the mount server failed"), file.stderr());
    assertTrue(file.stderr().contains(serverDir + " exists and is not a directory"), file.stderr());

    Files.delete(serverDir);
    Files.createDirectory(serverDir);
    Processes.run(10, "chmod", "777", serverDir.toString());
    Processes.Result open = pfs("serve");
    assertEquals(1, open.exit(), open.stderr());
    assertTrue(open.stderr().contains("no one else may write to"), open.stderr());
    Processes.run(10, "chmod", "700", serverDir.toString());
  }

  @Test
  void aPidFileNamingAnotherProcess_isNotTakenForAServer() throws Exception {
    Process sleeper = new ProcessBuilder("sleep", "120").start();
    try {
      Files.createDirectories(serverDir);
      Processes.run(10, "chmod", "700", serverDir.toString());
      Processes.run(10, "mkfifo", serverDir.resolve("requests").toString());
      Files.writeString(serverDir.resolve("pid"), sleeper.pid() + "\n");
      mountpoint("mnt");

      Processes.Result r = ok("mount", "oci", "v1", "mnt");
      assertFalse(r.stderr().contains("served by the mount server"), r.stderr());
      ok("umount", "mnt");
      Processes.Result stop = pfs("serve", "--stop");
      assertEquals(1, stop.exit(), stop.stderr());
      assertTrue(stop.stderr().contains("no mount server runs"), stop.stderr());
      assertTrue(sleeper.isAlive(), "serve --stop left the other process alone");
    } finally {
      sleeper.destroy();
    }
  }

  @Test
  void aPidFileCopiedFromAnotherServersDirectory_doesNotStopThatServer() throws Exception {
    ok("serve");
    long pid = serverPid();
    Path copy = tmp.resolve("copied-server-dir");
    Files.createDirectory(copy);
    Processes.run(10, "chmod", "700", copy.toString());
    Processes.run(10, "mkfifo", copy.resolve("requests").toString());
    Files.copy(serverDir.resolve("pid"), copy.resolve("pid"));

    Processes.Result status = pfs("serve", "--dir", copy.toString(), "--status");
    assertEquals(1, status.exit(), status.out() + status.stderr());
    Processes.Result stop = pfs("serve", "--dir", copy.toString(), "--stop");
    assertEquals(1, stop.exit(), stop.stderr());
    assertTrue(stop.stderr().contains("no mount server runs"), stop.stderr());
    assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
    assertTrue(ok("serve", "--status").out().contains("pid " + pid));

    // A server of its own starts there, and stops without touching the first.
    ok("serve", "--dir", copy.toString());
    ok("serve", "--dir", copy.toString(), "--stop");
    assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
    ok("serve", "--stop");
  }

  /**
   * What the server writes to a request's standard error reaches the client while the request runs:
   * a registry that accepts connections and never answers is reported retry by retry, not all at
   * once at the end.
   */
  @Test
  void aSlowRequestsWarnings_reachTheClientWhileItWaits() throws Exception {
    ok("serve");
    try (java.net.ServerSocket silent =
        new java.net.ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"))) {
      List<java.net.Socket> held = new java.util.concurrent.CopyOnWriteArrayList<>();
      Thread acceptor =
          new Thread(
              () -> {
                try {
                  while (true) {
                    held.add(silent.accept()); // and never answered
                  }
                } catch (IOException e) {
                  // closed: the test is over
                }
              });
      acceptor.setDaemon(true);
      acceptor.start();
      List<String> cmd =
          List.of(
              LAUNCHER.toString(),
              "run",
              "--plain-http",
              "--request-timeout",
              "2",
              "--retries",
              "3",
              "docker://127.0.0.1:" + silent.getLocalPort() + "/x/y:1",
              "true");
      ProcessBuilder pb = new ProcessBuilder(cmd).directory(tmp.toFile());
      pb.environment().putAll(env());
      pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
      pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
      Process client = pb.start();
      try {
        java.io.BufferedReader err =
            new java.io.BufferedReader(
                new java.io.InputStreamReader(
                    client.getErrorStream(), java.nio.charset.StandardCharsets.UTF_8));
        String first = err.readLine();
        long firstAt = System.nanoTime();
        String rest = err.lines().collect(java.util.stream.Collectors.joining("\n"));
        assertTrue(client.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        long after = (System.nanoTime() - firstAt) / 1_000_000;

        assertTrue(first != null && first.contains("retrying fetch manifest"), first);
        // Two more attempts of 2 s each follow the first warning.
        assertTrue(after > 2500, "the first warning came " + after + " ms before the end");
        assertEquals(1, client.exitValue(), first + "\n" + rest);
        assertTrue(rest.contains("timed out"), rest);
        assertFalse(rest.contains(first), "each warning once: " + rest);
      } finally {
        client.destroyForcibly();
        for (java.net.Socket s : held) {
          s.close();
        }
      }
    }
  }

  @Test
  void whatTheServerCannotMakeAsTheClientWould_runsWithoutIt() throws Exception {
    ok("serve");
    mountpoint("mnt");
    String launcher = LAUNCHER.toString();
    Map<String, String> env = env();

    // Another mount namespace: a mount made by the server would not be seen there.
    Processes.Result ns =
        Processes.execInWithEnv(
            tmp,
            120,
            env,
            "unshare",
            "-m",
            "--propagation",
            "private",
            "bash",
            "-c",
            launcher + " mount oci v1 mnt && cat mnt/etc/motd && " + launcher + " umount mnt");
    assertRanWithoutServer(ns);
    assertEquals("from the image\n", ns.out());

    // Another umask: the files the mount makes get the client's.
    Processes.Result umask =
        Processes.execInWithEnv(
            tmp,
            120,
            env,
            "bash",
            "-c",
            "umask 077 && " + launcher + " mount --writable --persist p oci v1 mnt");
    assertRanWithoutServer(umask);
    assertEquals(
        "rwx------",
        java.nio.file.attribute.PosixFilePermissions.toString(
            Files.getPosixFilePermissions(tmp.resolve("p/upper"))));
    ok("umount", "mnt");

    // -o: libfuse says what is wrong with an option on the mounting process's standard error.
    Processes.Result option = pfs("mount", "-o", "bogusopt", "oci", "v1", "mnt");
    assertEquals(1, option.exit(), option.stderr());
    assertTrue(option.stderr().contains("unknown option"), option.stderr());
  }

  @Test
  void aServerThatDoesNotAnswer_failsTheMountClearly_withoutHanging() throws Exception {
    // A live process that looks like a server, behind a pid file and a FIFO: no one reads requests.
    Process sleeper = new ProcessBuilder("sh", "-c", "sleep 120", "puzzlefs", "serve").start();
    try {
      Files.createDirectories(serverDir);
      Processes.run(10, "chmod", "700", serverDir.toString());
      Processes.run(10, "mkfifo", serverDir.resolve("requests").toString());
      Files.writeString(serverDir.resolve("pid"), sleeper.pid() + "\n");
      mountpoint("mnt");

      Processes.Result r = pfs("mount", "oci", "v1", "mnt");

      assertEquals(1, r.exit(), r.stderr());
      assertTrue(r.stderr().contains("does not answer"), r.stderr());
      assertTrue(r.stderr().contains("PUZZLEFS_NO_SERVER=1"), r.stderr());
      assertEquals(null, MountTable.typeAt(tmp.resolve("mnt")));
    } finally {
      sleeper.destroy();
    }
  }

  @Test
  void aRequestTheServerCannotRead_stillGetsAnAnswer() throws Exception {
    ok("serve");
    // A request as the launcher writes it, but without its environment file.
    Path req = Files.createDirectory(serverDir.resolve("req.handmade1"));
    Files.write(
        req.resolve("args"),
        ("puzzlefs-server-1\0" + tmp + "\0" + ProcessHandle.current().pid() + "\0" + "022\0mount\0")
            .getBytes(java.nio.charset.StandardCharsets.UTF_8));
    Processes.run(10, "mkfifo", req.resolve("status").toString(), req.resolve("events").toString());
    try (var status =
            java.nio.channels.FileChannel.open(
                req.resolve("status"),
                java.nio.file.StandardOpenOption.READ,
                java.nio.file.StandardOpenOption.WRITE);
        var requests =
            java.nio.channels.FileChannel.open(
                serverDir.resolve("requests"),
                java.nio.file.StandardOpenOption.READ,
                java.nio.file.StandardOpenOption.WRITE)) {
      requests.write(java.nio.ByteBuffer.wrap("req.handmade1\n".getBytes()));
      java.nio.ByteBuffer answer = java.nio.ByteBuffer.allocate(16);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      CompletableFuture<Void> read =
          CompletableFuture.runAsync(
              () -> {
                try {
                  while (!new String(answer.array(), 0, answer.position()).endsWith("1\n")) {
                    status.read(answer);
                  }
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              });
      read.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      assertEquals("a\n1\n", new String(answer.array(), 0, answer.position()));
    }
    assertTrue(
        Files.readString(req.resolve("err")).contains("the mount server failed on this request"));
    // And it goes on serving.
    mountpoint("mnt");
    ok("mount", "oci", "v1", "mnt");
    ok("umount", "mnt");
  }

  @Test
  void registryImages_mountLazily_throughTheServer() throws Exception {
    if (!TestRegistry.available()) {
      throw new AssertionError("docker-registry is not installed: run .ci/setup-debian");
    }
    try (TestRegistry registry = TestRegistry.launch()) {
      String ref = "docker://" + registry.hostPort() + "/served/image:v1";
      Cli.ok("push", "--plain-http", tmp.resolve("oci").toString(), "v1", ref);
      ok("serve");
      Path mnt = mountpoint("mnt");

      Processes.Result r = ok("mount", "--plain-http", "--cache-dir", "cache", ref, "mnt");

      assertTrue(r.stderr().contains("served by the mount server"), r.stderr());
      assertEquals("from the image\n", Files.readString(mnt.resolve("etc/motd")));
      assertTrue(Files.isDirectory(tmp.resolve("cache")), "the cache is in the client's directory");
      ok("umount", "mnt");
    }
  }
}
