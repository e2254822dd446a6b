package dev.puzzlefs.fuse;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.Delegate;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;

/**
 * Native callback shapes that receive paths and attribute names as raw {@code const char *}.
 *
 * <p>jnr-fuse declares its callbacks with {@code String} parameters, which jnr-ffi decodes with the
 * JVM's default charset (UTF-8 on Java 18 and later whatever {@code file.encoding} says, and
 * replacing bytes that do not decode). Names in an image are bytes, so {@link PuzzleFs} installs
 * these instead for every operation whose result depends on the path. They are public only because
 * jnr-ffi generates their implementations.
 */
public final class BytePathCallbacks {
  private BytePathCallbacks() {}

  /** {@code int getattr(const char *path, struct stat *st)}. */
  public interface Getattr {
    @Delegate
    int getattr(Pointer path, Pointer stat);
  }

  /** {@code int readlink(const char *path, char *buf, size_t size)}. */
  public interface Readlink {
    @Delegate
    int readlink(Pointer path, Pointer buf, @size_t long size);
  }

  /** {@code int open(const char *path, struct fuse_file_info *fi)}, also used for opendir. */
  public interface Open {
    @Delegate
    int open(Pointer path, Pointer fi);
  }

  /** {@code int read(const char *path, char *buf, size_t size, off_t off, fuse_file_info *fi)}. */
  public interface Read {
    @Delegate
    int read(Pointer path, Pointer buf, @size_t long size, @off_t long offset, Pointer fi);
  }

  /** {@code int getxattr(const char *path, const char *name, char *value, size_t size)}. */
  public interface Getxattr {
    @Delegate
    int getxattr(Pointer path, Pointer name, Pointer value, @size_t long size);
  }

  /** {@code int listxattr(const char *path, char *list, size_t size)}. */
  public interface Listxattr {
    @Delegate
    int listxattr(Pointer path, Pointer list, @size_t long size);
  }

  /** {@code int access(const char *path, int mask)}. */
  public interface Access {
    @Delegate
    int access(Pointer path, int mask);
  }
}
