package dev.puzzlefs.builder;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/** Daemon worker threads named for thread dumps. */
final class BuildThreads {
  private static final AtomicInteger COUNT = new AtomicInteger();

  static final ThreadFactory FACTORY =
      r -> {
        Thread t = new Thread(r, "puzzlefs-build-" + COUNT.incrementAndGet());
        t.setDaemon(true);
        return t;
      };

  private BuildThreads() {}
}
