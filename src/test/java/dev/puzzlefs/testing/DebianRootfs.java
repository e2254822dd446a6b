package dev.puzzlefs.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Real Debian root filesystems made by {@code debootstrap --variant=minbase bookworm}, once, and
 * kept between runs under {@code $PUZZLEFS_TEST_ROOTFS} (default {@code
 * /var/tmp/puzzlefs-test/bookworm}): the plain minbase tree, and the same with a few packages added
 * (beside it, with {@code -plus} appended to its name). Making them needs root and Debian's mirror.
 */
public final class DebianRootfs {
  /** The packages the larger tree adds to minbase. */
  public static final List<String> EXTRA_PACKAGES = List.of("python3", "curl");

  private static Path minbase;
  private static Path plus;

  private DebianRootfs() {}

  /** The minbase root filesystem directory, made on first use. */
  public static synchronized Path get() throws IOException, InterruptedException {
    if (minbase == null) {
      minbase = make(base(), List.of());
    }
    return minbase;
  }

  /** Minbase plus {@link #EXTRA_PACKAGES}, made on first use. */
  public static synchronized Path withPackages() throws IOException, InterruptedException {
    if (plus == null) {
      Path dir = base();
      plus = make(dir.resolveSibling(dir.getFileName() + "-plus"), EXTRA_PACKAGES);
    }
    return plus;
  }

  private static Path base() {
    String env = System.getenv("PUZZLEFS_TEST_ROOTFS");
    return Path.of(env != null && !env.isEmpty() ? env : "/var/tmp/puzzlefs-test/bookworm");
  }

  private static Path make(Path dir, List<String> packages)
      throws IOException, InterruptedException {
    if (!Files.isDirectory(dir.resolve("usr/bin"))) {
      Path tmp = dir.resolveSibling(dir.getFileName() + ".tmp");
      Processes.run(TimeUnit.MINUTES.toSeconds(20), "rm", "-rf", tmp.toString());
      Files.createDirectories(tmp.getParent());
      List<String> cmd = new ArrayList<>(List.of("debootstrap", "--variant=minbase"));
      if (!packages.isEmpty()) {
        cmd.add("--include=" + String.join(",", packages));
      }
      cmd.add("bookworm");
      cmd.add(tmp.toString());
      Processes.run(TimeUnit.MINUTES.toSeconds(20), cmd.toArray(String[]::new));
      Files.move(tmp, dir);
    }
    return dir;
  }
}
