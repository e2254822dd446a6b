package dev.puzzlefs.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A real Debian root filesystem ({@code debootstrap --variant=minbase bookworm}), made once and
 * kept between runs under {@code $PUZZLEFS_TEST_ROOTFS} (default {@code
 * /var/tmp/puzzlefs-test/bookworm}). Making it needs root and Debian's mirror.
 */
public final class DebianRootfs {
  private static Path cached;

  private DebianRootfs() {}

  /** The root filesystem directory, made on first use. */
  public static synchronized Path get() throws IOException, InterruptedException {
    if (cached != null) {
      return cached;
    }
    String env = System.getenv("PUZZLEFS_TEST_ROOTFS");
    Path dir = Path.of(env != null && !env.isEmpty() ? env : "/var/tmp/puzzlefs-test/bookworm");
    if (!Files.isDirectory(dir.resolve("usr/bin"))) {
      Path tmp = dir.resolveSibling(dir.getFileName() + ".tmp");
      Processes.run(TimeUnit.MINUTES.toSeconds(20), "rm", "-rf", tmp.toString());
      Files.createDirectories(tmp.getParent());
      Processes.run(
          TimeUnit.MINUTES.toSeconds(20),
          "debootstrap",
          "--variant=minbase",
          "bookworm",
          tmp.toString());
      Files.move(tmp, dir);
    }
    cached = dir;
    return dir;
  }
}
