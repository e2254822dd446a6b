package dev.puzzlefs.registry;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayDeque;
import java.util.function.Supplier;

/**
 * Runs asynchronous tasks with at most {@code permits} of them in flight; later ones wait in
 * arrival order. Nothing blocks: a waiting task starts when a running one completes. Tasks are
 * started from a loop, not from each other's callbacks, so a long queue of tasks that fail at once
 * cannot overflow the stack.
 */
final class ConcurrencyLimiter {
  private final int permits;
  private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
  private int running;
  private boolean draining;

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
    synchronized (this) {
      waiting.add(start);
    }
    drain();
    return result.future();
  }

  /** How many tasks are running now. */
  synchronized int running() {
    return running;
  }

  private void release() {
    synchronized (this) {
      running--;
    }
    drain();
  }

  /** Starts waiting tasks while permits last; only one thread at a time runs this loop. */
  private void drain() {
    synchronized (this) {
      if (draining) {
        return;
      }
      draining = true;
    }
    while (true) {
      Runnable next;
      synchronized (this) {
        if (running >= permits || waiting.isEmpty()) {
          draining = false;
          return;
        }
        next = waiting.poll();
        running++;
      }
      next.run();
    }
  }
}
