package dev.puzzlefs.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.reader.ChunkSource;
import dev.puzzlefs.reader.ChunkTimeoutException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chunks from memory, else from a disk cache, else from a {@link BlobFetcher}, verified at every
 * step.
 *
 * <p>How it works: completed chunks live in a Caffeine cache weighted by their length. A read that
 * misses it joins the load of that digest already in flight, or starts one, so there is one fetch
 * per digest however many readers want it at once. The load reads {@code <cacheDir>/sha256/<hex>}
 * on the executor; an entry that does not hash to its name (or fails the fs-verity check) is
 * deleted, never served. On a miss it asks the fetcher, with a deadline (unless asking again would
 * not help: {@link BlobFetcher#retriesHelpAHang}), then verifies on the executor (the sha256 once:
 * not again when the fetcher has checked it, {@link BlobFetcher#verifiesDigests}; never on the
 * fetcher's thread, which may be an event loop, unless the fetcher says its threads are workers:
 * {@link BlobFetcher#completesOnWorkerThread}), writes the disk entry, and only then puts the bytes
 * in memory and completes the readers' future. A failed load leaves nothing behind, so the next
 * read tries again.
 *
 * <p>Why not Caffeine's {@code AsyncCache}, which also shares in-flight loads: it logs every failed
 * load at WARNING with a stack trace (through {@code System.Logger}, bypassing SLF4J), which turns
 * a registry outage into a flood on the read path, and a failed future stays visible to readers
 * until its completion callback has removed it. A map of loads in flight beside a plain weighted
 * cache does the same job without either.
 */
public final class CachingChunkSource implements ChunkSource {
  private static final Logger LOG = LoggerFactory.getLogger(CachingChunkSource.class);
  private static final HexFormat HEX = HexFormat.of();
  private static final long SHARED_FETCH_POLL_MILLIS = 20;

  private final BlobFetcher fetcher;
  private final DiskCache disk;

  /** Verified chunks kept in memory; null when the memory cache's size is 0. */
  private final Cache<Digest, byte[]> memory;

  private final ConcurrentHashMap<Digest, CompletableFuture<byte[]>> loading =
      new ConcurrentHashMap<>();
  private final Executor executor;
  private final ExecutorService ownedExecutor;
  private final long fetchTimeoutMillis;
  private final Function<Digest, byte[]> expectedVerity;
  private final Function<byte[], byte[]> verityOf;

  private final LongAdder memoryHits = new LongAdder();
  private final LongAdder inFlightJoins = new LongAdder();
  private final LongAdder diskHits = new LongAdder();
  private final LongAdder diskWriteErrors = new LongAdder();
  private final LongAdder fetchErrors = new LongAdder();
  private final java.util.concurrent.atomic.AtomicBoolean diskWritesFailing =
      new java.util.concurrent.atomic.AtomicBoolean();
  private final LongAdder fetches = new LongAdder();
  private final LongAdder bytesFetched = new LongAdder();
  private final LongAdder corruptDiskEntries = new LongAdder();

  /** How long a lasting failure is answered without fetching again; 0: not at all. */
  private final long failureMemoryNanos;

  /** Lasting failures (wrong bytes, a blob the source lacks) and when each was seen. */
  private final ConcurrentHashMap<Digest, Failed> lastingFailures = new ConcurrentHashMap<>();

  private record Failed(IOException failure, long at) {}

  private CachingChunkSource(Builder b) throws IOException {
    this.fetcher = b.fetcher;
    this.ownedExecutor = b.executor == null ? newExecutor() : null;
    this.executor = b.executor != null ? b.executor : ownedExecutor;
    this.disk = b.diskDir == null ? null : new DiskCache(b.diskDir, b.maxDiskBytes, b.clock);
    this.fetchTimeoutMillis = b.fetchTimeout.toMillis();
    this.expectedVerity = b.expectedVerity;
    this.verityOf = b.verityOf;
    this.failureMemoryNanos = b.failureMemory.toNanos();
    // A memory cache of size 0 keeps nothing: none at all, rather than a Caffeine cache that holds
    // every chunk until its maintenance evicts it (long enough to outlive a young collection and be
    // copied into the old generation, which a sequential read then fills with garbage).
    this.memory =
        b.maxMemoryBytes == 0
            ? null
            : Caffeine.newBuilder()
                .maximumWeight(b.maxMemoryBytes)
                .weigher((Digest d, byte[] v) -> v.length)
                .executor(this::maintain)
                .build();
  }

  /**
   * Runs Caffeine's maintenance on the executor, or on the caller once the executor refuses work: a
   * load still running when {@link #close} shut the executor down ends by putting its bytes, and
   * Caffeine would otherwise log the refusal at WARNING with a stack trace.
   */
  private void maintain(Runnable task) {
    try {
      executor.execute(task);
    } catch (RejectedExecutionException e) {
      task.run();
    }
  }

  /** A builder for a cache in front of {@code fetcher}. */
  public static Builder builder(BlobFetcher fetcher) {
    return new Builder(fetcher);
  }

  @Override
  public boolean fetchesRunsCheaply() {
    return fetcher.fetchesRunsCheaply();
  }

  /**
   * The verified bytes of {@code blob}. Fails with {@link ChunkVerificationException} when what the
   * fetcher delivered is corrupt, {@link ChunkTimeoutException} past the deadline, or the fetcher's
   * own {@link IOException} (for a registry: not found, unreachable, mismatch).
   */
  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    byte[] cached = memory == null ? null : memory.getIfPresent(blob);
    if (cached != null) {
      memoryHits.increment();
      return CompletableFuture.completedFuture(cached);
    }
    IOException failedLately = failedLately(blob);
    if (failedLately != null) {
      return CompletableFuture.failedFuture(failedLately);
    }
    CompletableFuture<byte[]> mine = new CompletableFuture<>();
    CompletableFuture<byte[]> running = loading.putIfAbsent(blob, mine);
    if (running != null) {
      inFlightJoins.increment();
      // A copy, so that no caller can cancel or complete the future other readers share.
      return running.copy();
    }
    // a load may have finished since the first look
    cached = memory == null ? null : memory.getIfPresent(blob);
    if (cached != null) {
      loading.remove(blob, mine);
      mine.complete(cached);
      memoryHits.increment();
      return CompletableFuture.completedFuture(cached);
    }
    CompletableFuture<byte[]> loaded;
    try {
      loaded = load(blob);
    } catch (RuntimeException e) { // for example an executor that was shut down
      loaded = CompletableFuture.failedFuture(e);
    }
    loaded.whenComplete(
        (bytes, failure) -> {
          // Into memory before out of the loading map, so no reader finds neither.
          if (failure == null && memory != null) {
            memory.put(blob, bytes);
          }
          loading.remove(blob, mine);
          if (failure == null) {
            mine.complete(bytes);
          } else {
            IOException described = describe(blob, unwrap(failure));
            remember(blob, described);
            mine.completeExceptionally(described);
          }
        });
    return mine.copy();
  }

  /**
   * The failure of {@code blob} seen less than the failure memory ago, as a new exception saying
   * so; null when there is none. A damaged or missing blob fails every attempt of a fetch, and a
   * reader making many small reads of it would otherwise start a fetch, with all its attempts, for
   * each one.
   */
  private IOException failedLately(Digest blob) {
    if (lastingFailures.isEmpty()) {
      return null;
    }
    Failed failed = lastingFailures.get(blob);
    if (failed == null) {
      return null;
    }
    if (System.nanoTime() - failed.at() >= failureMemoryNanos) {
      lastingFailures.remove(blob, failed);
      return null;
    }
    return new IOException(
        failed.failure().getMessage()
            + " (the same failure less than "
            + (failureMemoryNanos % 1_000_000_000L == 0
                ? failureMemoryNanos / 1_000_000_000L + " s"
                : failureMemoryNanos / 1_000_000L + " ms")
            + " ago; not fetched again until then)",
        failed.failure());
  }

  /** Keeps {@code failure} of {@code blob} for the failure memory when it would happen again. */
  private void remember(Digest blob, IOException failure) {
    if (failureMemoryNanos == 0 || !lasting(failure)) {
      return;
    }
    long now = System.nanoTime();
    lastingFailures.values().removeIf(f -> now - f.at() >= failureMemoryNanos);
    lastingFailures.put(blob, new Failed(failure, now));
  }

  /**
   * Failures that another attempt right away would repeat: bytes that do not match their digest
   * (after the fetch's own attempts), and a blob the source does not have. Time-outs, refused
   * connections and server errors are not: the next read tries again.
   */
  private static boolean lasting(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof ChunkVerificationException
          || t instanceof dev.puzzlefs.registry.DigestMismatchException
          || t instanceof dev.puzzlefs.registry.BlobNotFoundException) {
        return true;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return false;
  }

  private CompletableFuture<byte[]> load(Digest blob) {
    if (disk == null) {
      return fetchAndStore(blob);
    }
    return CompletableFuture.supplyAsync(() -> readDisk(blob), executor)
        .thenCompose(
            bytes ->
                bytes != null
                    ? CompletableFuture.completedFuture(bytes)
                    : fetchShared(blob, System.nanoTime() + fetchTimeoutMillis * 1_000_000));
  }

  /**
   * Fetches a chunk that is not on disk, once among the processes sharing the disk cache: the one
   * that claims the chunk's fetch lock fetches it and writes the entry; the others poll until the
   * entry appears (and read it as a disk hit) or the lock is free again (the fetch failed: they try
   * themselves). Past {@code deadline} a waiter stops waiting and fetches on its own.
   */
  private CompletableFuture<byte[]> fetchShared(Digest blob, long deadline) {
    DiskCache.FetchClaim claim = disk.tryClaimFetch(blob);
    if (claim == null && System.nanoTime() < deadline) {
      return CompletableFuture.supplyAsync(
              () -> readDisk(blob),
              CompletableFuture.delayedExecutor(
                  SHARED_FETCH_POLL_MILLIS, TimeUnit.MILLISECONDS, executor))
          .thenCompose(
              bytes ->
                  bytes != null
                      ? CompletableFuture.completedFuture(bytes)
                      : fetchShared(blob, deadline));
    }
    DiskCache.FetchClaim held = claim == null ? DiskCache.FetchClaim.UNCOORDINATED : claim;
    if (held.coordinated()) {
      // The last holder may have written the entry just before releasing the claim we now have.
      byte[] written = readDisk(blob);
      if (written != null) {
        held.release();
        return CompletableFuture.completedFuture(written);
      }
    }
    CompletableFuture<byte[]> fetched;
    try {
      fetched = fetchAndStore(blob);
    } catch (RuntimeException e) {
      held.release();
      throw e;
    }
    return fetched.whenComplete((bytes, failure) -> held.release());
  }

  /** The verified disk entry, or null after deleting a corrupt one or finding none. */
  private byte[] readDisk(Digest blob) {
    byte[] bytes;
    try {
      bytes = disk.read(blob);
    } catch (DiskCache.UnusableEntryException e) {
      corruptDiskEntries.increment();
      LOG.warn("{}; fetching it again", e.getMessage());
      return null;
    } catch (IOException e) {
      LOG.warn("cannot read cache entry {}: {}; fetching it again", disk.path(blob), why(e));
      return null;
    }
    if (bytes == null) {
      return null;
    }
    try {
      verify(blob, bytes, "cache entry " + disk.path(blob), true);
    } catch (ChunkVerificationException e) {
      corruptDiskEntries.increment();
      LOG.warn("deleting corrupt cache entry: {}", e.getMessage());
      try {
        disk.delete(blob);
      } catch (IOException deleteFailure) {
        LOG.warn("cannot delete corrupt cache entry {}: {}", disk.path(blob), why(deleteFailure));
      }
      return null;
    }
    diskHits.increment();
    return bytes;
  }

  private CompletableFuture<byte[]> fetchAndStore(Digest blob) {
    fetches.increment();
    LOG.debug("fetching chunk {} from {}", blob, fetcher.source());
    CompletableFuture<byte[]> fetched;
    try {
      fetched = fetcher.fetch(blob);
    } catch (RuntimeException e) {
      fetched = CompletableFuture.failedFuture(e);
    }
    CompletableFuture<byte[]> bounded =
        fetcher.retriesHelpAHang()
            ? fetched
                .thenApply(Function.identity()) // a stage of our own, so the deadline is ours alone
                .orTimeout(fetchTimeoutMillis, TimeUnit.MILLISECONDS)
            : fetched;
    if (fetcher.completesOnWorkerThread()) {
      // On the fetcher's worker (or this thread, if it has finished already): no hand-off.
      return bounded.handle((bytes, failure) -> checkAndStore(blob, bytes, failure));
    }
    return bounded.handleAsync((bytes, failure) -> checkAndStore(blob, bytes, failure), executor);
  }

  private byte[] checkAndStore(Digest blob, byte[] bytes, Throwable failure) {
    if (failure != null) {
      fetchErrors.increment();
      throw new CompletionException(describe(blob, unwrap(failure)));
    }
    try {
      verify(blob, bytes, "chunk from " + fetcher.source(), !fetcher.verifiesDigests());
    } catch (ChunkVerificationException e) {
      fetchErrors.increment();
      throw new CompletionException(e);
    }
    bytesFetched.add(bytes.length);
    if (disk != null) {
      storeOnDisk(blob, bytes);
    }
    return bytes;
  }

  /**
   * Writes the disk entry. A full or unwritable cache disk must not fail reads: the chunk is served
   * from memory all the same, the first failure is logged as a warning and later ones only at debug
   * level, until a write succeeds again (said once, too).
   */
  private void storeOnDisk(Digest blob, byte[] bytes) {
    try {
      disk.write(blob, bytes);
      if (diskWritesFailing.compareAndSet(true, false)) {
        LOG.info("disk cache {} is writable again", disk.path(blob).getParent());
      }
    } catch (IOException e) {
      diskWriteErrors.increment();
      if (diskWritesFailing.compareAndSet(false, true)) {
        LOG.warn(
            "cannot write cache entry {}: {}; serving chunks without the disk cache until it can"
                + " be written again (no further warnings)",
            disk.path(blob),
            why(e));
      } else {
        LOG.debug("cannot write cache entry {}: {}", disk.path(blob), why(e));
      }
    }
  }

  /**
   * Checks that {@code bytes} hash to {@code blob} (unless {@code sha256} is false: the fetcher has
   * checked that already) and match the blob's fs-verity digest when one is expected.
   */
  private void verify(Digest blob, byte[] bytes, String what, boolean sha256)
      throws ChunkVerificationException {
    Digest actual = sha256 ? Digest.sha256(bytes) : blob;
    if (!actual.equals(blob)) {
      throw new ChunkVerificationException(
          what + " is corrupt: expected " + blob + " but its bytes hash to " + actual, blob);
    }
    if (expectedVerity == null) {
      return;
    }
    byte[] expected = expectedVerity.apply(blob);
    if (expected == null) {
      return;
    }
    byte[] measured = verityOf.apply(bytes);
    if (!Arrays.equals(expected, measured)) {
      throw new ChunkVerificationException(
          what
              + " "
              + blob
              + " fails the fs-verity check: expected "
              + HEX.formatHex(expected)
              + " but it measures "
              + HEX.formatHex(measured),
          blob);
    }
  }

  private IOException describe(Digest blob, Throwable cause) {
    if (cause instanceof TimeoutException) {
      return new ChunkTimeoutException(
          "could not fetch chunk "
              + blob
              + " from "
              + fetcher.source()
              + " within "
              + fetchTimeoutMillis
              + " ms",
          blob);
    }
    if (cause instanceof IOException) {
      return (IOException) cause;
    }
    return new IOException(
        "could not fetch chunk " + blob + " from " + fetcher.source() + ": " + cause, cause);
  }

  /** An I/O failure as a person reads it: its message, without the exception's class. */
  private static String why(IOException e) {
    return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  private static Throwable unwrap(Throwable t) {
    while (t instanceof CompletionException && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  /** The counters, named as the mount's {@code user.puzzlefs.stats} attribute reports them. */
  @Override
  public java.util.Map<String, Long> stats() {
    java.util.Map<String, Long> out = new java.util.TreeMap<>(fetcher.stats());
    out.put("fetchErrors", fetchErrors.sum());
    out.put("fetchedBytes", bytesFetched());
    out.put("fetchedBlobs", fetches());
    out.put("memoryHits", memoryHits());
    out.put("diskHits", diskHits());
    out.put("diskWriteErrors", diskWriteErrors.sum());
    out.put("inFlightJoins", inFlightJoins());
    out.put("corruptDiskEntries", corruptDiskEntries());
    out.put("memoryCacheBytes", memoryBytes());
    out.put("diskCacheBytes", diskBytes());
    return out;
  }

  /** Reads answered from memory. */
  public long memoryHits() {
    return memoryHits.sum();
  }

  /** Reads that joined a load another read had started. */
  public long inFlightJoins() {
    return inFlightJoins.sum();
  }

  /** Loads answered by a verified disk entry. */
  public long diskHits() {
    return diskHits.sum();
  }

  /** Times the fetcher was asked for a blob. */
  public long fetches() {
    return fetches.sum();
  }

  /** Verified bytes the fetcher delivered. */
  public long bytesFetched() {
    return bytesFetched.sum();
  }

  /** Disk entries found corrupt, deleted and fetched again. */
  public long corruptDiskEntries() {
    return corruptDiskEntries.sum();
  }

  /** Bytes held in memory now (approximate while evictions are pending). */
  public long memoryBytes() {
    // Caffeine counts a put's weight when its maintenance runs, which may still be queued on the
    // executor: run it here, so the number includes every chunk already served (stats only).
    if (memory == null) {
      return 0;
    }
    memory.cleanUp();
    return memory.policy().eviction().map(e -> e.weightedSize().orElse(0)).orElse(0L);
  }

  /** Bytes held on disk now, or 0 without a disk cache. */
  public long diskBytes() {
    return disk == null ? 0 : disk.size();
  }

  /** Drops the memory cache and stops the executor if this source created it. */
  @Override
  public void close() {
    if (memory != null) {
      memory.invalidateAll();
    }
    if (disk != null) {
      disk.close();
    }
    if (ownedExecutor != null) {
      ownedExecutor.shutdown();
    }
  }

  private static ExecutorService newExecutor() {
    AtomicInteger count = new AtomicInteger();
    ThreadFactory threads =
        r -> {
          Thread t = new Thread(r, "puzzlefs-cache-" + count.incrementAndGet());
          t.setDaemon(true);
          return t;
        };
    return Executors.newFixedThreadPool(4, threads);
  }

  /** Settings for a {@link CachingChunkSource}; every one has a default but the fetcher. */
  public static final class Builder {
    private final BlobFetcher fetcher;
    private long maxMemoryBytes = 256L << 20;
    private Path diskDir;
    private long maxDiskBytes;
    private Duration fetchTimeout = Duration.ofSeconds(60);
    private Executor executor;
    private Function<Digest, byte[]> expectedVerity;
    private Function<byte[], byte[]> verityOf;
    private Clock clock = Clock.systemUTC();
    private Duration failureMemory = Duration.ZERO;

    private Builder(BlobFetcher fetcher) {
      if (fetcher == null) {
        throw new IllegalArgumentException("a cache needs a fetcher");
      }
      this.fetcher = fetcher;
    }

    /** The most chunk bytes kept in memory. Default 256 MiB. */
    public Builder maxMemoryBytes(long bytes) {
      if (bytes < 0) {
        throw new IllegalArgumentException("maxMemoryBytes must not be negative, got " + bytes);
      }
      this.maxMemoryBytes = bytes;
      return this;
    }

    /** Keep verified chunks in {@code dir}/sha256/, using at most {@code maxBytes}. Default off. */
    public Builder diskCache(Path dir, long maxBytes) {
      if (maxBytes < 1) {
        throw new IllegalArgumentException("disk cache budget must be positive, got " + maxBytes);
      }
      this.diskDir = dir;
      this.maxDiskBytes = maxBytes;
      return this;
    }

    /**
     * How long one fetch may take before it fails and the next read asks again, for fetchers that
     * {@linkplain BlobFetcher#retriesHelpAHang may succeed when asked again}. Default 60 s.
     */
    public Builder fetchTimeout(Duration timeout) {
      if (timeout == null || timeout.isZero() || timeout.isNegative()) {
        throw new IllegalArgumentException("fetchTimeout must be positive, got " + timeout);
      }
      this.fetchTimeout = timeout;
      return this;
    }

    /**
     * Where disk I/O and verification run. Default: four daemon threads owned by the source and
     * stopped by {@link CachingChunkSource#close()}.
     */
    public Builder executor(Executor value) {
      this.executor = value;
      return this;
    }

    /**
     * Also check fs-verity: {@code expectedVerity} gives a chunk's expected fs-verity digest (null
     * when none is recorded) and {@code verityOf} measures bytes.
     */
    public Builder verity(
        Function<Digest, byte[]> expectedVerity, Function<byte[], byte[]> verityOf) {
      if (expectedVerity == null || verityOf == null) {
        throw new IllegalArgumentException("fs-verity checking needs both functions");
      }
      this.expectedVerity = expectedVerity;
      this.verityOf = verityOf;
      return this;
    }

    /**
     * How long a chunk whose fetch failed for good (wrong bytes, not found) fails at once, without
     * being fetched again. Default 0: every fetch tries again (a local layout, repaired by hand).
     */
    public Builder failureMemory(Duration value) {
      if (value == null || value.isNegative()) {
        throw new IllegalArgumentException("failureMemory must not be negative, got " + value);
      }
      this.failureMemory = value;
      return this;
    }

    /** The clock that stamps disk entries as used. Default the system clock. */
    public Builder clock(Clock value) {
      this.clock = value;
      return this;
    }

    /** The source; creates the disk cache directory if asked for one. */
    public CachingChunkSource build() throws IOException {
      return new CachingChunkSource(this);
    }
  }
}
