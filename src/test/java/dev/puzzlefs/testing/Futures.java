package dev.puzzlefs.testing;

import io.vertx.core.Future;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Waiting on futures in tests, with a bound so a hung test fails instead of hanging. */
public final class Futures {
  private static final long WAIT_SECONDS = 60;

  private Futures() {}

  /** The value of {@code future}; its failure is rethrown as is. */
  public static <T> T await(Future<T> future) throws Exception {
    return await(future.toCompletionStage().toCompletableFuture());
  }

  /** The value of {@code future}; its failure is rethrown as is. */
  public static <T> T await(CompletableFuture<T> future) throws Exception {
    try {
      return future.get(WAIT_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof Exception) {
        throw (Exception) cause;
      }
      throw e;
    } catch (TimeoutException e) {
      throw new AssertionError("future did not complete within " + WAIT_SECONDS + " s", e);
    }
  }

  /** The failure of {@code future}; an AssertionError if it succeeds. */
  public static Throwable failure(Future<?> future) {
    return failure(future.toCompletionStage().toCompletableFuture());
  }

  /** The failure of {@code future}; an AssertionError if it succeeds. */
  public static Throwable failure(CompletableFuture<?> future) {
    try {
      Object value = future.get(WAIT_SECONDS, TimeUnit.SECONDS);
      throw new AssertionError("expected a failure but got " + value);
    } catch (ExecutionException e) {
      return e.getCause();
    } catch (TimeoutException e) {
      throw new AssertionError("future did not complete within " + WAIT_SECONDS + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}
