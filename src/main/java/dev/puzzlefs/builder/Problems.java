package dev.puzzlefs.builder;

import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;

/** Turns the JDK's file exceptions, whose message is often just the path, into a cause. */
final class Problems {
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
}
