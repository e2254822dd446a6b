package dev.puzzlefs.builder;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Xattr;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Walks a source directory in the order the format fixes: the root is ino 1; when a directory is
 * visited its children take the next numbers in byte order of their names; subdirectories are then
 * visited depth-first in the same order. Symlinks are not followed, the walk stays on the root's
 * filesystem, and later names of a hard-linked non-directory (file, symlink, fifo, socket or
 * device) reuse the first name's ino.
 */
final class TreeWalker {
  static final int S_IFMT = 0170000;
  private static final int S_IFSOCK = 0140000;
  private static final int S_IFLNK = 0120000;
  static final int S_IFREG = 0100000;
  private static final int S_IFBLK = 0060000;
  private static final int S_IFDIR = 0040000;
  private static final int S_IFCHR = 0020000;
  private static final int S_IFIFO = 0010000;

  private final List<SourceNode> nodes = new ArrayList<>();
  private final Map<List<Long>, Long> hardLinks = new HashMap<>();
  private long rootDev;

  /** The nodes of the tree under {@code root}, indexed by {@code ino - 1}. */
  static List<SourceNode> walk(Path root) throws IOException {
    TreeWalker walker = new TreeWalker();
    walker.walkRoot(root);
    return walker.nodes;
  }

  private void walkRoot(Path given) throws IOException {
    Path root = given;
    Map<String, Object> attrs;
    try {
      attrs = Files.readAttributes(root, "unix:*");
    } catch (NoSuchFileException e) {
      throw new IOException("root filesystem " + root + " does not exist", e);
    }
    if ((((Integer) attrs.get("mode")) & S_IFMT) != S_IFDIR) {
      throw new IOException("root filesystem " + root + " is not a directory");
    }
    rootDev = (Long) attrs.get("dev");
    // Walk the real directory: a symlink given as ROOTFS must not change what is recorded
    // (the root's own xattrs are read without following links).
    root = root.toRealPath();
    SourceNode rootNode = node(1, root, attrs);
    nodes.add(rootNode);
    visit(rootNode);
  }

  private void visit(SourceNode dir) throws IOException {
    List<Path> children = new ArrayList<>();
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir.path)) {
      stream.forEach(children::add);
    } catch (IOException e) {
      throw new IOException(
          "cannot list directory " + Problems.path(dir.path) + ": " + Problems.describe(e), e);
    }
    List<byte[]> names = new ArrayList<>(children.size());
    Integer[] order = new Integer[children.size()];
    for (int i = 0; i < children.size(); i++) {
      names.add(RawNames.bytes(children.get(i).getFileName()));
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Arrays.compareUnsigned(names.get(a), names.get(b)));

    List<SourceNode> subdirs = new ArrayList<>();
    for (int i : order) {
      Path child = children.get(i);
      Map<String, Object> attrs;
      try {
        attrs = readAttributes(child);
      } catch (IOException e) {
        throw Problems.unreadable(child, e);
      }
      if (attrs == null || (Long) attrs.get("dev") != rootDev) {
        continue; // vanished during the walk, or on another filesystem
      }
      int mode = (Integer) attrs.get("mode");
      long ino;
      // Any non-directory may have several names: files, but also symlinks (link() does not
      // follow them), fifos, sockets and devices.
      if ((mode & S_IFMT) != S_IFDIR && (Integer) attrs.get("nlink") > 1) {
        List<Long> key = List.of((Long) attrs.get("dev"), (Long) attrs.get("ino"));
        Long first = hardLinks.get(key);
        if (first != null) {
          dir.entries.add(new DirEntry(first, names.get(i)));
          continue;
        }
        ino = nodes.size() + 1L;
        hardLinks.put(key, ino);
      } else {
        ino = nodes.size() + 1L;
      }
      SourceNode node;
      try {
        node = node(ino, child, attrs);
      } catch (FileSystemException e) {
        throw Problems.unreadable(child, e);
      }
      node.size = (Long) attrs.get("size");
      node.modified = attrs.get("lastModifiedTime");
      node.fileKey = fileKey(attrs);
      nodes.add(node);
      dir.entries.add(new DirEntry(ino, names.get(i)));
      if (node.kind == InodeKind.DIR) {
        subdirs.add(node);
      }
    }
    for (SourceNode sub : subdirs) {
      visit(sub);
    }
  }

  /** The identity of a file: its device and inode number, from {@code unix:*} attributes. */
  static List<Object> fileKey(Map<String, Object> attrs) {
    return List.of(attrs.get("dev"), attrs.get("ino"));
  }

  private static Map<String, Object> readAttributes(Path path) throws IOException {
    try {
      return Files.readAttributes(path, "unix:*", LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  private static SourceNode node(long ino, Path path, Map<String, Object> attrs)
      throws IOException {
    int mode = (Integer) attrs.get("mode");
    InodeKind kind = kindOf(mode);
    byte[] target = null;
    if (kind == InodeKind.LNK) {
      target = RawNames.bytes(Files.readSymbolicLink(path));
    }
    List<Xattr> xattrs = Xattrs.read(path);
    return new SourceNode(
        ino,
        kind,
        path,
        (Integer) attrs.get("uid"),
        (Integer) attrs.get("gid"),
        mode & 07777,
        (Long) attrs.get("rdev"),
        xattrs.isEmpty() && target == null ? null : xattrs,
        target);
  }

  private static InodeKind kindOf(int mode) {
    switch (mode & S_IFMT) {
      case S_IFREG:
        return InodeKind.FILE;
      case S_IFDIR:
        return InodeKind.DIR;
      case S_IFLNK:
        return InodeKind.LNK;
      case S_IFCHR:
        return InodeKind.CHR;
      case S_IFBLK:
        return InodeKind.BLK;
      case S_IFIFO:
        return InodeKind.FIFO;
      case S_IFSOCK:
        return InodeKind.SOCK;
      default:
        return InodeKind.UNKNOWN;
    }
  }
}
