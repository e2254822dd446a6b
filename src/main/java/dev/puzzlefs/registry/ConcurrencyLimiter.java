package dev.puzzlefs.registry;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayDeque;
import java.util.function.Supplier;

/**
 * Runs asynchronous tasks with at most {@code permits} of them in flight; later ones wait in
 * arrival order. Nothing blocks: a waiting task starts when a running one completes.
 */
final class ConcurrencyLimiter {
  private final int permits;
  private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
  private int running;

  ConcurrencyLimiter(int permits) {
    if (permits < 1) {
      throw new IllegalArgumentException("permits must be at least 1, got " + permits);
    }
    this.permits = permits;
  }

  /** Starts {@code task} now or when a permit frees up; completes as the task's future does. */
  <T> Future<T> run(Supplier<Future<T>> task) {
    Promise<T> result = Promise.promise();
    Runnable start =
        () -> {
          Future<T> started;
          try {
            started = task.get();
          } catch (RuntimeException e) {
            started = Future.failedFuture(e);
          }
          started.onComplete(
              ar -> {
                release();
                result.handle(ar);
              });
        };
    boolean startNow;
    synchronized (this) {
      startNow = running < permits;
      if (startNow) {
        running++;
      } else {
        waiting.add(start);
      }
    }
    if (startNow) {
      start.run();
    }
    return result.future();
  }

  /** How many tasks are running now. */
  synchronized int running() {
    return running;
  }

  private void release() {
    Runnable next;
    synchronized (this) {
      next = waiting.poll();
      if (next == null) {
        running--;
      }
    }
    if (next != null) {
      next.run();
    }
  }
}
