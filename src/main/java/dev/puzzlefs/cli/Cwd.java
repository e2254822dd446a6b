package dev.puzzlefs.cli;

import java.nio.file.Path;

/**
 * The working directory a command's relative paths mean. A JVM has one working directory, so the
 * mount server ({@link Server}), which runs commands for clients in other directories, sets each
 * request's here; every path the command line names goes through {@link #path}. Threads a request
 * starts inherit it. Outside the server it is the process's own, as usual.
 */
final class Cwd {
  private static final InheritableThreadLocal<Path> BASE = new InheritableThreadLocal<>();

  private Cwd() {}

  /** {@code text} as a path: against the request's directory when relative inside the server. */
  static Path path(String text) {
    Path p = Path.of(text);
    Path base = BASE.get();
    return base == null || p.isAbsolute() ? p : base.resolve(p);
  }

  /** Sets the directory relative paths of this thread (and the threads it starts) mean. */
  static void set(Path directory) {
    if (!directory.isAbsolute()) {
      throw new IllegalArgumentException("not an absolute directory: " + directory);
    }
    BASE.set(directory);
  }
}
