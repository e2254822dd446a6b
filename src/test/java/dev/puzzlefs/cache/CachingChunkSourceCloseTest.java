package dev.puzzlefs.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.puzzlefs.format.Digest;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/** A source closed while a load is still running: the load ends quietly. */
class CachingChunkSourceCloseTest {
  @Test
  void fetch_executorShutDownDuringVerification_completesWithoutCaffeineWarning() throws Exception {
    byte[] bytes = "a chunk".getBytes(StandardCharsets.UTF_8);
    Digest digest = Digest.sha256(bytes);
    ExecutorService executor = Executors.newSingleThreadExecutor();
    BlobFetcher fetcher =
        new BlobFetcher() {
          @Override
          public CompletableFuture<byte[]> fetch(Digest blob) {
            return CompletableFuture.completedFuture(bytes);
          }

          @Override
          public String source() {
            return "memory";
          }
        };
    // Shutting the executor down from inside the check is what close() does when it races with
    // a load: the check runs on, and the bytes are put in memory afterwards.
    CachingChunkSource source =
        CachingChunkSource.builder(fetcher)
            .executor(executor)
            .verity(
                blob -> new byte[] {1},
                b -> {
                  executor.shutdown();
                  return new byte[] {1};
                })
            .build();
    Logger caffeine = Logger.getLogger("com.github.benmanes.caffeine.cache.BoundedLocalCache");
    List<LogRecord> records = new CopyOnWriteArrayList<>();
    Handler handler =
        new Handler() {
          @Override
          public void publish(LogRecord r) {
            if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
              records.add(r);
            }
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    caffeine.addHandler(handler);
    try {
      assertArrayEquals(bytes, source.fetch(digest).get(10, TimeUnit.SECONDS));
      executor.awaitTermination(10, TimeUnit.SECONDS);
    } finally {
      caffeine.removeHandler(handler);
      source.close();
    }

    assertEquals(List.of(), records.stream().map(LogRecord::getMessage).toList());
  }
}
