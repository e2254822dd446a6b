package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.registry.BlobNotFoundException;
import dev.puzzlefs.registry.ByteRanges;
import dev.puzzlefs.registry.ChunkPack;
import dev.puzzlefs.registry.MultiRangeNotSupportedException;
import dev.puzzlefs.registry.RangeNotSupportedException;
import dev.puzzlefs.registry.RangeSink;
import dev.puzzlefs.registry.RegistryClient;
import dev.puzzlefs.registry.RegistryUnreachableException;
import io.vertx.core.buffer.Buffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches chunks from an image's chunk pack when it has one (see {@link ChunkPack}): the chunks
 * asked for within a few milliseconds of each other that lie in one segment come with one range
 * request, neighbours as one part of it and the others as parts of their own, and each is checked
 * against its own digest before it is handed out. Anything else goes to {@code blobs}, one request
 * per blob: chunks the pack does not hold, a chunk alone in its segment, every chunk until the pack
 * has been found (the search runs beside the image's first reads), a chunk whose bytes in the pack
 * are wrong, and every chunk of a request that failed. A registry that does not send several parts
 * in one answer is asked for one part per request from then on. One that answers a range with
 * anything but that range, does not have the segment, or does not answer a range in time (it
 * stalls) turns the pack off for good: every later run would pay the same, and a stall costs a
 * whole request time-out (30 s by default) before the run's chunks come as blobs. A dropped
 * connection or a 5xx is often passing, and costs little: its chunks come as blobs, and only {@link
 * #MAX_FAILED_RANGES_IN_A_ROW} of them in a row turn the pack off.
 */
public final class PackedBlobFetcher implements BlobFetcher {
  private static final Logger LOG = LoggerFactory.getLogger(PackedBlobFetcher.class);

  /**
   * Ranges failing one after the other (a dropped connection, a 5xx) that turn the pack off. With a
   * registry that drops one request in ten, three in a row come about once in a thousand ranges.
   */
  static final int MAX_FAILED_RANGES_IN_A_ROW = 3;

  /** The most bytes one range request asks for, all its parts together. */
  static final int MAX_RANGE_BYTES = 4 << 20;

  /**
   * How long requests gather before they go out as ranges: a reader's requests reach the fetcher
   * one by one from the cache's threads, spread over a millisecond or so. By hand, a lazy walk of
   * minbase made a third fewer requests with 2 or 3 ms than with 1, and sending a chunk alone at
   * once when nothing was on its way made more requests and no faster walk.
   */
  static final long GATHER_MILLIS = 2;

  /**
   * When the registry sends one part per request: the most bytes between two chunks asked for that
   * one part still spans, fetched and dropped, cheaper than a request of their own (they are mostly
   * chunks already fetched or on their way). With several parts per request, a gap costs nothing.
   */
  static final long MAX_GAP_BYTES = 512 << 10;

  private final RegistryClient client;
  private final String repository;
  private final BlobFetcher blobs;
  private final CompletableFuture<ChunkPack> pack;
  private final AtomicBoolean disabled = new AtomicBoolean();

  /** Whether a request asks for several parts; off once the registry fails to answer that. */
  private volatile boolean multiRange = true;

  private final Object lock = new Object();
  private List<Wanted> gathering = new ArrayList<>();
  private boolean flushScheduled;

  /** Ranges that failed since the last one that did not. */
  /** Chunks cut from ranges that were corrupt, since the last one that was not. */
  private final java.util.concurrent.atomic.AtomicInteger corruptInARow =
      new java.util.concurrent.atomic.AtomicInteger();

  /**
   * Corrupt chunks in a row that turn the pack off: its segments are damaged (or the registry
   * serves them wrongly), and each chunk would cost a range and then its blob.
   */
  static final int MAX_CORRUPT_IN_A_ROW = 8;

  private final java.util.concurrent.atomic.AtomicInteger failedRanges =
      new java.util.concurrent.atomic.AtomicInteger();

  private final LongAdder ranges = new LongAdder();
  private final LongAdder rangeChunks = new LongAdder();
  private final LongAdder fallbacks = new LongAdder();

  private record Wanted(Digest chunk, ChunkPack.Location at, CompletableFuture<byte[]> result) {}

  private PackedBlobFetcher(
      RegistryClient client,
      String repository,
      BlobFetcher blobs,
      CompletableFuture<ChunkPack> pack) {
    this.client = client;
    this.repository = repository;
    this.blobs = blobs;
    this.pack = pack;
  }

  /**
   * A fetcher that looks for the chunk pack of image manifest {@code image} in {@code repository}
   * (whose chunks have the sizes {@code chunkSizes}) and, until it has found it or when there is
   * none, fetches through {@code blobs}. A pack that cannot be fetched or does not fit the image is
   * reported once as a warning and not used.
   */
  public static PackedBlobFetcher find(
      RegistryClient client,
      String repository,
      Digest image,
      Map<Digest, Long> chunkSizes,
      BlobFetcher blobs) {
    long started = System.nanoTime();
    CompletableFuture<ChunkPack> pack =
        client
            .findChunkPack(repository, image, chunkSizes)
            .toCompletionStage()
            .toCompletableFuture()
            .handle(
                (found, failure) -> {
                  if (failure != null && client.isClosed()) {
                    // The mount is going away before the search ended: nothing to warn about.
                    LOG.debug(
                        "the search for the chunk pack of {} ended: the client was closed", image);
                    return null;
                  }
                  if (failure != null) {
                    LOG.warn(
                        "not using the chunk pack of {} in {}/{}: {}; fetching its chunks one by"
                            + " one",
                        image,
                        client.registry(),
                        repository,
                        failure.getMessage());
                    return null;
                  }
                  if (found != null) {
                    LOG.debug(
                        "using chunk pack {} of {} ({} chunks in {} segments), found in {} ms",
                        found.manifest(),
                        image,
                        found.chunks(),
                        found.segments(),
                        (System.nanoTime() - started) / 1_000_000);
                  }
                  return found;
                });
    return new PackedBlobFetcher(client, repository, blobs, pack);
  }

  /** The search for the pack: completes with it, or with null when there is none to use. */
  public CompletableFuture<ChunkPack> search() {
    return pack.copy();
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    ChunkPack found = disabled.get() ? null : pack.getNow(null);
    ChunkPack.Location at = found == null ? null : found.locate(blob);
    if (at == null) {
      return blobs.fetch(blob);
    }
    Wanted wanted = new Wanted(blob, at, new CompletableFuture<>());
    boolean schedule;
    synchronized (lock) {
      gathering.add(wanted);
      schedule = !flushScheduled;
      flushScheduled = true;
    }
    if (schedule) {
      try {
        client.vertx().setTimer(GATHER_MILLIS, id -> flush());
      } catch (RuntimeException e) { // Vert.x closed: no timer will ever fire
        flush();
      }
    }
    return wanted.result();
  }

  /**
   * Sends what has gathered: for each segment, the chunks asked for as parts of as few range
   * requests as the limits allow (neighbours joined into one part), and a chunk alone in its
   * segment as a blob.
   */
  private void flush() {
    List<Wanted> batch;
    synchronized (lock) {
      batch = gathering;
      gathering = new ArrayList<>();
      flushScheduled = false;
    }
    batch.sort(
        Comparator.comparing((Wanted w) -> w.at().segment().toString())
            .thenComparingLong(w -> w.at().offset()));
    boolean several = multiRange;
    long gap = several ? 0 : MAX_GAP_BYTES;
    int mostParts = several ? RegistryClient.maxRangesPerRequest() : 1;
    List<Part> request = new ArrayList<>();
    long bytes = 0;
    Part part = null;
    for (Wanted w : batch) {
      long from = w.at().offset();
      long to = from + w.at().length();
      boolean sameSegment =
          part != null && w.at().segment().equals(part.chunks.get(0).at().segment());
      if (sameSegment
          && from <= part.end + gap
          && Math.max(part.end, to) - part.start + bytes <= MAX_RANGE_BYTES) {
        part.chunks.add(w);
        part.end = Math.max(part.end, to);
        continue;
      }
      if (part != null) {
        bytes += part.end - part.start;
        request.add(part);
      }
      if (!sameSegment || request.size() >= mostParts || bytes + (to - from) > MAX_RANGE_BYTES) {
        send(request);
        request = new ArrayList<>();
        bytes = 0;
      }
      part = new Part(from, to, new ArrayList<>(List.of(w)));
    }
    if (part != null) {
      request.add(part);
    }
    send(request);
  }

  /** Chunks that lie together in a segment, fetched as one part {@code [start, end)} of it. */
  private static final class Part {
    final long start;
    long end;
    final List<Wanted> chunks;

    Part(long start, long end, List<Wanted> chunks) {
      this.start = start;
      this.end = end;
      this.chunks = chunks;
    }
  }

  /** Fetches parts of one segment with one request; a single chunk as a blob. */
  private void send(List<Part> request) {
    if (request.isEmpty()) {
      return;
    }
    if ((request.size() == 1 && request.get(0).chunks.size() == 1) || disabled.get()) {
      for (Part p : request) {
        p.chunks.forEach(this::fromBlob);
      }
      return;
    }
    ranges.increment();
    Digest segment = request.get(0).chunks.get(0).at().segment();
    List<ByteRanges.Range> asked = new ArrayList<>(request.size());
    List<Wanted> chunks = new ArrayList<>();
    for (Part p : request) {
      asked.add(new ByteRanges.Range(p.start, (int) (p.end - p.start)));
      chunks.addAll(p.chunks);
    }
    Cutter cutter = new Cutter(chunks);
    client
        .pullRanges(repository, segment, asked, cutter)
        .onComplete(
            ar -> {
              if (ar.failed()) {
                rangeFailed(cutter.unfinished(), segment, ar.cause());
                return;
              }
              failedRanges.set(0);
              // Every part arrived whole: a chunk still without its bytes is a bug's, not the
              // registry's, yet it must not wait forever.
              cutter.unfinished().forEach(this::fromBlob);
            });
  }

  /**
   * Cuts the chunks of one range request out of its bytes as they arrive: each chunk as soon as its
   * last byte is in, so that a read waiting for the first chunk of a long range does not wait for
   * the rest. A chunk that does not hash to its digest comes as a blob instead.
   */
  private final class Cutter implements RangeSink {
    private final Wanted[] chunks;
    private final long[] starts;
    private final byte[][] bytes;

    /** Per chunk, the spans of its bytes that arrived (a registry may send some twice). */
    private final Spans[] received;

    /** Chunks whose bytes are all in: handed on to be hashed, or done. */
    private final boolean[] cut;

    Cutter(List<Wanted> wanted) {
      chunks = wanted.toArray(new Wanted[0]);
      java.util.Arrays.sort(chunks, Comparator.comparingLong(w -> w.at().offset()));
      starts = new long[chunks.length];
      for (int i = 0; i < chunks.length; i++) {
        starts[i] = chunks[i].at().offset();
      }
      bytes = new byte[chunks.length][];
      received = new Spans[chunks.length];
      cut = new boolean[chunks.length];
    }

    // Synchronized, though all calls come from the event loop of the request: cheap, and safe
    // should the request's end be reported on another thread.
    @Override
    public synchronized void arrived(long offset, Buffer data, int from, int length) {
      long end = offset + length;
      // The first chunk that ends past offset: chunks do not overlap, so they end in order too.
      int i = java.util.Arrays.binarySearch(starts, offset);
      i = i >= 0 ? i : Math.max(0, -i - 2);
      while (i > 0 && starts[i - 1] == starts[i]) {
        i--; // the same chunk asked for twice: both get its bytes
      }
      List<Integer> whole = null;
      for (; i < chunks.length && starts[i] < end; i++) {
        ChunkPack.Location at = chunks[i].at();
        long start = Math.max(offset, at.offset());
        long stop = Math.min(end, at.offset() + at.length());
        if (start >= stop || cut[i]) {
          continue;
        }
        if (bytes[i] == null) {
          bytes[i] = new byte[at.length()];
          received[i] = new Spans();
        }
        data.getBytes(
            from + (int) (start - offset),
            from + (int) (stop - offset),
            bytes[i],
            (int) (start - at.offset()));
        int covered = received[i].add((int) (start - at.offset()), (int) (stop - at.offset()));
        if (covered == at.length()) {
          cut[i] = true;
          if (whole == null) {
            whole = new ArrayList<>();
          }
          whole.add(i);
        }
      }
      if (whole != null) {
        List<Integer> done = whole;
        // Hashing holds up the event loop: on a worker.
        client
            .vertx()
            .executeBlocking(
                () -> {
                  for (int c : done) {
                    hand(c);
                  }
                  return null;
                },
                false)
            .onFailure(e -> done.forEach(c -> fromBlob(chunks[c])));
      }
    }

    /** Hands chunk {@code c} its bytes when they hash to its digest; else fetches its blob. */
    private void hand(int c) {
      Wanted w = chunks[c];
      byte[] b = bytes[c];
      bytes[c] = null;
      received[c] = null;
      if (Digest.sha256(b, 0, b.length).equals(w.chunk())) {
        corruptInARow.set(0);
        rangeChunks.increment();
        w.result().complete(b);
        return;
      }
      int corrupt = corruptInARow.incrementAndGet();
      if (corrupt < MAX_CORRUPT_IN_A_ROW) {
        LOG.warn(
            "chunk {} in pack segment {} of {}/{} is corrupt; fetching the chunk's own blob",
            w.chunk(),
            w.at().segment(),
            client.registry(),
            repository);
      } else if (disabled.compareAndSet(false, true)) {
        LOG.warn(
            "not using the chunk pack of {}/{} any more: {} chunks in a row cut from it were"
                + " corrupt; fetching chunks one by one",
            client.registry(),
            repository,
            corrupt);
      }
      fromBlob(w);
    }

    /** The chunks not cut yet; none is cut after this. */
    synchronized List<Wanted> unfinished() {
      List<Wanted> out = new ArrayList<>();
      for (int i = 0; i < chunks.length; i++) {
        if (!cut[i]) {
          cut[i] = true;
          bytes[i] = null;
          received[i] = null;
          out.add(chunks[i]);
        }
      }
      return out;
    }
  }

  private void rangeFailed(List<Wanted> unfinished, Digest segment, Throwable failure) {
    if (client.isClosed()) {
      // The mount is going away: its ranges fail for that, not for anything the registry did.
      LOG.debug("range request of pack segment {} ended: the client was closed", segment);
    } else if (failure instanceof MultiRangeNotSupportedException) {
      // Several parts in one answer are beyond this registry; one part per request may not be.
      if (multiRange) {
        multiRange = false;
        LOG.info(
            "{} does not send several parts of a blob in one answer ({}); asking for one at a time",
            client.registry(),
            failure.getMessage());
      }
    } else {
      // A range the registry answers wrongly, a segment it does not have, or a range it does not
      // answer in time (each later run would wait out a time-out too) would cost every later run
      // the same: its chunks come as blobs from now on. So they do after a few failures in a row
      // of any other kind: a dropped connection or a 5xx is often passing.
      boolean lasting =
          failure instanceof RangeNotSupportedException
              || failure instanceof BlobNotFoundException
              || (failure instanceof RegistryUnreachableException u && u.timedOut())
              || failedRanges.incrementAndGet() >= MAX_FAILED_RANGES_IN_A_ROW;
      if (lasting && disabled.compareAndSet(false, true)) {
        LOG.warn(
            "not using the chunk pack of {}/{} any more: {}; fetching chunks one by one",
            client.registry(),
            repository,
            failure.getMessage());
      } else {
        LOG.debug(
            "range request of pack segment {} failed ({}); fetching its chunks one by one",
            segment,
            failure.getMessage());
      }
    }
    unfinished.forEach(this::fromBlob);
  }

  private void fromBlob(Wanted w) {
    fallbacks.increment();
    CompletableFuture<byte[]> f;
    try {
      f = blobs.fetch(w.chunk());
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    f.whenComplete(
        (bytes, failure) -> {
          if (failure == null) {
            w.result().complete(bytes);
          } else {
            w.result().completeExceptionally(failure);
          }
        });
  }

  /** True when the blobs' fetcher verifies: each chunk cut from a range is hashed before. */
  @Override
  public boolean verifiesDigests() {
    return blobs.verifiesDigests();
  }

  /** True once the pack has been found, until the registry turns out to ignore ranges. */
  @Override
  public boolean fetchesRunsCheaply() {
    return !disabled.get() && pack.getNow(null) != null;
  }

  @Override
  public Map<String, Long> stats() {
    Map<String, Long> out = new TreeMap<>(blobs.stats());
    out.put("packRanges", ranges.sum());
    out.put("packChunks", rangeChunks.sum());
    out.put("packChunksAsBlobs", fallbacks.sum());
    return out;
  }

  @Override
  public String source() {
    return blobs.source();
  }

  /** Spans {@code [from, to)} of a chunk's bytes, merged as they are added. */
  static final class Spans {
    private int[] spans = new int[0]; // from, to, from, to, ... sorted and apart
    private int covered;

    /** Adds {@code [from, to)}; returns how many bytes the spans now cover. */
    int add(int from, int to) {
      int[] out = new int[spans.length + 2];
      int n = 0;
      boolean placed = false;
      for (int k = 0; k < spans.length; k += 2) {
        int a = spans[k];
        int b = spans[k + 1];
        if (b < from) {
          out[n++] = a;
          out[n++] = b;
        } else if (to < a) {
          if (!placed) {
            out[n++] = from;
            out[n++] = to;
            placed = true;
          }
          out[n++] = a;
          out[n++] = b;
        } else { // overlapping or touching: one span
          from = Math.min(from, a);
          to = Math.max(to, b);
        }
      }
      if (!placed) {
        out[n++] = from;
        out[n++] = to;
      }
      spans = java.util.Arrays.copyOf(out, n);
      covered = 0;
      for (int k = 0; k < n; k += 2) {
        covered += spans[k + 1] - spans[k];
      }
      return covered;
    }
  }
}
