package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.concurrent.CompletableFuture;

/**
 * Supplies the stored bytes of chunk blobs. Every implementation completes only with bytes whose
 * sha256 equals {@code blob} (and whose fs-verity digest matches, when the source was asked to
 * check it); anything else completes exceptionally with an {@link java.io.IOException} naming the
 * blob and the cause. Futures may complete on any thread; callers must not block an event loop.
 */
public interface ChunkSource extends AutoCloseable {
  /** The verified stored bytes of {@code blob}. The array must not be modified. */
  CompletableFuture<byte[]> fetch(Digest blob);

  /**
   * Counters for people and tests (for example {@code fetchedBytes}); empty when the source keeps
   * none.
   */
  default java.util.Map<String, Long> stats() {
    return java.util.Map.of();
  }

  /**
   * True when many chunks asked for together cost about one request (a registry image with a chunk
   * pack): readers may then fetch further ahead, and ask for many at once. May change while the
   * source is in use.
   */
  default boolean fetchesRunsCheaply() {
    return false;
  }

  @Override
  default void close() {}
}
