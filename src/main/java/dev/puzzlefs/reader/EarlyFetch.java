package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches chunks named only by digest, before the image's metadata is decoded: the chunks a
 * recorded prefetch list says its command needed. A registry image's rootfs blob takes tens of
 * milliseconds to arrive and be decoded; these fetches run meanwhile, so that a {@link Prefetcher}
 * planned from the same list later finds its chunks fetched or under way. Each chunk is verified by
 * its source like any other. A digest the image no longer has is the caller's to leave out (the
 * manifest lists every chunk); one that fails is counted and left to the reads.
 */
public final class EarlyFetch implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(EarlyFetch.class);

  private final ChunkSource source;
  private final List<Digest> chunks;
  private final Semaphore inFlight;
  private final LongAdder fetched = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final Thread thread;
  private volatile boolean stopped;

  private EarlyFetch(ChunkSource source, List<Digest> chunks, int maxInFlight) {
    this.source = source;
    this.chunks = List.copyOf(chunks);
    this.inFlight = new Semaphore(maxInFlight);
    this.thread = new Thread(this::run, "puzzlefs-early-fetch");
    this.thread.setDaemon(true);
  }

  /** Starts fetching {@code chunks} in order from {@code source}, {@code maxInFlight} at a time. */
  public static EarlyFetch start(ChunkSource source, List<Digest> chunks, int maxInFlight) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be positive: " + maxInFlight);
    }
    EarlyFetch f = new EarlyFetch(source, chunks, maxInFlight);
    if (!f.chunks.isEmpty()) {
      f.thread.start();
    }
    return f;
  }

  private void run() {
    long started = System.nanoTime();
    for (Digest d : chunks) {
      try {
        inFlight.acquire();
      } catch (InterruptedException e) {
        return;
      }
      if (stopped) {
        inFlight.release();
        return;
      }
      java.util.concurrent.CompletableFuture<byte[]> f;
      try {
        f = source.fetch(d);
      } catch (RuntimeException e) { // the source was closed under us: the mount is going away
        failed.increment();
        inFlight.release();
        return;
      }
      f.whenComplete(
          (bytes, failure) -> {
            if (failure == null) {
              fetched.increment();
            } else {
              failed.increment();
              LOG.debug("early fetch of {} failed: {}", d, failure.toString());
            }
            inFlight.release();
          });
    }
    LOG.debug(
        "started the early fetch of {} listed chunks in {} ms",
        chunks.size(),
        (System.nanoTime() - started) / 1_000_000);
  }

  /** Counters for {@link Image#stats}: chunks planned, fetched and failed. */
  public Map<String, Long> stats() {
    return Map.of(
        "earlyChunksPlanned", (long) chunks.size(),
        "earlyChunksFetched", fetched.sum(),
        "earlyChunksFailed", failed.sum());
  }

  /** Starts no more fetches; those under way finish into the cache. */
  @Override
  public void close() {
    stopped = true;
    thread.interrupt();
  }
}
