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
 * its own, or is dropped by runc's init; the run stops the container and reports the signal instead
 * (143). Once runc has started the command, the command's status is the run's. runc here is a
 * script that acts out each phase.
 */
class StopperTest {
  @TempDir Path tmp;

  private Path ready() {
    return tmp.resolve("ready");
  }

  private Path pidFile() {
    return tmp.resolve("scratch").resolve("container.pid");
  }

  /**
   * Runs {@code script} as runc ({@code run --bundle B --pid-file F ID}, or {@code kill ID KILL})
   * through a Stopper, sends SIGTERM once the script has touched {@link #ready}, and returns the
   * run's exit status.
   */
  private int runAndTerminate(String script) throws Exception {
    Path runc = tmp.resolve("runc");
    Files.writeString(runc, "#!/bin/sh\n" + script);
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
                while (!Files.exists(ready()) && System.nanoTime() < until) {
                  Thread.onSpinWait();
                }
                stopper.deliver("TERM");
              });
      int status = stopper.run(() -> new ProcessBuilder(cmd).start());
      term.join();
      return status;
    }
  }

  /**
   * A fake runc that exits 2 on SIGTERM while "starting", and, with {@code started}, writes its own
   * pid as the container's and exits 7 on SIGTERM as the command would.
   */
  private String phases(boolean started) {
    return "trap 'exit 2' TERM\n"
        + (started ? "echo $$ > \"$5\"\ntrap 'exit 7' TERM\n" : "")
        + "touch '"
        + ready()
        + "'\n"
        + "while :; do sleep 0.05; done\n";
  }

  @Test
  void termWhileRuncStillSetsUp_exitsWith143() throws Exception {
    assertEquals(143, runAndTerminate(phases(false)));
  }

  @Test
  void termAfterTheCommandStarted_exitsWithTheCommandsStatus() throws Exception {
    assertEquals(7, runAndTerminate(phases(true)));
  }

  /**
   * runc has made the container's process but it is still runc's init (it reads the command's
   * binary from a slow registry): a SIGTERM then stops the container (runc kill) and the run exits
   * 143 at once, instead of runc's own 2 or a signal the init drops.
   */
  @Test
  void termWhileRuncsInitHasNotStartedTheCommand_killsItAndExitsWith143() throws Exception {
    Path init = tmp.resolve("runc:[2:INIT]");
    Files.createSymbolicLink(init, Path.of("/bin/sleep"));
    String script =
        "if [ \"$1\" = kill ]; then kill -9 $(cat '"
            + pidFile()
            + "'); exit 0; fi\n"
            + "trap 'exit 2' TERM\n"
            + "'"
            + init
            + "' 30 &\n"
            // As runc does, the pid file once the init is there: until the background job has
            // executed, it is a copy of this shell (comm "sh"), which would count as the command.
            + "until grep -q '^runc:' /proc/$!/comm 2>/dev/null; do sleep 0.01; done\n"
            + "echo $! > \"$5\"\n"
            + "touch '"
            + ready()
            + "'\n"
            + "wait\n";
    long start = System.nanoTime();
    assertEquals(143, runAndTerminate(script));
    assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "not stopped at once");

    long pid = Long.parseLong(Files.readString(pidFile()).trim());
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)
        && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "init survived");
  }

  /**
   * A signal before the command started runs what was registered to give up the run's waits (the
   * image's reads), once, and at once for what is registered after it; the run then reports the
   * signal without starting the command.
   */
  @Test
  void termBeforeTheCommandStarted_runsTheCancelActionsOnce() throws Exception {
    java.util.concurrent.atomic.AtomicInteger before =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger after =
        new java.util.concurrent.atomic.AtomicInteger();
    try (Stopper stopper = Stopper.detached(new RuncRuntime(Path.of("/nonexistent/runc")), 10)) {
      stopper.onCancel(before::incrementAndGet);
      assertEquals(0, before.get(), "nothing before a signal");
      stopper.deliver("TERM");
      stopper.deliver("INT");
      assertEquals(1, before.get());
      stopper.onCancel(after::incrementAndGet);
      assertEquals(1, after.get(), "registered after the signal: at once");
      assertEquals(
          143,
          stopper.run(
              () -> {
                throw new AssertionError("the command must not start");
              }));
    }
  }
}
