package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import java.io.IOException;
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
 * Fetches an image's chunks into the cache before anyone reads them: first the chunks of what a
 * {@link PrefetchList} names (a directory stands for everything under it, a file's byte ranges for
 * the chunks that hold them), in the list's order, then, if asked, every other chunk of the image
 * in ino order.
 *
 * <p>A list's files are what is about to be read, so their chunks are fetched as fast as the
 * registry client allows ({@link #LIST_IN_FLIGHT} at a time), reads joining the fetches already
 * under way. A listed directory's files, and then the rest of the image, come after, and there
 * reads come first: a few fetches in flight, none started while a read is waiting for a chunk. A
 * chunk that cannot be fetched is counted and skipped (a read will try it again). One background
 * thread; {@link #close} stops it.
 */
public final class Prefetcher implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Prefetcher.class);
  private static final long YIELD_MILLIS = 5;

  /** Fetches in flight for the chunks of a list: as many as the registry client runs at once. */
  public static final int LIST_IN_FLIGHT = 8;

  private final Image image;
  private final List<Digest> plan;
  private final int listed;
  private final Set<Long> listedFiles;
  private final Set<Digest> listedChunks;
  private final Semaphore inFlight;
  private final int maxInFlight;
  private final int allInFlight;
  private final LongAdder fetched = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final LongAdder bytes = new LongAdder();
  private final long progressNanos;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final Thread thread;
  private volatile boolean stopped;

  private Prefetcher(
      Image image,
      List<Digest> plan,
      int listed,
      Set<Long> listedFiles,
      Set<Digest> listedChunks,
      int maxInFlight) {
    this.image = image;
    this.plan = plan;
    this.listed = listed;
    this.listedFiles = listedFiles;
    this.listedChunks = listedChunks;
    this.maxInFlight = Math.max(maxInFlight, listed > 0 ? LIST_IN_FLIGHT : 1);
    this.inFlight = new Semaphore(this.maxInFlight);
    this.allInFlight = maxInFlight;
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
   * Plans the prefetch of what {@code list} names, then of the whole image if {@code all}, with at
   * most {@code maxInFlight} fetches for the whole image; paths the image does not have are logged
   * and skipped. Nothing starts before {@link #start}.
   */
  public static Prefetcher plan(
      Image image, List<PrefetchList.Entry> list, boolean all, int maxInFlight) {
    return plan(image, list, "prefetch list", all, maxInFlight);
  }

  /** As {@link #plan(Image, List, boolean, int)}; warnings name the list as {@code listName}. */
  public static Prefetcher plan(
      Image image, List<PrefetchList.Entry> list, String listName, boolean all, int maxInFlight) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be at least 1, got " + maxInFlight);
    }
    Set<Digest> order = new LinkedHashSet<>();
    // A file names what is about to be read; a directory may be most of the image: its chunks
    // come after the files', behind reads, like the rest of the image.
    Set<Digest> trees = new LinkedHashSet<>();
    Set<Long> files = new HashSet<>();
    int missing = 0;
    for (PrefetchList.Entry entry : list) {
      try {
        Inode inode = image.resolveFollowingLinks(entry.path());
        addTree(image, inode, entry, inode.kind() == InodeKind.DIR ? trees : order);
        if (inode.kind() == InodeKind.FILE) {
          files.add(inode.ino());
        }
      } catch (IOException e) {
        if (++missing <= 5) {
          LOG.warn("{}: {}; skipped", listName, whyNot(entry, e));
        }
      }
    }
    if (missing > 5) {
      LOG.warn(
          "{}: {} of {} paths are not in the image (the first 5 named above); skipped",
          listName,
          missing,
          list.size());
    }
    int listed = order.size();
    Set<Digest> listedChunks = Set.copyOf(order);
    order.addAll(trees);
    if (all) {
      try {
        addTree(image, image.inode(Image.ROOT_INO), null, order);
      } catch (IOException e) {
        throw new IllegalStateException("image without a root directory", e);
      }
    }
    Prefetcher p =
        new Prefetcher(image, new ArrayList<>(order), listed, files, listedChunks, maxInFlight);
    image.addStats(p::stats);
    return p;
  }

  /**
   * Why a listed path was not found, as a person reads it. A line whose text after its last tab
   * looks like byte ranges but is not {@code START+LENGTH,...} was taken for a path with a tab in
   * it: it is reported as malformed, not as missing.
   */
  private static String whyNot(PrefetchList.Entry entry, IOException e) {
    String printable = entry.printable();
    String raw = new String(entry.path(), java.nio.charset.StandardCharsets.UTF_8);
    int rawTab = raw.lastIndexOf('\t');
    if (rawTab >= 0) {
      String tail = raw.substring(rawTab + 1);
      if (tail.matches("[0-9+,\\s]*[0-9][0-9+,\\s]*") && tail.contains("+")) {
        return raw.substring(0, rawTab)
            + ": malformed byte ranges '"
            + tail
            + "' (expected START+LENGTH[,START+LENGTH]..., each a number below 10^18)";
      }
    }
    if (e instanceof java.nio.file.NoSuchFileException) {
      return printable + " is not in the image";
    }
    if (e instanceof java.nio.file.NotDirectoryException) {
      return printable + " is not in the image (a part of it is not a directory)";
    }
    if (e instanceof java.nio.file.FileSystemException fs && fs.getReason() != null) {
      return printable + " cannot be resolved in the image: " + fs.getReason();
    }
    return printable + " is not in the image (" + e.getMessage() + ")";
  }

  /**
   * Adds the chunks of {@code top} and, for a directory, of everything under it, in ino order; of a
   * file listed with byte ranges, only the chunks that hold them.
   */
  private static void addTree(Image image, Inode top, PrefetchList.Entry entry, Set<Digest> order)
      throws IOException {
    if (top.kind() == InodeKind.FILE && entry != null && entry.ranges() != null) {
      long position = 0;
      for (FileChunk c : top.chunks()) {
        if (entry.wants(position, position + c.len())) {
          order.add(c.blob());
        }
        position += c.len();
      }
      return;
    }
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
    // A list alone is over in a moment (and run's messages go to the user's terminal).
    boolean quiet = listed == plan.size();
    (quiet ? LOG.atDebug() : LOG.atInfo())
        .log(
            "prefetching {} chunks ({} from the list), at most {} at a time",
            plan.size(),
            listed,
            maxInFlight);
    image.followList(listedFiles, listedChunks);
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
      for (int i = 0; i < plan.size(); i++) {
        Digest blob = plan.get(i);
        if (System.nanoTime() >= nextProgress) {
          logProgress(start);
          nextProgress = System.nanoTime() + progressNanos;
        }
        // Past the list, reads come first, and fewer fetches run at once.
        while (!stopped
            && i >= listed
            && (image.readsWaiting() > 0
                || maxInFlight - inFlight.availablePermits() >= allInFlight)) {
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
        (listed == plan.size() ? LOG.atDebug() : LOG.atInfo())
            .log(
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
    image.followList(Set.of(), Set.of()); // what was planned may now never come
  }
}
