package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class ElfLinksTest {
  /** Reads from {@code bytes}, counting what was asked for in {@code asked}. */
  private static ElfLinks.Bytes of(byte[] bytes, AtomicLong asked) {
    return (offset, length) -> {
      asked.addAndGet(length);
      int from = (int) Math.min(offset, bytes.length);
      return Arrays.copyOfRange(bytes, from, (int) Math.min(bytes.length, from + (long) length));
    };
  }

  private static ElfLinks read(byte[] bytes) throws IOException {
    return ElfLinks.read(of(bytes, new AtomicLong()), bytes.length, false);
  }

  /**
   * What {@code readelf} (binutils) says a host file's interpreter, needed libraries and paths are.
   */
  private static ElfLinks readelf(Path file) throws Exception {
    Process p = new ProcessBuilder("readelf", "-lWd", file.toString()).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), "readelf " + file);
    Matcher interp = Pattern.compile("Requesting program interpreter: ([^\\]]+)\\]").matcher(out);
    List<String> needed = new ArrayList<>();
    Matcher m = Pattern.compile("\\(NEEDED\\)\\s+Shared library: \\[([^\\]]+)\\]").matcher(out);
    while (m.find()) {
      needed.add(m.group(1));
    }
    List<String> paths = new ArrayList<>();
    Matcher r =
        Pattern.compile("\\((?:RUNPATH|RPATH)\\)\\s+Library r(?:un)?path: \\[([^\\]]+)\\]")
            .matcher(out);
    while (r.find()) {
      paths.addAll(List.of(r.group(1).split(":")));
    }
    return new ElfLinks(ElfFiles.EM_X86_64, interp.find() ? interp.group(1) : null, needed, paths);
  }

  @Test
  void read_hostProgramsAndLibraries_agreeWithReadelf() throws Exception {
    List<Path> files = new ArrayList<>();
    for (String name :
        List.of("/bin/sh", "/bin/cat", "/usr/bin/python3", "/usr/bin/curl", "/bin/ls")) {
      Path p = Path.of(name);
      if (Files.exists(p)) {
        files.add(p.toRealPath());
      }
    }
    try (var libs = Files.list(Path.of("/usr/lib/x86_64-linux-gnu"))) {
      libs.filter(p -> p.getFileName().toString().matches("lib(c|m|z|ssl|crypto)\\.so\\.[0-9.]+"))
          .filter(Files::isRegularFile)
          .forEach(files::add);
    }
    assertTrue(files.size() >= 4, "host ELF files: " + files);
    for (Path f : files) {
      byte[] bytes = Files.readAllBytes(f);
      AtomicLong asked = new AtomicLong();
      ElfLinks links = ElfLinks.read(of(bytes, asked), bytes.length, false);
      ElfLinks expected = readelf(f);
      assertEquals(expected.interpreter(), links.interpreter(), f.toString());
      assertEquals(expected.needed(), links.needed(), f.toString());
      assertEquals(expected.searchPaths(), links.searchPaths(), f.toString());
      assertEquals(ElfFiles.EM_X86_64, links.machine(), f.toString());
      assertTrue(asked.get() < 256 << 10, f + ": read " + asked.get() + " bytes of headers");
    }
  }

  @Test
  void read_madeToOrder_bothClassesAndByteOrders() throws Exception {
    for (boolean wide : new boolean[] {true, false}) {
      for (ByteOrder order : List.of(ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN)) {
        byte[] elf =
            ElfFiles.build(
                wide,
                order,
                ElfFiles.EM_PPC,
                "/lib/ld.so.1",
                List.of("liba.so.1", "libb.so.2"),
                "/opt/lib:$ORIGIN/../lib",
                8192);
        ElfLinks links = read(elf);
        String what = (wide ? "64" : "32") + " bit " + order;
        assertEquals("/lib/ld.so.1", links.interpreter(), what);
        assertEquals(List.of("liba.so.1", "libb.so.2"), links.needed(), what);
        assertEquals(List.of("/opt/lib", "$ORIGIN/../lib"), links.searchPaths(), what);
        assertEquals(ElfFiles.EM_PPC, links.machine(), what);
        // The file's own absolute path first, $ORIGIN left out, then the usual directories.
        assertEquals(
            List.of("/opt/lib", "/lib64", "/usr/lib64", "/lib", "/usr/lib"),
            links.libraryDirectories(),
            what);

        ElfLinks first = ElfLinks.read(of(elf, new AtomicLong()), elf.length, true);
        assertEquals("/lib/ld.so.1", first.interpreter(), what);
        assertEquals(List.of(), first.needed(), what + ": the interpreter only");
      }
    }
  }

  @Test
  void libraryDirectories_x86_64_startWithTheMultiarchDirectories() throws Exception {
    ElfLinks links = read(ElfFiles.x86_64(List.of("libz.so.1"), 4096));
    assertNull(links.interpreter());
    assertEquals(
        List.of(
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib"),
        links.libraryDirectories());
  }

  @Test
  void read_notElf_orTooShort_isNone() throws Exception {
    assertSame(ElfLinks.NONE, read("#!/bin/sh\necho hi\n".getBytes(StandardCharsets.UTF_8)));
    assertSame(ElfLinks.NONE, read(new byte[0]));
    assertSame(ElfLinks.NONE, read(new byte[] {0x7f, 'E', 'L', 'F', 2, 1}));
    assertFalse(ElfLinks.isElf(new byte[] {0x7f, 'E', 'L'}, 0, 3));
  }

  /**
   * A file whose thousands of needed entries all name one name of a megabyte, or that names more
   * libraries than anything real, or whose program header table is huge, yields bounded results:
   * names longer than a path are skipped, at most {@link ElfLinks#MAX_NAMES} are kept.
   */
  @Test
  void read_hostileCounts_areBounded() throws Exception {
    byte[] longName =
        ElfFiles.build(
            true,
            ByteOrder.LITTLE_ENDIAN,
            ElfFiles.EM_X86_64,
            null,
            List.of("a".repeat(1 << 20)),
            null,
            (1 << 20) + 200_000,
            4094);
    ElfLinks links = read(longName);
    assertEquals(List.of(), links.needed(), "a name longer than a path is skipped");

    List<String> many = new ArrayList<>();
    for (int i = 0; i < 1000; i++) {
      many.add("lib" + i + ".so");
    }
    byte[] manyNames = ElfFiles.x86_64(many, 64 << 10);
    assertEquals(many.subList(0, ElfLinks.MAX_NAMES), read(manyNames).needed());

    byte[] hugeTable = manyNames.clone();
    ByteBuffer b = ByteBuffer.wrap(hugeTable).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort(54, (short) 0xffff); // e_phentsize
    b.putShort(56, (short) 256); // e_phnum
    hugeTable = Arrays.copyOf(hugeTable, 20 << 20);
    AtomicLong asked = new AtomicLong();
    assertSame(ElfLinks.NONE, ElfLinks.read(of(hugeTable, asked), hugeTable.length, false));
    assertTrue(asked.get() <= 64, "read " + asked.get() + " bytes");
  }

  /**
   * Headers that do not hold together (cut short, bytes overwritten, counts and offsets out of
   * bounds) give whatever can be read, or nothing: never an exception, never a large read.
   */
  @Test
  void read_brokenHeaders_neverThrowNorReadMuch() throws Exception {
    byte[] good =
        ElfFiles.build(
            true,
            ByteOrder.LITTLE_ENDIAN,
            ElfFiles.EM_X86_64,
            "/lib64/ld-linux-x86-64.so.2",
            List.of("libc.so.6"),
            null,
            16384);
    Random random = new Random(7);
    for (int i = 0; i < 2_000; i++) {
      byte[] bad = good.clone();
      if (i % 4 == 0) {
        bad = Arrays.copyOf(bad, random.nextInt(bad.length));
      }
      int flips = 1 + random.nextInt(8);
      for (int f = 0; f < flips && bad.length > 4; f++) {
        // Mostly the headers and the dynamic segment, where the offsets and counts are.
        int at =
            random.nextBoolean()
                ? 4 + random.nextInt(Math.min(300, bad.length - 4))
                : Math.max(4, bad.length - 1 - random.nextInt(Math.min(200, bad.length - 4)));
        bad[at] = (byte) random.nextInt(256);
      }
      if (i % 7 == 0 && bad.length > 64) {
        ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putShort(56, (short) 0xffff);
      }
      AtomicLong asked = new AtomicLong();
      ElfLinks.read(of(bad, asked), bad.length, false);
      assertTrue(asked.get() <= 2 << 20, "case " + i + " read " + asked.get() + " bytes");
    }
  }
}
