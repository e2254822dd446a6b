package dev.puzzlefs.fuse;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Reads {@code /proc/self/mountinfo} to tell whether a directory is a mount point. */
public final class MountTable {
  private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

  private MountTable() {}

  /** The filesystem type mounted at {@code dir} (e.g. {@code fuse.puzzlefs}), or null. */
  public static String typeAt(Path dir) throws IOException {
    String wanted = dir.toAbsolutePath().normalize().toString();
    List<String> lines = Files.readAllLines(MOUNTINFO, StandardCharsets.ISO_8859_1);
    String found = null;
    for (String line : lines) {
      // id parent major:minor root mountpoint options [optional fields] - fstype source super
      String[] fields = line.split(" ");
      if (fields.length < 5) {
        continue;
      }
      if (unescape(fields[4]).equals(wanted)) {
        int dash = line.indexOf(" - ");
        found = dash < 0 ? "unknown" : line.substring(dash + 3).split(" ")[0];
      }
    }
    return found;
  }

  /** True when something is mounted at {@code dir}. */
  public static boolean isMountPoint(Path dir) throws IOException {
    return typeAt(dir) != null;
  }

  /** The mount points at or below {@code dir}, so a caller can refuse to delete through one. */
  public static List<Path> mountsUnder(Path dir) throws IOException {
    Path top = dir.toAbsolutePath().normalize();
    List<Path> found = new java.util.ArrayList<>();
    for (String line : Files.readAllLines(MOUNTINFO, StandardCharsets.ISO_8859_1)) {
      String[] fields = line.split(" ");
      if (fields.length >= 5) {
        Path p = Path.of(unescape(fields[4]));
        if (p.startsWith(top)) {
          found.add(p);
        }
      }
    }
    return found;
  }

  /** Undoes the kernel's octal escapes ({@code \040} for a space), keeping bytes as UTF-8. */
  private static String unescape(String field) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] raw = field.getBytes(StandardCharsets.ISO_8859_1);
    for (int i = 0; i < raw.length; i++) {
      if (raw[i] == '\\' && isOctal(raw, i + 1)) {
        out.write(Integer.parseInt(new String(raw, i + 1, 3, StandardCharsets.ISO_8859_1), 8));
        i += 3;
      } else {
        out.write(raw[i]);
      }
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  private static boolean isOctal(byte[] raw, int at) {
    if (at + 3 > raw.length) {
      return false;
    }
    for (int i = at; i < at + 3; i++) {
      if (raw[i] < '0' || raw[i] > '7') {
        return false;
      }
    }
    return true;
  }
}
