package dev.puzzlefs.builder;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Turns the JDK's file exceptions, whose message is often just the path, into a cause. */
final class Problems {
  /** The longest a path may be (Linux's PATH_MAX, with its terminating NUL). */
  static final int PATH_MAX = 4096;

  /** Paths with more characters than this are shown by their two ends. */
  private static final int SHOWN = 200;

  private static final int HEAD = 80;
  private static final int TAIL = 100;

  private Problems() {}

  /** What went wrong, for a person: "permission denied", "it vanished during the build", ... */
  static String describe(Exception e) {
    if (e instanceof NoSuchFileException) {
      return "it vanished during the build";
    }
    if (e instanceof AccessDeniedException) {
      return "permission denied";
    }
    if (e instanceof FileSystemException fse && fse.getReason() != null) {
      return fse.getReason();
    }
    return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  /**
   * {@code path} for a message: whole when short; otherwise its first and last characters around
   * "...", and its length, so that a tree thousands of bytes deep does not fill the screen.
   */
  static String path(Path path) {
    String s = path.toString();
    int chars = s.codePointCount(0, s.length());
    if (chars <= SHOWN) {
      return s;
    }
    return s.substring(0, s.offsetByCodePoints(0, HEAD))
        + "..."
        + s.substring(s.offsetByCodePoints(s.length(), -TAIL))
        + " (a path of "
        + RawNames.bytes(path).length
        + " bytes)";
  }

  /** "cannot read PATH: cause", with {@link #path}, saying so when the path is too long to use. */
  static IOException unreadable(Path path, IOException e) {
    String tooLong =
        RawNames.bytes(path).length >= PATH_MAX
            ? "; it is deeper than a path may be ("
                + PATH_MAX
                + " bytes): build reads files by path and cannot build a tree that deep"
            : "";
    return new IOException("cannot read " + path(path) + ": " + describe(e) + tooLong, e);
  }
}
