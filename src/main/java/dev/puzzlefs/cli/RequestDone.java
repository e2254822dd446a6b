package dev.puzzlefs.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The end of a mount server request: once the client has shown {@code out} and {@code err} it
 * writes {@code done} on the request's {@code events} FIFO, and the server may remove the request.
 * A client killed before that says nothing; a watchdog notices it is gone.
 */
final class RequestDone {
  private RequestDone() {}

  /**
   * How long a request stays after its answer for the client to read {@code out} and {@code err}.
   */
  static final Duration WAIT = Duration.ofSeconds(30);

  private static final java.util.concurrent.ScheduledExecutorService WATCHDOG =
      java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "puzzlefs-server-watchdog");
            t.setDaemon(true);
            return t;
          });

  /**
   * Waits until the client (process {@code pid}) writes {@code done} on its events FIFO, exits, or
   * {@link #WAIT} passes.
   */
  static void await(FileChannel events, long pid) {
    long deadline = System.nanoTime() + WAIT.toNanos();
    java.util.concurrent.ScheduledFuture<?> watch =
        WATCHDOG.scheduleWithFixedDelay(
            () -> {
              boolean alive = ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
              if (!alive || System.nanoTime() > deadline) {
                closeQuietly(events);
              }
            },
            50,
            50,
            TimeUnit.MILLISECONDS);
    try {
      InputStream in = java.nio.channels.Channels.newInputStream(events);
      StringBuilder line = new StringBuilder();
      int b;
      while ((b = in.read()) >= 0) {
        if (b != '\n') {
          line.append((char) b);
        } else if (line.toString().equals("done")) {
          return;
        } else {
          line.setLength(0); // a late signal: the command is gone already
        }
      }
    } catch (IOException e) {
      // closed by the watchdog: the client is gone, or took too long
    } finally {
      watch.cancel(false);
      closeQuietly(events);
    }
  }

  /** The request's events FIFO, opened for reading and writing (never blocks); null if gone. */
  static FileChannel openEvents(Path req) {
    try {
      return FileChannel.open(
          req.resolve("events"), StandardOpenOption.READ, StandardOpenOption.WRITE);
    } catch (IOException e) {
      return null;
    }
  }

  private static void closeQuietly(FileChannel c) {
    try {
      c.close();
    } catch (IOException ignored) {
      // closing is all that is left to do
    }
  }
}
