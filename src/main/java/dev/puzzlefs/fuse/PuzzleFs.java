package dev.puzzlefs.fuse;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Xattr;
import dev.puzzlefs.reader.Image;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.Struct;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.Statvfs;
import ru.serce.jnrfuse.struct.Timespec;

/**
 * A read-only FUSE filesystem over an {@link Image}, for libfuse 2's high-level (path) API.
 *
 * <p>Paths stay bytes end to end: the operations that look a path up are installed as native
 * callbacks that read the raw C string ({@link BytePathCallbacks}), and directory entries go to the
 * filler as raw bytes. The {@code String} overrides below exist for jnr-fuse's bookkeeping and for
 * direct Java callers; they re-encode with the default charset, which is what jnr-ffi decodes with,
 * so they are exact only for names that are valid in that charset.
 *
 * <p>Open files and directories carry their ino in {@code fh}, so read, readdir and fgetattr never
 * resolve a path. Mount with {@code -o use_ino,readdir_ino} so the kernel shows the image's inode
 * numbers. Every failure inside a callback is turned into an errno by {@link FuseErrors}.
 */
public class PuzzleFs extends FuseStubFS {
  /** The virtual attribute of the root directory that reports the mount's counters. */
  static final byte[] STATS_XATTR =
      "user.puzzlefs.stats".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  private static final int O_ACCMODE = 3;
  private static final int O_RDONLY = 0;
  private static final int O_TRUNC = 01000;
  private static final int W_OK = 2;
  private static final int BLOCK_SIZE = 4096;

  /**
   * Linux's longest path, its NUL included: the kernel takes a readlink answer of at most this less
   * one byte, and refuses a longer one, which the caller then sees as EIO.
   */
  private static final int PATH_MAX = 4096;

  private static final int NAME_MAX = 255;

  // Set before the FUSE loop's thread starts (a spare gets it then), so every callback sees it.
  private Image image;
  private final List<Object> installed = new ArrayList<>();

  /** Serves {@code image}; it stays owned by the caller. */
  public PuzzleFs(Image image) {
    this.image = image;
    installBytePathCallbacks();
  }

  /** Gives a filesystem made without an image (a spare: see Mounter) the image it is to serve. */
  void attach(Image image) {
    if (this.image != null) {
      throw new IllegalStateException("already serves an image");
    }
    this.image = java.util.Objects.requireNonNull(image, "image");
  }

  /** The image this filesystem serves. */
  public Image image() {
    return image;
  }

  @Override
  protected String getFSName() {
    return "puzzlefs";
  }

  /**
   * Mounts on {@code mountpoint} in the foreground with the FUSE options {@code args} and serves
   * requests on Java threads ({@link FuseLoop}) until the filesystem is unmounted. Otherwise what
   * jnr-fuse's blocking {@code mount} does: the same {@code fuse_main} arguments, {@link #umount}
   * working, and a shutdown hook that unmounts.
   *
   * @throws ru.serce.jnrfuse.FuseException if already mounted, or if libfuse could not mount or its
   *     loop failed
   */
  void serve(java.nio.file.Path mountpoint, String[] args) {
    if (!mounted.compareAndSet(false, true)) {
      throw new ru.serce.jnrfuse.FuseException("Fuse fs already mounted!");
    }
    mountPoint = mountpoint;
    String[] argv = new String[args.length + 3];
    argv[0] = getFSName();
    argv[1] = "-f";
    System.arraycopy(args, 0, argv, 2, args.length);
    argv[argv.length - 1] = mountpoint.toAbsolutePath().toString();
    Thread unmountOnExit = null;
    if (ru.serce.jnrfuse.utils.SecurityUtils.canHandleShutdownHooks()) {
      unmountOnExit = new Thread(this::umount, "puzzlefs-unmount-on-exit");
      java.lang.Runtime.getRuntime().addShutdownHook(unmountOnExit);
    }
    int res;
    try {
      res = FuseLoop.run(fuseOperations, argv, mountpoint, "puzzlefs-fuse");
    } finally {
      mounted.set(false);
      // A JVM that mounts many times (run, tests) would otherwise keep every image reachable.
      if (unmountOnExit != null) {
        try {
          java.lang.Runtime.getRuntime().removeShutdownHook(unmountOnExit);
        } catch (IllegalStateException shuttingDown) {
          // the hook is running or has run
        }
      }
    }
    if (res != 0) {
      throw new ru.serce.jnrfuse.FuseException("Unable to mount FS, return code = " + res);
    }
  }

  /** A callback body that may throw; its failures are mapped by {@link FuseErrors}. */
  @FunctionalInterface
  private interface Body {
    int run() throws Exception;
  }

  private static int guard(String op, byte[] path, Body body) {
    try {
      return body.run();
    } catch (Throwable t) {
      return FuseErrors.errno(op, path, t);
    }
  }

  private static byte[] bytes(Pointer cString) {
    int length = cString.indexOf(0, (byte) 0);
    byte[] bytes = new byte[length];
    cString.get(0, bytes, 0, length);
    return bytes;
  }

  private static byte[] bytes(String javaPath) {
    return javaPath.getBytes(Charset.defaultCharset());
  }

  private void installBytePathCallbacks() {
    // Guarded again here: reading the C strings happens before the operations' own guards.
    BytePathCallbacks.Getattr getattr =
        (path, stat) -> guard("getattr", null, () -> getattr(bytes(path), FileStat.of(stat)));
    BytePathCallbacks.Readlink readlink =
        (path, buf, size) -> guard("readlink", null, () -> readlink(bytes(path), buf, size));
    BytePathCallbacks.Open open =
        (path, fi) -> guard("open", null, () -> open(bytes(path), FuseFileInfo.of(fi)));
    BytePathCallbacks.Open opendir =
        (path, fi) -> guard("opendir", null, () -> opendir(bytes(path), FuseFileInfo.of(fi)));
    BytePathCallbacks.Read read =
        (path, buf, size, offset, fi) ->
            guard("read", null, () -> read(buf, size, offset, FuseFileInfo.of(fi)));
    BytePathCallbacks.Getxattr getxattr =
        (path, name, value, size) ->
            guard("getxattr", null, () -> getxattr(bytes(path), bytes(name), value, size));
    BytePathCallbacks.Listxattr listxattr =
        (path, list, size) -> guard("listxattr", null, () -> listxattr(bytes(path), list, size));
    BytePathCallbacks.Access access =
        (path, mask) -> guard("access", null, () -> access(bytes(path), mask));

    install(fuseOperations.getattr.offset(), BytePathCallbacks.Getattr.class, getattr);
    install(fuseOperations.readlink.offset(), BytePathCallbacks.Readlink.class, readlink);
    install(fuseOperations.open.offset(), BytePathCallbacks.Open.class, open);
    install(fuseOperations.opendir.offset(), BytePathCallbacks.Open.class, opendir);
    install(fuseOperations.read.offset(), BytePathCallbacks.Read.class, read);
    install(fuseOperations.getxattr.offset(), BytePathCallbacks.Getxattr.class, getxattr);
    install(fuseOperations.listxattr.offset(), BytePathCallbacks.Listxattr.class, listxattr);
    install(fuseOperations.access.offset(), BytePathCallbacks.Access.class, access);
  }

  private <T> void install(long offset, Class<T> type, T callback) {
    Pointer function =
        Runtime.getSystemRuntime().getClosureManager().getClosurePointer(type, callback);
    Struct.getMemory(fuseOperations).putPointer(offset, function);
    // The native side holds only the address: keep the closure and its pointer reachable.
    installed.add(callback);
    installed.add(function);
  }

  // ---- Operations that look a path up (reached natively through BytePathCallbacks) ----

  int getattr(byte[] path, FileStat stat) {
    return guard("getattr", path, () -> fillStat(image.resolve(path), stat));
  }

  int readlink(byte[] path, Pointer buf, long size) {
    return guard(
        "readlink",
        path,
        () -> {
          Inode inode = image.resolve(path);
          if (inode.kind() != InodeKind.LNK || size <= 0) {
            return -ErrorCodes.EINVAL();
          }
          byte[] target = inode.symlinkTarget();
          if (target.length >= Math.min(size, PATH_MAX)) {
            return -ErrorCodes.ENAMETOOLONG();
          }
          buf.put(0, target, 0, target.length);
          buf.putByte(target.length, (byte) 0);
          return 0;
        });
  }

  int open(byte[] path, FuseFileInfo fi) {
    return guard(
        "open",
        path,
        () -> {
          int flags = fi.flags.get();
          if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) {
            return -ErrorCodes.EROFS();
          }
          Inode inode = image.resolve(path);
          if (inode.kind() == InodeKind.DIR) {
            return -ErrorCodes.EISDIR();
          }
          fi.fh.set(inode.ino());
          image.opened(path);
          return 0;
        });
  }

  int opendir(byte[] path, FuseFileInfo fi) {
    return guard(
        "opendir",
        path,
        () -> {
          Inode inode = image.resolve(path);
          if (inode.kind() != InodeKind.DIR) {
            return -ErrorCodes.ENOTDIR();
          }
          fi.fh.set(inode.ino());
          return 0;
        });
  }

  int getxattr(byte[] path, byte[] name, Pointer value, long size) {
    return guard(
        "getxattr",
        path,
        () -> {
          Inode inode = image.resolve(path);
          if (inode.xattrs() != null) {
            for (Xattr xattr : inode.xattrs()) {
              if (Arrays.equals(xattr.key(), name)) {
                return copyOut(xattr.value(), value, size);
              }
            }
          }
          if (inode.ino() == Image.ROOT_INO && Arrays.equals(name, STATS_XATTR)) {
            return copyOut(statsJson(), value, size);
          }
          return -ErrorCodes.ENODATA();
        });
  }

  int listxattr(byte[] path, Pointer list, long size) {
    return guard(
        "listxattr",
        path,
        () -> {
          Inode inode = image.resolve(path);
          List<Xattr> xattrs = inode.xattrs() == null ? List.of() : inode.xattrs();
          int total = 0;
          for (Xattr xattr : xattrs) {
            total += xattr.key().length + 1;
          }
          byte[] names = new byte[total];
          int at = 0;
          for (Xattr xattr : xattrs) {
            System.arraycopy(xattr.key(), 0, names, at, xattr.key().length);
            at += xattr.key().length + 1;
          }
          return copyOut(names, list, size);
        });
  }

  /**
   * The mount's counters as one JSON object, e.g. {@code {"fetchedBytes":123,...}}: served as the
   * root's {@code user.puzzlefs.stats} attribute (unless the image has its own), not listed.
   */
  private byte[] statsJson() {
    StringBuilder sb = new StringBuilder("{");
    image
        .stats()
        .forEach(
            (k, v) ->
                sb.append(sb.length() > 1 ? "," : "")
                    .append('"')
                    .append(k)
                    .append("\":")
                    .append(v));
    return sb.append('}').toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  /** The getxattr/listxattr convention: size 0 asks for the length; too small is ERANGE. */
  private static int copyOut(byte[] data, Pointer dst, long size) {
    if (size == 0) {
      return data.length;
    }
    if (size < data.length) {
      return -ErrorCodes.ERANGE();
    }
    dst.put(0, data, 0, data.length);
    return data.length;
  }

  int access(byte[] path, int mask) {
    return guard(
        "access",
        path,
        () -> {
          image.resolve(path);
          return (mask & W_OK) != 0 ? -ErrorCodes.EROFS() : 0;
        });
  }

  int read(Pointer buf, long size, long offset, FuseFileInfo fi) {
    long ino = fi.fh.get();
    return guard(
        "read",
        null,
        () -> {
          int wanted = (int) Math.min(size, Integer.MAX_VALUE);
          // The reading process, asked only if the read has to wait (fuse_get_context is the
          // request's, on this thread): a read whose reader is gone gives up.
          return image.read(
              ino,
              offset,
              wanted,
              (at, src, from, length) -> buf.put(at, src, from, length),
              () -> getContext().pid.get());
        });
  }

  private int fillStat(Inode inode, FileStat stat) throws IOException {
    long ino = inode.ino();
    long size = image.size(ino);
    stat.st_ino.set(ino);
    stat.st_mode.set(typeBits(inode.kind()) | (inode.permissions() & 07777));
    stat.st_nlink.set(image.nlink(ino));
    stat.st_uid.set(Integer.toUnsignedLong(inode.uid()));
    stat.st_gid.set(Integer.toUnsignedLong(inode.gid()));
    stat.st_size.set(size);
    stat.st_blksize.set(BLOCK_SIZE);
    stat.st_blocks.set((size + 511) / 512);
    if (inode.kind() == InodeKind.CHR || inode.kind() == InodeKind.BLK) {
      stat.st_rdev.set(makedev(inode.major(), inode.minor()));
    }
    return 0;
  }

  private static int typeBits(InodeKind kind) {
    switch (kind) {
      case DIR:
        return FileStat.S_IFDIR;
      case LNK:
        return FileStat.S_IFLNK;
      case FIFO:
        return FileStat.S_IFIFO;
      case CHR:
        return FileStat.S_IFCHR;
      case BLK:
        return FileStat.S_IFBLK;
      case SOCK:
        return FileStat.S_IFSOCK;
      default:
        return FileStat.S_IFREG;
    }
  }

  /** glibc's {@code makedev}: the 64-bit {@code dev_t} that {@code major()/minor()} split. */
  static long makedev(long major, long minor) {
    return ((major & 0xfffL) << 8)
        | ((major & 0xfffff000L) << 32)
        | (minor & 0xffL)
        | ((minor & 0xffffff00L) << 12);
  }

  // ---- Operations that use fh or need no path ----

  @Override
  public int fgetattr(String path, FileStat stat, FuseFileInfo fi) {
    long ino = fi.fh.get();
    return guard("fgetattr", null, () -> fillStat(image.inode(ino), stat));
  }

  @Override
  public int readdir(
      String path, Pointer buf, FuseFillDir filler, @off_t long offset, FuseFileInfo fi) {
    long ino = fi.fh.get();
    return guard(
        "readdir",
        null,
        () -> {
          // Offset 0 for every entry: libfuse collects the whole listing in its own buffer and
          // serves getdents from it, so each entry appears exactly once however large the dir.
          Runtime runtime = Runtime.getSystemRuntime();
          Pointer statMemory = Memory.allocateDirect(runtime, Struct.size(FileStat.class), true);
          FileStat stat = FileStat.of(statMemory);
          if (!fill(filler, buf, DOT, ino, InodeKind.DIR, stat, statMemory)
              || !fill(filler, buf, DOT_DOT, image.parent(ino), InodeKind.DIR, stat, statMemory)) {
            return 0;
          }
          for (DirEntry entry : image.entries(ino)) {
            if (!image.exists(entry.ino())) {
              continue; // an entry naming a whited-out or missing ino: not listable, not found
            }
            Inode child = image.inode(entry.ino());
            if (!fill(filler, buf, entry.name(), child.ino(), child.kind(), stat, statMemory)) {
              break;
            }
          }
          return 0;
        });
  }

  private static final byte[] DOT = {'.'};
  private static final byte[] DOT_DOT = {'.', '.'};

  private static boolean fill(
      FuseFillDir filler,
      Pointer buf,
      byte[] name,
      long ino,
      InodeKind kind,
      FileStat stat,
      Pointer statMemory) {
    byte[] terminated = Arrays.copyOf(name, name.length + 1);
    stat.st_ino.set(ino);
    stat.st_mode.set(typeBits(kind));
    return filler.apply(buf, ByteBuffer.wrap(terminated), statMemory, 0) == 0;
  }

  @Override
  public int statfs(String path, Statvfs stbuf) {
    return guard(
        "statfs",
        null,
        () -> {
          stbuf.f_bsize.set(BLOCK_SIZE);
          stbuf.f_frsize.set(BLOCK_SIZE);
          stbuf.f_blocks.set((image.totalBytes() + BLOCK_SIZE - 1) / BLOCK_SIZE);
          stbuf.f_bfree.set(0);
          stbuf.f_bavail.set(0);
          stbuf.f_files.set(image.inodeCount());
          stbuf.f_ffree.set(0);
          stbuf.f_favail.set(0);
          stbuf.f_namemax.set(NAME_MAX);
          stbuf.f_flag.set(Statvfs.ST_RDONLY);
          return 0;
        });
  }

  @Override
  public int release(String path, FuseFileInfo fi) {
    return 0;
  }

  @Override
  public int releasedir(String path, FuseFileInfo fi) {
    return 0;
  }

  // No flush: libfuse answers ENOSYS for it, after which the kernel stops sending one on every
  // close, which saves a round trip per file opened; a read-only file has nothing to flush.

  // ---- String forms of the path operations (replaced natively, see the class comment) ----

  @Override
  public int getattr(String path, FileStat stat) {
    return getattr(bytes(path), stat);
  }

  @Override
  public int readlink(String path, Pointer buf, @size_t long size) {
    return readlink(bytes(path), buf, size);
  }

  @Override
  public int open(String path, FuseFileInfo fi) {
    return open(bytes(path), fi);
  }

  @Override
  public int opendir(String path, FuseFileInfo fi) {
    return opendir(bytes(path), fi);
  }

  @Override
  public int read(
      String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
    return read(buf, size, offset, fi);
  }

  @Override
  public int getxattr(String path, String name, Pointer value, @size_t long size) {
    return getxattr(bytes(path), bytes(name), value, size);
  }

  @Override
  public int listxattr(String path, Pointer list, @size_t long size) {
    return listxattr(bytes(path), list, size);
  }

  @Override
  public int access(String path, int mask) {
    return access(bytes(path), mask);
  }

  // ---- Everything that would change the filesystem ----

  private static int readOnly() {
    return -ErrorCodes.EROFS();
  }

  @Override
  public int mknod(String path, long mode, long rdev) {
    return readOnly();
  }

  @Override
  public int mkdir(String path, long mode) {
    return readOnly();
  }

  @Override
  public int unlink(String path) {
    return readOnly();
  }

  @Override
  public int rmdir(String path) {
    return readOnly();
  }

  @Override
  public int symlink(String oldpath, String newpath) {
    return readOnly();
  }

  @Override
  public int rename(String oldpath, String newpath) {
    return readOnly();
  }

  @Override
  public int link(String oldpath, String newpath) {
    return readOnly();
  }

  @Override
  public int chmod(String path, long mode) {
    return readOnly();
  }

  @Override
  public int chown(String path, long uid, long gid) {
    return readOnly();
  }

  @Override
  public int truncate(String path, long size) {
    return readOnly();
  }

  @Override
  public int ftruncate(String path, long size, FuseFileInfo fi) {
    return readOnly();
  }

  @Override
  public int write(String path, Pointer buf, long size, long offset, FuseFileInfo fi) {
    return readOnly();
  }

  @Override
  public int create(String path, long mode, FuseFileInfo fi) {
    return readOnly();
  }

  @Override
  public int setxattr(String path, String name, Pointer value, long size, int flags) {
    return readOnly();
  }

  @Override
  public int removexattr(String path, String name) {
    return readOnly();
  }

  @Override
  public int utimens(String path, Timespec[] timespec) {
    return readOnly();
  }

  @Override
  public int fallocate(String path, int mode, long off, long length, FuseFileInfo fi) {
    return readOnly();
  }
}
