package dev.puzzlefs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.fuse.MountTable;
import dev.puzzlefs.fuse.Mounter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A writable view of an image: the read-only puzzlefs mount in a private directory, and a kernel
 * overlay of it on the user's mount point.
 *
 * <p>Each writable mount owns a private directory ({@code puzzlefs-writable-*} in the temporary
 * directory, mode 700) holding {@code lower/}, the FUSE mount point, and, unless the upper layer
 * persists in a directory of the user's, {@code upper/} and {@code work/}. What belongs together is
 * written to a small state file keyed by the mount point ({@code /run/puzzlefs/writable/}, or
 * {@code $PUZZLEFS_STATE_DIR}), so that {@code umount} can take down both halves, the overlay
 * first, and clean up whichever half is left when the other is already gone.
 */
final class WritableMount {
  /** The directories of one writable mount: what {@code umount} needs to take it down. */
  record Layers(Path mountpoint, Path privateDir, Path lower, Path upper, Path work, Path persist) {
    /** Absolute, normalized form of the mount point, the key of the state file. */
    Layers {
      mountpoint = mountpoint.toAbsolutePath().normalize();
    }
  }

  private static final Logger log = LoggerFactory.getLogger(WritableMount.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private WritableMount() {}

  /**
   * Makes the private directory for a writable mount on {@code mountpoint} (null: on {@code
   * rootfs/} in the private directory itself); the upper layer goes to {@code persist}/upper (with
   * {@code persist}/work) when {@code persist} is not null.
   */
  static Layers prepare(Path mountpoint, Path persist, String prefix) throws IOException {
    if (persist != null && Files.exists(persist) && !Files.isDirectory(persist)) {
      throw new IOException("--persist " + persist + " is not a directory");
    }
    Path dir =
        Files.createTempDirectory(
            prefix,
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    try {
      if (mountpoint == null) {
        mountpoint = Files.createDirectory(dir.resolve("rootfs"));
      }
      Path base = persist != null ? persist.toAbsolutePath().normalize() : dir;
      Path upper = Files.createDirectories(base.resolve("upper"));
      Path work = Files.createDirectories(base.resolve("work"));
      Path lower = Files.createDirectory(dir.resolve("lower"));
      return new Layers(mountpoint, dir, lower, upper, work, persist);
    } catch (IOException | RuntimeException e) {
      try {
        Overlay.deleteTree(dir);
      } catch (IOException again) {
        e.addSuppressed(again);
      }
      if (persist != null && e instanceof java.nio.file.FileSystemException fs) {
        throw new IOException(
            "cannot use --persist " + persist + ": " + fs.getFile() + ": " + fs.getReason(), e);
      }
      throw e;
    }
  }

  /**
   * {@code mount --writable}: mounts the image read-only on a private directory in a background JVM
   * (the command line {@code childArgs} makes for that directory), then the overlay on {@code
   * mountpoint}: {@code nosuid,nodev} unless {@code containerRoot} (a bundle's rootfs, see {@link
   * Overlay#mount}).
   *
   * @return 0 when both are mounted, 1 when the background mount failed (it printed why)
   */
  static int mountInBackground(
      Function<Path, List<String>> childArgs,
      Path mountpoint,
      Path persist,
      Path logFile,
      Duration timeout,
      boolean containerRoot)
      throws IOException {
    Path target = checkMountpoint(mountpoint);
    Layers layers = prepare(target, persist, "puzzlefs-writable-");
    int status = MountSupport.spawnBackground(childArgs.apply(layers.lower()), logFile, timeout);
    if (status != 0) {
      removeQuietly(layers);
      return status;
    }
    try {
      Overlay.mount(layers.lower(), layers.upper(), layers.work(), target, containerRoot);
    } catch (IOException e) {
      try {
        Mounter.umount(layers.lower());
      } catch (IOException again) {
        e.addSuppressed(again);
      }
      removeQuietly(layers);
      throw e;
    }
    writeState(layers);
    if (MountSupport.inServer()) {
      Server.servedWritable(target);
    }
    log.debug(
        "writable mount on {}: image on {}, upper layer {}",
        target,
        layers.lower(),
        layers.upper());
    return 0;
  }

  private static Path checkMountpoint(Path mountpoint) throws IOException {
    Path target = mountpoint.toAbsolutePath().normalize();
    MountSupport.requireDirectory(target);
    String type = MountTable.typeAt(target);
    if (type != null) {
      throw new IOException(target + " is already a mount point (" + type + ")");
    }
    if (Files.exists(stateFile(target))) {
      throw new IOException(
          target + " has the remains of a writable mount; run puzzlefs umount " + target);
    }
    return target;
  }

  /** True when {@code mountpoint} is, or was, a writable mount that has not been unmounted. */
  static boolean isWritable(Path mountpoint) {
    return Files.exists(stateFile(mountpoint.toAbsolutePath().normalize()));
  }

  /**
   * Takes down the writable mount on {@code mountpoint}: the overlay, then the image mount under
   * it, then the private directory. A half already gone is reported on {@code err} and the other
   * half still taken down. The persist directory is kept.
   *
   * @throws IOException when the overlay cannot be unmounted (busy), the image mount under it
   *     cannot, or the private directory cannot be removed; the state stays for another try
   */
  static void unmount(Path mountpoint, PrintStream err) throws IOException {
    unmount(mountpoint, err, false);
  }

  /**
   * {@link #unmount(Path, PrintStream)}; with {@code lazy}, an overlay still in use is detached
   * instead (and the image mount under it): both leave the tree at once and end when the last
   * process using them lets go, and the private directory, which the overlay still writes to, is
   * kept and named on {@code err}.
   */
  static void unmount(Path mountpoint, PrintStream err, boolean lazy) throws IOException {
    Layers layers = readState(mountpoint.toAbsolutePath().normalize());
    takeDown(layers, err, lazy);
    Files.deleteIfExists(stateFile(layers.mountpoint()));
  }

  /** {@link #unmount} without the state file: for a mount this process made itself. */
  static void takeDown(Layers layers, PrintStream err) throws IOException {
    takeDown(layers, err, false);
  }

  private static void takeDown(Layers layers, PrintStream err, boolean lazy) throws IOException {
    Path target = layers.mountpoint();
    String type = MountTable.typeAt(target);
    boolean overlayUp = Overlay.TYPE.equals(type);
    boolean lowerUp = MountTable.isMountPoint(layers.lower());
    boolean detached = false;
    if (overlayUp) {
      try {
        Overlay.unmount(target);
      } catch (IOException busy) {
        if (!lazy) {
          throw busy;
        }
        Overlay.unmount(target, true);
        detached = true;
      }
    } else {
      err.println(
          "puzzlefs umount: the overlay on "
              + target
              + " was already gone"
              + (lowerUp ? "; unmounting the image under it" : ""));
    }
    if (lowerUp) {
      if (!answers(layers.lower())) {
        err.println(
            "puzzlefs umount: the image mount under "
                + target
                + " ("
                + layers.lower()
                + ") no longer answers; its process died. Unmounting it");
      }
      try {
        if (detached) {
          Mounter.umountLazily(layers.lower()); // the detached overlay still reads through it
        } else {
          Mounter.umount(layers.lower());
        }
      } catch (dev.puzzlefs.fuse.UnmountException e) {
        // Gone meanwhile: the mount server's own unmount-on-exit may take it down at the same time.
        if (e.reason() != dev.puzzlefs.fuse.UnmountException.Reason.NOT_MOUNTED) {
          throw e;
        }
      }
    } else if (overlayUp) {
      err.println(
          "puzzlefs umount: the image mount under "
              + target
              + " ("
              + layers.lower()
              + ") was already gone");
    }
    if (detached) {
      err.println(
          "puzzlefs umount: the overlay on "
              + target
              + " was in use: detached; it ends when the last process using it lets go. Its"
              + " private directory "
              + layers.privateDir()
              + " stays until then (remove it afterwards)");
      return;
    }
    Overlay.deleteTree(layers.privateDir());
  }

  /** False for a FUSE mount whose process is gone (stat fails with ENOTCONN). */
  private static boolean answers(Path dir) {
    try {
      Files.readAttributes(dir, java.nio.file.attribute.BasicFileAttributes.class);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static void removeQuietly(Layers layers) {
    try {
      Overlay.deleteTree(layers.privateDir());
    } catch (IOException e) {
      log.warn("could not remove {}: {}", layers.privateDir(), e.getMessage());
    }
  }

  /** Records {@code layers} under the mount point's key; run uses it so leftovers can be found. */
  static void writeState(Layers layers) throws IOException {
    Path file = stateFile(layers.mountpoint());
    Files.createDirectories(file.getParent());
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), State.of(layers));
    Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  /** Forgets the state of {@code layers}' mount point. */
  static void forgetState(Layers layers) throws IOException {
    Files.deleteIfExists(stateFile(layers.mountpoint()));
  }

  private static Layers readState(Path mountpoint) throws IOException {
    Path file = stateFile(mountpoint);
    State s;
    try {
      s = JSON.readValue(Files.readAllBytes(file), State.class);
    } catch (IOException e) {
      throw new IOException(
          "cannot read the state of the writable mount on " + mountpoint + " (" + file + ")", e);
    }
    return s.layers();
  }

  /** The state file of a mount point: a hash of its path, so any path maps to a plain name. */
  static Path stateFile(Path mountpoint) {
    String env = System.getenv("PUZZLEFS_STATE_DIR");
    Path dir = env != null && !env.isEmpty() ? Path.of(env) : Path.of("/run/puzzlefs/writable");
    try {
      byte[] hash =
          MessageDigest.getInstance("SHA-256")
              .digest(mountpoint.toString().getBytes(StandardCharsets.UTF_8));
      return dir.resolve(HexFormat.of().formatHex(hash, 0, 16) + ".json");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }

  /** The state file's JSON shape: paths as strings, persist null when the upper is private. */
  record State(
      String mountpoint,
      String privateDir,
      String lower,
      String upper,
      String work,
      String persist) {
    static State of(Layers l) {
      return new State(
          l.mountpoint().toString(),
          l.privateDir().toString(),
          l.lower().toString(),
          l.upper().toString(),
          l.work().toString(),
          l.persist() == null ? null : l.persist().toString());
    }

    Layers layers() {
      return new Layers(
          Path.of(mountpoint),
          Path.of(privateDir),
          Path.of(lower),
          Path.of(upper),
          Path.of(work),
          persist == null ? null : Path.of(persist));
    }
  }
}
