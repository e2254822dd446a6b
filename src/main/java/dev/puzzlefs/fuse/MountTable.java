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

  /**
   * The mount point of an overlay whose upper or work directory is {@code upper} or {@code work},
   * or null: an upper layer may serve one overlay at a time.
   */
  public static Path overlayUsing(Path upper, Path work) throws IOException {
    String u = "upperdir=" + escapeOption(upper.toAbsolutePath().normalize().toString());
    String w = "workdir=" + escapeOption(work.toAbsolutePath().normalize().toString());
    for (String line : Files.readAllLines(MOUNTINFO, StandardCharsets.ISO_8859_1)) {
      int dash = line.indexOf(" - ");
      String[] fields = line.split(" ");
      if (dash < 0 || fields.length < 5) {
        continue;
      }
      String[] tail = line.substring(dash + 3).split(" ");
      if (tail.length < 3 || !tail[0].equals("overlay")) {
        continue;
      }
      String options = "," + tail[2] + ",";
      if (options.contains("," + u + ",") || options.contains("," + w + ",")) {
        return Path.of(unescape(fields[4]));
      }
    }
    return null;
  }

  /**
   * A path as the kernel shows it in an option of mountinfo's last field: its UTF-8 bytes, with
   * comma, equals sign, space, tab, newline and backslash as octal escapes.
   */
  static String escapeOption(String path) {
    StringBuilder out = new StringBuilder();
    for (byte b : path.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if (c == ',' || c == '=' || c == ' ' || c == '\t' || c == '\n' || c == '\\') {
        out.append(String.format("\\%03o", c));
      } else {
        out.append((char) c);
      }
    }
    return out.toString();
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
