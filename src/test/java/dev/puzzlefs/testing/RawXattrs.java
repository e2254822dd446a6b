package dev.puzzlefs.testing;

import dev.puzzlefs.builder.RawNames;
import java.nio.file.Path;
import java.util.Arrays;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * Calls libc's {@code lgetxattr} and {@code llistxattr} on raw byte paths with a buffer of the
 * caller's size, so tests see exactly what a C program would: the length, the bytes, or the errno
 * (ERANGE for a buffer too small). Symlinks are not followed.
 */
public final class RawXattrs {
  /** errno for a buffer too small. */
  public static final int ERANGE = 34;

  /** errno for an attribute that does not exist. */
  public static final int ENODATA = 61;

  /** What one call returned: its result ({@code -errno} on failure) and the bytes it filled. */
  public record Answer(long result, byte[] bytes) {}

  /** The libc calls. */
  public interface LibC {
    @SaveError
    @ssize_t
    long lgetxattr(@In byte[] path, @In byte[] name, Pointer value, @size_t long size);

    @SaveError
    @ssize_t
    long llistxattr(@In byte[] path, Pointer list, @size_t long size);
  }

  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

  private RawXattrs() {}

  /** {@code lgetxattr(path, name, buf, size)} with a buffer of {@code size} bytes. */
  public static Answer get(Path path, byte[] name, int size) {
    Pointer buf = Memory.allocateDirect(RUNTIME, Math.max(1, size));
    long n = LIBC.lgetxattr(cString(RawNames.bytes(path)), cString(name), buf, size);
    return answer(n, buf, size);
  }

  /** {@code llistxattr(path, buf, size)} with a buffer of {@code size} bytes. */
  public static Answer list(Path path, int size) {
    Pointer buf = Memory.allocateDirect(RUNTIME, Math.max(1, size));
    long n = LIBC.llistxattr(cString(RawNames.bytes(path)), buf, size);
    return answer(n, buf, size);
  }

  private static Answer answer(long n, Pointer buf, int size) {
    if (n < 0) {
      return new Answer(-RUNTIME.getLastError(), new byte[0]);
    }
    byte[] bytes = new byte[size == 0 ? 0 : (int) n]; // size 0 asks only for the length
    buf.get(0, bytes, 0, bytes.length);
    return new Answer(n, bytes);
  }

  private static byte[] cString(byte[] b) {
    return Arrays.copyOf(b, b.length + 1);
  }
}
