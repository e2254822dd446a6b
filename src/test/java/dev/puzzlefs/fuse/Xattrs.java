package dev.puzzlefs.fuse;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/** Calls libc's getxattr/listxattr directly, so tests see the exact sizes and errnos. */
final class Xattrs {
  static final int ERANGE = -34;
  static final int ENODATA = -61;

  /** The two libc calls; errors come back through errno. */
  public interface LibC {
    @SaveError
    @ssize_t
    long getxattr(String path, String name, Pointer value, @size_t long size);

    @SaveError
    @ssize_t
    long listxattr(String path, Pointer list, @size_t long size);
  }

  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

  private Xattrs() {}

  /** The length getxattr reports for a size-0 query, or minus errno. */
  static long size(String path, String name) {
    long n = LIBC.getxattr(path, name, null, 0);
    return n < 0 ? -RUNTIME.getLastError() : n;
  }

  /** What getxattr returns with a buffer of {@code size} bytes: the length, or minus errno. */
  static long getWithBuffer(String path, String name, int size) {
    Pointer buf = Memory.allocateDirect(RUNTIME, Math.max(1, size));
    long n = LIBC.getxattr(path, name, buf, size);
    return n < 0 ? -RUNTIME.getLastError() : n;
  }

  /** The value, sized with a first size-0 query. */
  static byte[] get(String path, String name) {
    long size = size(path, name);
    if (size < 0) {
      throw new AssertionError("getxattr " + name + " failed with errno " + -size);
    }
    Pointer buf = Memory.allocateDirect(RUNTIME, Math.max(1, (int) size));
    long n = LIBC.getxattr(path, name, buf, size);
    byte[] value = new byte[(int) n];
    buf.get(0, value, 0, value.length);
    return value;
  }

  /** The attribute names, in the order listxattr gives them. */
  static List<String> list(String path) {
    long size = LIBC.listxattr(path, null, 0);
    if (size < 0) {
      throw new AssertionError("listxattr failed with errno " + RUNTIME.getLastError());
    }
    List<String> names = new ArrayList<>();
    if (size == 0) {
      return names;
    }
    assertRange(path, (int) size);
    Pointer buf = Memory.allocateDirect(RUNTIME, (int) size);
    long n = LIBC.listxattr(path, buf, size);
    byte[] raw = new byte[(int) n];
    buf.get(0, raw, 0, raw.length);
    int start = 0;
    for (int i = 0; i < raw.length; i++) {
      if (raw[i] == 0) {
        names.add(new String(Arrays.copyOfRange(raw, start, i), StandardCharsets.UTF_8));
        start = i + 1;
      }
    }
    return names;
  }

  private static void assertRange(String path, int size) {
    Pointer small = Memory.allocateDirect(RUNTIME, size);
    long n = LIBC.listxattr(path, small, size - 1);
    if (n >= 0 || RUNTIME.getLastError() != -ERANGE) {
      throw new AssertionError("listxattr with a short buffer gave " + n + ", not ERANGE");
    }
  }
}
