package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongSupplier;

/**
 * How a read waits for a chunk that is not there yet ({@link Image#read}): until it arrives, its
 * deadline passes, the mount is being taken down, or the process that asked for it is gone. A
 * process killed while its read waited on a slow registry would otherwise hold a FUSE thread, and
 * an unmount would wait for it.
 */
final class Waits {
  private Waits() {}

  /** SIGKILL in /proc's signal masks, where signal n is bit n - 1. */
  private static final long SIGKILL_BIT = 1L << (9 - 1);

  /** How often a waiting read looks whether its reader is still there. */
  private static final long REQUESTER_CHECK_NANOS = TimeUnit.SECONDS.toNanos(1);

  /**
   * Waits until {@code future} is done, the mount is being taken down ({@code abandon}), the
   * process that asked is gone, or {@code until}: past it, throws the {@link TimeoutException} the
   * caller reports.
   */
  static void waitOrGiveUp(
      long ino,
      Digest blob,
      CompletableFuture<?> future,
      CompletableFuture<Void> abandon,
      long until,
      LongSupplier requester)
      throws ChunkReadException, InterruptedException, TimeoutException {
    long pid = 0;
    while (true) {
      long left = until - System.nanoTime();
      try {
        CompletableFuture.anyOf(future, abandon)
            .get(
                requester == null ? left : Math.min(left, REQUESTER_CHECK_NANOS),
                TimeUnit.NANOSECONDS);
        break;
      } catch (ExecutionException failed) {
        break; // the fetch failed: the caller says so
      } catch (TimeoutException e) {
        if (until - System.nanoTime() <= 0) {
          throw e;
        }
        if (pid == 0) {
          pid = Math.max(-1, requester.getAsLong()); // 0: the kernel did not say; not asked again
          pid = pid == 0 ? -1 : pid;
        }
        if (pid > 0 && gone(pid)) {
          throw new ChunkReadException(
              blob, ino, "given up waiting: the reading process " + pid + " is gone", null);
        }
      }
    }
    if (!future.isDone()) {
      throw new ChunkReadException(
          blob, ino, "given up waiting: the mount is being taken down", null);
    }
  }

  /**
   * True when process {@code pid} has exited, or is dying: a SIGKILL pending. A process killed in
   * the middle of a FUSE read cannot exit before the read is answered, so it still exists (runc's
   * init killed while it read the command's binary from a slow registry).
   */
  static boolean gone(long pid) {
    List<String> status;
    try {
      status =
          java.nio.file.Files.readAllLines(
              java.nio.file.Path.of("/proc", Long.toString(pid), "status"));
    } catch (IOException e) {
      return true;
    }
    for (String line : status) {
      if (line.startsWith("State:") && (line.contains("Z (") || line.contains("X ("))) {
        return true;
      }
      boolean pending = line.startsWith("SigPnd:") || line.startsWith("ShdPnd:");
      if (pending && (Long.parseUnsignedLong(line.substring(7).trim(), 16) & SIGKILL_BIT) != 0) {
        return true;
      }
    }
    return false;
  }
}
