package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import java.util.concurrent.CompletableFuture;

/**
 * Where a {@link CachingChunkSource} gets the blobs it does not have. The bytes may be unverified:
 * the cache checks them before keeping or returning them, unless the fetcher {@linkplain
 * #verifiesDigests has checked them already}.
 */
public interface BlobFetcher {
  /**
   * The stored bytes of {@code blob}; fails with an {@link java.io.IOException} naming the blob
   * when it cannot be had. May complete on any thread, including a Vert.x event loop.
   */
  CompletableFuture<byte[]> fetch(Digest blob);

  /** Where the blobs come from, for messages: {@code host:port/repo} or a directory. */
  String source();

  /**
   * True when {@link #fetch} completes on a worker thread of the fetcher's own that may do CPU work
   * (never an event loop): the cache then verifies the bytes right there, while they are still in
   * the CPU's cache and without waking another thread. False (the default): the cache hands them to
   * its executor first.
   */
  default boolean completesOnWorkerThread() {
    return false;
  }

  /**
   * True when every array {@link #fetch} completes with has been checked to hash to the digest
   * asked for (a registry fetcher hashes each body as it arrives, to ask again when it does not):
   * the cache then does not hash it a second time. It still checks fs-verity digests. False (the
   * default): the cache checks the sha256 itself.
   */
  default boolean verifiesDigests() {
    return false;
  }

  /** As {@link dev.puzzlefs.reader.ChunkSource#fetchesRunsCheaply}. */
  default boolean fetchesRunsCheaply() {
    return false;
  }

  /** Counters of the fetcher's own (requests, retries, errors), named for the mount's stats. */
  default java.util.Map<String, Long> stats() {
    return java.util.Map.of();
  }
}
