package dev.puzzlefs.reader;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The files the dynamic loader opens for an ELF executable or shared library, as its headers name
 * them: the interpreter ({@code PT_INTERP}), the libraries it needs ({@code DT_NEEDED}) and where
 * it asks them to be looked up first ({@code DT_RUNPATH}, {@code DT_RPATH}). Reads only the ELF
 * header, the program headers, the dynamic segment and the string table it points at: a few KiB,
 * wherever they lie in the file. Both classes (32 and 64 bit) and both byte orders.
 *
 * <p>A file that is not ELF, or whose headers do not hold together (offsets past the end, counts
 * out of bounds), gives {@link #NONE}: this is a hint for prefetching, never an error.
 */
public record ElfLinks(
    int machine, String interpreter, List<String> needed, List<String> searchPaths) {

  /** Nothing to open: not an ELF file, a static one, or one whose headers are malformed. */
  static final ElfLinks NONE = new ElfLinks(0, null, List.of(), List.of());

  /** Random access to the file's bytes; fewer than {@code length} only at its end. */
  interface Bytes {
    byte[] read(long offset, int length) throws IOException;
  }

  private static final int PT_LOAD = 1;
  private static final int PT_DYNAMIC = 2;
  private static final int PT_INTERP = 3;
  private static final long DT_NULL = 0;
  private static final long DT_NEEDED = 1;
  private static final long DT_STRTAB = 5;
  private static final long DT_STRSZ = 10;
  private static final long DT_RPATH = 15;
  private static final long DT_RUNPATH = 29;

  /** Bounds that keep a hostile file from making us read, or hold, much. */
  private static final int MAX_PROGRAM_HEADERS = 256;

  private static final int MAX_PROGRAM_HEADER_BYTES = 64 << 10;
  private static final int MAX_DYNAMIC_BYTES = 64 << 10;
  private static final int MAX_STRING_TABLE_BYTES = 1 << 20;

  /** The longest name or path kept (PATH_MAX); a longer one is skipped. */
  static final int MAX_PATH_BYTES = 4096;

  /** The most needed libraries and search paths kept; the rest are skipped. */
  static final int MAX_NAMES = 256;

  /** True when {@code head} starts with the ELF magic number. */
  static boolean isElf(byte[] head, int at, int length) {
    return length >= 4
        && at >= 0
        && at + 4 <= head.length
        && head[at] == 0x7f
        && head[at + 1] == 'E'
        && head[at + 2] == 'L'
        && head[at + 3] == 'F';
  }

  /**
   * Reads the links of the ELF file {@code file} of {@code size} bytes; only its interpreter when
   * {@code interpreterOnly} (that is in the file's first pages, the rest may lie anywhere).
   */
  static ElfLinks read(Bytes file, long size, boolean interpreterOnly) throws IOException {
    byte[] ident = file.read(0, 64);
    if (ident.length < 52 || !isElf(ident, 0, ident.length)) {
      return NONE;
    }
    boolean wide = ident[4] == 2;
    if (!wide && ident[4] != 1) {
      return NONE;
    }
    ByteOrder order;
    if (ident[5] == 1) {
      order = ByteOrder.LITTLE_ENDIAN;
    } else if (ident[5] == 2) {
      order = ByteOrder.BIG_ENDIAN;
    } else {
      return NONE;
    }
    ByteBuffer header = ByteBuffer.wrap(ident).order(order);
    if (wide && ident.length < 64) {
      return NONE;
    }
    int machine = Short.toUnsignedInt(header.getShort(18));
    long phoff = wide ? header.getLong(32) : Integer.toUnsignedLong(header.getInt(28));
    int phentsize = Short.toUnsignedInt(header.getShort(wide ? 54 : 42));
    int phnum = Short.toUnsignedInt(header.getShort(wide ? 56 : 44));
    int minEntry = wide ? 56 : 32;
    if (phnum == 0
        || phnum > MAX_PROGRAM_HEADERS
        || phentsize < minEntry
        || phentsize * phnum > MAX_PROGRAM_HEADER_BYTES
        || phoff < 0
        || phoff + (long) phentsize * phnum > size) {
      return NONE;
    }
    byte[] table = file.read(phoff, phentsize * phnum);
    if (table.length < phentsize * phnum) {
      return NONE;
    }
    ByteBuffer ph = ByteBuffer.wrap(table).order(order);
    List<long[]> loads = new ArrayList<>(); // {vaddr, offset, filesz}
    long[] interp = null;
    long[] dynamic = null;
    for (int i = 0; i < phnum; i++) {
      int at = i * phentsize;
      int type = ph.getInt(at);
      long offset;
      long vaddr;
      long filesz;
      if (wide) {
        offset = ph.getLong(at + 8);
        vaddr = ph.getLong(at + 16);
        filesz = ph.getLong(at + 32);
      } else {
        offset = Integer.toUnsignedLong(ph.getInt(at + 4));
        vaddr = Integer.toUnsignedLong(ph.getInt(at + 8));
        filesz = Integer.toUnsignedLong(ph.getInt(at + 16));
      }
      if (offset < 0 || filesz < 0 || offset > size || filesz > size - offset) {
        continue;
      }
      long[] segment = {vaddr, offset, filesz};
      switch (type) {
        case PT_LOAD -> loads.add(segment);
        case PT_INTERP -> interp = segment;
        case PT_DYNAMIC -> dynamic = segment;
        default -> {}
      }
    }
    String interpreter = null;
    if (interp != null && interp[2] > 1) {
      interpreter = cString(file.read(interp[1], (int) Math.min(interp[2], MAX_PATH_BYTES)), 0);
    }
    if (dynamic == null || interpreterOnly) {
      return interpreter == null ? NONE : new ElfLinks(machine, interpreter, List.of(), List.of());
    }
    byte[] dyn = file.read(dynamic[1], (int) Math.min(dynamic[2], MAX_DYNAMIC_BYTES));
    ByteBuffer d = ByteBuffer.wrap(dyn).order(order);
    int entry = wide ? 16 : 8;
    List<Long> neededAt = new ArrayList<>();
    List<Long> pathsAt = new ArrayList<>();
    long strtab = -1;
    long strsz = -1;
    for (int at = 0; at + entry <= dyn.length; at += entry) {
      long tag = wide ? d.getLong(at) : d.getInt(at);
      long value = wide ? d.getLong(at + 8) : Integer.toUnsignedLong(d.getInt(at + 4));
      if (tag == DT_NULL) {
        break;
      } else if (tag == DT_NEEDED) {
        if (neededAt.size() < MAX_NAMES) {
          neededAt.add(value);
        }
      } else if (tag == DT_RUNPATH || tag == DT_RPATH) {
        if (pathsAt.size() < MAX_NAMES) {
          pathsAt.add(value);
        }
      } else if (tag == DT_STRTAB) {
        strtab = value;
      } else if (tag == DT_STRSZ) {
        strsz = value;
      }
    }
    long stringsAt = -1;
    for (long[] load : loads) {
      if (strtab >= load[0] && strtab - load[0] < load[2]) {
        stringsAt = load[1] + (strtab - load[0]);
        break;
      }
    }
    if (stringsAt < 0 || strsz <= 0) {
      return new ElfLinks(machine, interpreter, List.of(), List.of());
    }
    byte[] strings =
        file.read(
            stringsAt, (int) Math.min(Math.min(strsz, MAX_STRING_TABLE_BYTES), size - stringsAt));
    List<String> needed = new ArrayList<>();
    for (long at : neededAt) {
      String name = at >= 0 && at < strings.length ? cString(strings, (int) at) : null;
      if (name != null && !name.isEmpty()) {
        needed.add(name);
      }
    }
    List<String> paths = new ArrayList<>();
    for (long at : pathsAt) {
      String value = at >= 0 && at < strings.length ? cString(strings, (int) at) : null;
      if (value != null) {
        for (String p : value.split(":")) {
          if (!p.isEmpty() && paths.size() < MAX_NAMES) {
            paths.add(p);
          }
        }
      }
    }
    return new ElfLinks(machine, interpreter, List.copyOf(needed), List.copyOf(paths));
  }

  /**
   * The NUL-terminated string at {@code from} (to the end of {@code bytes} when unterminated), or
   * null when it is longer than {@link #MAX_PATH_BYTES}.
   */
  private static String cString(byte[] bytes, int from) {
    int end = from;
    while (end < bytes.length && bytes[end] != 0) {
      if (end - from >= MAX_PATH_BYTES) {
        return null;
      }
      end++;
    }
    return new String(bytes, from, end - from, StandardCharsets.UTF_8);
  }

  /**
   * Where the loader looks for a library named without a slash, after the file's own paths: the
   * multiarch directories of Debian and Ubuntu for its machine, then the usual ones.
   */
  List<String> libraryDirectories() {
    List<String> dirs = new ArrayList<>();
    for (String p : searchPaths) {
      if (p.startsWith("/")) { // $ORIGIN and relative paths depend on where the file is: skipped
        dirs.add(p);
      }
    }
    String triple = multiarchTriple(machine);
    if (triple != null) {
      dirs.add("/lib/" + triple);
      dirs.add("/usr/lib/" + triple);
    }
    dirs.addAll(List.of("/lib64", "/usr/lib64", "/lib", "/usr/lib"));
    return dirs;
  }

  /** Debian's multiarch triple for ELF machine {@code machine}, or null when it has none here. */
  public static String multiarchTriple(int machine) {
    return switch (machine) {
      case 62 -> "x86_64-linux-gnu";
      case 183 -> "aarch64-linux-gnu";
      case 3 -> "i386-linux-gnu";
      case 40 -> "arm-linux-gnueabihf";
      case 243 -> "riscv64-linux-gnu";
      case 21 -> "powerpc64le-linux-gnu";
      case 22 -> "s390x-linux-gnu";
      default -> null;
    };
  }

  /** The ELF machine of the JVM's own, or 0 when it is not one this class knows. */
  public static int hostMachine() {
    return switch (System.getProperty("os.arch", "")) {
      case "amd64", "x86_64" -> 62;
      case "aarch64" -> 183;
      default -> 0;
    };
  }
}
