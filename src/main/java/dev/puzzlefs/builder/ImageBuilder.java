package dev.puzzlefs.builder;

import dev.puzzlefs.format.Chunker;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FastCdc;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Builds a PuzzleFS image from a directory tree into an OCI layout.
 *
 * <p>The steps: walk the tree (inode numbers), stream every regular file's bytes in ino order
 * through one FastCDC chunker (chunks span file boundaries, so shared runs of bytes dedupe across
 * files and images), store each chunk as a blob (compressed on its own, if asked and if smaller),
 * then write the rootfs blob, the empty config and the manifest, and only then point the tag at the
 * manifest. An interrupted build leaves unnamed blobs at most, never a tag on an incomplete image.
 */
public final class ImageBuilder {
  private static final byte[] EMPTY_CONFIG = {'{', '}'};
  private static final int READ_BUFFER = 1 << 20;

  private final int threads;
  private final Compression compression;
  private Listener listener = new Listener() {};

  /** Told how far a build has come; called on the building thread. */
  public interface Listener {
    /** The walk found {@code files} regular files holding {@code bytes} bytes to read. */
    default void planned(long files, long bytes) {}

    /** {@code files} more files were finished and {@code bytes} more bytes were read. */
    default void read(long files, long bytes) {}
  }

  /** A builder storing chunks uncompressed, hashing and writing them on {@code threads} threads. */
  public ImageBuilder(int threads) {
    this(threads, Compression.NONE);
  }

  /**
   * A builder storing chunks as {@code compression} says, compressing, hashing and writing them on
   * {@code threads} worker threads.
   */
  public ImageBuilder(int threads, Compression compression) {
    this.threads = Math.max(1, threads);
    this.compression = Objects.requireNonNull(compression, "compression");
  }

  /** Reports progress to {@code listener} from now on; returns this builder. */
  public ImageBuilder listener(Listener listener) {
    this.listener = Objects.requireNonNull(listener, "listener");
    return this;
  }

  /** Builds {@code rootfs} into {@code layout} and tags the image {@code tag}. */
  public BuildResult build(Path rootfs, OciLayout layout, String tag) throws IOException {
    return build(rootfs, layout, tag, null);
  }

  /**
   * Builds {@code rootfs} into {@code layout} and tags the image {@code tag}; with a {@code
   * baseTag}, as a delta on the image of that tag in the same layout (FORMAT.md, "Delta builds"):
   * the new tree becomes a complete new top layer, paths the base has keep their inos, inos the
   * base shows that the new tree no longer uses are whited out, and chunks the base already stores
   * are not written again.
   */
  public BuildResult build(Path rootfs, OciLayout layout, String tag, String baseTag)
      throws IOException {
    BaseImage base = baseTag == null ? null : BaseImage.load(layout, baseTag);
    List<SourceNode> nodes = TreeWalker.walk(rootfs);
    long[] inoOf = new long[nodes.size()];
    List<Inode> whiteouts = assignInos(nodes, base, inoOf);

    // The data stream takes the files in (final) ino order: in a delta build the kept files come
    // first and in the base's order, so their chunks come out as they did there.
    List<SourceNode> files = new ArrayList<>();
    for (SourceNode n : nodes) {
      if (n.kind == InodeKind.FILE) {
        files.add(n);
      }
    }
    files.sort((a, b) -> Long.compare(inoOf[(int) a.ino - 1], inoOf[(int) b.ino - 1]));
    long[] lengths = new long[files.size()];
    long planned = 0;
    for (SourceNode f : files) {
      planned += f.size;
    }
    listener.planned(files.size(), planned);
    List<ChunkWriter.StoredChunk> chunks;
    ExecutorService workers = Executors.newFixedThreadPool(threads, BuildThreads.FACTORY);
    try {
      ChunkWriter writer = new ChunkWriter(layout, workers, threads * 4, compression);
      Chunker chunker = new Chunker(FastCdc.PUZZLEFS, writer);
      byte[] buf = new byte[READ_BUFFER];
      for (int i = 0; i < files.size(); i++) {
        lengths[i] = stream(files.get(i), chunker, buf, listener);
        listener.read(1, 0);
      }
      chunker.finish();
      chunks = writer.finish();
    } finally {
      workers.shutdownNow();
      // After a failure (or a signal) chunks may still be on their way to disk: let their writes
      // end, each removing its temporary file, before the caller reports and exits.
      awaitQuietly(workers);
    }

    Map<Long, List<FileChunk>> fileChunks = assignChunks(files, lengths, chunks);
    List<Inode> inodes = new ArrayList<>(nodes.size() + whiteouts.size());
    for (SourceNode n : nodes) {
      inodes.add(toInode(n, inoOf, fileChunks.get(n.ino)));
    }
    inodes.addAll(whiteouts);
    inodes.sort((a, b) -> Long.compare(a.ino(), b.ino()));

    Map<Digest, byte[]> verity = new TreeMap<>();
    if (base != null) {
      for (VerityData v : base.verity()) {
        verity.put(v.blob(), v.verity());
      }
    }
    Set<Digest> chunkOrder = new LinkedHashSet<>();
    Map<Digest, Integer> sizes = new TreeMap<>();
    long stored = 0;
    int written = 0;
    int reused = 0;
    long reusedBytes = 0;
    for (ChunkWriter.StoredChunk c : chunks) {
      verity.put(c.digest(), c.verity());
      sizes.put(c.digest(), c.storedLength());
      if (chunkOrder.add(c.digest())) {
        stored += c.storedLength();
        if (base != null && base.chunks().containsKey(c.digest())) {
          reused++;
          reusedBytes += c.storedLength();
        }
      }
      written += c.written() ? 1 : 0;
    }
    List<VerityData> verityList = new ArrayList<>();
    verity.forEach((d, v) -> verityList.add(new VerityData(d, v)));

    List<List<Inode>> layers = new ArrayList<>();
    layers.add(inodes);
    if (base != null) {
      layers.addAll(base.layers());
    }
    Rootfs model = new Rootfs(layers, verityList, Rootfs.MANIFEST_VERSION);
    byte[] rootfsBlob = RootfsCodec.encode(model);
    Digest rootfsDigest = layout.putBlob(rootfsBlob);
    layout.putBlob(EMPTY_CONFIG);

    List<Descriptor> descriptors = new ArrayList<>();
    descriptors.add(
        Descriptor.of(MediaTypes.ROOTFS, rootfsDigest, rootfsBlob.length)
            .withAnnotations(
                Map.of(
                    MediaTypes.VERITY_ROOT_HASH,
                    HexFormat.of().formatHex(FsVerity.digest(rootfsBlob)))));
    // Readers go by BlobRef.compressed; the media type only tells OCI tools what kind of build.
    String chunkType =
        compression == Compression.ZSTD ? MediaTypes.FILEDATA_ZSTD : MediaTypes.FILEDATA;
    for (Digest d : chunkOrder) {
      descriptors.add(Descriptor.of(chunkType, d, sizes.get(d)));
    }
    if (base != null) {
      // The old layers still reference their chunks: list them so copying the image copies them.
      for (Descriptor d : base.chunks().values()) {
        if (!chunkOrder.contains(d.digestValue())) {
          descriptors.add(d);
        }
      }
    }
    ImageManifest manifest =
        new ImageManifest(2, MediaTypes.MANIFEST, emptyConfig(), descriptors, null);
    byte[] manifestBytes = Json.write(manifest);
    Digest manifestDigest = layout.putBlob(manifestBytes);
    String replaced =
        layout
            .tag(
                tag,
                Descriptor.of(MediaTypes.MANIFEST, manifestDigest, manifestBytes.length)
                    .withPlatform(new Descriptor.Platform(architecture(), "linux")))
            .orElse(null);

    long totalBytes = 0;
    for (long l : lengths) {
      totalBytes += l;
    }
    return new BuildResult(
        manifestDigest,
        FsVerity.digest(manifestBytes),
        nodes.size(),
        files.size(),
        totalBytes,
        chunkOrder.size(),
        written,
        stored,
        layers.size(),
        reused,
        reusedBytes,
        whiteouts.size(),
        replaced);
  }

  /**
   * Gives every walked node its final ino into {@code inoOf} (indexed by walk ino - 1) and returns
   * the whiteouts the new layer needs. Without a base the walk's numbers stand. With one, a node
   * takes the base's ino of the first of its names the base has (unless another node already took
   * it, as when two names that were hard links are now separate files); other nodes get numbers
   * above every ino the base ever used, in walk order; every ino the base shows and the new tree
   * does not use becomes a whiteout.
   */
  private static List<Inode> assignInos(List<SourceNode> nodes, BaseImage base, long[] inoOf) {
    if (base == null) {
      for (int i = 0; i < inoOf.length; i++) {
        inoOf[i] = i + 1;
      }
      return List.of();
    }
    // Each node's names, as relative paths; a parent always has a lower walk ino than its
    // children, so its path is known when its entries are reached.
    String[] dirPath = new String[nodes.size()];
    List<List<String>> names = new ArrayList<>(nodes.size());
    for (int i = 0; i < nodes.size(); i++) {
      names.add(new ArrayList<>(1));
    }
    dirPath[0] = "";
    names.get(0).add("");
    for (SourceNode n : nodes) {
      if (n.kind != InodeKind.DIR) {
        continue;
      }
      String parent = dirPath[(int) n.ino - 1];
      for (DirEntry e : n.entries) {
        String name = BaseImage.key(e.name());
        String path = parent.isEmpty() ? name : parent + "/" + name;
        int child = (int) e.ino() - 1;
        names.get(child).add(path);
        if (nodes.get(child).kind == InodeKind.DIR) {
          dirPath[child] = path;
        }
      }
    }
    Set<Long> taken = new java.util.HashSet<>();
    long next = base.maxIno();
    for (int i = 0; i < nodes.size(); i++) {
      long ino = -1;
      for (String path : names.get(i)) {
        long candidate = base.inoOf(path);
        if (candidate > 0 && !taken.contains(candidate)) {
          ino = candidate;
          break;
        }
      }
      if (ino < 0) {
        ino = ++next;
      }
      taken.add(ino);
      inoOf[i] = ino;
    }
    List<Inode> whiteouts = new ArrayList<>();
    for (long ino : base.visibleInos()) {
      if (!taken.contains(ino)) {
        whiteouts.add(Inode.whiteout(ino));
      }
    }
    return whiteouts;
  }

  /**
   * Waits up to 30 s for the workers to end, even when this thread was interrupted (a signal stops
   * a build by interrupting it): returning early would let the JVM exit while a write still runs,
   * and its temporary file could outlive the exit hook that removes such files.
   */
  static void awaitQuietly(ExecutorService workers) {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
    boolean interrupted = false;
    try {
      while (true) {
        try {
          // false when a write is stuck on its disk: nothing more can be done for it here
          workers.awaitTermination(
              Math.max(0, deadline - System.nanoTime()), java.util.concurrent.TimeUnit.NANOSECONDS);
          return;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The OCI empty descriptor, with its bytes inlined as the spec shows it. */
  static Descriptor emptyConfig() {
    return new Descriptor(
        MediaTypes.EMPTY, Digest.sha256(EMPTY_CONFIG).toString(), 2, null, null, "e30=");
  }

  /**
   * Feeds the bytes of {@code file} to {@code chunker}. The file is opened without following a
   * symlink, and must be, before and after it is read, the regular file the walk listed (same
   * device and inode, size and modification time): a file replaced during the build by a symlink
   * (to a file outside ROOTFS, whose size and time a symlink's own can be made to match), by a fifo
   * (which would block the build forever) or by another file is an error, never read into the
   * image.
   */
  static long stream(SourceNode file, Chunker chunker, byte[] buf, Listener listener)
      throws IOException {
    checkUnchanged(file, -1);
    long total = 0;
    try (InputStream in = Files.newInputStream(file.path, LinkOption.NOFOLLOW_LINKS)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        chunker.write(buf, 0, n);
        total += n;
        listener.read(0, n);
      }
    } catch (IOException e) {
      throw Problems.unreadable(file.path, e);
    }
    checkUnchanged(file, total);
    return total;
  }

  /**
   * Throws unless {@code file} is still the regular file the walk listed; {@code read} is how many
   * bytes were read from it, or -1 before reading.
   */
  private static void checkUnchanged(SourceNode file, long read) throws IOException {
    Map<String, Object> now;
    try {
      now =
          Files.readAttributes(
              file.path, "unix:mode,dev,ino,lastModifiedTime", LinkOption.NOFOLLOW_LINKS);
    } catch (IOException e) {
      throw Problems.unreadable(file.path, e);
    }
    boolean regular = (((Integer) now.get("mode")) & TreeWalker.S_IFMT) == TreeWalker.S_IFREG;
    boolean same =
        regular
            && TreeWalker.fileKey(now).equals(file.fileKey)
            && now.get("lastModifiedTime").equals(file.modified)
            && (read < 0 || read == file.size);
    if (!same) {
      throw new IOException(
          Problems.path(file.path)
              + " changed while it was read ("
              + (regular
                  ? file.size + " bytes when listed" + (read < 0 ? "" : ", " + read + " read")
                  : "it is no longer a regular file")
              + (regular && !TreeWalker.fileKey(now).equals(file.fileKey)
                  ? ", and another file is now at its path"
                  : "")
              + "); nothing was tagged: build again from a tree that is not being written to");
    }
  }

  /**
   * Cuts each file's span of the stream along the chunk boundaries: a file's pieces are (chunk,
   * offset inside the chunk, bytes taken from it).
   */
  private static Map<Long, List<FileChunk>> assignChunks(
      List<SourceNode> files, long[] lengths, List<ChunkWriter.StoredChunk> chunks) {
    Map<Long, List<FileChunk>> out = new java.util.HashMap<>();
    int ci = 0;
    long chunkStart = 0;
    long pos = 0;
    for (int i = 0; i < files.size(); i++) {
      List<FileChunk> pieces = new ArrayList<>();
      long left = lengths[i];
      while (left > 0) {
        ChunkWriter.StoredChunk c = chunks.get(ci);
        long offset = pos - chunkStart;
        long take = Math.min(left, c.length() - offset);
        pieces.add(new FileChunk(c.digest(), offset, c.compressed(), take));
        pos += take;
        left -= take;
        if (pos == chunkStart + c.length()) {
          chunkStart += c.length();
          ci++;
        }
      }
      out.put(files.get(i).ino, pieces);
    }
    return out;
  }

  private static Inode toInode(SourceNode n, long[] inoOf, List<FileChunk> chunks) {
    long major = 0;
    long minor = 0;
    if (n.kind == InodeKind.CHR || n.kind == InodeKind.BLK) {
      major = ((n.rdev >>> 8) & 0xfff) | ((n.rdev >>> 32) & ~0xfffL);
      minor = (n.rdev & 0xff) | ((n.rdev >>> 12) & ~0xffL);
    }
    // The walk adds directory entries in name order already.
    List<DirEntry> entries = null;
    if (n.entries != null) {
      entries = new ArrayList<>(n.entries.size());
      for (DirEntry e : n.entries) {
        entries.add(new DirEntry(inoOf[(int) e.ino() - 1], e.name()));
      }
    }
    return new Inode(
        inoOf[(int) n.ino - 1],
        n.kind,
        n.uid,
        n.gid,
        n.permissions,
        major,
        minor,
        entries,
        chunks,
        n.xattrs,
        n.symlinkTarget);
  }

  private static String architecture() {
    String arch = System.getProperty("os.arch");
    switch (arch) {
      case "amd64":
      case "x86_64":
        return "amd64";
      case "aarch64":
        return "arm64";
      default:
        return arch;
    }
  }
}
