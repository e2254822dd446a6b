package dev.puzzlefs.cli;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * Takes SIGINT and SIGTERM away from the JVM while {@code run} runs a container, and passes them on
 * to the container's command, killing it if it has not exited {@code timeout} seconds later. So a
 * signal ends the command, and {@code run} still unmounts everything and exits with the command's
 * status. A signal that comes before the command started (before the runtime started, or while it
 * is still setting up the container) cancels the run: it exits with 128 plus the signal's number.
 *
 * <p>Why {@code sun.misc.Signal}: a shutdown hook cannot tell SIGINT from SIGTERM, cannot keep the
 * command's exit status, and races jnr-fuse's own hook, which unmounts the image under the overlay.
 */
final class Stopper implements AutoCloseable {
  /** Starts the container; may fail like a process start. */
  interface Starter {
    Process start() throws IOException;
  }

  private static final Logger log = LoggerFactory.getLogger(Stopper.class);
  private static final String[] SIGNALS = {"INT", "TERM"};

  private final ContainerRuntime runtime;
  private final int timeoutSeconds;
  private final Map<Signal, SignalHandler> previous = new HashMap<>();
  private Process process;
  private String cancelledBy;
  private boolean killerStarted;

  private Stopper(ContainerRuntime runtime, int timeoutSeconds) {
    this.runtime = runtime;
    this.timeoutSeconds = timeoutSeconds;
  }

  /** Installs the handlers; {@link #close()} restores the JVM's. */
  static Stopper install(ContainerRuntime runtime, int timeoutSeconds) {
    Stopper s = new Stopper(runtime, timeoutSeconds);
    for (String name : SIGNALS) {
      Signal sig = new Signal(name);
      s.previous.put(sig, Signal.handle(sig, caught -> s.deliver(caught.getName())));
    }
    return s;
  }

  /**
   * A stopper that takes no signal of this JVM's: the mount server's, whose client relays the
   * signals it gets through {@link #deliver}.
   */
  static Stopper detached(ContainerRuntime runtime, int timeoutSeconds) {
    return new Stopper(runtime, timeoutSeconds);
  }

  /** Handles SIG{@code name} ({@code INT} or {@code TERM}) as if this process had got it. */
  synchronized void deliver(String name) {
    if (!name.equals("INT") && !name.equals("TERM")) {
      log.warn("ignoring a relayed signal that is neither INT nor TERM: {}", name);
      return;
    }
    if (process == null) {
      log.debug("SIG{} before the command started: cancelling", name);
      if (cancelledBy == null) {
        cancelledBy = name;
        onCancel.forEach(Runnable::run);
      }
      return;
    }
    if (cancelledBy != null || !runtime.commandStarted(process)) {
      // The command would not see the signal (runc's init drops it before it executes the
      // command): the container is stopped instead, and the run reports the signal, not the
      // runtime's own status (runc: 1 or 2).
      log.debug("SIG{} while {} was still starting the command: cancelling", name, runtime.name());
      if (cancelledBy == null) {
        cancelledBy = name;
      }
      runtime.cancel(process, name);
    } else {
      log.debug("passing SIG{} on to the command ({})", name, runtime.name());
      runtime.signal(process, name);
    }
    if (!killerStarted) {
      killerStarted = true;
      Process p = process;
      Thread killer =
          new Thread(
              () -> {
                try {
                  if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                    log.warn(
                        "the command did not exit {} s after SIG{}; killing it",
                        timeoutSeconds,
                        name);
                    runtime.kill(p);
                  }
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              },
              "puzzlefs-run-killer");
      killer.setDaemon(true);
      killer.start();
    }
  }

  private final List<Runnable> onCancel = new java.util.ArrayList<>();

  /**
   * Runs {@code action} when a signal cancels the run before its command started (at once if one
   * has): to give up what the run waits on meanwhile, such as reads of a slow image.
   */
  synchronized void onCancel(Runnable action) {
    if (cancelledBy != null && process == null) {
      action.run();
    } else {
      onCancel.add(action);
    }
  }

  /** True once a signal came before the command started. */
  synchronized boolean cancelled() {
    return cancelledBy != null;
  }

  /** The status of a run cancelled by a signal: 128 plus its number, as a shell reports it. */
  synchronized int cancelStatus() {
    return 128 + (cancelledBy.equals("INT") ? 2 : 15);
  }

  /** Starts the command with {@code starter} and waits for it; returns its exit status. */
  int run(Starter starter) throws IOException, InterruptedException {
    Process p;
    synchronized (this) {
      if (cancelledBy != null) {
        return cancelStatus();
      }
      p = starter.start();
      process = p;
    }
    try {
      int status = p.waitFor();
      synchronized (this) {
        return cancelledBy != null ? cancelStatus() : status;
      }
    } catch (InterruptedException e) {
      runtime.kill(p);
      p.waitFor(timeoutSeconds, TimeUnit.SECONDS);
      throw e;
    } finally {
      runtime.cleanUp();
    }
  }

  @Override
  public void close() {
    previous.forEach(Signal::handle);
  }
}
