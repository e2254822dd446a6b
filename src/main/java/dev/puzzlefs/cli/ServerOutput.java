package dev.puzzlefs.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.UnaryOperator;

/**
 * {@code System.out} and {@code System.err} of the server, routed by thread: a request's output
 * goes to its client's files, a mount's to its log, anything else (or after its owner finished) to
 * the server's own streams.
 */
final class ServerOutput extends OutputStream {
  private static final InheritableThreadLocal<Sink> SINK = new InheritableThreadLocal<>();
  private static volatile boolean installed;

  private final OutputStream fallback;
  private final boolean err;

  ServerOutput(OutputStream fallback, boolean err) {
    this.fallback = fallback;
    this.err = err;
  }

  static synchronized void install() {
    if (!installed) {
      System.setOut(
          new PrintStream(new ServerOutput(System.out, false), true, StandardCharsets.UTF_8));
      System.setErr(
          new PrintStream(new ServerOutput(System.err, true), true, StandardCharsets.UTF_8));
      installed = true;
    }
  }

  static void attach(Sink sink) {
    SINK.set(sink);
  }

  static void detach() {
    SINK.remove();
  }

  private OutputStream target() {
    Sink s = shared(Thread.currentThread()) ? FOR_CALLER.get() : SINK.get();
    return s == null || s.closed ? fallback : err ? s.err : s.out;
  }

  /** The sink a shared thread writes to while it logs for one caller (see below). */
  private static final ThreadLocal<Sink> FOR_CALLER = new ThreadLocal<>();

  /**
   * What a registry client made on this thread (a request's or a mount's) wraps its warnings in:
   * they then go where this thread's output goes, though the client's shared threads log them.
   * Outside the server, and on a thread with no sink, the warnings are left as they are.
   */
  static UnaryOperator<Runnable> toCallerOfThisThread() {
    Sink caller = SINK.get();
    if (caller == null) {
      return UnaryOperator.identity();
    }
    return warning ->
        () -> {
          Sink before = FOR_CALLER.get();
          FOR_CALLER.set(caller);
          try {
            warning.run();
          } finally {
            if (before == null) {
              FOR_CALLER.remove();
            } else {
              FOR_CALLER.set(before);
            }
          }
        };
  }

  /**
   * True for a thread that works for every mount: those of the one Vert.x instance the server's
   * registry clients share. Whichever mount first needed one started it, so it carries that mount's
   * sink; what it writes goes to the server's own log unless it writes for one caller.
   */
  private static boolean shared(Thread t) {
    return t.getName().startsWith("vert.x-");
  }

  @Override
  public void write(int b) throws IOException {
    target().write(b);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    target().write(b, off, len);
  }

  @Override
  public void flush() throws IOException {
    target().flush();
  }

  /** Where one request's or one mount's output goes, until closed. */
  static final class Sink implements AutoCloseable {
    private final OutputStream out;
    private final OutputStream err;
    private volatile boolean closed;

    private Sink(OutputStream out, OutputStream err) {
      this.out = out;
      this.err = err;
    }

    static Sink of(OutputStream out, OutputStream err) {
      return new Sink(out, err);
    }

    OutputStream out() {
      return out;
    }

    OutputStream err() {
      return err;
    }

    @Override
    public void close() {
      closed = true;
      closeQuietly(out);
      closeQuietly(err);
    }

    private static void closeQuietly(OutputStream s) {
      try {
        s.close();
      } catch (IOException e) {
        // nothing to tell anyone
      }
    }
  }
}
