package dev.puzzlefs.cli;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The mount server's full collection when it has no mount left: it hands the heap the mounts grew
 * back to the system, but only once the server has stayed without a mount for {@link #IDLE_MILLIS}:
 * not while the last mount's request waits for its answer (a full collection stops every thread for
 * tens of milliseconds), and not when the next mount is already under way.
 */
final class IdleCollection {
  static final long IDLE_MILLIS = 1000;

  private final AtomicInteger mounts = new AtomicInteger();
  private final AtomicLong started = new AtomicLong();

  /** A mount starts. */
  void mountStarted() {
    mounts.incrementAndGet();
    started.incrementAndGet();
  }

  /** A mount ended; the last one schedules the collection. */
  void mountEnded() {
    if (mounts.decrementAndGet() != 0) {
      return;
    }
    long seen = started.get();
    Thread t =
        new Thread(
            () -> {
              try {
                Thread.sleep(IDLE_MILLIS);
              } catch (InterruptedException e) {
                return;
              }
              if (mounts.get() == 0 && started.get() == seen) {
                System.gc();
              }
            },
            "puzzlefs-idle-gc");
    t.setDaemon(true);
    t.start();
  }
}
