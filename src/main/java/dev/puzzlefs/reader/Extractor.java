package dev.puzzlefs.reader;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Xattr;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes the tree of an {@link Image} into a directory: every file, directory, symlink, hard link,
 * fifo, device and socket, with its owner, permissions and extended attributes, names and symlink
 * targets byte for byte. File bytes come through the image's chunk source, so they are verified
 * before they are written.
 *
 * <p>Why it works this way: names need not be valid in any charset, devices need {@code mknod} and
 * extended attributes may be in any namespace, so everything is made with libc calls on raw byte
 * paths ({@link Posix}). Each entry is made with private permissions, then given its owner, then
 * its extended attributes (a {@code chown} clears {@code security.capability}), then its
 * permissions (a {@code chown} also clears setuid and setgid). Directories get their owners,
 * attributes and permissions only once the whole tree exists, deepest first: a read-only directory
 * still gets its children (and, without root, a later hard link can still reach a file inside it),
 * a default ACL is not inherited by entries that do not have it, and a tree left by a failed
 * extraction is private and removable. The walk keeps its own stack, so deep trees cannot overflow
 * the thread's. The second and later names of a non-directory inode become hard links to the first.
 * Regular files are written sparsely, as {@code cp --sparse=always} would: the format keeps no
 * holes, so every aligned 4 KiB block of zeros becomes one, and a mostly empty file (a disk image,
 * a database preallocated with zeros) costs no more disk than its data.
 *
 * <p>Symlinks are never followed: every directory on a path was made by this walk, names that could
 * leave it ({@code ..}, or any with a {@code /}) are refused, and so is a directory listed twice
 * (which would make the walk loop). That holds only while no one else can change the paths, so a
 * target another user could write to, or one below such a directory, is refused ({@link
 * #requireTrusted}).
 */
public final class Extractor {
  private static final Logger log = LoggerFactory.getLogger(Extractor.class);
  private static final int BUFFER_SIZE = 1 << 20;

  /** The unit of holes: a block of zeros this large, aligned in the file, is not written. */
  private static final int HOLE_BLOCK = 4096;

  private static final byte[] ZEROS = new byte[HOLE_BLOCK];
  private static final int PRIVATE_DIR = 0700;
  private static final int PRIVATE_FILE = 0600;

  private final Image image;
  private final boolean restoreOwners;
  private Listener listener = (files, bytes) -> {};

  /** Told how far an extraction has come; called on the extracting thread. */
  @FunctionalInterface
  public interface Listener {
    /** {@code files} more regular files and {@code bytes} more of their bytes were written. */
    void written(long files, long bytes);
  }

  /** What an extraction made. Hard links count once, as {@code hardLinks}. */
  public record Summary(
      long directories,
      long files,
      long bytes,
      long symlinks,
      long specialFiles,
      long hardLinks,
      long skipped) {}

  /**
   * An extractor for {@code image}. Owners are restored only when running as root; otherwise every
   * entry belongs to the user who extracts, as with {@code tar}.
   */
  public Extractor(Image image) {
    this(image, Posix.geteuid() == 0);
  }

  /** An extractor for {@code image} that restores owners only if {@code restoreOwners}. */
  public Extractor(Image image, boolean restoreOwners) {
    this.image = image;
    this.restoreOwners = restoreOwners;
  }

  /** Reports progress to {@code listener} from now on; returns this extractor. */
  public Extractor listener(Listener listener) {
    this.listener = java.util.Objects.requireNonNull(listener, "listener");
    return this;
  }

  /** True when entries get the image's owners; false leaves them to the user who extracts. */
  public boolean restoresOwners() {
    return restoreOwners;
  }

  /**
   * Writes the image's tree into {@code dir}, which must be an existing, empty directory; at the
   * end {@code dir} itself gets the owner, attributes and permissions of the image's root.
   *
   * @throws FormatException if the image holds a name or a directory structure that cannot be
   *     written safely
   * @throws IOException caused by a {@link ChunkReadException} if the bytes of a file could not be
   *     read or failed verification
   * @throws IOException if the target refused an entry; what was written so far stays
   */
  public Summary extractInto(Path dir) throws IOException {
    requireEmptyDirectory(dir);
    requireTrusted(dir);
    Charset jnu = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
    Walk walk = new Walk(dir.toAbsolutePath().toString().getBytes(jnu));
    return walk.run();
  }

  /**
   * Refuses {@code dir} when a user other than root and the one extracting could change it, or any
   * directory above it, while the tree is written: that user could put a symlink in place of a
   * directory the walk made, and the walk's later calls on paths below it would change files
   * outside {@code dir} (with root's rights, when root extracts). So every directory from {@code /}
   * down to {@code dir} (symlinks resolved) must belong to root or to the user extracting, and must
   * not be writable by every user unless its sticky bit keeps them from renaming what others own;
   * when root extracts, not by a group other than root's either.
   */
  public static void requireTrusted(Path dir) throws IOException {
    requireTrusted(dir, dir, Posix.geteuid());
  }

  /**
   * The same check for a {@code target} that does not exist yet, on {@code dir}, the nearest
   * directory above it that does: the directories made in between are the extracting user's own.
   */
  public static void requireTrusted(Path dir, Path target) throws IOException {
    requireTrusted(dir, target, Posix.geteuid());
  }

  static void requireTrusted(Path dir, Path target, int euid) throws IOException {
    Path real = dir.toRealPath();
    for (Path p = real; p != null; p = p.getParent()) {
      int owner = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
      int group = (Integer) Files.getAttribute(p, "unix:gid", LinkOption.NOFOLLOW_LINKS);
      int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
      boolean sticky = (mode & 01000) != 0;
      String why = null;
      if (owner != 0 && owner != euid) {
        why = "belongs to user " + owner;
      } else if ((mode & 002) != 0 && !sticky) {
        why = "is writable by every user";
      } else if (euid == 0 && group != 0 && (mode & 020) != 0 && !sticky) {
        why = "is writable by group " + group;
      }
      if (why != null) {
        String who = euid == 0 ? "root" : "you (or root)";
        throw new IOException(
            "cannot extract into "
                + target
                + ": "
                + (!p.equals(real) || !dir.equals(target)
                    ? "the directory " + p + " above it"
                    : real.equals(dir.toAbsolutePath().normalize()) ? "it" : "it (" + real + ")")
                + " "
                + why
                + ", who could swap a directory of the tree for a symlink while it is written and"
                + " have files outside it changed"
                + (euid == 0 ? " with root's rights" : "")
                + "; extract into a directory that only "
                + who
                + " can write, then move the tree");
      }
    }
  }

  private static void requireEmptyDirectory(Path dir) throws IOException {
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(dir + " is not a directory");
    }
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      if (entries.iterator().hasNext()) {
        throw new IOException(dir + " is not empty");
      }
    }
  }

  /** A directory whose entries are being made. */
  private static final class Level {
    final Inode dir;
    final byte[] path;
    int next;

    Level(Inode dir, byte[] path) {
      this.dir = dir;
      this.path = path;
    }
  }

  /** One extraction: the stack of open directories and the counters. */
  private final class Walk {
    private final int rootLength;
    private final Deque<Level> stack = new ArrayDeque<>();
    private final Set<Long> directoriesSeen = new HashSet<>();
    private final Map<Long, byte[]> firstNames = new HashMap<>();
    private final List<Level> finished = new ArrayList<>();
    private final byte[] data = new byte[BUFFER_SIZE];
    private final Pointer buffer = Memory.allocateDirect(Posix.runtime(), BUFFER_SIZE);
    private long files;
    private long bytes;
    private long symlinks;
    private long specialFiles;
    private long hardLinks;
    private long skipped;

    Walk(byte[] root) throws IOException {
      this.rootLength = root.length;
      stack.push(new Level(image.inode(Image.ROOT_INO), root));
      directoriesSeen.add(Image.ROOT_INO);
    }

    Summary run() throws IOException {
      while (!stack.isEmpty()) {
        Level top = stack.peek();
        List<DirEntry> entries = top.dir.entries();
        if (top.next == entries.size()) {
          stack.pop();
          finished.add(top);
        } else {
          make(top, entries.get(top.next++));
        }
      }
      for (Level dir : finished) {
        applyMetadata(dir.dir, dir.path);
      }
      long directories = finished.size();
      return new Summary(directories, files, bytes, symlinks, specialFiles, hardLinks, skipped);
    }

    private void make(Level parent, DirEntry entry) throws IOException {
      byte[] path = child(parent.path, entry.name());
      if (!image.exists(entry.ino())) {
        log.warn("skipping {}: the image has no ino {}", where(path), entry.ino());
        skipped++;
        return;
      }
      Inode inode = image.inode(entry.ino());
      if (inode.kind() == InodeKind.DIR) {
        if (!directoriesSeen.add(inode.ino())) {
          throw new FormatException(
              "the image lists directory ino " + inode.ino() + " twice, again at " + where(path));
        }
        Posix.mkdir(Posix.cString(path), PRIVATE_DIR);
        stack.push(new Level(inode, path));
        return;
      }
      byte[] first = firstNames.get(inode.ino());
      if (first != null) {
        Posix.link(Posix.cString(first), Posix.cString(path));
        hardLinks++;
        return;
      }
      makeNonDirectory(inode, path);
      applyMetadata(inode, path);
      if (image.nlink(inode.ino()) > 1) {
        firstNames.put(inode.ino(), path);
      }
    }

    private void makeNonDirectory(Inode inode, byte[] path) throws IOException {
      byte[] cpath = Posix.cString(path);
      switch (inode.kind()) {
        case FILE -> writeFile(inode, path);
        case LNK -> {
          byte[] target = inode.symlinkTarget();
          if (target == null || target.length == 0 || indexOf(target, (byte) 0) >= 0) {
            throw new FormatException(
                "symlink " + where(path) + " (ino " + inode.ino() + ") has no valid target");
          }
          Posix.symlink(Posix.cString(target), cpath);
          symlinks++;
        }
        case FIFO -> special(cpath, Posix.S_IFIFO, 0);
        case SOCK -> special(cpath, Posix.S_IFSOCK, 0);
        case CHR -> special(cpath, Posix.S_IFCHR, Posix.makedev(inode.major(), inode.minor()));
        case BLK -> special(cpath, Posix.S_IFBLK, Posix.makedev(inode.major(), inode.minor()));
        default ->
            throw new FormatException(
                where(path) + " (ino " + inode.ino() + ") has unsupported type " + inode.kind());
      }
    }

    /**
     * Makes a fifo, device or socket. A socket made this way is the inert file that {@code bind}
     * leaves behind once its server has gone, which is all a tree can hold of one.
     */
    private void special(byte[] cpath, int type, long dev) throws IOException {
      Posix.mknod(cpath, type | PRIVATE_FILE, dev);
      specialFiles++;
    }

    /**
     * Writes a regular file sparsely: every {@value #HOLE_BLOCK}-byte block of the file that holds
     * only zeros is skipped, and the length is set at the end, so runs of zeros become holes.
     */
    private void writeFile(Inode inode, byte[] path) throws IOException {
      byte[] cpath = Posix.cString(path);
      long size = image.size(inode.ino());
      int fd = Posix.create(cpath, PRIVATE_FILE);
      try {
        long offset = 0;
        while (offset < size) {
          int want = (int) Math.min(BUFFER_SIZE, size - offset);
          int got = read(inode, offset, want, path);
          if (got <= 0) {
            throw new IOException(
                "cannot extract " + where(path) + ": the image ends it at " + offset + " bytes");
          }
          writeNonZeroBlocks(fd, offset, got, cpath);
          offset += got;
          listener.written(0, got);
        }
        Posix.ftruncate(fd, size, cpath);
      } catch (IOException | RuntimeException e) {
        try {
          Posix.close(fd, cpath);
        } catch (IOException closing) {
          e.addSuppressed(closing);
        }
        throw e;
      }
      Posix.close(fd, cpath);
      files++;
      bytes += size;
      listener.written(1, 0);
    }

    /**
     * Writes {@code data[0, length)}, which belongs at {@code offset} of the file, except the
     * blocks (aligned to the file, not to the buffer) that hold only zeros.
     */
    private void writeNonZeroBlocks(int fd, long offset, int length, byte[] cpath)
        throws IOException {
      int runStart = -1;
      int at = 0;
      while (at < length) {
        int end = (int) Math.min(length, at + HOLE_BLOCK - (offset + at) % HOLE_BLOCK);
        boolean zeros = Arrays.mismatch(data, at, end, ZEROS, 0, end - at) < 0;
        if (zeros && runStart >= 0) {
          writeRun(fd, offset, runStart, at, cpath);
          runStart = -1;
        } else if (!zeros && runStart < 0) {
          runStart = at;
        }
        at = end;
      }
      if (runStart >= 0) {
        writeRun(fd, offset, runStart, length, cpath);
      }
    }

    private void writeRun(int fd, long offset, int from, int to, byte[] cpath) throws IOException {
      buffer.put(0, data, from, to - from);
      Posix.pwriteFully(fd, buffer, to - from, offset + from, cpath);
    }

    private int read(Inode inode, long offset, int size, byte[] path) throws IOException {
      try {
        return image.read(inode.ino(), offset, data, 0, size);
      } catch (ChunkReadException e) {
        throw new IOException("cannot extract " + where(path) + ": " + e.getMessage(), e);
      }
    }

    /** Owner, then extended attributes, then permissions (not on a symlink: it has none). */
    private void applyMetadata(Inode inode, byte[] path) throws IOException {
      byte[] cpath = Posix.cString(path);
      if (restoreOwners) {
        Posix.lchown(cpath, inode.uid(), inode.gid());
      }
      if (inode.xattrs() != null) {
        for (Xattr x : inode.xattrs()) {
          Posix.lsetxattr(cpath, x.key(), x.value());
        }
      }
      if (inode.kind() != InodeKind.LNK) {
        Posix.chmod(cpath, inode.permissions() & 07777);
      }
    }

    private byte[] child(byte[] parent, byte[] name) throws FormatException {
      if (name.length == 0
          || indexOf(name, (byte) '/') >= 0
          || indexOf(name, (byte) 0) >= 0
          || (name.length == 1 && name[0] == '.')
          || (name.length == 2 && name[0] == '.' && name[1] == '.')) {
        throw new FormatException(
            "directory "
                + where(parent)
                + " of the image has an entry named '"
                + Posix.printable(name)
                + "', which cannot be extracted safely");
      }
      byte[] path = new byte[parent.length + 1 + name.length];
      System.arraycopy(parent, 0, path, 0, parent.length);
      path[parent.length] = '/';
      System.arraycopy(name, 0, path, parent.length + 1, name.length);
      return path;
    }

    /** The path inside the image, for messages. */
    private String where(byte[] path) {
      if (path.length <= rootLength) {
        return "/";
      }
      byte[] inImage = Arrays.copyOfRange(path, rootLength, path.length);
      return Posix.printable(inImage);
    }
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
