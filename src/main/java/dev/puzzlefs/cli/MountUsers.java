package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The processes that keep a mount busy, found as {@code fuser -m} does: by their working directory,
 * root or open files under it in {@code /proc}. Reading those links does not touch the mount, so it
 * works on a mount whose daemon hangs.
 */
final class MountUsers {
  private static final Path PROC = Path.of("/proc");
  private static final int MAX_LISTED = 5;

  private MountUsers() {}

  /** Up to five users of {@code dir}, as {@code NAME (pid N, cwd)}; empty when none is found. */
  static List<String> of(Path dir) {
    List<String> out = new ArrayList<>();
    try (DirectoryStream<Path> pids = Files.newDirectoryStream(PROC, "[0-9]*")) {
      for (Path p : pids) {
        String how = use(p, dir);
        if (how != null) {
          out.add(name(p) + " (pid " + p.getFileName() + ", " + how + ")");
          if (out.size() == MAX_LISTED) {
            break;
          }
        }
      }
    } catch (IOException e) {
      // best effort: the error message still says what to do
    }
    return out;
  }

  private static String use(Path proc, Path dir) {
    if (under(proc.resolve("cwd"), dir)) {
      return "working directory";
    }
    if (under(proc.resolve("root"), dir)) {
      return "root directory";
    }
    try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fd"))) {
      for (Path fd : fds) {
        if (under(fd, dir)) {
          return "open file";
        }
      }
    } catch (IOException e) {
      // the process ended, or is not ours to look at
    }
    return null;
  }

  private static boolean under(Path link, Path dir) {
    try {
      String target = Files.readSymbolicLink(link).toString();
      String d = dir.toString();
      return target.equals(d) || target.startsWith(d + "/");
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }

  private static String name(Path proc) {
    try {
      return Files.readString(proc.resolve("comm")).strip();
    } catch (IOException e) {
      return "?";
    }
  }
}
