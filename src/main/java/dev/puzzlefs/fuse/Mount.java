package dev.puzzlefs.fuse;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A live FUSE mount made by {@link Mounter}; closing it unmounts. */
public final class Mount implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Mount.class);
  private static final Duration LOOP_EXIT_WAIT = Duration.ofSeconds(10);
  private static final Duration ABANDON_WAITS_AFTER = Duration.ofMillis(300);

  private final Path mountpoint;
  private final PuzzleFs fs;
  private final CompletableFuture<Void> loopEnded;

  Mount(Path mountpoint, PuzzleFs fs, CompletableFuture<Void> loopEnded) {
    this.mountpoint = mountpoint;
    this.fs = fs;
    this.loopEnded = loopEnded;
  }

  /** The directory the image is mounted on. */
  public Path mountpoint() {
    return mountpoint;
  }

  /** The filesystem serving this mount. */
  public PuzzleFs fs() {
    return fs;
  }

  /** True until the FUSE loop has ended (the mount was unmounted, from here or outside). */
  public boolean isMounted() {
    return !loopEnded.isDone();
  }

  /** Blocks until the mount goes away; an error in the FUSE loop is rethrown. */
  public void awaitUnmounted() throws InterruptedException, IOException {
    try {
      loopEnded.get();
    } catch (ExecutionException e) {
      throw new IOException("FUSE loop for " + mountpoint + " failed", e.getCause());
    }
  }

  /** Waits at most {@code timeout} for the mount to go away; true if it did. */
  public boolean awaitUnmounted(Duration timeout) throws InterruptedException {
    try {
      loopEnded.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
      return true;
    } catch (ExecutionException e) {
      return true;
    } catch (TimeoutException e) {
      return false;
    }
  }

  private static boolean notMounted(IOException e) {
    return e instanceof UnmountException u && u.reason() == UnmountException.Reason.NOT_MOUNTED;
  }

  /** Unmounts (lazily if the plain unmount is refused) and waits for the FUSE loop to end. */
  @Override
  public void close() throws IOException {
    if (!isMounted()) {
      return;
    }
    // Another unmount may win the race (the FUSE layer's own shutdown hook on SIGTERM, a user's
    // fusermount -u): "not mounted" is then the state this asked for, not a failure.
    try {
      Mounter.umount(mountpoint);
    } catch (IOException e) {
      if (!notMounted(e)) {
        log.debug("plain unmount of {} failed, detaching lazily: {}", mountpoint, e.getMessage());
        try {
          Mounter.umountLazily(mountpoint);
        } catch (IOException lazy) {
          if (!notMounted(lazy)) {
            throw lazy;
          }
        }
      }
    }
    try {
      // A read still waiting for a chunk holds the loop: its reader was killed while it waited (a
      // stopped container; such a read gives up within a second anyway), or keeps a file open
      // through the lazy unmount. After a moment, that read and any later one that would wait give
      // up, rather than wait out their deadline, which a slow registry can stretch.
      if (!awaitUnmounted(ABANDON_WAITS_AFTER) && fs.image() != null) {
        int abandoned = fs.image().abandonWaits();
        log.debug(
            "{}: {} read(s) waiting for chunks given up after unmount", mountpoint, abandoned);
      }
      if (!awaitUnmounted(LOOP_EXIT_WAIT)) {
        throw new IOException("FUSE loop for " + mountpoint + " did not end after unmount");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while unmounting " + mountpoint, e);
    }
  }
}
