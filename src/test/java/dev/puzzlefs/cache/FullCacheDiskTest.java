package dev.puzzlefs.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.testing.Processes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * A cache directory on a real, small tmpfs that fills up: reads go on (from memory, past the disk),
 * the problem is logged once, and the disk cache is used again when space comes back.
 */
class FullCacheDiskTest {
  private static final int CHUNK = 256 * 1024;

  @TempDir Path tmp;
  private Path tmpfs;
  private ExecutorService io;
  private final ListAppender<ILoggingEvent> logged = new ListAppender<>();
  private final Logger logger = (Logger) LoggerFactory.getLogger(CachingChunkSource.class);

  @BeforeEach
  void mountTmpfs() throws Exception {
    tmpfs = Files.createDirectory(tmp.resolve("small"));
    Processes.run(30, "mount", "-t", "tmpfs", "-o", "size=1m", "puzzlefs-test", tmpfs.toString());
    io = Executors.newFixedThreadPool(2);
    logged.start();
    logger.addAppender(logged);
  }

  @AfterEach
  void unmountTmpfs() throws Exception {
    logger.detachAppender(logged);
    io.shutdownNow();
    Processes.run(30, "umount", tmpfs.toString());
  }

  private List<ILoggingEvent> events(Level level) {
    List<ILoggingEvent> out = new ArrayList<>();
    for (ILoggingEvent e : logged.list) {
      if (e.getLevel() == level) {
        out.add(e);
      }
    }
    return out;
  }

  @Test
  void cacheDiskFills_readsSucceedWarnedOnce_andTheCacheIsUsedAgainWhenSpaceReturns()
      throws Exception {
    Random random = new Random(4);
    Map<Digest, byte[]> blobs = new HashMap<>();
    List<Digest> order = new ArrayList<>();
    for (int i = 0; i < 16; i++) { // 4 MiB, four times the tmpfs
      byte[] chunk = new byte[CHUNK];
      random.nextBytes(chunk);
      Digest d = Digest.sha256(chunk);
      blobs.put(d, chunk);
      order.add(d);
    }
    BlobFetcher fetcher =
        new BlobFetcher() {
          @Override
          public CompletableFuture<byte[]> fetch(Digest blob) {
            return CompletableFuture.completedFuture(blobs.get(blob));
          }

          @Override
          public String source() {
            return "a map";
          }
        };
    try (CachingChunkSource source =
        CachingChunkSource.builder(fetcher)
            .diskCache(tmpfs.resolve("cache"), 1L << 30) // the budget is not what stops it
            .maxMemoryBytes(1L << 30)
            .fetchTimeout(Duration.ofSeconds(10))
            .executor(io)
            .build()) {
      for (Digest d : order) {
        assertArrayEquals(blobs.get(d), source.fetch(d).get(10, TimeUnit.SECONDS), d.toString());
      }
      assertEquals(1, events(Level.WARN).size(), "one warning: " + logged.list);
      assertTrue(
          events(Level.WARN).get(0).getFormattedMessage().contains("No space left on device"),
          events(Level.WARN).get(0).getFormattedMessage());
      long failures = source.stats().get("diskWriteErrors");
      assertTrue(failures >= 12, "most chunks did not fit: " + failures);
      try (var left = Files.list(tmpfs.resolve("cache/sha256"))) {
        assertTrue(
            left.noneMatch(p -> p.getFileName().toString().startsWith(".")),
            "no temporary file left behind");
      }

      Processes.run(30, "mount", "-o", "remount,size=16m", tmpfs.toString());
      byte[] late = new byte[CHUNK];
      random.nextBytes(late);
      Digest lateDigest = Digest.sha256(late);
      blobs.put(lateDigest, late);
      assertArrayEquals(late, source.fetch(lateDigest).get(10, TimeUnit.SECONDS));
      assertTrue(
          Files.exists(tmpfs.resolve("cache/sha256").resolve(lateDigest.hex())),
          "written to disk again once there is space");
      assertEquals(1, events(Level.INFO).size(), "recovery said once: " + logged.list);
      assertEquals(1, events(Level.WARN).size(), "no new warning");
    }
  }
}
