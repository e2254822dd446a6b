package dev.puzzlefs.cache;

import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * A few threads for a local image's file reads, and one more for each of them that hangs.
 *
 * <p>Why: a read of a blob on storage that stops answering (a stuck NFS server, a FUSE file system
 * that no longer answers) holds its thread in the kernel, and nothing gets it back. With a fixed
 * pool, a handful of such blobs took every thread, and reads of healthy chunks then queued until
 * they timed out (break-it pass 13). Here a task that has run for longer than {@code stuckNanos}
 * counts as hung: while some are, the pool may run that many threads more (up to {@code
 * maxThreads}), so the other reads go on; once a hung task ends, the extra thread ends too.
 *
 * <p>The cost on the read path is two clock reads per task and a look at each thread's task (as
 * many as there are threads) per submission.
 */
public final class HangTolerantExecutor implements Executor {
  private final ThreadPoolExecutor pool;
  private final int threads;
  private final int maxThreads;
  private final long stuckNanos;

  /** The pool's threads, each with the start time of its task. */
  private final CopyOnWriteArrayList<Worker> workers = new CopyOnWriteArrayList<>();

  /** A pool thread, with the start time of the task it runs (0: none). */
  private static final class Worker extends Thread {
    volatile long taskStart;

    Worker(Runnable body, String name) {
      super(body, name);
      setDaemon(true);
    }
  }

  /**
   * Runs tasks on {@code threads} daemon threads named {@code name}, and on up to {@code
   * maxThreads} while tasks have run for longer than {@code stuckNanos}.
   */
  public HangTolerantExecutor(int threads, int maxThreads, long stuckNanos, String name) {
    if (threads < 1 || maxThreads < threads || stuckNanos <= 0) {
      throw new IllegalArgumentException(
          "threads " + threads + ", max " + maxThreads + ", stuck after " + stuckNanos + " ns");
    }
    this.threads = threads;
    this.maxThreads = maxThreads;
    this.stuckNanos = stuckNanos;
    this.pool =
        new ThreadPoolExecutor(
            threads,
            maxThreads,
            1,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            body -> {
              Worker w =
                  new Worker(
                      () -> {
                        try {
                          body.run();
                        } finally {
                          workers.remove((Worker) Thread.currentThread());
                        }
                      },
                      name);
              workers.add(w);
              return w;
            });
  }

  @Override
  public void execute(Runnable task) {
    fit();
    pool.execute(
        () -> {
          Worker self = (Worker) Thread.currentThread();
          long start = System.nanoTime();
          self.taskStart = start;
          try {
            task.run();
          } finally {
            self.taskStart = 0;
            if (System.nanoTime() - start > stuckNanos) {
              fit(); // this one had hung: its extra thread may go
            }
          }
        });
  }

  /** Sizes the pool to its threads plus one per hung task. */
  private void fit() {
    if (wanted() == pool.getCorePoolSize()) {
      return; // the usual case, without a lock
    }
    synchronized (pool) {
      // Counted again under the lock, so the last of several tasks ending at once sets the size.
      int want = wanted();
      if (want != pool.getCorePoolSize()) {
        // A smaller core lets the threads above it end once idle; a larger one starts threads for
        // the tasks queued behind the hung ones.
        pool.setCorePoolSize(want);
      }
    }
  }

  /** The threads, plus one per task that has run for longer than {@code stuckNanos}. */
  private int wanted() {
    long now = System.nanoTime();
    int hung = 0;
    for (Worker w : workers) {
      long start = w.taskStart;
      if (start != 0 && now - start > stuckNanos) {
        hung++;
      }
    }
    return Math.min(maxThreads, threads + hung);
  }

  /** How many threads run now, idle or not. */
  public int poolSize() {
    return pool.getPoolSize();
  }

  /** Stops taking tasks and interrupts the running ones. */
  public void shutdownNow() {
    pool.shutdownNow();
  }
}
