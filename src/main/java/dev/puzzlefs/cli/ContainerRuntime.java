package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs a {@link ContainerSpec} in namespaces of its own (mount, PID, UTS, IPC) with standard input,
 * output and error passed through: with {@code runc} where it is installed, else with {@code
 * unshare} and a chroot ({@link UnshareRuntime}).
 *
 * <p>The command is PID 1 of its PID namespace, as in a container without an init process: a signal
 * it has no handler for is ignored there, so whoever stops it sends SIGKILL after a grace period.
 */
sealed interface ContainerRuntime permits RuncRuntime, UnshareRuntime {
  /**
   * The environment variable that picks the runtime: {@code auto}, {@code runc} or {@code unshare}.
   */
  String ENV = "PUZZLEFS_RUNTIME";

  /** The runtime's name for messages: {@code runc} or {@code unshare}. */
  String name();

  /**
   * The command line that runs {@code spec} in the foreground with this process's standard input,
   * output and error, after writing whatever the runtime needs under {@code scratch}.
   */
  List<String> command(ContainerSpec spec, Path scratch) throws IOException;

  /**
   * Starts {@code spec} ({@link #command}) with standard input, output and error passed through.
   */
  default Process start(ContainerSpec spec, Path scratch) throws IOException {
    return new ProcessBuilder(command(spec, scratch)).inheritIO().start();
  }

  /**
   * False while the runtime is still setting the container up and has not started the command: a
   * signal then stops the runtime itself, whose exit status is not the command's.
   */
  default boolean commandStarted(Process started) {
    return true;
  }

  /**
   * Stops a container whose command has not started ({@link #commandStarted} false) after {@code
   * signal} came: by default the signal is delivered as to a started command.
   */
  default void cancel(Process started, String signal) {
    signal(started, signal);
  }

  /** Delivers {@code signal} ({@code INT}, {@code TERM}) to the container's command. */
  void signal(Process started, String signal);

  /** Kills the container's command and with it everything in its PID namespace. */
  void kill(Process started);

  /**
   * What a mount server's client needs, besides the process it started, to stop the container
   * should the server die during the run (see {@link ServerClient#leaveRemains}): none by default.
   */
  default Map<String, String> stopHints() {
    return Map.of();
  }

  /** Removes what the runtime keeps for the container once it has exited. */
  void cleanUp();

  /**
   * The runtime {@code wanted} names ({@code auto}, {@code runc}, {@code unshare}); for {@code
   * auto}, runc when it is installed, else unshare.
   *
   * @throws IOException when the runtime asked for is not installed, or the name is unknown
   */
  static ContainerRuntime choose(String wanted) throws IOException {
    Path runc = find("runc");
    switch (wanted) {
      case "auto":
        return runc != null ? new RuncRuntime(runc) : UnshareRuntime.create();
      case "runc":
        if (runc == null) {
          throw new IOException("runc is not installed (apt-get install runc), or use unshare");
        }
        return new RuncRuntime(runc);
      case "unshare":
        return UnshareRuntime.create();
      default:
        throw new IOException("unknown runtime '" + wanted + "': auto, runc or unshare");
    }
  }

  /** {@code name} on the PATH or in the sbin directories a non-root PATH lacks; null if absent. */
  static Path find(String name) {
    List<String> dirs = new ArrayList<>();
    String path = System.getenv("PATH");
    if (path != null) {
      dirs.addAll(List.of(path.split(":")));
    }
    dirs.addAll(List.of("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"));
    for (String d : dirs) {
      if (!d.isEmpty()) {
        Path p = Path.of(d, name);
        if (Files.isExecutable(p)) {
          return p;
        }
      }
    }
    return null;
  }

  /** Sends {@code signal} to {@code pid} with kill(1): Java itself can send only TERM and KILL. */
  static void kill(long pid, String signal) {
    try {
      Process p =
          new ProcessBuilder("kill", "-s", signal, Long.toString(pid))
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      p.waitFor();
    } catch (IOException e) {
      // the process is gone, or kill(1) is missing: nothing to deliver the signal with
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
