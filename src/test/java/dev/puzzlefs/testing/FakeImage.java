package dev.puzzlefs.testing;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.SeekableZstd;
import dev.puzzlefs.format.Xattr;
import dev.puzzlefs.reader.ChunkSource;
import dev.puzzlefs.reader.Image;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Builds a one-layer {@link Rootfs} and its chunk blobs from a description, the way the builder
 * lays out data: the bytes of all regular files in ino order form one stream, cut into chunks of a
 * fixed size, so chunks span file boundaries.
 *
 * <p>Paths are absolute; {@code String} paths are UTF-8, {@code byte[]} paths are taken as is. Inos
 * are given in the order things are added, the root being 1.
 */
public final class FakeImage {
  private final int chunkSize;
  private boolean compressChunks;
  private final Map<Long, Node> nodes = new LinkedHashMap<>();
  private long nextIno = Image.ROOT_INO;
  private Rootfs rootfs;
  private Map<Digest, byte[]> blobs;

  private static final class Node {
    final long ino;
    final InodeKind kind;
    int uid;
    int gid;
    int permissions;
    long major;
    long minor;
    final TreeMap<byte[], Long> children = new TreeMap<>(Arrays::compareUnsigned);
    byte[] content;
    byte[] target;
    List<Xattr> xattrs;

    Node(long ino, InodeKind kind, int permissions) {
      this.ino = ino;
      this.kind = kind;
      this.permissions = permissions;
    }
  }

  /** An image whose data stream is cut every {@code chunkSize} bytes. */
  public FakeImage(int chunkSize) {
    this.chunkSize = chunkSize;
    add(InodeKind.DIR, 0755);
  }

  /** Stores every chunk as seekable zstd (even when that is larger) and flags it compressed. */
  public FakeImage compressChunks() {
    compressChunks = true;
    rootfs = null;
    return this;
  }

  /** UTF-8 bytes of {@code s}. */
  public static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  public long dir(String path) {
    return dir(utf8(path));
  }

  public long dir(byte[] path) {
    return link(path, add(InodeKind.DIR, 0755));
  }

  public long file(String path, byte[] content) {
    return file(utf8(path), content);
  }

  public long file(byte[] path, byte[] content) {
    Node node = add(InodeKind.FILE, 0644);
    node.content = content.clone();
    return link(path, node);
  }

  public long symlink(String path, byte[] target) {
    Node node = add(InodeKind.LNK, 0777);
    node.target = target.clone();
    return link(utf8(path), node);
  }

  /** A fifo, socket or device node. */
  public long special(String path, InodeKind kind, long major, long minor) {
    Node node = add(kind, 0644);
    node.major = major;
    node.minor = minor;
    return link(utf8(path), node);
  }

  /** Another name for the existing inode {@code ino}. */
  public void hardlink(String path, long ino) {
    link(utf8(path), nodes.get(ino));
  }

  public FakeImage owner(long ino, int uid, int gid) {
    nodes.get(ino).uid = uid;
    nodes.get(ino).gid = gid;
    return this;
  }

  public FakeImage permissions(long ino, int permissions) {
    nodes.get(ino).permissions = permissions;
    return this;
  }

  public FakeImage xattr(long ino, String key, byte[] value) {
    Node node = nodes.get(ino);
    if (node.xattrs == null) {
      node.xattrs = new ArrayList<>();
    }
    node.xattrs.add(new Xattr(utf8(key), value.clone()));
    return this;
  }

  private Node add(InodeKind kind, int permissions) {
    Node node = new Node(nextIno++, kind, permissions);
    nodes.put(node.ino, node);
    rootfs = null;
    return node;
  }

  private long link(byte[] path, Node node) {
    int slash = path.length - 1;
    while (slash >= 0 && path[slash] != '/') {
      slash--;
    }
    Node parent = nodes.get(Image.ROOT_INO);
    int start = 0;
    while (start < slash) {
      int end = start;
      while (end < slash && path[end] != '/') {
        end++;
      }
      if (end > start) {
        Long child = parent.children.get(Arrays.copyOfRange(path, start, end));
        if (child == null) {
          throw new IllegalArgumentException(
              "no parent directory for " + new String(path, StandardCharsets.UTF_8));
        }
        parent = nodes.get(child);
      }
      start = end + 1;
    }
    parent.children.put(Arrays.copyOfRange(path, slash + 1, path.length), node.ino);
    rootfs = null;
    return node.ino;
  }

  /** The single-layer rootfs for everything added so far. */
  public Rootfs rootfs() {
    if (rootfs == null) {
      build();
    }
    return rootfs;
  }

  /** The chunk blobs by digest. */
  public Map<Digest, byte[]> blobs() {
    rootfs();
    return blobs;
  }

  /** An in-memory source over {@link #blobs}. */
  public MapChunkSource source() {
    return new MapChunkSource(blobs());
  }

  /** Opens the image over an in-memory source with a 5 s read deadline. */
  public Image open() throws FormatException {
    return open(source(), Duration.ofSeconds(5));
  }

  public Image open(ChunkSource source, Duration deadline) throws FormatException {
    return Image.open(rootfs(), source, deadline);
  }

  private void build() {
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    for (Node node : nodes.values()) {
      if (node.kind == InodeKind.FILE) {
        stream.writeBytes(node.content);
      }
    }
    byte[] data = stream.toByteArray();
    List<Digest> chunkDigests = new ArrayList<>();
    blobs = new LinkedHashMap<>();
    for (int at = 0; at < data.length; at += chunkSize) {
      byte[] chunk = Arrays.copyOfRange(data, at, Math.min(data.length, at + chunkSize));
      byte[] stored = compressChunks ? SeekableZstd.compress(chunk) : chunk;
      Digest digest = Digest.sha256(stored);
      chunkDigests.add(digest);
      blobs.put(digest, stored);
    }

    List<Inode> layer = new ArrayList<>();
    long position = 0;
    for (Node node : nodes.values()) {
      List<FileChunk> chunks = null;
      if (node.kind == InodeKind.FILE) {
        chunks = chunksOf(position, node.content.length, chunkDigests);
        position += node.content.length;
      }
      layer.add(toInode(node, chunks));
    }
    rootfs = new Rootfs(List.of(layer), List.of(), Rootfs.MANIFEST_VERSION);
  }

  private List<FileChunk> chunksOf(long start, long length, List<Digest> digests) {
    List<FileChunk> chunks = new ArrayList<>();
    long at = start;
    long end = start + length;
    while (at < end) {
      int index = (int) (at / chunkSize);
      long inChunk = at - (long) index * chunkSize;
      long len = Math.min(end - at, chunkSize - inChunk);
      chunks.add(new FileChunk(digests.get(index), inChunk, compressChunks, len));
      at += len;
    }
    return chunks;
  }

  private static Inode toInode(Node node, List<FileChunk> chunks) {
    List<DirEntry> entries = null;
    if (node.kind == InodeKind.DIR) {
      entries = new ArrayList<>();
      for (Map.Entry<byte[], Long> child : node.children.entrySet()) {
        entries.add(new DirEntry(child.getValue(), child.getKey()));
      }
    }
    return new Inode(
        node.ino,
        node.kind,
        node.uid,
        node.gid,
        node.permissions,
        node.major,
        node.minor,
        entries,
        chunks,
        node.xattrs,
        node.target);
  }
}
