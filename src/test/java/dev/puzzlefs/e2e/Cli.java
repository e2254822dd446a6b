package dev.puzzlefs.e2e;

import dev.puzzlefs.testing.Processes;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs {@code puzzlefs} as a user would: a separate JVM on the test class path, so background
 * mounts, exit codes and messages are the real ones.
 */
final class Cli {
  private Cli() {}

  static Processes.Result run(String... args) throws IOException, InterruptedException {
    return Processes.exec(300, null, command(args).toArray(String[]::new));
  }

  /** The command line that runs {@code puzzlefs args} in a JVM on the test class path. */
  static List<String> command(String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("--add-opens");
    cmd.add("java.base/sun.nio.fs=ALL-UNNAMED");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add("dev.puzzlefs.cli.Main");
    cmd.addAll(List.of(args));
    return cmd;
  }

  /** Runs and fails with the command's output unless it exits 0. */
  static Processes.Result ok(String... args) throws IOException, InterruptedException {
    Processes.Result r = run(args);
    if (r.exit() != 0) {
      throw new AssertionError(
          "puzzlefs "
              + String.join(" ", args)
              + " exited "
              + r.exit()
              + ":\n"
              + r.stderr()
              + r.out());
    }
    return r;
  }

  /** Unmounts, ignoring "not mounted". */
  static void unmountQuietly(Path mnt) {
    try {
      Processes.exec(30, null, "fusermount", "-u", "-z", mnt.toString());
    } catch (IOException | InterruptedException e) {
      // best effort in cleanup
    }
  }
}
