package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The fetches of the last few chunks an image asked for, so that adjacent reads sharing a chunk and
 * readahead that ran before the demand read reuse one fetch instead of starting another.
 *
 * <p>Failed fetches are forgotten as soon as they fail, so the next read tries again. The bound is
 * a count of chunks (each at most 256 KiB stored), which keeps the memory held here small; the real
 * cache, when there is one, lives behind the {@link ChunkSource}.
 */
final class RecentChunks {
  private final ChunkSource source;
  private final Map<Digest, CompletableFuture<byte[]>> recent;

  RecentChunks(ChunkSource source, int capacity) {
    this.source = source;
    this.recent =
        new LinkedHashMap<>(capacity * 2, 0.75f, true) {
          private static final long serialVersionUID = 1L;

          @Override
          protected boolean removeEldestEntry(Map.Entry<Digest, CompletableFuture<byte[]>> eldest) {
            return size() > capacity;
          }
        };
  }

  /** The fetch of {@code blob}: a recent one if there is one, else a new one from the source. */
  CompletableFuture<byte[]> fetch(Digest blob) {
    CompletableFuture<byte[]> future;
    synchronized (recent) {
      future = recent.get(blob);
      if (future != null) {
        return future;
      }
      future = startFetch(blob);
      recent.put(blob, future);
    }
    CompletableFuture<byte[]> started = future;
    started.whenComplete(
        (bytes, error) -> {
          if (error != null) {
            forget(blob, started);
          }
        });
    return started;
  }

  /** Drops {@code future} (a failed or abandoned fetch of {@code blob}) so it is not reused. */
  void forget(Digest blob, CompletableFuture<byte[]> future) {
    synchronized (recent) {
      recent.remove(blob, future);
    }
  }

  private CompletableFuture<byte[]> startFetch(Digest blob) {
    try {
      CompletableFuture<byte[]> future = source.fetch(blob);
      if (future == null) {
        return CompletableFuture.failedFuture(
            new IllegalStateException("chunk source returned no future"));
      }
      return future;
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }
}
