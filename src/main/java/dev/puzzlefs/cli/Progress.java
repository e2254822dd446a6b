package dev.puzzlefs.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Progress of a long command on stderr: a line redrawn in place (carriage return) when stderr is a
 * terminal, a plain line at the start and then every few seconds when it is not (a log, a pipe),
 * nothing when quiet. Each shows items, bytes, the rate and the time left; {@link #finish} ends
 * with a one-line summary. Standard output is never touched: it is for machine output.
 */
final class Progress implements AutoCloseable {
  /** How progress is shown. */
  enum Mode {
    /** A line redrawn in place. */
    TERMINAL,
    /** Plain lines every {@link #plainInterval()}. */
    PLAIN,
    /** Nothing but the errors. */
    QUIET
  }

  /** Overrides the seconds between plain progress lines (default 5). */
  static final String INTERVAL_ENV = "PUZZLEFS_PROGRESS_INTERVAL";

  private static final Duration TERMINAL_INTERVAL = Duration.ofMillis(250);

  private final String verb;
  private final String items;
  private final Mode mode;
  private final PrintStream err;
  private final long startNanos = System.nanoTime();
  private final AtomicLong doneItems = new AtomicLong();
  private final AtomicLong doneBytes = new AtomicLong();
  private volatile long totalItems = -1;
  private volatile long totalBytes = -1;
  private Thread ticker;
  private int lastWidth;

  /**
   * Progress of {@code verb} ("build"), counting {@code items} ("files"), shown as {@code mode}.
   */
  Progress(String verb, String items, Mode mode, PrintStream err) {
    this.verb = verb;
    this.items = items;
    this.mode = mode;
    this.err = err;
  }

  /** The mode for this process: quiet if asked, else by whether stderr is a terminal. */
  static Mode mode(boolean quiet) {
    if (quiet) {
      return Mode.QUIET;
    }
    return stderrIsTerminal() ? Mode.TERMINAL : Mode.PLAIN;
  }

  /** True when file descriptor 2 is a terminal (Linux: a tty or pseudo-terminal device). */
  static boolean stderrIsTerminal() {
    try {
      String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
      return target.startsWith("/dev/pts/")
          || target.startsWith("/dev/tty")
          || target.equals("/dev/console");
    } catch (IOException | UnsupportedOperationException e) {
      return System.console() != null;
    }
  }

  static Duration plainInterval() {
    String s = System.getenv(INTERVAL_ENV);
    if (s != null) {
      try {
        return Duration.ofMillis((long) (Double.parseDouble(s) * 1000));
      } catch (NumberFormatException e) {
        // the default below
      }
    }
    return Duration.ofSeconds(5);
  }

  /** The work ahead is known: shows the first line and starts the periodic ones. */
  synchronized void total(long items, long bytes) {
    totalItems = items;
    totalBytes = bytes;
    if (mode == Mode.QUIET || ticker != null) {
      return;
    }
    show();
    Duration every = mode == Mode.TERMINAL ? TERMINAL_INTERVAL : plainInterval();
    ticker =
        new Thread(
            () -> {
              try {
                while (!Thread.currentThread().isInterrupted()) {
                  Thread.sleep(Math.max(10, every.toMillis()));
                  show();
                }
              } catch (InterruptedException e) {
                // finished
              }
            },
            "puzzlefs-progress");
    ticker.setDaemon(true);
    ticker.start();
  }

  /** {@code items} more items and {@code bytes} more bytes are done; any thread. */
  void add(long items, long bytes) {
    doneItems.addAndGet(items);
    doneBytes.addAndGet(bytes);
  }

  /** Stops the progress lines and prints {@code summary} (unless quiet). */
  void finish(String summary) {
    close();
    if (mode != Mode.QUIET) {
      err.println(summary);
      err.flush();
    }
  }

  /** Stops the progress lines and clears the terminal line; prints nothing else. */
  @Override
  public synchronized void close() {
    if (ticker != null) {
      ticker.interrupt();
      try {
        ticker.join(1000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      ticker = null;
    }
    if (mode == Mode.TERMINAL && lastWidth > 0) {
      err.print("\r" + " ".repeat(lastWidth) + "\r");
      err.flush();
      lastWidth = 0;
    }
  }

  /** Seconds since this progress started. */
  double seconds() {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  private synchronized void show() {
    String line = line();
    if (mode == Mode.TERMINAL) {
      String pad = line.length() < lastWidth ? " ".repeat(lastWidth - line.length()) : "";
      err.print("\r" + line + pad);
      lastWidth = line.length();
    } else {
      err.println(line);
    }
    err.flush();
  }

  /** {@code build: 120/3000 files, 1.2/40.0 MiB, 12.3 MiB/s, 3s left}. */
  String line() {
    long doneI = doneItems.get();
    long doneB = doneBytes.get();
    double secs = Math.max(seconds(), 1e-3);
    double rate = doneB / secs;
    StringBuilder b = new StringBuilder(verb).append(": ");
    b.append(doneI).append(totalItems >= 0 ? "/" + totalItems : "").append(' ').append(items);
    b.append(", ").append(bytes(doneB));
    if (totalBytes >= 0) {
      b.append('/').append(bytes(totalBytes));
    }
    b.append(", ").append(bytes((long) rate)).append("/s");
    if (totalBytes > 0 && doneB > 0 && doneB < totalBytes) {
      b.append(", ").append(duration((totalBytes - doneB) / rate)).append(" left");
    }
    return b.toString();
  }

  /** Bytes for a person: {@code 512 B}, {@code 1.5 KiB}, {@code 3.2 GiB}. */
  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = n;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }

  static String duration(double seconds) {
    long s = Math.round(seconds);
    if (s < 60) {
      return s + "s";
    }
    if (s < 3600) {
      return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
    }
    return String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60);
  }
}
