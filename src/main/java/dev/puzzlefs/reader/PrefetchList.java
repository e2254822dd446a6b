package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The text of a prefetch list: one path per line, from the image's root (a directory stands for
 * everything under it), optionally followed by a tab and the byte ranges of the file that are
 * wanted, as {@code START+LENGTH} separated by commas. Blank lines and lines starting with {@code
 * #} are skipped. {@link ReadRecorder} writes such lists from what a mount served.
 *
 * <p>A line whose text after its last tab is not a range list is a path as a whole, so every path,
 * tabs and all, can be listed.
 *
 * <p>A recorded list ends with the chunks those reads needed, a line {@code #chunk sha256:HEX}
 * each: a reader of the list may start fetching them before the image's metadata has arrived
 * ({@link EarlyFetch}). To anything else they are comments.
 */
public final class PrefetchList {
  /** The largest list read: far more than any image's paths with their ranges. */
  public static final long MAX_BYTES = 64L << 20;

  /** What starts a line naming a chunk by digest. */
  static final String CHUNK_PREFIX = "#chunk ";

  private PrefetchList() {}

  /**
   * What a list says: its paths, and the digests of the chunks its recorder saw needed (empty for a
   * list written by hand).
   */
  public record Contents(List<Entry> entries, List<Digest> chunks) {
    public static final Contents EMPTY = new Contents(List.of(), List.of());
  }

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
        long end = ranges[i] + ranges[i + 1];
        if (end < 0) { // past Long.MAX_VALUE: to the end of any file
          end = Long.MAX_VALUE;
        }
        if (ranges[i + 1] > 0 && ranges[i] < to && from < end) {
          return true;
        }
      }
      return false;
    }

    /**
     * The path for a message: control characters and bytes that are not UTF-8 as {@code \xNN}, and
     * at most 200 characters.
     */
    String printable() {
      StringBuilder out = new StringBuilder();
      java.nio.CharBuffer text;
      try {
        text =
            StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                .decode(java.nio.ByteBuffer.wrap(path));
      } catch (java.nio.charset.CharacterCodingException e) {
        for (byte b : path) {
          int c = b & 0xff;
          out.append(
              c >= 0x20 && c < 0x7f ? String.valueOf((char) c) : String.format("\\x%02x", c));
        }
        return shorten(out);
      }
      text.chars()
          .forEach(
              c ->
                  out.append(
                      c < 0x20 || c == 0x7f
                          ? String.format("\\x%02x", c)
                          : String.valueOf((char) c)));
      return shorten(out);
    }

    private static String shorten(StringBuilder s) {
      return s.length() <= 200 ? s.toString() : s.substring(0, 200) + "...";
    }
  }

  /**
   * The entries of the list in {@code file}; {@code option} names where it came from in the error
   * when it cannot be read.
   */
  public static List<Entry> read(Path file, String option) throws IOException {
    return load(file, option).entries();
  }

  /**
   * What the list in {@code file} says, paths and chunks; {@code option} names where it came from
   * in the error when it cannot be read.
   */
  public static Contents load(Path file, String option) throws IOException {
    try {
      // Only a regular file: a FIFO or a device would block or never end.
      if (Files.exists(file) && !Files.isRegularFile(file)) {
        throw new IOException(
            Files.isDirectory(file) ? "it is a directory" : "it is not a regular file");
      }
      long size = Files.size(file);
      if (size > MAX_BYTES) {
        throw new IOException(
            "it has " + size + " bytes; a prefetch list may have at most " + MAX_BYTES);
      }
      return contents(Files.readAllBytes(file));
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
    return contents(text).entries();
  }

  /** The entries and chunks of a list's bytes. */
  public static Contents contents(byte[] text) {
    List<Entry> out = new ArrayList<>();
    List<Digest> chunks = new ArrayList<>();
    int start = 0;
    for (int i = 0; i <= text.length; i++) {
      if (i < text.length && text[i] != '\n') {
        continue;
      }
      int end = i > start && text[i - 1] == '\r' ? i - 1 : i; // a list written on Windows
      byte[] line = Arrays.copyOfRange(text, start, end);
      start = i + 1;
      String printable = new String(line, StandardCharsets.UTF_8).strip();
      if (printable.startsWith(CHUNK_PREFIX)) {
        Digest chunk = chunk(printable.substring(CHUNK_PREFIX.length()).strip());
        if (chunk != null) {
          chunks.add(chunk);
        }
        continue;
      }
      if (printable.isEmpty() || printable.startsWith("#")) {
        continue;
      }
      out.add(entry(line));
    }
    return new Contents(out, chunks);
  }

  /** The digest {@code text} names, or null when it names none (then the line is a comment). */
  private static Digest chunk(String text) {
    try {
      return Digest.parse(text);
    } catch (RuntimeException e) {
      return null;
    }
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
      long[] ranges = ranges(tail.strip());
      if (ranges != null) {
        return new Entry(Arrays.copyOf(line, tab), ranges);
      }
    }
    return new Entry(line, null);
  }

  /**
   * {@code START+LENGTH[,START+LENGTH]...} as pairs, or null when {@code text} is not such a list
   * (then the tab before it is part of the path). Scanned by hand: a line may hold thousands.
   */
  private static long[] ranges(String text) {
    if (text.isEmpty()) {
      return null;
    }
    String[] parts = text.split(",", -1);
    long[] ranges = new long[parts.length * 2];
    for (int p = 0; p < parts.length; p++) {
      int plus = parts[p].indexOf('+');
      if (plus < 0) {
        return null;
      }
      long start = number(parts[p], 0, plus);
      long length = number(parts[p], plus + 1, parts[p].length());
      if (start < 0 || length < 0) {
        return null;
      }
      ranges[2 * p] = start;
      ranges[2 * p + 1] = length;
    }
    return ranges;
  }

  /** The decimal number in {@code s[from, to)}, or -1 if it is empty, not digits or too large. */
  private static long number(String s, int from, int to) {
    if (from >= to || to - from > 18) {
      return -1;
    }
    long n = 0;
    for (int i = from; i < to; i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      n = n * 10 + (c - '0');
    }
    return n;
  }

  /**
   * Fails with a clear message, naming {@code option}, if a list could not be written to {@code
   * file} later: its directory is missing or not writable, or the path is a directory, a device, a
   * FIFO or a dangling link (a list replaces only a regular file; a link is written through). Null
   * passes.
   */
  public static void checkWritable(Path file, String option) throws IOException {
    if (file == null) {
      return;
    }
    Path target;
    try {
      target = target(file);
    } catch (IOException e) {
      throw new IOException("cannot write " + option + " " + file + ": " + e.getMessage(), e);
    }
    Path dir = target.getParent();
    if (dir == null || !Files.isDirectory(dir)) {
      throw new IOException("cannot write " + option + " " + file + ": no directory " + dir);
    }
    // Try it: a directory may look writable and still refuse files (/proc, a read-only mount).
    try {
      Files.delete(Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp"));
    } catch (IOException e) {
      String why = e.getMessage();
      if (e instanceof java.nio.file.FileSystemException fs && fs.getReason() != null) {
        why = fs.getReason();
      }
      throw new IOException(
          "cannot write " + option + " " + file + ": cannot create a file in " + dir + ": " + why,
          e);
    }
  }

  /**
   * The file a list for {@code file} goes to: {@code file} itself, or what it links to; fails if
   * that is anything but a regular file or a name not yet taken.
   */
  private static Path target(Path file) throws IOException {
    Path absolute = file.toAbsolutePath();
    for (int hops = 0; Files.isSymbolicLink(absolute); hops++) {
      if (hops == 40) {
        throw new IOException("too many levels of symbolic links");
      }
      absolute = absolute.resolveSibling(Files.readSymbolicLink(absolute)).normalize();
    }
    if (Files.exists(absolute, java.nio.file.LinkOption.NOFOLLOW_LINKS)
        && !Files.isRegularFile(absolute, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(
          Files.isDirectory(absolute) ? "it is a directory" : "it is not a regular file");
    }
    return absolute;
  }

  /**
   * Writes {@code entries} to {@code file} through a temporary file in the same directory, so a
   * reader sees the old list or the whole new one, never a part.
   */
  public static void write(Path file, String header, List<Entry> entries) throws IOException {
    write(file, header, entries, List.of());
  }

  /**
   * The permissions a list written to {@code target} gets: those of the list it replaces, else what
   * a new file gets under this process's umask (the temporary file is made private).
   */
  private static java.util.Set<java.nio.file.attribute.PosixFilePermission> permissionsFor(
      Path target) throws IOException {
    try {
      return Files.getPosixFilePermissions(target);
    } catch (java.nio.file.NoSuchFileException e) {
      int mode = 0666 & ~umask();
      java.util.Set<java.nio.file.attribute.PosixFilePermission> out =
          java.util.EnumSet.noneOf(java.nio.file.attribute.PosixFilePermission.class);
      java.nio.file.attribute.PosixFilePermission[] bits =
          java.nio.file.attribute.PosixFilePermission.values(); // OWNER_READ .. OTHERS_EXECUTE
      for (int i = 0; i < bits.length; i++) {
        if ((mode & (0400 >> i)) != 0) {
          out.add(bits[i]);
        }
      }
      return out;
    }
  }

  /** This process's umask, from /proc; 022 when it cannot be read. */
  private static int umask() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Umask:")) {
          return Integer.parseInt(line.substring("Umask:".length()).strip(), 8);
        }
      }
    } catch (IOException | NumberFormatException e) {
      // fall through
    }
    return 022;
  }

  /**
   * Writes {@code entries}, then {@code chunks} as {@code #chunk} lines, to {@code file} through a
   * temporary file in the same directory, so a reader sees the old list or the whole new one.
   */
  public static void write(Path file, String header, List<Entry> entries, List<Digest> chunks)
      throws IOException {
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
    if (!chunks.isEmpty()) {
      out.writeBytes(
          "# the chunks those reads needed, to fetch before the image's metadata has arrived\n"
              .getBytes(StandardCharsets.US_ASCII));
    }
    for (Digest d : chunks) {
      out.writeBytes((CHUNK_PREFIX + d + "\n").getBytes(StandardCharsets.US_ASCII));
    }
    Path absolute = target(file);
    Path dir = absolute.getParent();
    Path tmp = Files.createTempFile(dir, "." + absolute.getFileName() + ".", ".tmp");
    try {
      Files.write(tmp, out.toByteArray());
      Files.setPosixFilePermissions(tmp, permissionsFor(absolute));
      Files.move(
          tmp, absolute, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
