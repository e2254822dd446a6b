package dev.puzzlefs.builder;

import dev.puzzlefs.format.Xattr;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;

/**
 * Reads every extended attribute of a path without following symlinks, in every namespace ({@code
 * user.}, {@code security.}, {@code trusted.}); the JDK's attribute view sees only {@code user.}.
 */
final class Xattrs {
  /** The libc calls we need; names and values are raw bytes. */
  public interface LibC {
    long llistxattr(@In byte[] path, @Out byte[] list, long size);

    long lgetxattr(@In byte[] path, @In byte[] name, @Out byte[] value, long size);
  }

  private static final int ENODATA = 61;
  private static final int ENOTSUP = 95;
  private static final int ERANGE = 34;
  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final jnr.ffi.Runtime RUNTIME = jnr.ffi.Runtime.getRuntime(LIBC);

  private Xattrs() {}

  /** The attributes of {@code path}, sorted by key bytes so builds are reproducible. */
  static List<Xattr> read(Path path) throws IOException {
    byte[] cpath = RawNames.cString(path);
    byte[] names = listNames(cpath, path);
    List<Xattr> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < names.length; i++) {
      if (names[i] == 0) {
        if (i > start) {
          byte[] key = Arrays.copyOfRange(names, start, i);
          byte[] value = value(cpath, key, path);
          if (value != null) {
            out.add(new Xattr(key, value));
          }
        }
        start = i + 1;
      }
    }
    out.sort((a, b) -> Arrays.compareUnsigned(a.key(), b.key()));
    return out;
  }

  private static byte[] listNames(byte[] cpath, Path path) throws IOException {
    for (int attempt = 0; attempt < 5; attempt++) {
      long size = LIBC.llistxattr(cpath, null, 0);
      if (size < 0) {
        int errno = RUNTIME.getLastError();
        if (errno == ENOTSUP) {
          return new byte[0];
        }
        throw error("list the extended attributes of", path, errno);
      }
      if (size == 0) {
        return new byte[0];
      }
      byte[] buf = new byte[(int) size];
      long got = LIBC.llistxattr(cpath, buf, size);
      if (got >= 0) {
        return Arrays.copyOf(buf, (int) got);
      }
      if (RUNTIME.getLastError() != ERANGE) {
        throw error("list the extended attributes of", path, RUNTIME.getLastError());
      }
    }
    throw new IOException(
        "extended attributes of " + Problems.path(path) + " kept changing while read");
  }

  private static byte[] value(byte[] cpath, byte[] key, Path path) throws IOException {
    byte[] ckey = Arrays.copyOf(key, key.length + 1);
    for (int attempt = 0; attempt < 5; attempt++) {
      long size = LIBC.lgetxattr(cpath, ckey, null, 0);
      if (size < 0) {
        int errno = RUNTIME.getLastError();
        if (errno == ENODATA) {
          return null; // removed between list and get
        }
        throw error("read extended attribute " + new String(key) + " of", path, errno);
      }
      byte[] buf = new byte[(int) size];
      long got = size == 0 ? 0 : LIBC.lgetxattr(cpath, ckey, buf, size);
      if (got >= 0) {
        return Arrays.copyOf(buf, (int) got);
      }
      if (RUNTIME.getLastError() != ERANGE) {
        throw error(
            "read extended attribute " + new String(key) + " of", path, RUNTIME.getLastError());
      }
    }
    throw new IOException(
        "extended attribute of " + Problems.path(path) + " kept changing while read");
  }

  private static IOException error(String what, Path path, int errno) {
    String reason = jnr.constants.platform.Errno.valueOf(errno).description();
    return new IOException("cannot " + what + " " + Problems.path(path) + ": " + reason);
  }
}
