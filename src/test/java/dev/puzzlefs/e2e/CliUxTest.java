package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What an operator sees: progress on a terminal and on a pipe, --quiet, where a background mount
 * logs, inspect, image forms, and umount of busy, dead and missing mounts and signals.
 */
class CliUxTest {
  private static final Pattern PID = Pattern.compile("\\(pid (\\d+)\\); log: (.*)");

  @TempDir Path tmp;
  private Path src;
  private Path oci;
  private Path mnt;
  private final List<Process> started = new ArrayList<>();

  @BeforeEach
  void image() throws Exception {
    src = Files.createDirectories(tmp.resolve("src"));
    Files.writeString(src.resolve("hello"), "hello\n");
    Files.createDirectories(src.resolve("dir"));
    byte[] data = new byte[3_000_000];
    new java.util.Random(7).nextBytes(data);
    Files.write(src.resolve("dir/data"), data);
    oci = tmp.resolve("oci");
    Cli.ok("build", "-q", src.toString(), oci.toString(), "v1");
    mnt = Files.createDirectories(tmp.resolve("mnt"));
  }

  @AfterEach
  void cleanUp() {
    for (Process p : started) {
      p.destroyForcibly();
    }
    Cli.unmountQuietly(mnt);
  }

  /** Runs puzzlefs with {@code env} added, as a user would from a shell. */
  private Processes.Result run(Map<String, String> env, String... args) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(Cli.command(args));
    pb.environment().putAll(env);
    pb.environment().put("XDG_CACHE_HOME", tmp.resolve("cache").toString());
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    Process p = pb.start();
    CompletableFuture<byte[]> out = drain(p.getInputStream());
    CompletableFuture<byte[]> err = drain(p.getErrorStream());
    assertTrue(p.waitFor(300, TimeUnit.SECONDS), "puzzlefs " + String.join(" ", args));
    return new Processes.Result(
        p.exitValue(), out.join(), new String(err.join(), StandardCharsets.UTF_8));
  }

  private static CompletableFuture<byte[]> drain(InputStream in) {
    return CompletableFuture.supplyAsync(
        () -> {
          try (in) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            in.transferTo(b);
            return b.toByteArray();
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        });
  }

  private boolean mounted() throws IOException {
    String wanted = " " + mnt.toAbsolutePath() + " ";
    return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
        .anyMatch(l -> l.contains(wanted));
  }

  private static String shellQuote(List<String> words) {
    StringBuilder b = new StringBuilder();
    for (String w : words) {
      b.append(" '").append(w.replace("'", "'\\''")).append('\'');
    }
    return b.toString().strip();
  }

  @Test
  void build_onAPipe_printsPlainProgressLinesThenTheSummary_andOnlyTheDigestOnStdout()
      throws Exception {
    Processes.Result r = Cli.ok("build", src.toString(), oci.toString(), "v2");
    assertTrue(r.out().matches("puzzlefs image manifest digest: [0-9a-f]{64}\n"), r.out());
    assertFalse(r.stderr().contains("\r"), "no carriage returns on a pipe: " + r.stderr());
    assertTrue(r.stderr().contains("build: 0/2 files, 0 B/2.9 MiB"), r.stderr());
    assertTrue(
        Pattern.compile(
                "built .*:v2 from .*: 2 files \\(4 inodes\\), 3000006 bytes in \\d+ chunks \\(0"
                    + " new\\), stored in \\d+ bytes, 0 bytes reused, manifest sha256:[0-9a-f]{64}")
            .matcher(r.stderr())
            .find(),
        r.stderr());
  }

  @Test
  void build_onAPseudoTerminal_redrawsOneLineThenClearsItForTheSummary() throws Exception {
    List<String> cmd = Cli.command("build", src.toString(), oci.toString(), "v3");
    Processes.Result r = Processes.run(300, "script", "-qec", shellQuote(cmd), "/dev/null");
    String tty = r.out();
    assertTrue(tty.contains("\rbuild: 0/2 files"), tty);
    assertTrue(tty.contains("\rbuilt "), "the summary starts on a cleared line: " + tty);
    assertFalse(tty.contains("build: 0/2 files, 0 B/2.9 MiB, 0 B/s\n"), tty);
    assertTrue(tty.contains("puzzlefs image manifest digest: "), tty);
  }

  @Test
  void quiet_buildExtractPush_printNothingButErrors() throws Exception {
    Processes.Result built = Cli.ok("build", "--quiet", src.toString(), oci.toString(), "v4");
    assertEquals("", built.stderr());
    assertTrue(built.out().startsWith("puzzlefs image manifest digest: "), built.out());
    Processes.Result extracted =
        Cli.ok("extract", "-q", oci.toString(), "v4", tmp.resolve("x").toString());
    assertEquals("", extracted.stderr());
    assertEquals("", extracted.out());
    try (TestRegistry registry = TestRegistry.launch()) {
      String ref = "docker://" + registry.hostPort() + "/ux/quiet:v4";
      Processes.Result pushed = Cli.ok("push", "-q", "--plain-http", "oci:" + oci + ":v4", ref);
      assertEquals("", pushed.stderr());
      Processes.Result loud = Cli.ok("push", "--plain-http", oci.toString(), "v4", ref);
      assertTrue(loud.stderr().contains("push: 0/"), loud.stderr());
      assertTrue(loud.stderr().contains("0 blobs uploaded"), loud.stderr());
    }
    Processes.Result failed =
        Cli.run("extract", "-q", oci.toString(), "nope", tmp.resolve("y").toString());
    assertEquals(1, failed.exit());
    assertTrue(failed.stderr().contains("'nope' does not exist"), failed.stderr());
  }

  @Test
  void extract_onAPipe_showsPeriodicLinesAndTheSummary() throws Exception {
    Processes.Result r =
        run(
            Map.of("PUZZLEFS_PROGRESS_INTERVAL", "0.05"),
            "extract",
            "oci:" + oci + ":v1",
            tmp.resolve("out").toString());
    assertEquals(0, r.exit(), r.stderr());
    assertTrue(r.stderr().startsWith("extract: 0/2 files, 0 B/2.9 MiB"), r.stderr());
    assertTrue(r.stderr().contains("extracted " + oci + ":v1 into "), r.stderr());
    assertEquals(-1L, Files.mismatch(src.resolve("dir/data"), tmp.resolve("out/dir/data")));
  }

  @Test
  void inspect_countsChunksSharedWithAnotherTag_listsFiles_andSpeaksJson() throws Exception {
    Files.writeString(src.resolve("new"), "new file\n");
    Cli.ok("build", "-q", "--base-layer", "v1", src.toString(), oci.toString(), "v2");

    String text = Cli.ok("inspect", "--files", "--compare", "v1", oci.toString(), "v2").out();
    assertTrue(text.contains("layers:       2 puzzlefs layer(s)"), text);
    assertTrue(Pattern.compile("/dir/data").matcher(text).find(), text);
    assertTrue(text.matches("(?s).*3000000 +\\d+  file  /dir/data.*"), text);

    JsonNode j =
        new ObjectMapper()
            .readTree(
                Cli.ok("inspect", "--json", "--files", "--compare", "v1", "oci:" + oci + ":v2")
                    .stdout());
    assertEquals(2, j.get("layers").asInt());
    assertEquals(3, j.get("files").asInt());
    JsonNode chunks = j.get("chunks");
    assertTrue(chunks.get("count").asInt() > 2, j.toString());
    assertTrue(chunks.get("minBytes").asLong() <= chunks.get("avgBytes").asLong());
    assertTrue(chunks.get("avgBytes").asLong() <= chunks.get("maxBytes").asLong());
    assertEquals(1.0, chunks.get("compressionRatio").asDouble(), 0.01);
    assertTrue(
        j.get("shared").get("chunks").asInt() >= chunks.get("count").asInt() - 2, j.toString());
    assertEquals(5, j.get("paths").size(), j.get("paths").toString());

    try (TestRegistry registry = TestRegistry.launch()) {
      String ref = "docker://" + registry.hostPort() + "/ux/inspect:v1";
      Cli.ok("push", "-q", "--plain-http", oci.toString(), "v1", ref);
      JsonNode remote =
          new ObjectMapper().readTree(Cli.ok("inspect", "--json", "--plain-http", ref).stdout());
      JsonNode local =
          new ObjectMapper().readTree(Cli.ok("inspect", "--json", oci.toString(), "v1").stdout());
      assertEquals(local.get("manifest"), remote.get("manifest"));
      assertEquals(local.get("chunks"), remote.get("chunks"));
    }
  }

  @Test
  void backgroundMount_withoutSyslog_logsToTheFileItPrints() throws Exception {
    Processes.Result r =
        run(Map.of("PUZZLEFS_SYSLOG_SOCKET", ""), "mount", "oci:" + oci + ":v1", mnt.toString());
    assertEquals(0, r.exit(), r.stderr());
    Matcher m = PID.matcher(r.stderr());
    assertTrue(m.find(), r.stderr());
    Path log = Path.of(m.group(2).strip());
    assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
    Cli.ok("umount", mnt.toString());
    String text = waitFor(log, "counters of the mount on " + mnt);
    assertTrue(text.contains("mounted on " + mnt), text);
  }

  @Test
  void backgroundMount_withCacheDirAndWithoutSyslog_logsUnderThatCacheDir() throws Exception {
    Path cacheDir = tmp.resolve("own-cache");
    Processes.Result r =
        run(
            Map.of("PUZZLEFS_SYSLOG_SOCKET", ""),
            "mount",
            "--cache-dir",
            cacheDir.toString(),
            "oci:" + oci + ":v1",
            mnt.toString());
    assertEquals(0, r.exit(), r.stderr());
    Matcher m = PID.matcher(r.stderr());
    assertTrue(m.find(), r.stderr());
    Path log = Path.of(m.group(2).strip());
    String name = mnt.toAbsolutePath().normalize().toString().replace('/', '_');
    assertEquals(cacheDir.resolve("logs").resolve("mount" + name + ".log"), log);
    Cli.ok("umount", mnt.toString());
    String text = waitFor(log, "counters of the mount on " + mnt);
    assertTrue(text.contains("mounted on " + mnt), text);
    assertFalse(
        Files.exists(tmp.resolve("cache/puzzlefs/logs")), "nothing in the default cache's logs");
  }

  @Test
  void backgroundMount_whenASyslogSocketListens_sendsItsLogThere() throws Exception {
    Path socket = tmp.resolve("syslog.sock");
    Path received = tmp.resolve("received.txt");
    Process listener =
        new ProcessBuilder(
                "python3",
                "-c",
                "import socket,sys\n"
                    + "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n"
                    + "s.bind(sys.argv[1])\n"
                    + "f=open(sys.argv[2],'a')\n"
                    + "while True:\n"
                    + "  f.write(s.recv(65536).decode()+'\\n'); f.flush()\n",
                socket.toString(),
                received.toString())
            .redirectErrorStream(true)
            .start();
    started.add(listener);
    for (int i = 0; i < 100 && !Files.exists(socket); i++) {
      Thread.sleep(50);
    }
    assertTrue(Files.exists(socket), "python3 listener on " + socket);

    Processes.Result r =
        run(
            Map.of("PUZZLEFS_SYSLOG_SOCKET", socket.toString()),
            "mount",
            oci.toString(),
            "v1",
            mnt.toString());
    assertEquals(0, r.exit(), r.stderr());
    Matcher m = PID.matcher(r.stderr());
    assertTrue(m.find(), r.stderr());
    assertTrue(r.stderr().contains("syslog via " + socket), r.stderr());
    String pid = m.group(1);
    Cli.ok("umount", mnt.toString());
    String text = waitFor(received, "counters of the mount on " + mnt);
    assertTrue(
        Pattern.compile("<30>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d puzzlefs\\[" + pid + "\\]: INFO")
            .matcher(text)
            .find(),
        text);
    assertTrue(text.contains("mounted on " + mnt), text);
  }

  @Test
  void umount_busyMount_namesTheProcessAndSuggestsLazy_thenLazyDetaches() throws Exception {
    Cli.ok("mount", oci.toString(), "v1", mnt.toString());
    Process inside =
        new ProcessBuilder("sleep", "120").directory(mnt.resolve("dir").toFile()).start();
    started.add(inside);

    Processes.Result busy = Cli.run("umount", mnt.toString());
    assertEquals(1, busy.exit());
    assertTrue(busy.stderr().contains("it is busy (EBUSY)"), busy.stderr());
    assertTrue(
        busy.stderr().contains("sleep (pid " + inside.pid() + ", working directory)"),
        busy.stderr());
    assertTrue(busy.stderr().contains("puzzlefs umount --lazy " + mnt), busy.stderr());
    assertTrue(mounted());

    Cli.ok("umount", "--lazy", mnt.toString());
    assertFalse(mounted(), "detached at once");
  }

  @Test
  void umount_afterTheDaemonWasKilled_cleansUpTheDeadMount() throws Exception {
    Processes.Result r = run(Map.of(), "mount", oci.toString(), "v1", mnt.toString());
    Matcher m = PID.matcher(r.stderr());
    assertTrue(m.find(), r.stderr());
    Processes.run(10, "kill", "-KILL", m.group(1));
    waitUntilGone(Long.parseLong(m.group(1)));
    IOException dead = null;
    try {
      Files.list(mnt).close();
    } catch (IOException e) {
      dead = e;
    }
    assertNotNull(dead, "the dead mount answers with an error");
    assertTrue(String.valueOf(dead.getMessage()).contains("not connected"), dead.toString());
    Processes.Result stats = Cli.run("stats", mnt.toString());
    assertEquals(1, stats.exit());
    assertTrue(
        stats.stderr().contains("is a mount whose process has died")
            && stats.stderr().contains("'puzzlefs umount " + mnt + "' cleans it up"),
        stats.stderr());

    Cli.ok("umount", mnt.toString());
    assertFalse(mounted());
  }

  @Test
  void mount_onAMissingOrNonEmptyDirectory_saysWhich() throws Exception {
    Path missing = tmp.resolve("missing");
    Processes.Result r = Cli.run("mount", oci.toString(), "v1", missing.toString());
    assertTrue(r.exit() != 0, r.stderr());
    assertTrue(r.stderr().contains(missing + " does not exist"), r.stderr());

    Files.writeString(mnt.resolve("x"), "already here");
    r = Cli.run("mount", oci.toString(), "v1", mnt.toString());
    assertTrue(r.exit() != 0, r.stderr());
    assertTrue(r.stderr().contains(mnt + " is not empty"), r.stderr());
    assertEquals("already here", Files.readString(mnt.resolve("x")), "nothing hid it");
  }

  @Test
  void umount_withAMountInside_namesThatMount() throws Exception {
    Cli.ok("mount", oci.toString(), "v1", mnt.toString());
    Path inner = mnt.resolve("dir");
    try {
      Processes.Result tmpfs =
          Processes.run(30, "mount", "-t", "tmpfs", "puzzlefs-test", inner.toString());
      assertEquals(0, tmpfs.exit(), tmpfs.stderr());
      Processes.Result r = Cli.run("umount", mnt.toString());
      assertEquals(1, r.exit());
      assertTrue(r.stderr().contains("a mount is inside it (" + inner + ")"), r.stderr());
    } finally {
      Processes.run(30, "umount", inner.toString());
      Cli.run("umount", mnt.toString());
    }
  }

  @Test
  void umount_ofAPathThatIsNotAMount_failsSayingSo() throws Exception {
    Processes.Result r = Cli.run("umount", mnt.toString());
    assertEquals(1, r.exit());
    assertTrue(r.stderr().contains(mnt + " is not a mount point"), r.stderr());
  }

  @Test
  void umount_ofAPathThatDoesNotExist_failsSayingSo() throws Exception {
    Path missing = tmp.resolve("no-such-dir");

    Processes.Result r = Cli.run("umount", missing.toString());

    assertEquals(1, r.exit());
    assertEquals("puzzlefs umount: " + missing + " does not exist\n", r.stderr());
  }

  @Test
  void sigterm_toTheBackgroundDaemon_unmountsAndLogsTheCounters() throws Exception {
    Processes.Result r =
        run(Map.of("PUZZLEFS_SYSLOG_SOCKET", ""), "mount", oci.toString(), "v1", mnt.toString());
    Matcher m = PID.matcher(r.stderr());
    assertTrue(m.find(), r.stderr());
    assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
    Processes.run(10, "kill", "-TERM", m.group(1));
    waitUntilGone(Long.parseLong(m.group(1)));
    assertFalse(mounted());
    String log = Files.readString(Path.of(m.group(2).strip()));
    assertTrue(log.contains("unmounted " + mnt), log);
    assertTrue(
        log.matches(
            "(?s).*counters of the mount on "
                + Pattern.quote(mnt.toString())
                + ": \\{.*fetchedBlobs=[1-9].*"),
        log);
  }

  @Test
  void sigintAndSigterm_onAForegroundMount_unmountCleanlyAndLogTheCounters() throws Exception {
    for (String signal : List.of("INT", "TERM")) {
      Path fifo = tmp.resolve("ready-" + signal);
      Processes.run(10, "mkfifo", fifo.toString());
      // With SIGINT restored to its default: a test run from a background job of a script
      // inherits it ignored, and a JVM leaves an ignored SIGINT ignored (as nohup means).
      List<String> command = new ArrayList<>(List.of("env", "--default-signal=INT"));
      command.addAll(
          Cli.command("mount", "-f", "-i", fifo.toString(), oci.toString(), "v1", mnt.toString()));
      Process p =
          new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      started.add(p);
      CompletableFuture<byte[]> err = drain(p.getErrorStream());
      try (InputStream in = Files.newInputStream(fifo)) {
        assertEquals('s', in.read());
      }
      assertTrue(mounted());
      Processes.run(10, "kill", "-" + signal, Long.toString(p.pid()));
      assertTrue(p.waitFor(30, TimeUnit.SECONDS), signal);
      String stderr = new String(err.join(), StandardCharsets.UTF_8);
      assertFalse(mounted(), signal + ": " + stderr);
      assertTrue(stderr.contains("counters of the mount on " + mnt), signal + ": " + stderr);
    }
  }

  private static void waitUntilGone(long pid) throws InterruptedException {
    for (int i = 0;
        i < 300 && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        i++) {
      Thread.sleep(100);
    }
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "pid " + pid);
  }

  private static String waitFor(Path file, String text) throws Exception {
    String content = "";
    for (int i = 0; i < 100; i++) {
      content = Files.exists(file) ? Files.readString(file) : "";
      if (content.contains(text)) {
        return content;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no '" + text + "' in " + file + ":\n" + content);
  }
}
