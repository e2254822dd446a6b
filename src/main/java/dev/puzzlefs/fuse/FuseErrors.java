package dev.puzzlefs.fuse;

import dev.puzzlefs.reader.ChunkReadException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import ru.serce.jnrfuse.ErrorCodes;

/**
 * The one place where a failure inside a FUSE callback becomes a negative errno. Nothing may be
 * thrown back into native code, so every callback ends here when something goes wrong.
 */
final class FuseErrors {
  private static final Logger log = LoggerFactory.getLogger(FuseErrors.class);

  private FuseErrors() {}

  /**
   * The negative errno for {@code failure} in callback {@code op} on {@code path} (may be null).
   */
  static int errno(String op, byte[] path, Throwable failure) {
    if (failure instanceof NoSuchFileException) {
      log.debug("{} {}: no such file", op, show(path));
      return -ErrorCodes.ENOENT();
    }
    if (failure instanceof NotDirectoryException) {
      log.debug("{} {}: not a directory", op, show(path));
      return -ErrorCodes.ENOTDIR();
    }
    if (failure instanceof ChunkReadException || failure instanceof IOException) {
      log.warn("{} {} failed with EIO: {}", op, show(path), failure.getMessage());
      return -ErrorCodes.EIO();
    }
    log.warn("{} {} failed with EIO: unexpected {}", op, show(path), failure.toString());
    log.debug("stack of the unexpected failure", failure);
    return -ErrorCodes.EIO();
  }

  /** A path for a log line: UTF-8 where it decodes, replacement characters where it does not. */
  static String show(byte[] path) {
    return path == null ? "(open file)" : new String(path, StandardCharsets.UTF_8);
  }
}
