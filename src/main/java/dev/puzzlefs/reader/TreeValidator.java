package dev.puzzlefs.reader;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.Xattr;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Checks an image once, when it is opened, for everything that lookups, reads and the extractor
 * take for granted, and counts links on the way.
 *
 * <p>Why it works this way: a rootfs blob that decodes can still describe something no filesystem
 * holds. A directory listed under two names (or inside itself) would make the tree loop or fork, an
 * entry naming an ino no layer holds could not be looked up, an entry list out of order breaks the
 * binary search, two entries with one name would let a later one be written through an earlier
 * symlink, and chunk lengths near 2^63 overflow the arithmetic of a read. Refusing all of that
 * here, with a message naming the directory and the entry, means the FUSE layer and the extractor
 * never meet such a structure. The walk keeps its own stack, so a deep tree cannot overflow the
 * thread's. Only directories reachable from the root are walked; every inode of the merged view
 * gets the checks that do not need a path.
 */
final class TreeValidator {
  /** The longest name a Linux directory entry can have. */
  static final int NAME_MAX = 255;

  /** The furthest a chunk can be read into: a chunk is held in one Java array. */
  static final long MAX_CHUNK_END = Integer.MAX_VALUE - 8;

  private static final int SHOWN_BYTES = 300;

  private final long[] inos;
  private final Inode[] inodes;
  private final int root;
  private final boolean[] reached;
  private final byte[][] names;
  private final long[] parents;
  private final int[] nlinks;

  /** What the walk found: per index of the merged table, the link count and the parent's ino. */
  record Links(int[] nlinks, long[] parents) {}

  private TreeValidator(long[] inos, Inode[] inodes, int root) {
    this.inos = inos;
    this.inodes = inodes;
    this.root = root;
    this.reached = new boolean[inos.length];
    this.names = new byte[inos.length][];
    this.parents = new long[inos.length];
    this.nlinks = new int[inos.length];
  }

  /**
   * Refuses a layer whose inos are not strictly ascending (as unsigned numbers), which the merge
   * and every later lookup assume.
   */
  static void checkLayers(Rootfs rootfs) throws FormatException {
    List<List<Inode>> layers = rootfs.layers();
    for (int l = 0; l < layers.size(); l++) {
      List<Inode> layer = layers.get(l);
      for (int i = 1; i < layer.size(); i++) {
        long previous = layer.get(i - 1).ino();
        long ino = layer.get(i).ino();
        int cmp = Long.compareUnsigned(ino, previous);
        if (cmp == 0) {
          throw new FormatException("layer " + l + " holds ino " + u(ino) + " twice");
        }
        if (cmp < 0) {
          throw new FormatException(
              "layer "
                  + l
                  + " is not sorted by ino: ino "
                  + u(ino)
                  + " follows ino "
                  + u(previous));
        }
      }
    }
  }

  /**
   * Checks the merged table {@code inodes}, sorted by {@code inos}, and counts links: 2 plus
   * subdirectories for a directory, names in the tree for anything else (at least 1). A directory's
   * parent is the directory that lists it; the root, and directories no walk reaches, are their
   * own.
   *
   * @throws FormatException naming the inode, and for the tree the directory and entry, at fault
   */
  static Links check(long[] inos, Inode[] inodes) throws FormatException {
    int root = Arrays.binarySearch(inos, Image.ROOT_INO);
    if (root < 0 || inodes[root].kind() != InodeKind.DIR) {
      throw new FormatException("image has no root directory (ino " + Image.ROOT_INO + ")");
    }
    for (Inode inode : inodes) {
      checkInode(inode);
    }
    TreeValidator v = new TreeValidator(inos, inodes, root);
    v.walk();
    return v.links();
  }

  private static void checkInode(Inode inode) throws FormatException {
    switch (inode.kind()) {
      case FILE -> checkChunks(inode);
      case CHR, BLK -> {
        checkDeviceNumber(inode, "major", inode.major());
        checkDeviceNumber(inode, "minor", inode.minor());
      }
      case LNK -> {
        byte[] target = inode.symlinkTarget();
        if (target == null || target.length == 0) {
          throw new FormatException("symlink ino " + u(inode.ino()) + " has no target");
        }
        if (indexOf(target, (byte) 0) >= 0) {
          throw new FormatException("symlink ino " + u(inode.ino()) + " has a NUL in its target");
        }
      }
      default -> {}
    }
    if (inode.xattrs() != null) {
      for (Xattr x : inode.xattrs()) {
        if (x.key().length == 0 || indexOf(x.key(), (byte) 0) >= 0) {
          throw new FormatException(
              "ino "
                  + u(inode.ino())
                  + " has an extended attribute named '"
                  + printable(x.key())
                  + "', which is empty or holds a NUL");
        }
      }
    }
  }

  /**
   * Refuses a device's major or minor number that does not fit the 32 unsigned bits a {@code dev_t}
   * keeps of it, which would otherwise wrap to another device.
   */
  private static void checkDeviceNumber(Inode device, String part, long value)
      throws FormatException {
    if ((value & ~0xffff_ffffL) != 0) {
      throw new FormatException(
          (device.kind() == InodeKind.CHR ? "character" : "block")
              + " device ino "
              + u(device.ino())
              + " has "
              + part
              + " number "
              + u(value)
              + ", which does not fit in 32 bits");
    }
  }

  /**
   * Refuses chunk ranges past {@link #MAX_CHUNK_END}. That also keeps every sum of lengths far from
   * 2^63: a model held in memory has fewer than 2^31 chunks in all, so files add up to under 2^62.
   */
  private static void checkChunks(Inode file) throws FormatException {
    List<FileChunk> chunks = file.chunks();
    for (int i = 0; i < chunks.size(); i++) {
      FileChunk c = chunks.get(i);
      boolean inside =
          c.offset() >= 0
              && c.len() >= 0
              && c.offset() <= MAX_CHUNK_END
              && c.len() <= MAX_CHUNK_END - c.offset();
      if (!inside) {
        throw new FormatException(
            "file ino "
                + u(file.ino())
                + " chunk "
                + i
                + " ("
                + c.blob()
                + ") takes "
                + u(c.len())
                + " bytes at offset "
                + u(c.offset())
                + ", past the "
                + MAX_CHUNK_END
                + " bytes a chunk can hold");
      }
    }
  }

  private void walk() throws FormatException {
    int[] subdirs = new int[inos.length];
    int[] stack = new int[16];
    int depth = 0;
    reached[root] = true;
    parents[root] = inos[root];
    stack[depth++] = root;
    while (depth > 0) {
      int dir = stack[--depth];
      int pushed = depth;
      byte[] previous = null;
      for (DirEntry entry : inodes[dir].entries()) {
        byte[] name = entry.name();
        checkName(dir, entry);
        if (previous != null) {
          int cmp = Arrays.compareUnsigned(previous, name);
          if (cmp >= 0) {
            throw new FormatException(
                describe(dir)
                    + (cmp == 0
                        ? " holds the name '" + printable(name) + "' twice"
                        : " is not sorted by name: '"
                            + printable(previous)
                            + "' comes before '"
                            + printable(name)
                            + "'"));
          }
        }
        previous = name;

        int child = Arrays.binarySearch(inos, entry.ino());
        if (child < 0) {
          throw new FormatException(
              describe(dir)
                  + " names '"
                  + printable(name)
                  + "' ino "
                  + u(entry.ino())
                  + ", which no layer holds (or a whiteout removed)");
        }
        if (inodes[child].kind() != InodeKind.DIR) {
          nlinks[child]++;
          continue;
        }
        if (reached[child]) {
          throw new FormatException(
              "directory ino "
                  + u(entry.ino())
                  + " is listed again as '"
                  + printable(name)
                  + "' in "
                  + describe(dir)
                  + " (it is already "
                  + path(child)
                  + "): a directory has one name, so the tree would loop or fork");
        }
        reached[child] = true;
        names[child] = name;
        parents[child] = inos[dir];
        subdirs[dir]++;
        if (depth == stack.length) {
          stack = Arrays.copyOf(stack, stack.length * 2);
        }
        stack[depth++] = child;
      }
      // Children come off the stack in name order, so the first name in ls order is the one kept.
      for (int lo = pushed, hi = depth - 1; lo < hi; lo++, hi--) {
        int t = stack[lo];
        stack[lo] = stack[hi];
        stack[hi] = t;
      }
    }
    for (int i = 0; i < inos.length; i++) {
      if (inodes[i].kind() == InodeKind.DIR) {
        nlinks[i] = 2 + subdirs[i];
        if (!reached[i]) {
          parents[i] = inos[i];
        }
      } else if (nlinks[i] == 0) {
        nlinks[i] = 1;
      }
    }
  }

  private Links links() {
    return new Links(nlinks, parents);
  }

  /**
   * Refuses names no directory may hold: empty, {@code .}, {@code ..}, with '/' or NUL, or long.
   */
  private void checkName(int dir, DirEntry entry) throws FormatException {
    byte[] n = entry.name();
    boolean dots = n.length <= 2 && n.length > 0 && n[0] == '.' && (n.length == 1 || n[1] == '.');
    boolean bad = n.length == 0 || dots || n.length > NAME_MAX;
    bad |= indexOf(n, (byte) '/') >= 0 || indexOf(n, (byte) 0) >= 0;
    if (bad) {
      throw new FormatException(
          describe(dir)
              + " holds an invalid entry name '"
              + printable(n)
              + "' (ino "
              + u(entry.ino())
              + ")"
              + (n.length > NAME_MAX ? ": longer than " + NAME_MAX + " bytes" : ""));
    }
  }

  private String describe(int dir) {
    return "directory " + path(dir) + " (ino " + u(inos[dir]) + ")";
  }

  /** The path of a directory the walk has reached, from the names it was found under. */
  private String path(int dir) {
    List<byte[]> parts = new ArrayList<>();
    for (int d = dir; d != root; d = Arrays.binarySearch(inos, parents[d])) {
      parts.add(names[d]);
    }
    if (parts.isEmpty()) {
      return "/";
    }
    StringBuilder sb = new StringBuilder();
    for (int i = parts.size() - 1; i >= 0; i--) {
      sb.append('/').append(printable(parts.get(i)));
    }
    return sb.toString();
  }

  /**
   * A name for a message: UTF-8 text where it is text, other bytes (and control characters) as
   * {@code \xNN}, cut after {@value #SHOWN_BYTES} bytes.
   */
  static String printable(byte[] raw) {
    byte[] bytes = raw.length > SHOWN_BYTES ? Arrays.copyOf(raw, SHOWN_BYTES) : raw;
    String suffix = raw.length > SHOWN_BYTES ? "..." : "";
    String text = new String(bytes, StandardCharsets.UTF_8);
    boolean control = text.chars().anyMatch(c -> c < 0x20 || c == 0x7f);
    if (!control && Arrays.equals(text.getBytes(StandardCharsets.UTF_8), bytes)) {
      return text + suffix;
    }
    StringBuilder sb = new StringBuilder();
    for (byte b : bytes) {
      int c = b & 0xff;
      if (c >= 0x20 && c < 0x7f) {
        sb.append((char) c);
      } else {
        sb.append(String.format("\\x%02x", c));
      }
    }
    return sb.append(suffix).toString();
  }

  private static String u(long value) {
    return Long.toUnsignedString(value);
  }

  private static int indexOf(byte[] bytes, byte b) {
    for (int i = 0; i < bytes.length; i++) {
      if (bytes[i] == b) {
        return i;
      }
    }
    return -1;
  }
}
