package dev.puzzlefs.cli;

import java.util.HashMap;
import java.util.Map;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGINT and SIGTERM taken from the JVM while a command that writes files runs (build, extract): a
 * signal is recorded and interrupts the working thread, which stops at its next step, removes what
 * it left unfinished and says so. Left to the JVM, the process would exit under its writer threads,
 * with their files half-written.
 */
final class SignalStop implements AutoCloseable {
  private final Map<Signal, SignalHandler> previous = new HashMap<>();
  private volatile Signal caught;

  private SignalStop() {}

  /** Takes the signals until {@link #close}; one that comes interrupts {@code worker}. */
  static SignalStop install(Thread worker) {
    SignalStop s = new SignalStop();
    for (String name : new String[] {"INT", "TERM"}) {
      Signal sig = new Signal(name);
      s.previous.put(
          sig,
          Signal.handle(
              sig,
              got -> {
                s.caught = got;
                worker.interrupt(); // out of a wait, too
              }));
    }
    return s;
  }

  /** The signal that came, or null. */
  Signal caught() {
    return caught;
  }

  /** For progress callbacks: throws {@link Stopped} once a signal came. */
  void check() {
    if (caught != null) {
      throw new Stopped();
    }
  }

  /**
   * Gives the signals back to the JVM, and clears the interrupt a signal that came after the work
   * left on this (the working) thread.
   */
  @Override
  public void close() {
    previous.forEach(Signal::handle);
    Thread.interrupted();
  }

  /** Thrown by {@link #check} once a signal came: the command stops at its next step. */
  static final class Stopped extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Stopped() {
      super("stopped by a signal", null, false, false);
    }
  }
}
