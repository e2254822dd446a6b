package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Notes which chunks of which files a mount's reads needed, in the order the files were first read,
 * and writes that down as a {@link PrefetchList}: a later mount of the image (or of a newer version
 * of it) given that list fetches, all at once, what the earlier one waited for chunk by chunk.
 */
public final class ReadRecorder {
  private final ConcurrentHashMap<Long, BitSet> chunksByIno = new ConcurrentHashMap<>();
  private final ConcurrentLinkedQueue<Long> order = new ConcurrentLinkedQueue<>();
  private final java.util.concurrent.atomic.AtomicLong changes =
      new java.util.concurrent.atomic.AtomicLong();

  /** Records that a read of file {@code ino} needed its chunks {@code first..last}. */
  void touched(long ino, int first, int last) {
    BitSet chunks = chunksByIno.get(ino);
    if (chunks == null) {
      BitSet fresh = new BitSet();
      chunks = chunksByIno.putIfAbsent(ino, fresh);
      if (chunks == null) {
        chunks = fresh;
        order.add(ino);
      }
    }
    synchronized (chunks) {
      if (chunks.nextClearBit(first) <= last) {
        chunks.set(first, last + 1);
        changes.incrementAndGet();
      }
    }
  }

  /** Grows whenever a read needed a chunk no read before it did: tells a writer there is news. */
  public long changes() {
    return changes.get();
  }

  /** How many files were read so far. */
  public int files() {
    return chunksByIno.size();
  }

  /**
   * The list of what was read: each file once, under one of its paths, with the byte ranges of the
   * chunks read; a file every chunk of which was read is listed whole. Files whose every path has a
   * newline in it cannot be listed and are left out.
   */
  public List<PrefetchList.Entry> entries(Image image) throws IOException {
    Map<Long, byte[]> paths = paths(image);
    List<PrefetchList.Entry> out = new ArrayList<>();
    for (long ino : order) {
      byte[] path = paths.get(ino);
      if (path == null) {
        continue;
      }
      BitSet read;
      BitSet recorded = chunksByIno.get(ino);
      synchronized (recorded) {
        read = (BitSet) recorded.clone();
      }
      List<FileChunk> chunks = image.inode(ino).chunks();
      if (read.cardinality() >= chunks.size()) {
        out.add(new PrefetchList.Entry(path, null));
        continue;
      }
      List<Long> ranges = new ArrayList<>();
      long position = 0;
      for (int c = 0; c < chunks.size(); c++) {
        long length = chunks.get(c).len();
        if (read.get(c)) {
          int last = ranges.size() - 2;
          if (last >= 0 && ranges.get(last) + ranges.get(last + 1) == position) {
            ranges.set(last + 1, ranges.get(last + 1) + length);
          } else {
            ranges.add(position);
            ranges.add(length);
          }
        }
        position += length;
      }
      out.add(new PrefetchList.Entry(path, ranges.stream().mapToLong(Long::longValue).toArray()));
    }
    return out;
  }

  /**
   * Writes {@link #entries} to {@code file}, then the digests of the chunks they need ({@link
   * #chunks}), whole or not at all.
   */
  public void write(Image image, Path file, String header) throws IOException {
    PrefetchList.write(file, header, entries(image), chunks(image));
  }

  /**
   * The chunks the reads needed, each once, in the order of {@link #entries}: file by file in the
   * order they were first read, each file's in file order.
   */
  public List<Digest> chunks(Image image) throws IOException {
    java.util.LinkedHashSet<Digest> out = new java.util.LinkedHashSet<>();
    for (long ino : order) {
      BitSet read;
      BitSet recorded = chunksByIno.get(ino);
      synchronized (recorded) {
        read = (BitSet) recorded.clone();
      }
      List<FileChunk> chunks = image.inode(ino).chunks();
      for (int c = read.nextSetBit(0); c >= 0 && c < chunks.size(); c = read.nextSetBit(c + 1)) {
        out.add(chunks.get(c).blob());
      }
    }
    return List.copyOf(out);
  }

  /** One path of each file read: the first found walking the tree breadth first, by name. */
  private Map<Long, byte[]> paths(Image image) throws IOException {
    Map<Long, byte[]> out = new HashMap<>();
    int wanted = chunksByIno.size();
    Deque<Map.Entry<Long, byte[]>> todo = new ArrayDeque<>();
    todo.add(Map.entry(Image.ROOT_INO, new byte[0]));
    while (!todo.isEmpty() && out.size() < wanted) {
      Map.Entry<Long, byte[]> dir = todo.poll();
      for (DirEntry e : image.entries(dir.getKey())) {
        if (!image.exists(e.ino()) || hasNewline(e.name())) {
          continue;
        }
        byte[] path = join(dir.getValue(), e.name());
        Inode inode = image.inode(e.ino());
        if (inode.kind() == InodeKind.DIR) {
          todo.add(Map.entry(e.ino(), path));
        } else if (chunksByIno.containsKey(e.ino())) {
          out.putIfAbsent(e.ino(), path);
        }
      }
    }
    return out;
  }

  private static boolean hasNewline(byte[] name) {
    for (byte b : name) {
      if (b == '\n') {
        return true;
      }
    }
    return false;
  }

  private static byte[] join(byte[] dir, byte[] name) {
    byte[] path = new byte[dir.length + 1 + name.length];
    System.arraycopy(dir, 0, path, 0, dir.length);
    path[dir.length] = '/';
    System.arraycopy(name, 0, path, dir.length + 1, name.length);
    return path;
  }
}
