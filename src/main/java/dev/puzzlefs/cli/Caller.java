package dev.puzzlefs.cli;

import java.nio.file.Path;
import java.util.Map;

/**
 * Whoever asked for the command running on this thread: its working directory, which relative paths
 * mean, and its environment. A JVM has one of each, so the mount server ({@link Server}), which
 * runs commands for clients in other directories and shells, sets each request's here; the command
 * line's paths go through {@link #path}. Threads a request starts inherit it. Outside the server it
 * is this process, as usual.
 */
final class Caller {
  private record Context(Path directory, Map<String, String> env) {}

  private static final InheritableThreadLocal<Context> CURRENT = new InheritableThreadLocal<>();

  private Caller() {}

  /** {@code text} as a path: against the caller's directory when relative inside the server. */
  static Path path(String text) {
    if (text.isEmpty()) {
      // Path.of("") is the current directory: a file option given "" would name a directory.
      throw new picocli.CommandLine.TypeConversionException("an empty path");
    }
    Path p = Path.of(text);
    Context c = CURRENT.get();
    return c == null || p.isAbsolute() ? p : c.directory().resolve(p);
  }

  /** The caller's value of the environment variable {@code name}, or null. */
  static String env(String name) {
    Context c = CURRENT.get();
    return c == null ? System.getenv(name) : c.env().get(name);
  }

  /** This thread (and the threads it starts) now work for a client in {@code directory}. */
  static void set(Path directory, Map<String, String> env) {
    if (!directory.isAbsolute()) {
      throw new IllegalArgumentException("not an absolute directory: " + directory);
    }
    CURRENT.set(new Context(directory, Map.copyOf(env)));
  }

  /** This thread works for this process again. */
  static void clear() {
    CURRENT.remove();
  }
}
