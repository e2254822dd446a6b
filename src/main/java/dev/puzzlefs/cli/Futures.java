package dev.puzzlefs.cli;

import io.vertx.core.Future;
import java.io.IOException;
import java.util.concurrent.ExecutionException;

/** Waits for Vert.x futures from the command thread (never from an event loop). */
final class Futures {
  private Futures() {}

  /** The future's value; its failure rethrown as is when it is an IOException. */
  static <T> T await(Future<T> future, String what) throws IOException, InterruptedException {
    return await(future.toCompletionStage().toCompletableFuture(), what);
  }

  /** The future's value; its failure rethrown as is when it is an IOException. */
  static <T> T await(java.util.concurrent.CompletableFuture<T> future, String what)
      throws IOException, InterruptedException {
    try {
      return future.get();
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      if (cause instanceof RuntimeException re) {
        throw re;
      }
      throw new IOException(what + " failed: " + cause, cause);
    }
  }
}
