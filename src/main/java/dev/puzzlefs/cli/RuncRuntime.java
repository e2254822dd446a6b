package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a container with {@code runc run} in the foreground, from a bundle whose {@code config.json}
 * ({@link RuntimeConfig}) names the mount as its root. runc forwards the signals it gets to the
 * container's command, and removes the container when it exits.
 */
final class RuncRuntime implements ContainerRuntime {
  private static final Logger log = LoggerFactory.getLogger(RuncRuntime.class);

  private final Path runc;
  private final String id = "puzzlefs-" + UUID.randomUUID().toString().substring(0, 12);
  private volatile Path pidFile;

  RuncRuntime(Path runc) {
    this.runc = runc;
  }

  @Override
  public String name() {
    return "runc";
  }

  @Override
  public List<String> command(ContainerSpec spec, Path scratch) throws IOException {
    Path bundle = scratch.resolve("bundle");
    RuntimeConfig.write(bundle, spec, spec.rootfs().toAbsolutePath().toString());
    pidFile = scratch.resolve("container.pid");
    List<String> cmd =
        List.of(
            runc.toString(),
            "run",
            "--bundle",
            bundle.toString(),
            "--pid-file",
            pidFile.toString(),
            id);
    log.debug("running {} with {}", spec.args(), String.join(" ", cmd));
    return cmd;
  }

  @Override
  public void signal(Process started, String signal) {
    // runc run proxies every signal it receives to the container's process.
    ContainerRuntime.kill(started.pid(), signal);
  }

  /**
   * True once the container's process runs the command: runc has written its pid file, and the
   * process is no longer runc's own init (named {@code runc:[2:INIT]} until it executes the
   * command, which may take a while when the command's binary comes from a slow registry). A
   * process already gone ran as far as it could: its status is real.
   */
  @Override
  public boolean commandStarted(Process started) {
    Path written = pidFile;
    if (written == null) {
      return true;
    }
    String pid;
    try {
      pid = java.nio.file.Files.readString(written).trim();
    } catch (java.nio.file.NoSuchFileException e) {
      return false;
    } catch (IOException e) {
      return true;
    }
    if (!pid.matches("[0-9]+")) {
      return false; // being written
    }
    try {
      return !java.nio.file.Files.readString(Path.of("/proc", pid, "comm")).startsWith("runc:");
    } catch (IOException e) {
      return true;
    }
  }

  /**
   * Stops a container whose command has not started: kills its process once runc has made it, and
   * passes the signal to runc itself, which stops setting the container up.
   */
  @Override
  public void cancel(Process started, String signal) {
    if (pidFile != null && java.nio.file.Files.exists(pidFile, LinkOption.NOFOLLOW_LINKS)) {
      run(List.of(runc.toString(), "kill", id, "KILL"));
    }
    ContainerRuntime.kill(started.pid(), signal);
  }

  @Override
  public void kill(Process started) {
    run(List.of(runc.toString(), "kill", id, "KILL"));
  }

  /** The runc binary and the container id, for {@code runc kill} and {@code runc delete}. */
  @Override
  public Map<String, String> stopHints() {
    return Map.of("runc", runc.toString(), "container", id);
  }

  @Override
  public void cleanUp() {
    // runc run removes its container when the command exits: then its state directory is gone, and
    // a runc delete would only cost the user another process start.
    if (!hasState()) {
      log.debug("container {} already removed by runc", id);
      return;
    }
    run(List.of(runc.toString(), "delete", "--force", id));
  }

  /** True if runc may still keep state for this container (its default roots, root or not). */
  private boolean hasState() {
    String xdg = Caller.env("XDG_RUNTIME_DIR");
    return java.nio.file.Files.exists(Path.of("/run/runc", id), LinkOption.NOFOLLOW_LINKS)
        || (xdg != null
            && !xdg.isEmpty()
            && java.nio.file.Files.exists(Path.of(xdg, "runc", id), LinkOption.NOFOLLOW_LINKS));
  }

  private static void run(List<String> cmd) {
    try {
      Process p =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      p.waitFor();
    } catch (IOException e) {
      log.debug("{} failed: {}", String.join(" ", cmd), e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
