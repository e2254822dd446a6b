package dev.puzzlefs.reader;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The text of a prefetch list: one path per line, from the image's root (a directory stands for
 * everything under it), optionally followed by a tab and the byte ranges of the file that are
 * wanted, as {@code START+LENGTH} separated by commas. Blank lines and lines starting with {@code
 * #} are skipped. {@link ReadRecorder} writes such lists from what a mount served.
 *
 * <p>A line whose text after its last tab is not a range list is a path as a whole, so every path,
 * tabs and all, can be listed.
 */
public final class PrefetchList {
  private static final Pattern RANGES = Pattern.compile("[0-9]+\\+[0-9]+(,[0-9]+\\+[0-9]+)*");

  private PrefetchList() {}

  /**
   * One line of a list: {@code path} (raw bytes) and, if only parts of the file are wanted, {@code
   * ranges} as pairs (start, length); null means the whole file (or tree).
   */
  public record Entry(byte[] path, long[] ranges) {
    /** True if some wanted range overlaps bytes {@code [from, to)} of the file. */
    boolean wants(long from, long to) {
      if (ranges == null) {
        return true;
      }
      for (int i = 0; i < ranges.length; i += 2) {
        if (ranges[i] < to && from < ranges[i] + ranges[i + 1]) {
          return true;
        }
      }
      return false;
    }

    String printable() {
      return new String(path, StandardCharsets.UTF_8);
    }
  }

  /**
   * The entries of the list in {@code file}; {@code option} names where it came from in the error
   * when it cannot be read.
   */
  public static List<Entry> read(Path file, String option) throws IOException {
    try {
      return parse(Files.readAllBytes(file));
    } catch (IOException e) {
      String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
      if (e instanceof java.nio.file.NoSuchFileException) {
        why = "no such file";
      }
      throw new IOException("cannot read " + option + " " + file + ": " + why, e);
    }
  }

  /** The entries of a list's bytes. */
  public static List<Entry> parse(byte[] text) {
    List<Entry> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i <= text.length; i++) {
      if (i < text.length && text[i] != '\n') {
        continue;
      }
      byte[] line = Arrays.copyOfRange(text, start, i);
      start = i + 1;
      String printable = new String(line, StandardCharsets.UTF_8).strip();
      if (printable.isEmpty() || printable.startsWith("#")) {
        continue;
      }
      out.add(entry(line));
    }
    return out;
  }

  private static Entry entry(byte[] line) {
    int tab = -1;
    for (int i = line.length - 1; i >= 0; i--) {
      if (line[i] == '\t') {
        tab = i;
        break;
      }
    }
    if (tab > 0) {
      String tail = new String(line, tab + 1, line.length - tab - 1, StandardCharsets.UTF_8);
      if (RANGES.matcher(tail.strip()).matches()) {
        String[] parts = tail.strip().split(",");
        long[] ranges = new long[parts.length * 2];
        try {
          for (int p = 0; p < parts.length; p++) {
            int plus = parts[p].indexOf('+');
            ranges[2 * p] = Long.parseLong(parts[p].substring(0, plus));
            ranges[2 * p + 1] = Long.parseLong(parts[p].substring(plus + 1));
          }
          return new Entry(Arrays.copyOf(line, tab), ranges);
        } catch (NumberFormatException e) {
          // a number too large for a long: not a range list, so the tab is part of the path
        }
      }
    }
    return new Entry(line, null);
  }

  /**
   * Fails with a clear message, naming {@code option}, if a list could not be written to {@code
   * file} later: its directory is missing, or it is a directory. Null passes.
   */
  public static void checkWritable(Path file, String option) throws IOException {
    if (file == null) {
      return;
    }
    Path dir = file.toAbsolutePath().getParent();
    if (Files.isDirectory(file)) {
      throw new IOException("cannot write " + option + " " + file + ": it is a directory");
    }
    if (dir == null || !Files.isDirectory(dir)) {
      throw new IOException("cannot write " + option + " " + file + ": no directory " + dir);
    }
    if (!Files.isWritable(dir)) {
      throw new IOException("cannot write " + option + " " + file + ": " + dir + " is read-only");
    }
  }

  /**
   * Writes {@code entries} to {@code file} through a temporary file in the same directory, so a
   * reader sees the old list or the whole new one, never a part.
   */
  public static void write(Path file, String header, List<Entry> entries) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String line : header.split("\n")) {
      out.writeBytes(("# " + line + "\n").getBytes(StandardCharsets.UTF_8));
    }
    for (Entry e : entries) {
      out.writeBytes(e.path());
      if (e.ranges() != null) {
        StringBuilder ranges = new StringBuilder("\t");
        for (int i = 0; i < e.ranges().length; i += 2) {
          ranges.append(i == 0 ? "" : ",").append(e.ranges()[i]).append('+');
          ranges.append(e.ranges()[i + 1]);
        }
        out.writeBytes(ranges.toString().getBytes(StandardCharsets.US_ASCII));
      }
      out.write('\n');
    }
    Path absolute = file.toAbsolutePath();
    Path dir = absolute.getParent();
    Path tmp = Files.createTempFile(dir, "." + absolute.getFileName() + ".", ".tmp");
    try {
      Files.write(tmp, out.toByteArray());
      Files.move(
          tmp, absolute, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
