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

  /**
   * True (the default) when a fetch that hangs may well succeed if asked again (a registry that
   * stopped answering one request): the cache fails a fetch still pending after its fetch timeout
   * with a {@link dev.puzzlefs.reader.ChunkTimeoutException}, so that the next read of the chunk
   * asks again. False when asking again would hang the same way (a file read from a stuck disk
   * holds its thread whatever becomes of the fetch): the cache then sets no deadline of its own,
   * which saves a timer entry and a stage per chunk, and the readers still give up at their own
   * deadlines.
   */
  default boolean retriesHelpAHang() {
    return true;
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
