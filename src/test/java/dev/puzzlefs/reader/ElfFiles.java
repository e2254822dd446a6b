package dev.puzzlefs.reader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Small ELF files made to order for tests: a header, three program headers (one load segment over
 * the whole file, the interpreter's name, the dynamic segment) and a string table; the dynamic
 * segment sits at the file's end, as in real programs, so that its bytes come in a later chunk than
 * the header's.
 */
final class ElfFiles {
  static final int EM_X86_64 = 62;
  static final int EM_PPC = 20;
  private static final long BASE = 0x400000;

  private ElfFiles() {}

  /** A 64-bit little-endian x86-64 ELF file of {@code size} bytes needing {@code needed}. */
  static byte[] x86_64(List<String> needed, int size) {
    return build(true, ByteOrder.LITTLE_ENDIAN, EM_X86_64, null, needed, null, size);
  }

  /**
   * An ELF file of {@code size} bytes: 64 or 32 bit ({@code wide}), in byte order {@code order},
   * for {@code machine}; {@code interpreter} may be null, {@code runpath} too.
   */
  static byte[] build(
      boolean wide,
      ByteOrder order,
      int machine,
      String interpreter,
      List<String> needed,
      String runpath,
      int size) {
    return build(wide, order, machine, interpreter, needed, runpath, size, 1);
  }

  /**
   * As {@link #build(boolean, ByteOrder, int, String, List, String, int)}, with {@code repeat}
   * needed entries for each name, all pointing at that name's one copy in the string table.
   */
  static byte[] build(
      boolean wide,
      ByteOrder order,
      int machine,
      String interpreter,
      List<String> needed,
      String runpath,
      int size,
      int repeat) {
    // Random filler, so that no two chunks of the file are alike.
    byte[] filler = new byte[size];
    new java.util.Random(size * 31L + needed.hashCode()).nextBytes(filler);
    ByteBuffer b = ByteBuffer.wrap(filler).order(order);
    int headerSize = wide ? 64 : 52;
    int phentsize = wide ? 56 : 32;
    int phnum = 3;
    int interpAt = headerSize + phentsize * phnum;
    byte[] interp =
        interpreter == null ? new byte[0] : (interpreter + "\0").getBytes(StandardCharsets.UTF_8);
    // The string table: a NUL, then each needed name, then the run path.
    List<Integer> neededAt = new ArrayList<>();
    java.io.ByteArrayOutputStream strings = new java.io.ByteArrayOutputStream();
    strings.write(0);
    for (String n : needed) {
      for (int r = 0; r < repeat; r++) {
        neededAt.add(strings.size());
      }
      strings.writeBytes((n + "\0").getBytes(StandardCharsets.UTF_8));
    }
    int runpathAt = strings.size();
    if (runpath != null) {
      strings.writeBytes((runpath + "\0").getBytes(StandardCharsets.UTF_8));
    }
    int stringsAt = interpAt + interp.length;
    int entry = wide ? 16 : 8;
    int dynamicSize = (neededAt.size() + (runpath != null ? 1 : 0) + 3) * entry;
    int dynamicAt = size - dynamicSize;
    if (dynamicAt < stringsAt + strings.size()) {
      throw new IllegalArgumentException("size too small: " + size);
    }
    b.put(new byte[] {0x7f, 'E', 'L', 'F', (byte) (wide ? 2 : 1)});
    b.put((byte) (order == ByteOrder.LITTLE_ENDIAN ? 1 : 2));
    b.put((byte) 1); // version
    b.putShort(16, (short) 3); // ET_DYN
    b.putShort(18, (short) machine);
    if (wide) {
      b.putLong(32, headerSize);
      b.putShort(52, (short) headerSize);
      b.putShort(54, (short) phentsize);
      b.putShort(56, (short) phnum);
    } else {
      b.putInt(28, headerSize);
      b.putShort(40, (short) headerSize);
      b.putShort(42, (short) phentsize);
      b.putShort(44, (short) phnum);
    }
    programHeader(b, wide, headerSize, 1, 0, size); // PT_LOAD
    programHeader(b, wide, headerSize + phentsize, 3, interpAt, interp.length); // PT_INTERP
    programHeader(b, wide, headerSize + 2 * phentsize, 2, dynamicAt, dynamicSize); // PT_DYNAMIC
    b.put(interpAt, interp);
    b.put(stringsAt, strings.toByteArray());
    int at = dynamicAt;
    for (int n : neededAt) {
      at = dynamicEntry(b, wide, at, 1, n);
    }
    if (runpath != null) {
      at = dynamicEntry(b, wide, at, 29, runpathAt);
    }
    at = dynamicEntry(b, wide, at, 5, BASE + stringsAt);
    at = dynamicEntry(b, wide, at, 10, strings.size());
    dynamicEntry(b, wide, at, 0, 0);
    return b.array();
  }

  private static void programHeader(
      ByteBuffer b, boolean wide, int at, int type, long offset, long size) {
    b.putInt(at, type);
    if (wide) {
      b.putLong(at + 8, offset);
      b.putLong(at + 16, BASE + offset);
      b.putLong(at + 24, BASE + offset);
      b.putLong(at + 32, size);
      b.putLong(at + 40, size);
    } else {
      b.putInt(at + 4, (int) offset);
      b.putInt(at + 8, (int) (BASE + offset));
      b.putInt(at + 12, (int) (BASE + offset));
      b.putInt(at + 16, (int) size);
      b.putInt(at + 20, (int) size);
    }
  }

  private static int dynamicEntry(ByteBuffer b, boolean wide, int at, long tag, long value) {
    if (wide) {
      b.putLong(at, tag);
      b.putLong(at + 8, value);
      return at + 16;
    }
    b.putInt(at, (int) tag);
    b.putInt(at + 4, (int) value);
    return at + 8;
  }
}
