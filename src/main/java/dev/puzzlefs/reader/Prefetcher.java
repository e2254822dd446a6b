package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches an image's chunks into the cache before anyone reads them: first the chunks of the paths
 * a list names (a directory stands for everything under it), in the list's order, then, if asked,
 * every other chunk of the image in ino order.
 *
 * <p>Reads come first: the prefetcher keeps at most a few fetches in flight, and starts none while
 * a read is waiting for a chunk. A chunk it cannot fetch is counted and skipped (a read will try it
 * again). One background thread; {@link #close} stops it.
 */
public final class Prefetcher implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Prefetcher.class);
  private static final long YIELD_MILLIS = 5;

  private final Image image;
  private final List<Digest> plan;
  private final Semaphore inFlight;
  private final int maxInFlight;
  private final LongAdder fetched = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final LongAdder bytes = new LongAdder();
  private final long progressNanos;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final Thread thread;
  private volatile boolean stopped;

  private Prefetcher(Image image, List<Digest> plan, int maxInFlight) {
    this.image = image;
    this.plan = plan;
    this.maxInFlight = maxInFlight;
    this.inFlight = new Semaphore(maxInFlight);
    this.thread = new Thread(this::run, "puzzlefs-prefetch");
    this.thread.setDaemon(true);
    this.thread.setPriority(Thread.MIN_PRIORITY);
    this.progressNanos = TimeUnit.SECONDS.toNanos(progressSeconds());
  }

  /** How often progress is logged: {@code PUZZLEFS_PROGRESS_INTERVAL} seconds, default 5. */
  private static long progressSeconds() {
    String value = System.getenv("PUZZLEFS_PROGRESS_INTERVAL");
    try {
      return value == null ? 5 : Math.max(1, Long.parseLong(value.trim()));
    } catch (NumberFormatException e) {
      return 5;
    }
  }

  /** Logs how far the prefetch has got: chunks, bytes, rate and the time left at that rate. */
  private void logProgress(long start) {
    long done = fetched.sum() + failed.sum();
    double secs = Math.max(1e-3, (System.nanoTime() - start) / 1e9);
    double rate = bytes.sum() / secs;
    double left = done == 0 ? Double.NaN : secs * (plan.size() - done) / done;
    LOG.info(
        "prefetch: {} of {} chunks ({}%), {} MiB at {} MiB/s, about {} s left",
        done,
        plan.size(),
        plan.isEmpty() ? 100 : done * 100 / plan.size(),
        String.format("%.1f", bytes.sum() / 1048576.0),
        String.format("%.1f", rate / 1048576.0),
        Double.isNaN(left) ? "?" : String.format("%.0f", left));
  }

  /**
   * Plans the prefetch of {@code paths} (absolute, raw bytes), then of the whole image if {@code
   * all}; paths the image does not have are logged and skipped. Nothing starts before {@link
   * #start}.
   */
  public static Prefetcher plan(Image image, List<byte[]> paths, boolean all, int maxInFlight) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be at least 1, got " + maxInFlight);
    }
    Set<Digest> order = new LinkedHashSet<>();
    for (byte[] path : paths) {
      String printable = new String(path, StandardCharsets.UTF_8);
      try {
        addTree(image, image.resolve(path), order);
      } catch (IOException e) {
        LOG.warn("prefetch list: {} is not in the image ({}); skipped", printable, e.toString());
      }
    }
    if (all) {
      try {
        addTree(image, image.inode(Image.ROOT_INO), order);
      } catch (IOException e) {
        throw new IllegalStateException("image without a root directory", e);
      }
    }
    Prefetcher p = new Prefetcher(image, new ArrayList<>(order), maxInFlight);
    image.addStats(p::stats);
    return p;
  }

  /** Adds the chunks of {@code top} and, for a directory, of everything under it, in ino order. */
  private static void addTree(Image image, Inode top, Set<Digest> order) throws IOException {
    List<Inode> files = new ArrayList<>();
    Set<Long> seen = new HashSet<>();
    Deque<Inode> todo = new ArrayDeque<>();
    todo.add(top);
    while (!todo.isEmpty()) {
      Inode inode = todo.poll();
      if (!seen.add(inode.ino())) {
        continue;
      }
      if (inode.kind() == InodeKind.FILE) {
        files.add(inode);
      } else if (inode.kind() == InodeKind.DIR) {
        for (DirEntry e : inode.entries()) {
          if (image.exists(e.ino())) {
            todo.add(image.inode(e.ino()));
          }
        }
      }
    }
    files.sort((a, b) -> Long.compare(a.ino(), b.ino()));
    for (Inode f : files) {
      for (FileChunk c : f.chunks()) {
        order.add(c.blob());
      }
    }
  }

  /** Starts the background fetching; returns at once. */
  public Prefetcher start() {
    LOG.info("prefetching {} chunks, at most {} at a time", plan.size(), maxInFlight);
    thread.start();
    return this;
  }

  /** Completes when every planned chunk was fetched or failed, or the prefetcher was closed. */
  public CompletableFuture<Void> done() {
    return done;
  }

  /** The counters: planned, fetched and failed chunks. */
  public Map<String, Long> stats() {
    return Map.of(
        "prefetchPlanned", (long) plan.size(),
        "prefetchFetched", fetched.sum(),
        "prefetchFailed", failed.sum(),
        "prefetchedBytes", bytes.sum());
  }

  private void run() {
    long start = System.nanoTime();
    long nextProgress = start + progressNanos;
    try {
      for (Digest blob : plan) {
        if (System.nanoTime() >= nextProgress) {
          logProgress(start);
          nextProgress = System.nanoTime() + progressNanos;
        }
        while (!stopped && image.readsWaiting() > 0) {
          Thread.sleep(YIELD_MILLIS);
        }
        if (stopped) {
          break;
        }
        inFlight.acquire();
        image
            .warm(blob)
            .whenComplete(
                (bytes, error) -> {
                  if (error != null) {
                    failed.increment();
                    LOG.debug("prefetch of {} failed: {}", blob, error.toString());
                  } else {
                    fetched.increment();
                    this.bytes.add(bytes.length);
                  }
                  inFlight.release();
                });
      }
      inFlight.acquire(maxInFlight); // the last fetches
      inFlight.release(maxInFlight);
      if (!stopped) {
        LOG.info(
            "prefetch done: {} chunks ({} bytes) fetched, {} failed, in {} ms",
            fetched.sum(),
            bytes.sum(),
            failed.sum(),
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      done.complete(null);
    }
  }

  @Override
  public void close() {
    stopped = true;
    thread.interrupt();
  }
}
