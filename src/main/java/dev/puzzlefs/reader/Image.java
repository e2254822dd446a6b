package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.SeekableZstd;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A mounted view of one PuzzleFS image: the merged inode table of its layers and reads of file
 * bytes through a {@link ChunkSource}.
 *
 * <p>Everything a lookup, stat or directory listing needs is computed once by {@link #open}: the
 * layers are merged into one table sorted by ino (the newest layer's inode wins, a whiteout removes
 * the ino), link counts and sizes are precomputed, so after that only {@link #read} touches the
 * chunk source. Per file, the prefix sums of its chunk lengths are built on the first read and
 * kept, so finding the chunk that holds an offset is a binary search.
 *
 * <p>Reads start the fetch of every chunk they need before waiting for any, and wait at most the
 * read deadline in total. A read that starts where the previous read of the same file ended also
 * starts fetching the next {@value #READAHEAD_CHUNKS} chunks of the file at once, without waiting
 * for them. The chunk source offers no priorities, so readahead competes with demand reads as
 * equals.
 *
 * <p>A compressed chunk ({@link FileChunk#compressed}, whatever the manifest's media type says) is
 * fetched and verified as stored, then only the seekable zstd frames that hold the bytes a read
 * wants are decompressed, on the reading thread. Nothing decompressed is kept: a frame is 4 KiB, so
 * a read that starts or ends inside a frame decompresses at most 8 KiB it does not return.
 *
 * <p>Instances are safe for concurrent use. {@link #close} closes the chunk source.
 */
public final class Image implements AutoCloseable {
  /** The ino of the root directory. */
  public static final long ROOT_INO = 1;

  /** How many chunks past a sequential read are fetched ahead. */
  public static final int READAHEAD_CHUNKS = 8;

  /**
   * How many chunks that follow a missed one in the data stream are fetched after a stall of a
   * sequential read that takes its file to the end; twice as many, up to {@link
   * #MAX_STREAM_AHEAD_CHUNKS}, each time the next stall is on one of them ({@link StreamWindow}).
   */
  public static final int STREAM_AHEAD_CHUNKS = 8;

  /**
   * The most chunks a walk of the data stream fetches ahead: a lazy read of every file of the
   * minbase image took a tenth less time with 32 than with 8, and no less with 64 or 128
   * (bench/FINDINGS.md).
   */
  public static final int MAX_STREAM_AHEAD_CHUNKS = 32;

  /**
   * The most chunks a walk fetches ahead from a source that fetches runs of neighbouring chunks
   * with one request ({@link ChunkSource#fetchesRunsCheaply}, a registry image with a chunk pack):
   * there the walk waits for round trips, not for the registry's work per chunk, and a lazy read of
   * every file of minbase took a sixth less time with 128 than with 32, with half the waits
   * (bench/FINDINGS.md). A local image keeps 32: more only added work that competes with the reads.
   */
  public static final int MAX_STREAM_AHEAD_RUN_CHUNKS = 128;

  /**
   * The largest file that is fetched whole, from a source that fetches runs of neighbouring chunks
   * cheaply, once its reads show it is read at random: an ELF file whose header had to be fetched
   * (the loader maps its segments and faults them in, in no order), or any file on its second read
   * that had to wait. A lazy {@code python3 -c 'print(1)'} otherwise waited on about 25 round trips
   * for the pages of its own binary.
   */
  static final long MAX_WHOLE_FILE_BYTES = 16 << 20;

  /**
   * The most bytes one image fetches in whole files: a program that reads the headers of many large
   * ELF files (a scanner) would otherwise fetch them all. Far more than a few commands need
   * (python3 and its libraries are about 10 MB); past it, files are fetched as their reads need.
   */
  static final long MAX_WHOLE_BYTES = 256L << 20;

  /** How far from the end of the previous read a read may start and still count as sequential. */
  private static final long SEQUENTIAL_SLACK = 512 << 10;

  private static final Logger log = LoggerFactory.getLogger(Image.class);
  // Not more: every chunk held here outlives young collections, and 64 made the server's 1 GiB read
  // a quarter slower (old-generation collections). A source that fetches runs cheaply keeps
  // room for three whole stream windows besides: the windows a walk has asked for must stay here
  // until they are read. A registry image's memory cache did not keep them: Caffeine's admission
  // policy (TinyLFU) keeps a chunk already read over a new one only fetched, and about 900 of the
  // 2,326 chunks of a lazy read of minbase were read back from disk and hashed again.
  private static final int RECENT_CHUNKS = 32;

  private final long[] inos;
  private final Inode[] inodes;
  private final int[] nlinks;
  private final long[] parents;
  private final long[] sizes;
  private final long totalBytes;
  private final AtomicReferenceArray<long[]> chunkEnds;
  private final AtomicLongArray lastReadEnd;
  private final ProgramFetch programs = new ProgramFetch(this);

  /** Per file, reads that had to wait: 1 after the first, WHOLE once the file is fetched whole. */
  private final java.util.concurrent.atomic.AtomicIntegerArray waitedReads;

  private static final int WHOLE = 2;
  private final ChunkSource source;
  private final RecentChunks recent;
  private final long deadlineNanos;
  private volatile long chunkBytes = -1;

  /** Reads waiting now for a chunk that was not yet there: prefetch yields while it is above 0. */
  private final java.util.concurrent.atomic.AtomicInteger readsWaiting =
      new java.util.concurrent.atomic.AtomicInteger();

  private final java.util.concurrent.atomic.LongAdder readStalls =
      new java.util.concurrent.atomic.LongAdder();
  private final java.util.concurrent.atomic.LongAdder readTimeouts =
      new java.util.concurrent.atomic.LongAdder();
  private final java.util.concurrent.atomic.LongAdder readaheadChunks =
      new java.util.concurrent.atomic.LongAdder();
  private final java.util.concurrent.atomic.LongAdder wholeFiles =
      new java.util.concurrent.atomic.LongAdder();
  private final java.util.concurrent.atomic.AtomicLong wholeBytes =
      new java.util.concurrent.atomic.AtomicLong();
  private volatile java.util.function.Supplier<Map<String, Long>> extraStats = Map::of;
  private volatile ReadRecorder recorder;
  private final StreamAhead stream;

  private Image(
      long[] inos,
      Inode[] inodes,
      TreeValidator.Links links,
      ChunkSource source,
      Duration readDeadline) {
    this.inos = inos;
    this.inodes = inodes;
    this.nlinks = links.nlinks();
    this.parents = links.parents();
    this.sizes = new long[inos.length];
    this.chunkEnds = new AtomicReferenceArray<>(inos.length);
    this.lastReadEnd = new AtomicLongArray(inos.length);
    this.waitedReads = new java.util.concurrent.atomic.AtomicIntegerArray(inos.length);
    this.source = source;
    this.recent =
        new RecentChunks(source, RECENT_CHUNKS, RECENT_CHUNKS + 3 * MAX_STREAM_AHEAD_RUN_CHUNKS);
    this.deadlineNanos = readDeadline.toNanos();
    this.stream = new StreamAhead(inodes, source, recent, readaheadChunks);
    long total = 0;
    for (int i = 0; i < inodes.length; i++) {
      Inode inode = inodes[i];
      if (inode.kind() == InodeKind.LNK && inode.symlinkTarget() != null) {
        sizes[i] = inode.symlinkTarget().length;
      } else {
        sizes[i] = inode.size();
        total += sizes[i];
      }
    }
    this.totalBytes = total;
  }

  /**
   * Builds the in-memory index of {@code rootfs}; reads will fetch chunks from {@code source} and
   * give up on a chunk after {@code readDeadline}.
   *
   * @throws FormatException if the image has no root directory (ino 1), or holds a structure no
   *     filesystem can (see {@link TreeValidator}): a directory under two names or inside itself,
   *     an entry naming a missing ino, entries out of order or with an invalid or repeated name, a
   *     layer out of ino order, a chunk range past what a chunk can hold (a range past the end of
   *     the actual chunk is found only when read: {@link #read} fails with {@link
   *     ChunkReadException})
   */
  public static Image open(Rootfs rootfs, ChunkSource source, Duration readDeadline)
      throws FormatException {
    Objects.requireNonNull(source, "source");
    if (readDeadline.isNegative() || readDeadline.isZero()) {
      throw new IllegalArgumentException("read deadline must be positive: " + readDeadline);
    }
    TreeValidator.checkLayers(rootfs);
    Map<Long, Inode> merged = new HashMap<>();
    for (List<Inode> layer : rootfs.layers()) {
      for (Inode inode : layer) {
        merged.putIfAbsent(inode.ino(), inode);
      }
    }
    long[] inos =
        merged.values().stream()
            .filter(i -> i.kind() != InodeKind.WHT)
            .mapToLong(Inode::ino)
            .sorted()
            .toArray();
    Inode[] inodes = new Inode[inos.length];
    for (int i = 0; i < inos.length; i++) {
      inodes[i] = merged.get(inos[i]);
    }
    TreeValidator.Links links = TreeValidator.check(inos, inodes);
    return new Image(inos, inodes, links, source, readDeadline);
  }

  private int indexOf(long ino) {
    return Arrays.binarySearch(inos, ino);
  }

  private int require(long ino) throws NoSuchFileException {
    int index = indexOf(ino);
    if (index < 0) {
      throw new NoSuchFileException("ino " + ino);
    }
    return index;
  }

  /** The inode {@code ino} as the merged layers define it. */
  public Inode inode(long ino) throws NoSuchFileException {
    return inodes[require(ino)];
  }

  /** True when {@code ino} exists in the merged layers. */
  public boolean exists(long ino) {
    return indexOf(ino) >= 0;
  }

  /** The link count: 2 plus subdirectories for a directory, names in the tree otherwise. */
  public int nlink(long ino) throws NoSuchFileException {
    return nlinks[require(ino)];
  }

  /**
   * The ino of the directory that lists directory {@code ino}: what {@code ..} names. The root, and
   * a directory no other directory lists, are their own parent.
   */
  public long parent(long ino) throws NoSuchFileException {
    return parents[require(ino)];
  }

  /**
   * What {@code st_size} shows: for a regular file the sum of its chunk lengths, for a symlink the
   * length of its target, 0 for anything else.
   */
  public long size(long ino) throws NoSuchFileException {
    return sizes[require(ino)];
  }

  /** The number of inodes in the merged view. */
  public long inodeCount() {
    return inos.length;
  }

  /** The number of regular files in the merged view (hard links counted once). */
  public long fileCount() {
    long n = 0;
    for (Inode inode : inodes) {
      if (inode.kind() == InodeKind.FILE) {
        n++;
      }
    }
    return n;
  }

  /** The inode numbers of the merged view, in ascending order. */
  public long[] inos() {
    return inos.clone();
  }

  /** The sum of the sizes of all regular files (hard links counted once). */
  public long totalBytes() {
    return totalBytes;
  }

  /**
   * What this mount has done so far: the chunk source's counters plus {@code imageBytes} (the bytes
   * of every chunk the image references, uncompressed), {@code inodes}, and the reads' own: {@code
   * readStalls} (reads that waited for a chunk) and {@code readTimeouts} (reads that gave up
   * waiting at the read deadline, each an EIO).
   */
  public Map<String, Long> stats() {
    Map<String, Long> out = new java.util.TreeMap<>(source.stats());
    out.put("imageBytes", chunkBytes());
    out.put("inodes", inodeCount());
    out.put("readStalls", readStalls.sum());
    out.put("readTimeouts", readTimeouts.sum());
    out.put("readaheadChunks", readaheadChunks.sum());
    out.put("wholeFiles", wholeFiles.sum());
    out.put("linkedFiles", programs.linkedFiles());
    out.putAll(extraStats.get());
    return out;
  }

  /** Adds counters from elsewhere (a prefetcher) to {@link #stats}. */
  public void addStats(java.util.function.Supplier<Map<String, Long>> more) {
    java.util.function.Supplier<Map<String, Long>> before = extraStats;
    extraStats =
        () -> {
          Map<String, Long> all = new HashMap<>(before.get());
          all.putAll(more.get());
          return all;
        };
  }

  private final RecentTimeouts recentTimeouts = new RecentTimeouts();

  /** What a prefetch list planned, or null. */
  private volatile ListedReads listed;

  /**
   * Reads of the files in {@code inos} follow a prefetch list that planned {@code chunks} (see
   * {@link ListedReads}): they read no further ahead, in their file or in the data stream, while
   * the chunk they end in was planned. A read that needs an unplanned chunk (the list is out of
   * date for that file) reads ahead as usual.
   */
  public void followList(Set<Long> inos, Set<Digest> chunks) {
    listed = ListedReads.of(inos, chunks);
  }

  private boolean followsList(long ino, FileChunk lastChunk) {
    ListedReads l = listed;
    return l != null && l.follows(ino, lastChunk.blob());
  }

  /** From now on, tells {@code r} which chunks of which files each read needs. */
  public void recordReads(ReadRecorder r) {
    recorder = r;
  }

  /** How many reads are waiting for chunks right now. */
  public int readsWaiting() {
    return readsWaiting.get();
  }

  /**
   * Starts fetching {@code blob} into the chunk source's caches without waiting for it; for
   * prefetching. The future completes when the chunk is cached (or failed).
   */
  public CompletableFuture<byte[]> warm(Digest blob) {
    try {
      CompletableFuture<byte[]> f = source.fetch(blob);
      return f != null ? f : CompletableFuture.failedFuture(new IOException("no future"));
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  private long chunkBytes() {
    long cached = chunkBytes;
    if (cached < 0) {
      // Every byte of a chunk belongs to some file, so a chunk's length is the furthest any file
      // reads into it.
      // TODO: for a compressed chunk that is its uncompressed length, not what is stored (the
      // rootfs does not say); give the reader the manifest's layer sizes to report stored bytes.
      Map<Digest, Long> ends = new HashMap<>();
      for (Inode inode : inodes) {
        if (inode.chunks() != null) {
          for (FileChunk c : inode.chunks()) {
            ends.merge(c.blob(), c.offset() + c.len(), Math::max);
          }
        }
      }
      cached = ends.values().stream().mapToLong(Long::longValue).sum();
      chunkBytes = cached;
    }
    return cached;
  }

  /** The entries of directory {@code ino}, sorted by name bytes. */
  public List<DirEntry> entries(long ino) throws IOException {
    Inode dir = inode(ino);
    if (dir.kind() != InodeKind.DIR) {
      throw new NotDirectoryException("ino " + ino);
    }
    return dir.entries();
  }

  /**
   * The inode named {@code name[from, to)} in directory {@code dir}, matched byte for byte.
   *
   * @throws NoSuchFileException if there is no such name
   * @throws NotDirectoryException if {@code dir} is not a directory
   */
  public Inode lookup(Inode dir, byte[] name, int from, int to) throws IOException {
    if (dir.kind() != InodeKind.DIR) {
      throw new NotDirectoryException("ino " + dir.ino());
    }
    List<DirEntry> entries = dir.entries();
    int lo = 0;
    int hi = entries.size() - 1;
    while (lo <= hi) {
      int mid = (lo + hi) >>> 1;
      byte[] candidate = entries.get(mid).name();
      int cmp = Arrays.compareUnsigned(candidate, 0, candidate.length, name, from, to);
      if (cmp < 0) {
        lo = mid + 1;
      } else if (cmp > 0) {
        hi = mid - 1;
      } else {
        return inode(entries.get(mid).ino());
      }
    }
    throw new NoSuchFileException(printable(name, from, to));
  }

  /**
   * The inode at absolute path {@code path} (raw bytes, components separated by {@code /}),
   * starting from the root directory.
   */
  public Inode resolve(byte[] path) throws IOException {
    Inode current = inode(ROOT_INO);
    int start = 0;
    while (start < path.length) {
      int end = start;
      while (end < path.length && path[end] != '/') {
        end++;
      }
      if (end > start) {
        try {
          current = lookup(current, path, start, end);
        } catch (NoSuchFileException e) {
          throw new NoSuchFileException(printable(path, 0, path.length));
        } catch (NotDirectoryException e) {
          throw new NotDirectoryException(printable(path, 0, path.length));
        }
      }
      start = end + 1;
    }
    return current;
  }

  /** Symbolic links followed in one {@link #resolveFollowingLinks} before giving up (ELOOP). */
  public static final int MAX_LINKS = 40;

  /**
   * The inode at absolute path {@code path} as a process whose root is the image sees it: symbolic
   * links are followed, in the middle of the path and at its end; an absolute target starts again
   * at the image's root, and {@code ..} never climbs above it.
   *
   * @throws NoSuchFileException if a component is missing
   * @throws NotDirectoryException if a component before the last is not a directory
   * @throws java.nio.file.FileSystemException after {@link #MAX_LINKS} links
   */
  public Inode resolveFollowingLinks(byte[] path) throws IOException {
    String whole = printable(path, 0, path.length);
    Deque<byte[]> todo = new ArrayDeque<>();
    pushComponents(todo, path);
    Deque<Inode> at = new ArrayDeque<>(); // the directories walked into, below the root
    Inode root = inode(ROOT_INO);
    Inode current = root;
    int links = 0;
    while (!todo.isEmpty()) {
      byte[] name = todo.pop();
      if (name.length == 0 || (name.length == 1 && name[0] == '.')) {
        continue;
      }
      if (name.length == 2 && name[0] == '.' && name[1] == '.') {
        if (!at.isEmpty()) {
          at.removeLast();
        }
        current = at.isEmpty() ? root : at.peekLast();
        continue;
      }
      Inode next;
      try {
        next = lookup(current, name, 0, name.length);
      } catch (NoSuchFileException e) {
        throw new NoSuchFileException(whole);
      } catch (NotDirectoryException e) {
        throw new NotDirectoryException(whole);
      }
      if (next.kind() == InodeKind.LNK && next.symlinkTarget() != null) {
        if (++links > MAX_LINKS) {
          throw new java.nio.file.FileSystemException(
              whole, null, "more than " + MAX_LINKS + " symbolic links");
        }
        byte[] target = next.symlinkTarget();
        if (target.length > 0 && target[0] == '/') {
          at.clear();
          current = root;
        }
        pushComponents(todo, target);
        continue;
      }
      at.addLast(next);
      current = next;
    }
    return current;
  }

  /** Puts the components of {@code path} in front of {@code todo}, the first one first. */
  private static void pushComponents(Deque<byte[]> todo, byte[] path) {
    int end = path.length;
    for (int i = path.length - 1; i >= -1; i--) {
      if (i < 0 || path[i] == '/') {
        if (end > i + 1) {
          todo.push(Arrays.copyOfRange(path, i + 1, end));
        }
        end = i;
      }
    }
  }

  /** Receives the bytes of a read, piece by piece, without an intermediate buffer. */
  @FunctionalInterface
  public interface ByteSink {
    /** Takes {@code src[from, from+length)}, which belong at {@code at} bytes into the read. */
    void put(int at, byte[] src, int from, int length);
  }

  /**
   * Reads up to {@code size} bytes of file {@code ino} at {@code offset} into {@code dst} at {@code
   * dstOffset}, waiting at most the read deadline for the chunks.
   *
   * @return the number of bytes read: fewer than {@code size} only at end of file, 0 at or past it
   * @throws ChunkReadException if a chunk could not be fetched in time, failed, or is malformed
   */
  public int read(long ino, long offset, byte[] dst, int dstOffset, int size) throws IOException {
    Objects.checkFromIndexSize(dstOffset, size, dst.length);
    return read(
        ino,
        offset,
        size,
        (at, src, from, length) -> System.arraycopy(src, from, dst, dstOffset + at, length));
  }

  /**
   * Reads like {@link #read(long, long, byte[], int, int)} but hands the bytes to {@code sink}, in
   * order, straight from the chunks.
   */
  public int read(long ino, long offset, int size, ByteSink sink) throws IOException {
    return read(ino, offset, size, sink, null);
  }

  /**
   * Reads like {@link #read(long, long, int, ByteSink)} for the process {@code requester} names
   * (asked only when the read has to wait, on the reading thread; null: unknown): a read that waits
   * for a chunk gives up once that process is gone, rather than at its deadline. A process killed
   * while its read waited on a slow registry would otherwise hold a FUSE thread, and an unmount
   * would wait for it.
   */
  public int read(long ino, long offset, int size, ByteSink sink, LongSupplier requester)
      throws IOException {
    if (offset < 0 || size < 0) {
      throw new IllegalArgumentException("negative offset " + offset + " or size " + size);
    }
    int index = require(ino);
    Inode file = inodes[index];
    if (file.kind() != InodeKind.FILE) {
      throw new IOException("ino " + ino + " is not a regular file but " + file.kind());
    }
    long fileSize = sizes[index];
    if (offset >= fileSize || size == 0) {
      return 0;
    }
    long end = offset + Math.min(size, fileSize - offset);
    long[] ends = chunkEnds(index);
    int first = firstChunkEndingAfter(ends, offset);
    int last = firstChunkEndingAfter(ends, end - 1);

    ReadRecorder r = recorder;
    if (r != null) {
      r.touched(ino, first, last);
    }
    List<FileChunk> chunks = file.chunks();
    CompletableFuture<?>[] futures = startFetches(chunks, first, last);
    // A read near where the last one of this file ended (the kernel's readahead may have several
    // in flight, slightly out of order) is sequential: fetch the next chunks now, while this read
    // waits for its own. Every file's "last read" ends at 0, so reading from the start counts.
    long previousEnd = lastReadEnd.getAndSet(index, end);
    boolean listed = followsList(ino, chunks.get(last));
    boolean sequential = Math.abs(offset - previousEnd) <= SEQUENTIAL_SLACK && !listed;
    if (sequential) {
      readAhead(chunks, last + 1);
    }
    // Whether this read waits and its file may still be fetched whole; then, whether it is an ELF
    // file, known once its first chunk is here.
    boolean mayFetchWhole =
        waitedReads.get(index) < WHOLE
            && fileSize <= MAX_WHOLE_FILE_BYTES
            && chunks.size() > last - first + 1
            && anyPending(futures)
            && source.fetchesRunsCheaply()
            && !listed;
    if (mayFetchWhole && !waitedReads.compareAndSet(index, 0, 1)) {
      fetchWhole(index);
      mayFetchWhole = false;
    }
    long deadline = System.nanoTime() + deadlineNanos;
    // Only a sequential read that takes the file to its end leads into the next files of the data
    // stream (a walk: tar, cp); a program's jumps inside a file (a loader mapping a library's
    // segments) do not.
    boolean toEnd = sequential && end == fileSize;
    for (int c = first; c <= last; c++) {
      FileChunk chunk = chunks.get(c);
      if (sequential) {
        stream.reached(chunk.blob());
      }
      byte[] stored = await(ino, chunk, futures[c - first], deadline, toEnd, requester);
      long chunkStart = ends[c] - chunk.len();
      long from = Math.max(offset, chunkStart);
      long to = Math.min(end, ends[c]);
      if (mayFetchWhole && c == 0 && offset == 0) {
        mayFetchWhole = false;
        if (isElf(ino, chunk, stored, Math.min(4, to))) {
          programs.fetch(index);
        }
      }
      put(ino, chunk, stored, from - chunkStart, to - chunkStart, (int) (from - offset), sink);
    }

    return (int) (end - offset);
  }

  /**
   * Hands {@code sink}, at {@code at}, the bytes {@code [from, to)} of {@code chunk}'s share of its
   * file, from its verified stored bytes {@code stored}.
   */
  private static void put(
      long ino, FileChunk chunk, byte[] stored, long from, long to, int at, ByteSink sink)
      throws ChunkReadException {
    long chunkFrom = chunk.offset() + from;
    long chunkTo = chunk.offset() + to;
    if (chunk.compressed()) {
      byte[] plain = decompress(ino, chunk, stored, chunkFrom, chunkTo);
      sink.put(at, plain, 0, plain.length);
      return;
    }
    if (chunkTo > stored.length) {
      throw new ChunkReadException(
          chunk.blob(),
          ino,
          "chunk has " + stored.length + " bytes but the file needs bytes up to " + chunkTo,
          null);
    }
    sink.put(at, stored, (int) chunkFrom, (int) (chunkTo - chunkFrom));
  }

  /** Whether a file whose first chunk is {@code chunk} (first {@code length} bytes read) is ELF. */
  private static boolean isElf(long ino, FileChunk chunk, byte[] stored, long length)
      throws ChunkReadException {
    if (length < 4) {
      return false;
    }
    if (chunk.compressed()) {
      return ElfLinks.isElf(
          decompress(ino, chunk, stored, chunk.offset(), chunk.offset() + 4), 0, 4);
    }
    return ElfLinks.isElf(stored, (int) chunk.offset(), 4);
  }

  /**
   * The uncompressed bytes {@code [from, to)} of a seekable zstd chunk whose verified stored bytes
   * are {@code stored}; only the frames holding them are decompressed.
   */
  private static byte[] decompress(long ino, FileChunk chunk, byte[] stored, long from, long to)
      throws ChunkReadException {
    try {
      SeekableZstd blob = SeekableZstd.open(stored);
      if (to > blob.uncompressedSize()) {
        throw new ChunkReadException(
            chunk.blob(),
            ino,
            "compressed chunk holds "
                + blob.uncompressedSize()
                + " bytes but the file needs bytes up to "
                + to,
            null);
      }
      return blob.read(from, (int) (to - from));
    } catch (FormatException e) {
      throw new ChunkReadException(chunk.blob(), ino, e.getMessage(), e);
    }
  }

  private static boolean anyPending(CompletableFuture<?>[] futures) {
    for (CompletableFuture<?> f : futures) {
      if (!f.isDone()) {
        return true;
      }
    }
    return false;
  }

  /**
   * Starts fetching every chunk of file {@code index} when it is no larger than {@link
   * #MAX_WHOLE_FILE_BYTES} and the image's whole files stay within {@link #MAX_WHOLE_BYTES}, once.
   */
  void fetchWhole(int index) {
    long size = sizes[index];
    if (size > MAX_WHOLE_FILE_BYTES || waitedReads.getAndSet(index, WHOLE) == WHOLE) {
      return;
    }
    if (wholeBytes.addAndGet(size) > MAX_WHOLE_BYTES) {
      wholeBytes.addAndGet(-size);
      return;
    }
    wholeFiles.increment();
    for (FileChunk chunk : inodes[index].chunks()) {
      recent.fetch(chunk.blob());
      readaheadChunks.increment();
    }
  }

  /**
   * The bytes {@code [offset, offset + length)} of file {@code index} (fewer at its end), waiting
   * for its chunks up to the read deadline; nothing is recorded, and the file's reads do not see
   * it.
   */
  byte[] readFetched(int index, long offset, int length) throws IOException {
    long size = sizes[index];
    if (offset < 0 || length < 0 || offset >= size) {
      return new byte[0];
    }
    long end = offset + Math.min(length, size - offset);
    long[] ends = chunkEnds(index);
    List<FileChunk> chunks = inodes[index].chunks();
    long ino = inos[index];
    byte[] out = new byte[(int) (end - offset)];
    ByteSink sink = (at, src, from, n) -> System.arraycopy(src, from, out, at, n);
    long deadline = System.nanoTime() + deadlineNanos;
    int first = firstChunkEndingAfter(ends, offset);
    int last = firstChunkEndingAfter(ends, end - 1);
    // All asked for before any is waited for: a source that joins runs needs them together.
    CompletableFuture<?>[] futures = startFetches(chunks, first, last);
    for (int c = first; c <= last; c++) {
      FileChunk chunk = chunks.get(c);
      byte[] stored;
      try {
        stored =
            (byte[])
                futures[c - first].get(
                    Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new ChunkReadException(chunk.blob(), ino, "interrupted while waiting", e);
      } catch (ExecutionException | TimeoutException | CancellationException e) {
        throw new ChunkReadException(chunk.blob(), ino, e.toString(), e);
      }
      long chunkStart = ends[c] - chunk.len();
      long from = Math.max(offset, chunkStart);
      long to = Math.min(end, ends[c]);
      put(ino, chunk, stored, from - chunkStart, to - chunkStart, (int) (from - offset), sink);
    }
    return out;
  }

  /** The index of the regular file at {@code path} (links followed), or -1. */
  int fileIndex(byte[] path) {
    try {
      Inode found = resolveFollowingLinks(path);
      return found.kind() == InodeKind.FILE ? indexOf(found.ino()) : -1;
    } catch (IOException e) {
      return -1;
    }
  }

  long inoAt(int index) {
    return inos[index];
  }

  long sizeAt(int index) {
    return sizes[index];
  }

  /**
   * Starts fetching, whole, the program at the first of {@code paths} that is a regular file of the
   * image, and the files the dynamic loader will open for it ({@link ProgramFetch}): for a command
   * about to run. Only from a source that fetches runs of chunks cheaply (a registry image with a
   * chunk pack); false when nothing was started.
   */
  public boolean prefetchProgram(List<String> paths) {
    return source.fetchesRunsCheaply() && programs.fetch(paths);
  }

  /**
   * Starts fetching, whole, each regular file among {@code paths} that is no larger than {@link
   * #MAX_WHOLE_FILE_BYTES}: small files a command's start reads. Only from a source that fetches
   * runs of chunks cheaply.
   */
  public void prefetchFiles(List<String> paths) {
    prefetchFiles(paths, MAX_WHOLE_FILE_BYTES);
  }

  /** The largest Python source {@link #opened} fetches whole. */
  static final long MAX_SOURCE_BYTES = 1 << 20;

  /**
   * File {@code path} was opened for reading. When it is a Python module's compiled form, starts
   * fetching its source whole ({@link PythonSources}), from a source that fetches runs cheaply:
   * this format has no timestamps (every time reads as 0), so Python finds each compiled module
   * stale against its source and reads the source next. Both then come in one round trip instead of
   * two.
   */
  public void opened(byte[] path) {
    if (!PythonSources.compiled(path) || !source.fetchesRunsCheaply()) {
      return;
    }
    byte[] sourcePath = PythonSources.sourceOf(path);
    int index = sourcePath == null ? -1 : fileIndex(sourcePath);
    if (index >= 0 && sizes[index] <= MAX_SOURCE_BYTES) {
      fetchWhole(index);
    }
  }

  /** As {@link #prefetchFiles(List)}, for files no larger than {@code maxBytes}. */
  public void prefetchFiles(List<String> paths, long maxBytes) {
    if (!source.fetchesRunsCheaply()) {
      return;
    }
    for (String path : paths) {
      int index = fileIndex(path.getBytes(StandardCharsets.UTF_8));
      if (index >= 0 && sizes[index] <= maxBytes) {
        fetchWhole(index);
      }
    }
  }

  private CompletableFuture<?>[] startFetches(List<FileChunk> chunks, int first, int last) {
    CompletableFuture<?>[] futures = new CompletableFuture<?>[last - first + 1];
    for (int c = first; c <= last; c++) {
      futures[c - first] = recent.fetch(chunks.get(c).blob());
    }
    return futures;
  }

  private byte[] await(
      long ino,
      FileChunk chunk,
      CompletableFuture<?> future,
      long deadline,
      boolean streamAhead,
      LongSupplier requester)
      throws ChunkReadException {
    Digest blob = chunk.blob();
    boolean stalled = !future.isDone();
    boolean again = false;
    CompletableFuture<Void> abandon = abandonWaits;
    if (stalled && abandon.isDone()) {
      throw new ChunkReadException(
          blob, ino, "given up waiting: the mount is being taken down", null);
    }
    if (stalled) {
      readStalls.increment();
      readsWaiting.incrementAndGet();
      if (streamAhead) {
        stream.afterStall(blob);
      }
    }
    try {
      long left = Math.max(0, deadline - System.nanoTime());
      if (recentTimeouts.timedOutLately(blob)) {
        left = 0; // the kernel's immediate retry: fail at once, not after a second deadline
        again = true;
      }
      if (stalled && left > 0) {
        long waitFrom = System.nanoTime();
        Waits.waitOrGiveUp(ino, blob, future, abandon, waitFrom + left, requester);
        if (log.isDebugEnabled()) {
          log.debug(
              "a read of ino {} waited {} us for chunk {}",
              ino,
              (System.nanoTime() - waitFrom) / 1000,
              blob);
        }
        left = 0;
      }
      byte[] bytes = (byte[]) future.get(left, TimeUnit.NANOSECONDS);
      recentTimeouts.arrived(blob);
      return bytes;
    } catch (TimeoutException e) {
      @SuppressWarnings("unchecked")
      CompletableFuture<byte[]> stale = (CompletableFuture<byte[]>) future;
      recent.forget(blob, stale);
      recentTimeouts.timedOut(blob);
      readTimeouts.increment();
      throw new ChunkReadException(
          blob,
          ino,
          again
              ? "timed out again (it timed out less than 2 s ago)"
              : "timed out after " + Duration.ofNanos(deadlineNanos).toMillis() + " ms",
          e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      if (cause instanceof ChunkTimeoutException) {
        // The source's own deadline came first: a time-out all the same, so the kernel's
        // immediate retry fails at once instead of waiting a second full deadline.
        recentTimeouts.timedOut(blob);
        readTimeouts.increment();
      }
      throw new ChunkReadException(blob, ino, String.valueOf(cause.getMessage()), cause);
    } catch (CancellationException e) {
      throw new ChunkReadException(blob, ino, "fetch was cancelled", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ChunkReadException(blob, ino, "interrupted while waiting", e);
    } finally {
      if (stalled) {
        readsWaiting.decrementAndGet();
      }
    }
  }

  /** Completed when the mount is being taken down: every read waiting then gives up. */
  private final CompletableFuture<Void> abandonWaits = new CompletableFuture<>();

  /**
   * Makes every read waiting for a chunk, now or later, fail at once instead of at its deadline:
   * for the owner taking the mount down (its loop cannot end while a read waits, and a reader that
   * keeps a file open through the lazy unmount would keep it waiting).
   *
   * @return how many reads were waiting
   */
  public int abandonWaits() {
    int waiting = readsWaiting.get();
    abandonWaits.complete(null);
    return waiting;
  }

  private void readAhead(List<FileChunk> chunks, int next) {
    int stop = Math.min(chunks.size(), next + READAHEAD_CHUNKS);
    for (int c = next; c < stop; c++) {
      recent.fetch(chunks.get(c).blob());
      readaheadChunks.increment();
    }
  }

  /** The end offset (exclusive) of each chunk of file {@code index}, built once. */
  private long[] chunkEnds(int index) {
    long[] ends = chunkEnds.get(index);
    if (ends == null) {
      List<FileChunk> chunks = inodes[index].chunks();
      ends = new long[chunks.size()];
      long sum = 0;
      for (int i = 0; i < ends.length; i++) {
        sum += chunks.get(i).len();
        ends[i] = sum;
      }
      chunkEnds.compareAndSet(index, null, ends);
    }
    return ends;
  }

  /** The smallest chunk index whose end lies after {@code position}. */
  private static int firstChunkEndingAfter(long[] ends, long position) {
    int lo = 0;
    int hi = ends.length;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (ends[mid] <= position) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  private static String printable(byte[] bytes, int from, int to) {
    return new String(bytes, from, to - from, StandardCharsets.UTF_8);
  }

  @Override
  public void close() {
    programs.close();
    source.close();
  }
}
