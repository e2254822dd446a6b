package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.Path;
import jnr.constants.platform.Errno;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;

/**
 * Turns on and measures the kernel's fs-verity on a file ({@code FS_IOC_ENABLE_VERITY} and {@code
 * FS_IOC_MEASURE_VERITY}), with SHA-256, 4096-byte blocks and no salt: the parameters whose digest
 * {@link dev.puzzlefs.format.FsVerity} computes in user space.
 */
final class KernelVerity {
  /** The libc calls we need. */
  public interface LibC {
    int open(@In byte[] path, int flags);

    int ioctl(int fd, long request, Pointer arg);

    int close(int fd);
  }

  /** {@code _IOW('f', 133, struct fsverity_enable_arg)}; the struct is 128 bytes. */
  private static final long FS_IOC_ENABLE_VERITY = 0x40806685L;

  /** {@code _IOWR('f', 134, struct fsverity_digest)}; the struct's fixed part is 4 bytes. */
  private static final long FS_IOC_MEASURE_VERITY = 0xc0046686L;

  private static final int ENABLE_ARG_SIZE = 128;
  private static final int HASH_ALG_SHA256 = 1;
  private static final int BLOCK_SIZE = 4096;
  private static final int MAX_DIGEST = 64;
  private static final int O_RDONLY = 0;
  private static final int O_CLOEXEC = 02000000;

  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final jnr.ffi.Runtime RUNTIME = jnr.ffi.Runtime.getRuntime(LIBC);

  private KernelVerity() {}

  /** The filesystem (or kernel) of a file has no fs-verity. */
  static final class UnsupportedException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String reason;

    UnsupportedException(Path file, String reason) {
      super("cannot enable fs-verity on " + file + ": " + reason);
      this.reason = reason;
    }

    /** The errno's description, for example "Operation not supported". */
    String reason() {
      return reason;
    }
  }

  /**
   * Turns fs-verity on for {@code file}, which makes it read-only for good.
   *
   * @return true if it was turned on now, false if the file already had it
   * @throws UnsupportedException if the filesystem or the kernel does not support fs-verity
   */
  static boolean enable(Path file) throws IOException {
    int fd = open(file);
    try {
      Pointer arg = Memory.allocateDirect(RUNTIME, ENABLE_ARG_SIZE, true);
      arg.putInt(0, 1); // version
      arg.putInt(4, HASH_ALG_SHA256);
      arg.putInt(8, BLOCK_SIZE);
      // salt_size, salt_ptr, sig_size, sig_ptr and the reserved words stay zero.
      if (LIBC.ioctl(fd, FS_IOC_ENABLE_VERITY, arg) == 0) {
        return true;
      }
      int errno = RUNTIME.getLastError();
      if (errno == Errno.EEXIST.intValue()) {
        return false;
      }
      if (errno == Errno.EOPNOTSUPP.intValue() || errno == Errno.ENOTTY.intValue()) {
        throw new UnsupportedException(file, describe(errno));
      }
      throw new IOException("cannot enable fs-verity on " + file + ": " + describe(errno));
    } finally {
      LIBC.close(fd);
    }
  }

  /**
   * The kernel's fs-verity digest of {@code file}, which must have fs-verity on.
   *
   * @throws IOException if it has not, or it was enabled with another hash than SHA-256
   */
  static byte[] measure(Path file) throws IOException {
    int fd = open(file);
    try {
      Pointer arg = Memory.allocateDirect(RUNTIME, 4 + MAX_DIGEST, true);
      arg.putShort(2, (short) MAX_DIGEST);
      if (LIBC.ioctl(fd, FS_IOC_MEASURE_VERITY, arg) != 0) {
        int errno = RUNTIME.getLastError();
        String reason =
            errno == Errno.ENODATA.intValue() ? "fs-verity is not enabled" : describe(errno);
        throw new IOException("cannot measure the fs-verity digest of " + file + ": " + reason);
      }
      int algorithm = arg.getShort(0) & 0xffff;
      int size = arg.getShort(2) & 0xffff;
      if (algorithm != HASH_ALG_SHA256 || size != 32) {
        throw new IOException(
            file
                + " has fs-verity with hash algorithm "
                + algorithm
                + " ("
                + size
                + "-byte digests), not SHA-256; it cannot match the image's digests");
      }
      byte[] digest = new byte[size];
      arg.get(4, digest, 0, size);
      return digest;
    } finally {
      LIBC.close(fd);
    }
  }

  private static int open(Path file) throws IOException {
    Charset jnu = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
    byte[] raw = file.toString().getBytes(jnu);
    byte[] cpath = java.util.Arrays.copyOf(raw, raw.length + 1);
    // Read-only: the kernel refuses to enable fs-verity through a descriptor open for writing.
    int fd = LIBC.open(cpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      throw new IOException("cannot open " + file + ": " + describe(RUNTIME.getLastError()));
    }
    return fd;
  }

  private static String describe(int errno) {
    return Errno.valueOf(errno).description();
  }
}
