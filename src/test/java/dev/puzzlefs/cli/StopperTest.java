package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A SIGTERM that reaches runc while it still sets the container up makes runc exit with a status of
 * its own; the run reports the signal instead (143). Once runc has started the command, the
 * command's status is the run's. runc here is a script that acts out both phases.
 */
class StopperTest {
  @TempDir Path tmp;

  /**
   * Runs the fake runc through a Stopper, sends it SIGTERM once it is up, and returns the run's
   * exit status; with {@code started} the fake writes the pid file first, as runc does once it has
   * made the container's process.
   */
  private int runAndTerminate(boolean started) throws Exception {
    Path runc = tmp.resolve("runc");
    Path ready = tmp.resolve("ready");
    // runc run --bundle B --pid-file F ID: exits 2 on SIGTERM while "starting", and as a command
    // that exits 7 on SIGTERM once the pid file is written.
    Files.writeString(
        runc,
        "#!/bin/sh\n"
            + "trap 'exit 2' TERM\n"
            + (started ? "echo $$ > \"$5\"\ntrap 'exit 7' TERM\n" : "")
            + "touch '"
            + ready
            + "'\n"
            + "while :; do sleep 0.05; done\n");
    Files.setPosixFilePermissions(runc, PosixFilePermissions.fromString("rwx------"));
    RuncRuntime runtime = new RuncRuntime(runc);
    ContainerSpec spec =
        new ContainerSpec(
            Files.createDirectory(tmp.resolve("rootfs")),
            List.of("/bin/true"),
            List.of(ContainerSpec.DEFAULT_PATH),
            "/",
            ContainerSpec.HOSTNAME);
    List<String> cmd = runtime.command(spec, Files.createDirectory(tmp.resolve("scratch")));

    try (Stopper stopper = Stopper.detached(runtime, 10)) {
      CompletableFuture<Void> term =
          CompletableFuture.runAsync(
              () -> {
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!Files.exists(ready) && System.nanoTime() < until) {
                  Thread.onSpinWait();
                }
                stopper.deliver("TERM");
              });
      int status = stopper.run(() -> new ProcessBuilder(cmd).start());
      term.join();
      return status;
    }
  }

  @Test
  void termWhileRuncStillSetsUp_exitsWith143() throws Exception {
    assertEquals(143, runAndTerminate(false));
  }

  @Test
  void termAfterTheCommandStarted_exitsWithTheCommandsStatus() throws Exception {
    assertEquals(7, runAndTerminate(true));
  }

  /**
   * runc has made the container's process but it is still runc's init (it reads the command's
   * binary from a slow registry): a SIGTERM then stops the container (runc kill) and the run exits
   * 143, instead of runc's own 2 or a signal the init drops.
   */
  @Test
  void termWhileRuncsInitHasNotStartedTheCommand_killsItAndExitsWith143() throws Exception {
    Path runc = tmp.resolve("runc");
    Path ready = tmp.resolve("ready");
    Path scratch = Files.createDirectory(tmp.resolve("scratch"));
    Path pidFile = scratch.resolve("container.pid");
    Path init = tmp.resolve("runc:[2:INIT]");
    Files.createSymbolicLink(init, Path.of("/bin/sleep"));
    Files.writeString(
        runc,
        "#!/bin/sh\n"
            + "if [ \"$1\" = kill ]; then kill -9 $(cat '"
            + pidFile
            + "'); exit 0; fi\n"
            + "trap 'exit 2' TERM\n"
            + "'"
            + init
            + "' 30 &\n"
            + "echo $! > \"$5\"\n"
            + "touch '"
            + ready
            + "'\n"
            + "wait\n");
    Files.setPosixFilePermissions(runc, PosixFilePermissions.fromString("rwx------"));
    RuncRuntime runtime = new RuncRuntime(runc);
    ContainerSpec spec =
        new ContainerSpec(
            Files.createDirectory(tmp.resolve("rootfs")),
            List.of("/bin/true"),
            List.of(ContainerSpec.DEFAULT_PATH),
            "/",
            ContainerSpec.HOSTNAME);
    List<String> cmd = runtime.command(spec, scratch);

    try (Stopper stopper = Stopper.detached(runtime, 10)) {
      CompletableFuture<Void> term =
          CompletableFuture.runAsync(
              () -> {
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!Files.exists(ready) && System.nanoTime() < until) {
                  Thread.onSpinWait();
                }
                stopper.deliver("TERM");
              });
      long start = System.nanoTime();
      assertEquals(143, stopper.run(() -> new ProcessBuilder(cmd).start()));
      term.join();
      assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "not stopped at once");
    }
    long pid = Long.parseLong(Files.readString(pidFile).trim());
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)
        && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "init survived");
  }
}
