package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
 *
 * <p>A source that fetches many chunks with one request ({@link ChunkSource#fetchesRunsCheaply}, a
 * registry image with a chunk pack) is given them all at once, so that it can join them; the fetch
 * may wait a little for the source to know whether it does (the search for the pack runs beside the
 * rootfs blob's fetch, which the chunks' reads wait for anyway).
 */
public final class EarlyFetch implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(EarlyFetch.class);

  /**
   * Fetches in flight when the source joins many chunks into one request: enough for a command's
   * start (a python3 list has about 110) in a few requests, few enough that a list of thousands
   * does not queue the command's own first reads behind tens of 4 MiB requests.
   */
  static final int CHEAP_IN_FLIGHT = 128;

  private final ChunkSource source;
  private volatile List<Digest> chunks;
  private final CompletableFuture<List<Digest>> listed;
  private final Semaphore inFlight;
  private final int maxInFlight;
  private final CompletableFuture<?> ready;
  private final long readyWaitMillis;
  private boolean widened;
  private final LongAdder fetched = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final Thread thread;
  private volatile boolean stopped;

  private EarlyFetch(
      ChunkSource source,
      List<Digest> chunks,
      CompletableFuture<List<Digest>> listed,
      int maxInFlight,
      CompletableFuture<?> ready,
      long readyWaitMillis) {
    this.source = source;
    this.chunks = List.copyOf(chunks);
    this.listed = listed;
    this.maxInFlight = maxInFlight;
    this.inFlight = new Semaphore(maxInFlight);
    this.ready = ready;
    this.readyWaitMillis = readyWaitMillis;
    this.thread = new Thread(this::run, "puzzlefs-early-fetch");
    this.thread.setDaemon(true);
  }

  /** Starts fetching {@code chunks} in order from {@code source}, {@code maxInFlight} at a time. */
  public static EarlyFetch start(ChunkSource source, List<Digest> chunks, int maxInFlight) {
    return start(source, chunks, maxInFlight, null, 0);
  }

  /**
   * As {@link #start(ChunkSource, List, int)}, but first waits up to {@code readyWaitMillis} for
   * {@code ready} (the source's search for a way to fetch many chunks at once), and fetches all the
   * chunks at once when the source then {@linkplain ChunkSource#fetchesRunsCheaply fetches many
   * cheaply}, or as soon as it does.
   */
  public static EarlyFetch start(
      ChunkSource source,
      List<Digest> chunks,
      int maxInFlight,
      CompletableFuture<?> ready,
      long readyWaitMillis) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be positive: " + maxInFlight);
    }
    EarlyFetch f = new EarlyFetch(source, chunks, null, maxInFlight, ready, readyWaitMillis);
    if (!f.chunks.isEmpty()) {
      f.thread.start();
    }
    return f;
  }

  /**
   * Fetches the chunks {@code listed} completes with (a prefetch list published with a chunk pack,
   * known once the pack is found), all at once when the source {@linkplain
   * ChunkSource#fetchesRunsCheaply fetches many cheaply}, else {@link Prefetcher#LIST_IN_FLIGHT} at
   * a time. A list that fails to arrive fetches nothing.
   */
  public static EarlyFetch startWhenListed(
      ChunkSource source, CompletableFuture<List<Digest>> listed) {
    EarlyFetch f = new EarlyFetch(source, List.of(), listed, Prefetcher.LIST_IN_FLIGHT, null, 0);
    f.thread.start();
    return f;
  }

  private void run() {
    if (listed != null) {
      try {
        chunks = List.copyOf(listed.get());
      } catch (InterruptedException e) {
        return;
      } catch (ExecutionException | CancellationException e) {
        LOG.debug("no published prefetch list: {}", e.toString());
        return;
      }
    }
    long started = System.nanoTime();
    if (ready != null) {
      try {
        ready.get(readyWaitMillis, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        return;
      } catch (ExecutionException | TimeoutException | CancellationException e) {
        // fetched as the source fetches without it
      }
    }
    for (Digest d : chunks) {
      if (!widened && source.fetchesRunsCheaply()) {
        widened = true;
        inFlight.release(Math.max(0, CHEAP_IN_FLIGHT - maxInFlight));
      }
      try {
        inFlight.acquire();
      } catch (InterruptedException e) {
        return;
      }
      if (stopped) {
        inFlight.release();
        return;
      }
      CompletableFuture<byte[]> f;
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
