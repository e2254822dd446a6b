package dev.puzzlefs.fuse;

import dev.puzzlefs.reader.Image;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Mounts an {@link Image} with FUSE and unmounts it again.
 *
 * <p>The FUSE loop runs on a thread of its own ({@code fuse_main}'s setup in foreground mode, with
 * the requests served on Java threads: {@link FuseLoop}). A mount is reported ready only when the
 * kernel answers for it: the mount table lists the directory and a {@code stat} of it shows a
 * device other than the one it had before. jnr-fuse's own non-blocking mount returns after a fixed
 * wait without knowing either.
 */
public final class Mounter {
  /**
   * Options every mount gets; user options are added after them. An image never changes while it is
   * mounted, so the kernel may keep names, attributes and absent names for an hour instead of a
   * second: a tool that walks a tree a second time (or stats after listing) asks us nothing again.
   */
  public static final List<String> DEFAULT_OPTIONS =
      List.of(
          "ro",
          "use_ino",
          "readdir_ino",
          "kernel_cache",
          "entry_timeout=3600",
          "attr_timeout=3600",
          "negative_timeout=3600",
          "default_permissions",
          "max_read=131072",
          "fsname=puzzlefs",
          "subtype=puzzlefs");

  /** How long {@link #mount(Image, Path, boolean, List)} waits for the kernel to answer. */
  public static final Duration DEFAULT_READY_TIMEOUT = Duration.ofSeconds(30);

  /** The type the mount table shows for our mounts ({@code subtype=puzzlefs}). */
  static final String FS_TYPE = "fuse.puzzlefs";

  private static final Logger log = LoggerFactory.getLogger(Mounter.class);
  private static final long POLL_MILLIS = 10;

  private Mounter() {}

  /**
   * Mounts {@code image} on {@code mountpoint} with {@link #DEFAULT_OPTIONS} plus {@code options}
   * (each one a {@code -o} value such as {@code allow_other}) and waits until the mount answers.
   * With {@code blocking}, also waits until it is unmounted again before returning.
   *
   * @throws IOException if the mount point is missing, not a directory or already a mount point, or
   *     the mount fails or does not become ready within {@link #DEFAULT_READY_TIMEOUT}
   */
  public static Mount mount(Image image, Path mountpoint, boolean blocking, List<String> options)
      throws IOException {
    Mount mount = mount(image, mountpoint, options, DEFAULT_READY_TIMEOUT);
    if (blocking) {
      try {
        mount.awaitUnmounted();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        mount.close();
        throw new IOException("interrupted while mounted on " + mountpoint, e);
      }
    }
    return mount;
  }

  private static final java.util.concurrent.atomic.AtomicBoolean PREPARED =
      new java.util.concurrent.atomic.AtomicBoolean();

  /**
   * Starts, on a background thread, the one-time work of the first mount in a JVM: loading libfuse
   * and generating the native callbacks (about 0.2 s, the same for every filesystem instance). A
   * caller that opens an image first calls this before, so both proceed at once on two cores; the
   * mount itself then finds the work done, or waits for it. Calling it again does nothing.
   */
  public static void prepareInBackground() {
    if (!PREPARED.compareAndSet(false, true)) {
      return;
    }
    Thread prepare =
        new Thread(
            () -> {
              try {
                new PuzzleFs(null);
                FuseLoop.prepare();
              } catch (Throwable t) {
                // The mount does the same work again and reports what fails.
                log.debug("preparing FUSE in the background failed: {}", t.toString());
              }
            },
            "puzzlefs-fuse-prepare");
    prepare.setDaemon(true);
    prepare.start();
  }

  /** A filesystem made ahead, for the next mount; see {@link #keepSpare}. */
  private static final AtomicReference<PuzzleFs> spare = new AtomicReference<>();

  private static volatile boolean keepSpare;

  /**
   * From now on, keeps a filesystem made ahead for the next mount: making one (jnr-fuse loads its
   * libfuse binding and builds a native callback for every operation) takes 10 to 25 ms that a
   * process serving many mounts (the mount server) then spends between them, not during them.
   */
  public static void keepSpare() {
    keepSpare = true;
    makeSpareLater();
  }

  private static void makeSpareLater() {
    Thread t =
        new Thread(
            () -> {
              try {
                // Out of the way of the mount that took the last one, and of its first reads.
                Thread.sleep(SPARE_DELAY_MILLIS);
                if (spare.get() == null) {
                  spare.compareAndSet(null, new PuzzleFs(null));
                }
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              } catch (Throwable e) {
                // The next mount makes its own and reports what fails.
                log.debug("making a spare filesystem failed: {}", e.toString());
              }
            },
            "puzzlefs-fuse-spare");
    t.setDaemon(true);
    t.setPriority(Thread.MIN_PRIORITY);
    t.start();
  }

  private static final long SPARE_DELAY_MILLIS = 2000;

  /** Mounts without blocking, waiting at most {@code readyTimeout} for the mount to answer. */
  public static Mount mount(
      Image image, Path mountpoint, List<String> options, Duration readyTimeout)
      throws IOException {
    Objects.requireNonNull(image, "image");
    Path dir = checkMountpoint(mountpoint);
    if (options == null || options.stream().noneMatch(o -> o.contains("nonempty"))) {
      // libfuse 2 refuses with a message on its standard error, which a server's client never sees.
      try (var entries = Files.list(dir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException(
              "mount point "
                  + dir
                  + " is not empty; mount on an empty directory (or pass -o nonempty to hide what"
                  + " is there)");
        }
      }
    }
    Object devBefore = Files.getAttribute(dir, "unix:dev");
    PuzzleFs fs = spare.getAndSet(null);
    if (fs != null) {
      fs.attach(image);
    } else {
      fs = new PuzzleFs(image);
    }
    if (keepSpare) {
      makeSpareLater();
    }
    PuzzleFs served = fs;
    String[] args = fuseArgs(options);
    CompletableFuture<Void> loopEnded = new CompletableFuture<>();
    Thread loop =
        new Thread(
            () -> {
              try {
                served.serve(dir, args);
                loopEnded.complete(null);
              } catch (Throwable t) {
                loopEnded.completeExceptionally(t);
              }
            },
            "puzzlefs-fuse-loop");
    loop.setDaemon(true);
    loop.start();
    Mount mount = new Mount(dir, fs, loopEnded);
    awaitReady(mount, devBefore, loopEnded, readyTimeout);
    log.debug("mounted on {} with options {}", dir, String.join(" ", args));
    return mount;
  }

  /** The arguments after the mount point: one {@code -o} with every option. */
  static String[] fuseArgs(List<String> options) {
    List<String> all = new ArrayList<>(DEFAULT_OPTIONS);
    for (String option : options) {
      if (option.isBlank()) {
        continue;
      }
      all.add(option.trim());
    }
    return new String[] {"-o", String.join(",", all)};
  }

  private static Path checkMountpoint(Path mountpoint) throws IOException {
    Path absolute = mountpoint.toAbsolutePath();
    if (!Files.exists(absolute)) {
      throw new NoSuchFileException(
          absolute.toString(), null, "mount point does not exist; create the directory first");
    }
    Path dir = absolute.toRealPath();
    if (!Files.isDirectory(dir)) {
      throw new NotDirectoryException(dir + ": mount point is not a directory");
    }
    String type = MountTable.typeAt(dir);
    if (type != null) {
      throw new IOException(
          dir + " is already a mount point (" + type + "); unmount it or choose another directory");
    }
    return dir;
  }

  private static void awaitReady(
      Mount mount, Object devBefore, CompletableFuture<Void> loopEnded, Duration timeout)
      throws IOException {
    Path dir = mount.mountpoint();
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    while (true) {
      if (loopEnded.isDone()) {
        throw new IOException("could not mount on " + dir + ": " + loopFailure(loopEnded));
      }
      String type = MountTable.typeAt(dir);
      if (type != null && type.startsWith("fuse")) {
        Object devNow;
        try {
          devNow = Files.getAttribute(dir, "unix:dev");
        } catch (IOException e) {
          // Mounted, but its session is gone (ENOTCONN): libfuse failed after the kernel mount (an
          // unknown option) and is taking it down. The loop's end says why, on the next look.
          devNow = devBefore;
        }
        if (!devNow.equals(devBefore)) {
          return;
        }
      }
      if (System.nanoTime() > deadline) {
        try {
          mount.close();
        } catch (IOException e) {
          log.warn("could not clean up the mount on {}: {}", dir, e.getMessage());
        }
        throw new IOException(
            "mount on " + dir + " did not become ready within " + timeout.toMillis() + " ms");
      }
      try {
        // A mount usually answers within tens of milliseconds: look often at first.
        boolean early = System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(200);
        TimeUnit.MILLISECONDS.sleep(early ? 1 : POLL_MILLIS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        mount.close();
        throw new IOException("interrupted while waiting for the mount on " + dir, e);
      }
    }
  }

  private static String loopFailure(CompletableFuture<Void> loopEnded) {
    try {
      loopEnded.get();
      return "the FUSE loop ended at once";
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      StringBuilder reason = new StringBuilder(String.valueOf(cause.getMessage()));
      for (Throwable c = cause.getCause(); c != null; c = c.getCause()) {
        reason.append(": ").append(c.getMessage());
      }
      return reason + " (libfuse prints the reason on standard error)";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }

  /**
   * Unmounts whatever is mounted on {@code mountpoint} with {@code fusermount -u}, falling back to
   * {@code umount}.
   *
   * @throws IOException if nothing is mounted there, or neither command succeeds
   */
  public static void umount(Path mountpoint) throws IOException {
    unmount(mountpoint, false);
  }

  /**
   * {@link #umount}, for users: refuses anything but a puzzlefs mount, so a mistyped path cannot
   * take down another filesystem.
   */
  public static void umountPuzzlefs(Path mountpoint) throws IOException {
    umountPuzzlefs(mountpoint, false);
  }

  /**
   * {@link #umountPuzzlefs(Path)}, detaching lazily when {@code lazy}: the mount leaves the tree at
   * once and goes away when its last user does. A mount whose daemon died (the kernel answers
   * ENOTCONN) is unmounted like any other.
   *
   * @throws UnmountException saying why, when nothing or something else is mounted there, the mount
   *     is busy, or the tools failed
   */
  public static void umountPuzzlefs(Path mountpoint, boolean lazy) throws IOException {
    Path dir = mountpoint.toAbsolutePath().normalize();
    String type = MountTable.typeAt(dir);
    if (type == null) {
      throw new UnmountException(UnmountException.Reason.NOT_MOUNTED, dir, dir + " is not mounted");
    }
    if (!type.equals(FS_TYPE)) {
      throw new UnmountException(
          UnmountException.Reason.NOT_PUZZLEFS,
          dir,
          dir + " is not a puzzlefs mount (it is " + type + "); not unmounting it");
    }
    unmount(dir, lazy);
  }

  /** Like {@link #umount} but detaches lazily ({@code -z}/{@code -l}) even while busy. */
  public static void umountLazily(Path mountpoint) throws IOException {
    unmount(mountpoint, true);
  }

  private static void unmount(Path mountpoint, boolean lazy) throws IOException {
    // No toRealPath: stat on a dead FUSE mount fails with ENOTCONN.
    Path dir = mountpoint.toAbsolutePath().normalize();
    if (!MountTable.isMountPoint(dir)) {
      throw new UnmountException(UnmountException.Reason.NOT_MOUNTED, dir, dir + " is not mounted");
    }
    if (MountCalls.usable()) {
      // What fusermount -u and umount do for root, without their processes.
      MountCalls.Result r = MountCalls.umount(dir, lazy);
      if (r.ok()) {
        return;
      }
      if (r.is(jnr.constants.platform.Errno.EBUSY)) {
        throw new UnmountException(
            UnmountException.Reason.BUSY, dir, "could not unmount " + dir + ": " + r.describe());
      }
      log.debug("umount2 of {} failed ({}); trying fusermount and umount", dir, r.describe());
    }
    List<String> fusermount = new ArrayList<>(List.of("fusermount", "-u"));
    List<String> umount = new ArrayList<>(List.of("umount"));
    if (lazy) {
      fusermount.add("-z");
      umount.add("-l");
    }
    fusermount.add(dir.toString());
    umount.add(dir.toString());
    String first = run(fusermount);
    if (first == null) {
      return;
    }
    String second = run(umount);
    if (second == null) {
      return;
    }
    String message = "could not unmount " + dir + ": " + first + "; " + second;
    boolean busy = (first + second).contains("busy");
    throw new UnmountException(
        busy ? UnmountException.Reason.BUSY : UnmountException.Reason.FAILED, dir, message);
  }

  /** Runs {@code command}; null on success, else a reason. */
  private static String run(List<String> command) {
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      process.getOutputStream().close();
      byte[] output = process.getInputStream().readAllBytes();
      int status = process.waitFor();
      if (status == 0) {
        return null;
      }
      String text = new String(output, StandardCharsets.UTF_8).strip();
      return command.get(0) + " exited with " + status + (text.isEmpty() ? "" : ": " + text);
    } catch (IOException e) {
      return command.get(0) + " could not run: " + e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return command.get(0) + " was interrupted";
    }
  }
}
