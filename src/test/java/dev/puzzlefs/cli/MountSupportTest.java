package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.FuseTesting;
import dev.puzzlefs.testing.FuseTesting.Result;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@Tag("fuse")
class MountSupportTest {
  private static final String FAKE_MAIN = FakeMountMain.class.getName();

  @TempDir Path tmp;
  private Path mnt;
  private Path log;
  private final ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
  private final PrintStream err = new PrintStream(errBytes, true, StandardCharsets.UTF_8);

  @BeforeEach
  void setUp() throws IOException {
    FuseTesting.assumeFuse();
    mnt = Files.createDirectory(tmp.resolve("mnt"));
    log = tmp.resolve("mount.log");
  }

  @AfterEach
  void cleanUp() {
    FuseTesting.forceUnmount(mnt);
  }

  private String errText() {
    return errBytes.toString(StandardCharsets.UTF_8);
  }

  private static boolean mounted(Path dir) throws IOException {
    return Files.readString(Path.of("/proc/self/mountinfo")).contains(" " + dir + " ");
  }

  private static void awaitCondition(String what, Check check) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!check.holds()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      Thread.sleep(50);
    }
  }

  private interface Check {
    boolean holds() throws Exception;
  }

  @Test
  void spawnBackground_childMounts_returnsZeroAndServesUntilUnmounted() throws Exception {
    int status =
        MountSupport.spawnBackground(
            FAKE_MAIN, List.of(mnt.toString()), log, Duration.ofSeconds(60), err);

    assertEquals(0, status, errText());
    assertEquals("hello from the child\n", Files.readString(mnt.resolve("hello")));
    Result unmount = FuseTesting.run("fusermount", "-u", mnt.toString());
    assertEquals(0, unmount.status(), unmount.stderr());
    awaitCondition(
        "the child logs its clean unmount",
        () -> Files.readString(log).contains("unmounted " + mnt.toRealPath()));
  }

  @Test
  void spawnBackground_logInADirectoryNotYetThere_makesIt() throws Exception {
    Path inNewDir = tmp.resolve("cache/puzzlefs/logs/mount.log");
    int status =
        MountSupport.spawnBackground(
            FAKE_MAIN, List.of(mnt.toString()), inNewDir, Duration.ofSeconds(60), err);

    assertEquals(0, status, errText());
    assertEquals("hello from the child\n", Files.readString(mnt.resolve("hello")));
    assertTrue(Files.isRegularFile(inNewDir), "the child's log");
  }

  @Test
  void spawnBackground_sigtermToChild_unmountsCleanly() throws Exception {
    Path pidFile = tmp.resolve("pid");
    int status =
        MountSupport.spawnBackground(
            FAKE_MAIN,
            List.of(mnt.toString(), "--pid", pidFile.toString()),
            log,
            Duration.ofSeconds(60),
            err);
    assertEquals(0, status, errText());
    assertTrue(mounted(mnt.toRealPath()));

    long pid = Long.parseLong(Files.readString(pidFile).strip());
    ProcessHandle child = ProcessHandle.of(pid).orElseThrow();
    child.destroy();
    child.onExit().get(20, TimeUnit.SECONDS);

    assertTrue(!mounted(mnt.toRealPath()), "mount left behind after SIGTERM");
  }

  @Test
  void spawnBackground_mountFails_returnsOneWithTheChildsReason() {
    Path missing = tmp.resolve("missing");
    int status =
        MountSupport.spawnBackground(
            FAKE_MAIN, List.of(missing.toString()), log, Duration.ofSeconds(60), err);

    assertEquals(1, status);
    assertTrue(errText().contains("the mount failed"), errText());
    assertTrue(errText().contains("does not exist"), errText());
  }

  @Test
  void spawnBackground_childDiesWithoutWord_returnsOneWithExitStatus() {
    int status =
        MountSupport.spawnBackground(
            "dev.puzzlefs.cli.NoSuchMain",
            List.of(mnt.toString()),
            log,
            Duration.ofSeconds(60),
            err);

    assertEquals(1, status);
    assertTrue(errText().contains("exited with status 1"), errText());
    assertTrue(errText().contains("NoSuchMain"), errText());
  }

  @Test
  void spawnBackground_noWordInTime_returnsOneAndStopsChild() throws Exception {
    Path pidFile = tmp.resolve("pid");
    int status =
        MountSupport.spawnBackground(
            FAKE_MAIN,
            List.of(mnt.toString(), "--pid", pidFile.toString(), "--hang"),
            log,
            Duration.ofSeconds(5),
            err);

    assertEquals(1, status);
    assertTrue(errText().contains("no word from the mount within 5 s"), errText());
    long pid = Long.parseLong(Files.readString(pidFile).strip());
    awaitCondition(
        "the hung child is gone",
        () -> !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
  }

  @Test
  void runForeground_readyFifo_getsSThenReturnsZeroOnExternalUnmount() throws Exception {
    Path fifo = tmp.resolve("ready");
    assertEquals(0, FuseTesting.run("mkfifo", fifo.toString()).status());
    FakeImage fake = new FakeImage(64);
    fake.file("/hello", FakeImage.utf8("in process\n"));
    CompletableFuture<Integer> result =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return MountSupport.runForeground(fake.open(), mnt, List.of(), fifo);
              } catch (IOException e) {
                throw new AssertionError(e);
              }
            });

    assertEquals('s', readOne(fifo));
    assertEquals("in process\n", Files.readString(mnt.resolve("hello")));
    assertEquals(0, FuseTesting.run("fusermount", "-u", mnt.toString()).status());
    assertEquals(0, result.get(20, TimeUnit.SECONDS));
  }

  @Test
  void runForeground_mountFails_writesFAndReturnsOne() throws Exception {
    Path fifo = tmp.resolve("ready");
    assertEquals(0, FuseTesting.run("mkfifo", fifo.toString()).status());
    FakeImage fake = new FakeImage(64);
    CompletableFuture<Integer> result =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return MountSupport.runForeground(
                    fake.open(), tmp.resolve("missing"), List.of(), fifo);
              } catch (IOException e) {
                throw new AssertionError(e);
              }
            });

    assertEquals('f', readOne(fifo));
    assertEquals(1, result.get(20, TimeUnit.SECONDS));
  }

  private static int readOne(Path fifo) throws IOException {
    try (InputStream in = new FileInputStream(fifo.toFile())) {
      return in.read();
    }
  }

  /**
   * The server's heap ratios give way to ratios in {@code PUZZLEFS_MOUNT_JAVA_OPTS}: the JVM
   * refuses to start with a minimum free ratio above the maximum, so one of them given replaces
   * both of ours.
   */
  @Test
  void serverJvm_heapRatiosGivenInTheEnvironment_replaceOurs() {
    try {
      MountSupport.sizeServer(256L << 20);
      List<String> ours = MountSupport.childJvmOptions(null);
      assertTrue(ours.contains("-XX:MinHeapFreeRatio=40"), ours.toString());
      assertTrue(ours.contains("-XX:MaxHeapFreeRatio=70"), ours.toString());
      List<String> theirs = MountSupport.childJvmOptions(" -XX:MaxHeapFreeRatio=30  -Dx=1 ");
      assertTrue(
          theirs.stream().noneMatch(o -> o.startsWith("-XX:MinHeapFreeRatio")), theirs.toString());
      assertEquals(1, theirs.stream().filter(o -> o.startsWith("-XX:MaxHeapFreeRatio")).count());
      assertEquals("-Dx=1", theirs.get(theirs.size() - 1), "theirs come last, and win");
      assertTrue(theirs.contains("-Xmn32m"), "the other heap options stay");
    } finally {
      MountSupport.sizeChildAsAMount();
    }
  }

  @Test
  void childJvm_heapFollowsTheMemoryCache_withTheSerialCollector() {
    try {
      MountSupport.sizeChildFor(32L << 20, true);
      List<String> options = MountSupport.childJvmOptions();
      assertTrue(options.contains("-Xmx96m"), options.toString());
      assertTrue(options.contains("-XX:+UseSerialGC"), options.toString());
      MountSupport.sizeChildFor(1L << 30, true);
      assertTrue(MountSupport.childJvmOptions().contains("-Xmx1088m"));
      MountSupport.sizeChildFor(8L << 20, false);
      assertTrue(MountSupport.childJvmOptions().contains("-Xmx64m"), "local: less headroom");
      MountSupport.sizeChildFor(0, false);
      assertTrue(MountSupport.childJvmOptions().contains("-Xmx64m"), "never below 64 MiB");
      // A size past the largest cache is the largest cache's heap, not an overflow into 64 MiB.
      MountSupport.sizeChildFor(Long.MAX_VALUE, true);
      assertTrue(MountSupport.childJvmOptions().contains("-Xmx65600m"), "capped, not wrapped");
      assertTrue(
          MountSupport.childJvmOptions().contains("-XX:+ExitOnOutOfMemoryError"),
          "out of memory, a mount dies instead of answering wrongly");
    } finally {
      MountSupport.sizeChildFor(32L << 20, true);
    }
  }
}
