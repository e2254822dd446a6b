package dev.puzzlefs.fuse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.reader.ChunkSource;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.FuseTesting;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** Chunk fetches that fail or hang become EIO for that read only; the mount keeps serving. */
@Tag("fuse")
class MountFailureTest {
  private static final Duration DEADLINE = Duration.ofMillis(500);

  @TempDir Path tmp;
  private Path mnt;
  private Mount mount;
  private final FakeImage fake = new FakeImage(100);
  private final ListAppender<ILoggingEvent> logged = new ListAppender<>();
  private long brokenIno;
  private Digest brokenChunk;

  @BeforeEach
  void mountImage() throws Exception {
    FuseTesting.assumeFuse();
    fake.file("/good", FakeImage.utf8("g".repeat(100)));
    brokenIno = fake.file("/broken", FakeImage.utf8("b".repeat(100)));
    long stuck = fake.file("/stuck", FakeImage.utf8("s".repeat(100)));
    brokenChunk = fake.rootfs().layers().get(0).get((int) brokenIno - 1).chunks().get(0).blob();
    Digest stuckChunk = fake.rootfs().layers().get(0).get((int) stuck - 1).chunks().get(0).blob();
    Map<Digest, byte[]> blobs = fake.blobs();
    ChunkSource source =
        blob -> {
          if (blob.equals(brokenChunk)) {
            return CompletableFuture.failedFuture(new IOException("sha256 mismatch"));
          }
          if (blob.equals(stuckChunk)) {
            return new CompletableFuture<>();
          }
          return CompletableFuture.completedFuture(blobs.get(blob));
        };

    logged.start();
    ((Logger) LoggerFactory.getLogger(FuseErrors.class)).addAppender(logged);
    mnt = Files.createDirectory(tmp.resolve("mnt"));
    mount = Mounter.mount(fake.open(source, DEADLINE), mnt, List.of(), Duration.ofSeconds(30));
  }

  @AfterEach
  void unmount() throws IOException {
    ((Logger) LoggerFactory.getLogger(FuseErrors.class)).detachAppender(logged);
    try {
      if (mount != null) {
        mount.close();
      }
    } finally {
      if (mnt != null) {
        FuseTesting.forceUnmount(mnt);
      }
    }
  }

  @Test
  void read_failingChunk_givesEioAndLogsChunkFileAndCause() throws Exception {
    IOException e =
        assertThrows(IOException.class, () -> Files.readAllBytes(mnt.resolve("broken")));
    assertTrue(e.getMessage().contains("Input/output error"), e.toString());

    List<ILoggingEvent> warnings =
        logged.list.stream().filter(event -> event.getLevel() == Level.WARN).toList();
    assertTrue(!warnings.isEmpty(), "no WARN line");
    String line = warnings.get(0).getFormattedMessage();
    assertTrue(line.contains(brokenChunk.toString()), line);
    assertTrue(line.contains("ino " + brokenIno), line);
    assertTrue(line.contains("sha256 mismatch"), line);
  }

  @Test
  void read_hangingChunk_givesEioWithinDeadlineAndMountStaysUp() throws Exception {
    long start = System.nanoTime();
    IOException e = assertThrows(IOException.class, () -> Files.readAllBytes(mnt.resolve("stuck")));
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertTrue(e.getMessage().contains("Input/output error"), e.toString());
    assertTrue(millis < 10 * DEADLINE.toMillis(), "took " + millis + " ms");
    assertTrue(mount.isMounted());
    assertArrayEquals(FakeImage.utf8("g".repeat(100)), Files.readAllBytes(mnt.resolve("good")));
    assertEquals(100, Files.size(mnt.resolve("stuck")));
  }

  /** A second mount whose one file, /hangs, never arrives; reads wait up to 30 s for it. */
  private record Hanging(Image image, Mount mount, Path mnt) {}

  private Hanging mountHanging(List<String> options) throws Exception {
    FakeImage slow = new FakeImage(100);
    slow.file("/hangs", FakeImage.utf8("h".repeat(100)));
    ChunkSource never = blob -> new CompletableFuture<>();
    Image image = slow.open(never, Duration.ofSeconds(30));
    Path mnt2 = Files.createDirectory(tmp.resolve("mnt2"));
    return new Hanging(image, Mounter.mount(image, mnt2, options, Duration.ofSeconds(30)), mnt2);
  }

  /** Starts {@code command} and waits until its read of /hangs is waiting for the chunk. */
  private static Process waitingReader(Hanging h, String... command) throws Exception {
    Process reader = new ProcessBuilder(command).redirectErrorStream(true).start();
    long until = System.nanoTime() + 10_000_000_000L;
    while (h.image().stats().get("readStalls") == 0 && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    assertEquals(1, h.image().stats().get("readStalls"), "the read never waited");
    return reader;
  }

  /** What a test does with a {@link Hanging} mount. */
  private interface WithHanging {
    void run(Hanging h) throws Exception;
  }

  /** Runs {@code test} on a hanging mount with {@code options}, then makes sure it is gone. */
  private void withHanging(List<String> options, WithHanging test) throws Exception {
    Hanging h = mountHanging(options);
    try {
      test.run(h);
    } finally {
      if (h.mount().isMounted()) {
        FuseTesting.forceUnmount(h.mnt());
      }
    }
  }

  /**
   * A reader killed while its read waits for a chunk that does not come: its read gives up within
   * about a second, so an unmount from outside (puzzlefs umount, fusermount) ends the FUSE loop
   * instead of leaving it to the read's deadline (30 s here).
   */
  @Test
  void readOfAKilledReader_givesUp_soAnUnmountFromOutsideEndsTheLoop() throws Exception {
    withHanging(
        List.of(),
        h -> {
          waitingReader(h, "cat", h.mnt().resolve("hangs").toString()).destroyForcibly().waitFor();
          long start = System.nanoTime();
          Mounter.umount(h.mnt());
          assertTrue(h.mount().awaitUnmounted(Duration.ofSeconds(5)), "the loop did not end");
          long millis = (System.nanoTime() - start) / 1_000_000;
          assertTrue(millis < 3_000, "the loop took " + millis + " ms to end");
        });
  }

  /**
   * With synchronous reads (direct_io; runc's init reading a binary) a reader killed mid-read
   * cannot exit before the read is answered: it is still there, dying, with SIGKILL pending. Its
   * read gives up all the same, and the reader is gone within about a second, not at the read's
   * deadline.
   */
  @Test
  void readOfAReaderKilledInASynchronousRead_givesUp() throws Exception {
    withHanging(
        List.of("direct_io"),
        h -> {
          Process cat = waitingReader(h, "cat", h.mnt().resolve("hangs").toString());
          long start = System.nanoTime();
          cat.destroyForcibly();
          assertTrue(
              cat.waitFor(5, java.util.concurrent.TimeUnit.SECONDS), "the reader never died");
          long millis = (System.nanoTime() - start) / 1_000_000;
          assertTrue(millis < 3_000, "the killed reader took " + millis + " ms to go");
        });
  }

  /**
   * The owner takes the mount down (SIGTERM) while a live reader waits, its file open through the
   * lazy unmount: the waiting read fails, and so does the reader's next one at once, so the reader
   * ends and the mount comes down in about a second, not after 10 s with "FUSE loop ... did not
   * end".
   */
  @Test
  void close_withALiveReaderWaiting_failsItsReadsAndComesDown() throws Exception {
    withHanging(
        List.of(),
        h -> {
          Process reader =
              waitingReader(
                  h,
                  "python3",
                  "-c",
                  "import os, sys\n"
                      + "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                      + "for i in range(2):\n"
                      + "    try:\n"
                      + "        os.pread(fd, 100, 0)\n"
                      + "    except OSError as e:\n"
                      + "        print('failed', flush=True)\n",
                  h.mnt().resolve("hangs").toString());
          long start = System.nanoTime();
          h.mount().close();
          long millis = (System.nanoTime() - start) / 1_000_000;
          assertFalse(h.mount().isMounted());
          assertTrue(millis < 3_000, "unmount took " + millis + " ms");
          assertTrue(reader.waitFor(5, java.util.concurrent.TimeUnit.SECONDS), "still reading");
          String out = new String(reader.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
          assertEquals("failed\nfailed\n", out);
        });
  }
}
