package dev.puzzlefs.reader;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import jnr.constants.platform.Errno;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;

/**
 * The libc calls that make files from raw byte paths. The JDK's file API takes paths as strings,
 * which cannot spell every name a tree may hold, cannot make devices, and sees only {@code user.}
 * extended attributes; these calls can. Every path is a NUL-terminated byte array (see {@link
 * #cString}); every failure is an {@link IOException} naming the path and the errno's description.
 */
final class Posix {
  /** The libc functions, as jnr-ffi binds them. */
  public interface LibC {
    int mkdir(@In byte[] path, int mode);

    int open(@In byte[] path, int flags, int mode);

    int openat(int dirfd, @In byte[] path, int flags, int mode);

    long pwrite(int fd, @In Pointer buf, long count, long offset);

    int ftruncate(int fd, long length);

    int close(int fd);

    int symlink(@In byte[] target, @In byte[] linkpath);

    int linkat(int olddirfd, @In byte[] oldpath, int newdirfd, @In byte[] newpath, int flags);

    int mknod(@In byte[] path, int mode, long dev);

    int lchown(@In byte[] path, int uid, int gid);

    int fchmodat(int dirfd, @In byte[] path, int mode, int flags);

    int lsetxattr(@In byte[] path, @In byte[] name, @In byte[] value, long size, int flags);

    int geteuid();
  }

  static final int S_IFIFO = 0010000;
  static final int S_IFCHR = 0020000;
  static final int S_IFBLK = 0060000;
  static final int S_IFSOCK = 0140000;

  private static final int O_WRONLY = 01;
  private static final int O_CREAT = 0100;
  private static final int O_EXCL = 0200;
  private static final int O_NOFOLLOW = 0400000;
  private static final int O_CLOEXEC = 02000000;
  private static final int O_DIRECTORY = 0200000;
  private static final int O_PATH = 010000000;

  /** The most bytes, with the NUL, that a path given to one system call may have. */
  private static final int PATH_MAX = 4096;

  private static final int AT_FDCWD = -100;
  private static final int AT_SYMLINK_NOFOLLOW = 0x100;

  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final jnr.ffi.Runtime RUNTIME = jnr.ffi.Runtime.getRuntime(LIBC);

  private Posix() {}

  /** The runtime that allocates native buffers for {@link #write}. */
  static jnr.ffi.Runtime runtime() {
    return RUNTIME;
  }

  /** {@code bytes} with a trailing NUL, for a C call. */
  static byte[] cString(byte[] bytes) {
    return Arrays.copyOf(bytes, bytes.length + 1);
  }

  /** The effective user id. */
  static int geteuid() {
    return LIBC.geteuid();
  }

  static void mkdir(byte[] path, int mode) throws IOException {
    check(reach(path, p -> LIBC.mkdir(p, mode)), "create directory", path);
  }

  /** Creates a new regular file (failing if the name exists) and opens it for writing. */
  static int create(byte[] path, int mode) throws IOException {
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = reach(path, p -> LIBC.open(p, flags, mode));
    check(fd, "create file", path);
    return fd;
  }

  /**
   * Writes all of {@code buf[0, count)} to {@code fd} at file offset {@code offset}, leaving
   * whatever lies before it untouched (a hole, if nothing was written there).
   */
  static void pwriteFully(int fd, Pointer buf, long count, long offset, byte[] path)
      throws IOException {
    long done = 0;
    while (done < count) {
      long n = LIBC.pwrite(fd, buf.slice(done), count - done, offset + done);
      if (n < 0) {
        int errno = RUNTIME.getLastError();
        if (errno != Errno.EINTR.intValue()) {
          throw error("write", path, errno);
        }
      } else {
        done += n;
      }
    }
  }

  /** Sets the length of the file open as {@code fd}; growing it adds a hole. */
  static void ftruncate(int fd, long length, byte[] path) throws IOException {
    check(LIBC.ftruncate(fd, length), "set the length of", path);
  }

  static void close(int fd, byte[] path) throws IOException {
    check(LIBC.close(fd), "close", path);
  }

  static void symlink(byte[] target, byte[] path) throws IOException {
    check(reach(path, p -> LIBC.symlink(target, p)), "create symlink", path);
  }

  /** A new name {@code path} for {@code existing}; a symlink is linked itself, not its target. */
  static void link(byte[] existing, byte[] path) throws IOException {
    int r = reach(existing, e -> reach(path, p -> LIBC.linkat(AT_FDCWD, e, AT_FDCWD, p, 0)));
    check(r, "create hard link", path);
  }

  static void mknod(byte[] path, int mode, long dev) throws IOException {
    check(reach(path, p -> LIBC.mknod(p, mode, dev)), "create special file", path);
  }

  /** Sets the owner without following a symlink; ids are unsigned 32-bit values. */
  static void lchown(byte[] path, int uid, int gid) throws IOException {
    check(reach(path, p -> LIBC.lchown(p, uid, gid)), "change the owner of", path);
  }

  /** Sets the permissions without following a symlink (there is none on a symlink to set). */
  static void chmod(byte[] path, int mode) throws IOException {
    int r = reach(path, p -> LIBC.fchmodat(AT_FDCWD, p, mode, AT_SYMLINK_NOFOLLOW));
    check(r, "change the permissions of", path);
  }

  static void lsetxattr(byte[] path, byte[] key, byte[] value) throws IOException {
    byte[] ckey = cString(key);
    int r = reach(path, p -> LIBC.lsetxattr(p, ckey, value, value.length, 0));
    check(r, "set extended attribute " + printable(key) + " on", path);
  }

  /** A system call on a C path; returns what the call returned. */
  @FunctionalInterface
  private interface PathCall {
    int call(byte[] cpath) throws IOException;
  }

  /**
   * Runs {@code call} on a C path the kernel resolves to {@code cpath}: {@code cpath} itself when
   * it fits in PATH_MAX, otherwise {@code /proc/self/fd/N/NAME}, where N is a descriptor of the
   * parent directory opened one component at a time (never following a symlink) and NAME the last
   * component. An image may hold paths of any length below the directory it is extracted into.
   */
  private static int reach(byte[] cpath, PathCall call) throws IOException {
    if (cpath.length <= PATH_MAX) {
      return call.call(cpath);
    }
    int end = cpath.length - 1; // without the NUL
    int slash = end - 1;
    while (slash >= 0 && cpath[slash] != '/') {
      slash--;
    }
    if (slash <= 0 || cpath[0] != '/') {
      throw new IOException("cannot reach " + printable(cpath) + ": not an absolute path");
    }
    int fd = openDirectory(cpath, slash);
    try {
      byte[] prefix = ("/proc/self/fd/" + fd + "/").getBytes(StandardCharsets.US_ASCII);
      byte[] shortPath = new byte[prefix.length + end - slash];
      System.arraycopy(prefix, 0, shortPath, 0, prefix.length);
      System.arraycopy(cpath, slash + 1, shortPath, prefix.length, end - slash);
      return call.call(shortPath);
    } finally {
      LIBC.close(fd);
    }
  }

  /** Opens (O_PATH) the directory {@code path[0, length)}, an absolute path of any length. */
  private static int openDirectory(byte[] path, int length) throws IOException {
    int flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = LIBC.open(new byte[] {'/', 0}, flags, 0);
    check(fd, "open directory", path);
    int start = 1;
    while (start < length) {
      int stop = start;
      while (stop < length && path[stop] != '/') {
        stop++;
      }
      if (stop > start) {
        byte[] name = cString(Arrays.copyOfRange(path, start, stop));
        int next = LIBC.openat(fd, name, flags, 0);
        int errno = RUNTIME.getLastError();
        LIBC.close(fd);
        if (next < 0) {
          throw error("open directory", Arrays.copyOf(path, stop), errno);
        }
        fd = next;
      }
      start = stop + 1;
    }
    return fd;
  }

  /** The glibc encoding of a device number from its major and minor parts. */
  static long makedev(long major, long minor) {
    return ((major & 0xfffff000L) << 32)
        | ((major & 0xfffL) << 8)
        | ((minor & 0xffffff00L) << 12)
        | (minor & 0xffL);
  }

  /** The errno of the last failed call, for callers that handle some errors themselves. */
  static int lastError() {
    return RUNTIME.getLastError();
  }

  private static void check(int result, String what, byte[] path) throws IOException {
    if (result < 0) {
      throw error(what, path, RUNTIME.getLastError());
    }
  }

  static PosixException error(String what, byte[] path, int errno) {
    return new PosixException(
        "cannot " + what + " " + printable(path) + ": " + Errno.valueOf(errno).description(),
        errno);
  }

  /** A path for a message: UTF-8 where it is, other bytes as {@code \xNN}. */
  static String printable(byte[] raw) {
    int end = raw.length;
    while (end > 0 && raw[end - 1] == 0) {
      end--;
    }
    byte[] bytes = Arrays.copyOf(raw, end);
    String text = new String(bytes, StandardCharsets.UTF_8);
    if (Arrays.equals(text.getBytes(StandardCharsets.UTF_8), bytes)) {
      return text;
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
    return sb.toString();
  }

  /** A failed call, with its errno. */
  static final class PosixException extends IOException {
    private static final long serialVersionUID = 1L;

    private final int errno;

    PosixException(String message, int errno) {
      super(message);
      this.errno = errno;
    }

    int errno() {
      return errno;
    }
  }
}
