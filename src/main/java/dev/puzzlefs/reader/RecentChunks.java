package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.Iterator;
import java.util.LinkedHashMap;
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
  private final int capacity;
  private final int runCapacity;
  private final LinkedHashMap<Digest, CompletableFuture<byte[]>> recent =
      new LinkedHashMap<>(64, 0.75f, true);

  /**
   * Keeps the last {@code capacity} fetches, or {@code runCapacity} while the source fetches runs
   * cheaply ({@link ChunkSource#fetchesRunsCheaply}: a walk then fetches that far ahead, and a
   * fetch pushed out of here before its read would be fetched again or read back from disk).
   */
  RecentChunks(ChunkSource source, int capacity, int runCapacity) {
    this.source = source;
    this.capacity = capacity;
    this.runCapacity = Math.max(capacity, runCapacity);
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
      int keep = source.fetchesRunsCheaply() ? runCapacity : capacity;
      Iterator<CompletableFuture<byte[]>> eldest = recent.values().iterator();
      for (int extra = recent.size() - keep; extra > 0; extra--) {
        eldest.next();
        eldest.remove();
      }
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
