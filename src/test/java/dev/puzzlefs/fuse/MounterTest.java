package dev.puzzlefs.fuse;

import static dev.puzzlefs.testing.FuseTesting.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.FuseTesting;
import dev.puzzlefs.testing.FuseTesting.Result;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@Tag("fuse")
class MounterTest {
  @TempDir Path tmp;
  private Path mnt;
  private FakeImage fake;

  @BeforeEach
  void setUp() throws IOException {
    FuseTesting.assumeFuse();
    mnt = Files.createDirectory(tmp.resolve("mnt"));
    fake = new FakeImage(64);
    fake.file("/f", FakeImage.utf8("content\n"));
  }

  @AfterEach
  void cleanUp() {
    FuseTesting.forceUnmount(mnt);
  }

  private Mount mountFake(List<String> options) throws IOException {
    return Mounter.mount(fake.open(), mnt, options, Duration.ofSeconds(30));
  }

  @Test
  void mount_returns_onlyOnceTheKernelAnswers() throws Exception {
    try (Mount mount = mountFake(List.of())) {
      assertEquals("fuse.puzzlefs", MountTable.typeAt(mnt));
      assertArrayEquals(FakeImage.utf8("content\n"), Files.readAllBytes(mnt.resolve("f")));
      assertEquals(1L, Files.getAttribute(mnt, "unix:ino"));
      assertTrue(mount.isMounted());
    }
    assertNull(MountTable.typeAt(mnt));
  }

  @Test
  void mount_userOptions_reachTheKernelWithDefaults() throws Exception {
    try (Mount mount = mountFake(List.of("allow_other"))) {
      Result info = FuseTesting.bash("grep ' " + mnt + " ' /proc/self/mountinfo");
      assertTrue(info.out().contains("allow_other"), info.out());
      assertTrue(info.out().contains("max_read=131072"), info.out());
      assertTrue(info.out().contains(" ro,"), info.out());
      assertTrue(info.out().contains("default_permissions"), info.out());
      assertTrue(mount.isMounted());
    }
  }

  @Test
  void mount_unknownOption_failsClearlyAndLeavesNothingMounted() {
    IOException e = assertThrows(IOException.class, () -> mountFake(List.of("no_such_option")));
    assertTrue(e.getMessage().contains("could not mount on " + mnt), e.getMessage());
    assertFalse(isMounted(mnt));
  }

  @Test
  void mount_missingDirectory_throwsNoSuchFile() {
    Path missing = tmp.resolve("missing");
    NoSuchFileException e =
        assertThrows(
            NoSuchFileException.class,
            () -> Mounter.mount(fake.open(), missing, List.of(), Duration.ofSeconds(5)));
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
  }

  @Test
  void mount_regularFile_throwsNotDirectory() throws IOException {
    Path file = Files.writeString(tmp.resolve("file"), "x");
    assertThrows(
        NotDirectoryException.class,
        () -> Mounter.mount(fake.open(), file, List.of(), Duration.ofSeconds(5)));
  }

  @Test
  void mount_alreadyMounted_throwsNamingTheMountPoint() throws Exception {
    try (Mount mount = mountFake(List.of())) {
      IOException e = assertThrows(IOException.class, () -> mountFake(List.of()));
      assertTrue(e.getMessage().contains("already a mount point"), e.getMessage());
      assertTrue(mount.isMounted());
    }
  }

  @Test
  void concurrentReads_areServedOnJavaWorkerThreads_andEndWithTheMount() throws Exception {
    int files = 24; // more readers at once than FuseLoop keeps idle workers
    for (int i = 0; i < files; i++) {
      fake.file("/c" + i, FakeImage.utf8(("file " + i + "\n").repeat(50)));
    }
    java.util.Set<String> fetchThreads = java.util.concurrent.ConcurrentHashMap.newKeySet();
    dev.puzzlefs.reader.ChunkSource inner = fake.source();
    dev.puzzlefs.reader.ChunkSource slow =
        blob -> {
          fetchThreads.add(Thread.currentThread().getName());
          // Slow enough that the reads overlap and the loop must start more workers.
          return inner
              .fetch(blob)
              .thenApplyAsync(
                  b -> b,
                  java.util.concurrent.CompletableFuture.delayedExecutor(
                      50, java.util.concurrent.TimeUnit.MILLISECONDS));
        };
    Mount mount =
        Mounter.mount(
            fake.open(slow, Duration.ofSeconds(30)), mnt, List.of(), Duration.ofSeconds(30));
    try {
      java.util.concurrent.ExecutorService readers =
          java.util.concurrent.Executors.newFixedThreadPool(files);
      try {
        List<java.util.concurrent.Future<byte[]>> reads = new java.util.ArrayList<>();
        for (int i = 0; i < files; i++) {
          Path file = mnt.resolve("c" + i);
          reads.add(readers.submit(() -> Files.readAllBytes(file)));
        }
        for (int i = 0; i < files; i++) {
          assertArrayEquals(
              FakeImage.utf8(("file " + i + "\n").repeat(50)),
              reads.get(i).get(30, java.util.concurrent.TimeUnit.SECONDS));
        }
      } finally {
        readers.shutdownNow();
      }
      assertFalse(fetchThreads.isEmpty());
      for (String name : fetchThreads) {
        assertTrue(name.startsWith("puzzlefs-fuse-"), "a read ran on thread " + name);
      }
      assertTrue(fetchThreads.size() > 1, "reads ran on " + fetchThreads);
    } finally {
      mount.close();
    }
    assertFalse(mount.isMounted());
    assertNull(MountTable.typeAt(mnt));
  }

  @Test
  void umount_notMounted_throwsNotMounted() {
    IOException e = assertThrows(IOException.class, () -> Mounter.umount(mnt));
    assertTrue(e.getMessage().contains("is not mounted"), e.getMessage());
  }

  @Test
  void umount_externalFusermount_endsTheMount() throws Exception {
    Mount mount = mountFake(List.of());
    try {
      Result result = run("fusermount", "-u", mnt.toString());
      assertEquals(0, result.status(), result.stderr());
      assertTrue(mount.awaitUnmounted(Duration.ofSeconds(10)));
      assertFalse(mount.isMounted());
    } finally {
      mount.close();
    }
  }

  @Test
  void umount_byMounter_endsTheMount() throws Exception {
    Mount mount = mountFake(List.of());
    try {
      Mounter.umount(mnt);
      assertTrue(mount.awaitUnmounted(Duration.ofSeconds(10)));
      assertFalse(isMounted(mnt));
    } finally {
      mount.close();
    }
  }

  private static boolean isMounted(Path dir) {
    try {
      return MountTable.isMountPoint(dir);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }
}
