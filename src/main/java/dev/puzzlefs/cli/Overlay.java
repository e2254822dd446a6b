package dev.puzzlefs.cli;

import dev.puzzlefs.fuse.MountCalls;
import dev.puzzlefs.fuse.MountTable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;

/**
 * The kernel overlay that makes an image writable: the read-only puzzlefs mount as its lower
 * directory, an upper and a work directory beside each other, mounted with {@code mount(2)} (or
 * {@code mount(8)} when that call is not available).
 *
 * <p>Writes go to the upper directory only; the lower FUSE mount is read-only, so the image's blobs
 * and the chunk cache behind it are never written through the overlay.
 */
final class Overlay {
  /** The type {@code /proc/self/mountinfo} shows for a kernel overlay. */
  static final String TYPE = "overlay";

  private Overlay() {}

  /**
   * Mounts an overlay of {@code lower} (read-only) and {@code upper} on {@code target}. Unless
   * {@code containerRoot}, it is {@code nosuid,nodev}, as the read-only FUSE mount is: an overlay
   * has no "only the mounting user" rule, so on a mount point other users can reach, the image's
   * set-user-ID programs and device nodes would be theirs to use. A container's root ({@code run},
   * {@code bundle}) keeps them, for the programs inside, behind a directory only its owner enters.
   */
  static void mount(Path lower, Path upper, Path work, Path target, boolean containerRoot)
      throws IOException {
    // One overlay per upper layer: two on one persist directory would each see the other's writes
    // half done (the kernel only warns). The check and the mount go together under a lock on the
    // directory that holds the upper layer (this JVM's threads, then other processes).
    Path lockFile = upper.toAbsolutePath().normalize().resolveSibling(".puzzlefs-lock");
    synchronized (Overlay.class) {
      try (java.nio.channels.FileChannel lock =
              java.nio.channels.FileChannel.open(
                  lockFile,
                  java.nio.file.StandardOpenOption.CREATE,
                  java.nio.file.StandardOpenOption.WRITE);
          java.nio.channels.FileLock held = lock.lock()) {
        Path busy = MountTable.overlayUsing(upper, work);
        if (busy != null) {
          throw new IOException(
              upper.toAbsolutePath().normalize().getParent()
                  + " is in use: it holds the upper layer of the writable mount on "
                  + busy
                  + " (a persist directory serves one mount at a time)");
        }
        mountUnlocked(lower, upper, work, target, containerRoot);
      }
    }
  }

  private static void mountUnlocked(
      Path lower, Path upper, Path work, Path target, boolean containerRoot) throws IOException {
    String options =
        "lowerdir=" + escape(lower) + ",upperdir=" + escape(upper) + ",workdir=" + escape(work);
    long flags = containerRoot ? 0 : MountCalls.MS_NOSUID | MountCalls.MS_NODEV;
    String failed;
    MountCalls.Result r =
        MountCalls.usable() ? MountCalls.mount("puzzlefs", target, TYPE, flags, options) : null;
    if (r != null && r.ok()) {
      return;
    }
    // Not root, or the call failed: mount(8) tries again and says why in its own words.
    String all = containerRoot ? options : "nosuid,nodev," + options;
    failed = run(List.of("mount", "-t", TYPE, "-o", all, "puzzlefs", target.toString()));
    if (failed != null && r != null) {
      failed = failed + " (mount(2): " + r.describe() + ")";
    }
    if (failed != null) {
      throw new IOException(
          "could not mount the writable overlay on "
              + target
              + " (is the overlay module loaded? upper and work must be on one filesystem): "
              + failed);
    }
  }

  /** Unmounts the overlay on {@code target}; refuses anything that is not an overlay. */
  static void unmount(Path target) throws IOException {
    unmount(target, false);
  }

  /**
   * {@link #unmount(Path)}, detaching lazily when {@code lazy}: the overlay leaves the tree at once
   * and ends when the last process using it lets go.
   *
   * @throws dev.puzzlefs.fuse.UnmountException with reason {@code BUSY} when the overlay is in use
   *     (and not {@code lazy})
   */
  static void unmount(Path target, boolean lazy) throws IOException {
    String type = MountTable.typeAt(target);
    if (!TYPE.equals(type)) {
      throw new IOException(target + " is not an overlay mount (it is " + type + ")");
    }
    if (MountCalls.usable()) {
      MountCalls.Result done = MountCalls.umount(target, lazy);
      if (done.ok()) {
        return;
      }
      if (done.is(jnr.constants.platform.Errno.EBUSY)) {
        throw dev.puzzlefs.fuse.UnmountException.busy(
            target, "could not unmount the overlay on " + target + ": " + done.describe());
      }
    }
    String failed =
        run(
            lazy
                ? List.of("umount", "-l", target.toString())
                : List.of("umount", target.toString()));
    if (failed != null) {
      throw new IOException("could not unmount the overlay on " + target + ": " + failed);
    }
  }

  /**
   * Deletes {@code dir} and everything in it, unless something is mounted at or below it: then it
   * deletes nothing, so a recursive delete can never reach through a mount into an image, a cache
   * or a persist directory.
   */
  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    List<Path> mounted = MountTable.mountsUnder(dir);
    if (!mounted.isEmpty()) {
      throw new IOException("not deleting " + dir + ": still mounted there: " + mounted);
    }
    Files.walkFileTree(
        dir,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
              throws IOException {
            Files.delete(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
            if (e != null) {
              throw e;
            }
            Files.delete(d);
            return FileVisitResult.CONTINUE;
          }
        });
  }

  /** Overlay options separate with commas and colons; a path holding one must escape it. */
  private static String escape(Path p) {
    return p.toAbsolutePath()
        .toString()
        .replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(":", "\\:");
  }

  /** Runs {@code command}; null on success, else what it said. */
  static String run(List<String> command) throws IOException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    try {
      int status = p.waitFor();
      return status == 0 ? null : command.get(0) + " exited with " + status + ": " + out;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroy();
      throw new IOException("interrupted while running " + String.join(" ", command), e);
    }
  }
}
