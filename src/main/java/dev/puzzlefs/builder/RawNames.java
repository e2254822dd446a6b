package dev.puzzlefs.builder;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.charset.Charset;
import java.nio.file.Path;

/**
 * The raw bytes of file names. The JDK keeps a Unix path as the bytes the kernel gave it but only
 * hands out a decoded {@code String}, which loses bytes that are not valid in the platform charset.
 * With {@code --add-opens java.base/sun.nio.fs=ALL-UNNAMED} (which bin/puzzlefs passes) we read the
 * kept bytes; without it we re-encode the string, exact for valid UTF-8 names under a UTF-8 locale.
 */
public final class RawNames {
  private static final MethodHandle AS_BYTES = findAsByteArray();
  private static final Charset JNU = platformCharset();

  private RawNames() {}

  private static MethodHandle findAsByteArray() {
    try {
      Class<?> unixPath = Class.forName("sun.nio.fs.UnixPath");
      var lookup = MethodHandles.privateLookupIn(unixPath, MethodHandles.lookup());
      return lookup
          .findVirtual(unixPath, "asByteArray", MethodType.methodType(byte[].class))
          .asType(MethodType.methodType(byte[].class, Path.class));
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }

  private static Charset platformCharset() {
    try {
      return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
    } catch (IllegalArgumentException e) {
      return Charset.defaultCharset();
    }
  }

  /** The bytes of {@code path} exactly as the filesystem spelled them. */
  public static byte[] bytes(Path path) {
    if (AS_BYTES != null && path.getClass().getName().equals("sun.nio.fs.UnixPath")) {
      try {
        return ((byte[]) AS_BYTES.invokeExact(path)).clone();
      } catch (Throwable e) {
        throw new IllegalStateException("cannot read the bytes of a path", e);
      }
    }
    return path.toString().getBytes(JNU);
  }

  /** {@link #bytes} plus a trailing NUL, for C calls. */
  static byte[] cString(Path path) {
    byte[] b = bytes(path);
    byte[] c = new byte[b.length + 1];
    System.arraycopy(b, 0, c, 0, b.length);
    return c;
  }
}
