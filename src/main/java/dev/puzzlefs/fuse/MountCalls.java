package dev.puzzlefs.fuse;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import jnr.constants.platform.Errno;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;

/**
 * {@code mount(2)} and {@code umount2(2)} called straight from Java, for root. Mounting an overlay
 * or unmounting through {@code mount(8)}, {@code umount(8)} or {@code fusermount} costs a process
 * each, and {@code puzzlefs run} does three of them while a user waits; the calls cost
 * microseconds. Callers fall back to the tools when not root or when a call is not available.
 */
public final class MountCalls {
  /** The libc functions, as jnr-ffi binds them. */
  public interface LibC {
    int mount(@In byte[] source, @In byte[] target, @In byte[] type, long flags, @In byte[] data);

    int umount2(@In byte[] target, int flags);

    int geteuid();
  }

  /** {@code MNT_DETACH}: a lazy unmount. */
  static final int MNT_DETACH = 2;

  private static final LibC LIBC = load();
  private static final jnr.ffi.Runtime RUNTIME =
      LIBC == null ? null : jnr.ffi.Runtime.getRuntime(LIBC);

  private MountCalls() {}

  private static LibC load() {
    try {
      return LibraryLoader.create(LibC.class).failImmediately().load("c");
    } catch (RuntimeException | LinkageError e) {
      return null;
    }
  }

  /** True when the calls can be made: libc bound and running as root. */
  public static boolean usable() {
    return LIBC != null && LIBC.geteuid() == 0;
  }

  /** The outcome of one call: 0, or the errno it failed with. */
  public record Result(int errno) {
    public boolean ok() {
      return errno == 0;
    }

    /** The errno's name and description, as {@code strerror} gives them. */
    public String describe() {
      Errno e = Errno.valueOf(errno);
      return e == Errno.__UNKNOWN_CONSTANT__ ? "errno " + errno : e.name() + " " + e.description();
    }

    public boolean is(Errno e) {
      return errno == e.intValue();
    }
  }

  /** {@code MS_NOSUID}: set-user-ID and set-group-ID bits do nothing on the mount. */
  public static final long MS_NOSUID = 2;

  /** {@code MS_NODEV}: device nodes on the mount cannot be opened. */
  public static final long MS_NODEV = 4;

  /** {@code mount(source, target, type, 0, data)}. */
  public static Result mount(String source, Path target, String type, String data) {
    return mount(source, target, type, 0, data);
  }

  /** {@code mount(source, target, type, flags, data)}. */
  public static Result mount(String source, Path target, String type, long flags, String data) {
    int rc = LIBC.mount(c(source), c(target.toString()), c(type), flags, c(data));
    return new Result(rc == 0 ? 0 : RUNTIME.getLastError());
  }

  /** {@code umount2(target, lazy ? MNT_DETACH : 0)}. */
  public static Result umount(Path target, boolean lazy) {
    int rc = LIBC.umount2(c(target.toString()), lazy ? MNT_DETACH : 0);
    return new Result(rc == 0 ? 0 : RUNTIME.getLastError());
  }

  private static byte[] c(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    return Arrays.copyOf(b, b.length + 1);
  }
}
