package dev.puzzlefs.reader;

import static dev.puzzlefs.testing.FakeImage.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.testing.FakeImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrefetchListTest {
  @TempDir Path tmp;

  private static byte[] random(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static String text(PrefetchList.Entry e) {
    return new String(e.path(), StandardCharsets.UTF_8);
  }

  @Test
  void parse_pathsRangesCommentsAndTabsInNames() {
    byte[] list =
        utf8(
            "# recorded\n"
                + "/etc/passwd\n"
                + "\n"
                + "  \n"
                + "/usr/lib/libc.so.6\t0+100,200+50\n"
                + "/odd\tname\n"
                + "/big\t99999999999999999999+1\n"
                + "/last");
    List<PrefetchList.Entry> entries = PrefetchList.parse(list);

    assertEquals(5, entries.size());
    assertEquals("/etc/passwd", text(entries.get(0)));
    assertNull(entries.get(0).ranges());
    assertEquals("/usr/lib/libc.so.6", text(entries.get(1)));
    assertArrayEquals(new long[] {0, 100, 200, 50}, entries.get(1).ranges());
    assertEquals("/odd\tname", text(entries.get(2)), "not a range list: the tab is the name's");
    assertEquals("/big\t99999999999999999999+1", text(entries.get(3)), "too large for a range");
    assertEquals("/last", text(entries.get(4)), "a last line without a newline counts");
  }

  @Test
  void write_thenRead_sameEntries_andNoTemporaryFileLeft() throws Exception {
    List<PrefetchList.Entry> entries =
        List.of(
            new PrefetchList.Entry(utf8("/a"), null),
            new PrefetchList.Entry(utf8("/b c"), new long[] {0, 10, 65536, 4096}));
    Path file = tmp.resolve("list");
    Files.writeString(file, "old\n");

    PrefetchList.write(file, "first line\nsecond line", entries);

    assertEquals(
        "# first line\n# second line\n/a\n/b c\t0+10,65536+4096\n", Files.readString(file));
    List<PrefetchList.Entry> back = PrefetchList.read(file, "--prefetch-list");
    assertEquals(2, back.size());
    assertEquals("/b c", text(back.get(1)));
    assertArrayEquals(new long[] {0, 10, 65536, 4096}, back.get(1).ranges());
    try (var files = Files.list(tmp)) {
      assertEquals(List.of(file), files.toList());
    }
  }

  @Test
  void write_newListFollowsTheUmask_aReplacedOneKeepsItsPermissions() throws Exception {
    List<PrefetchList.Entry> entries = List.of(new PrefetchList.Entry(utf8("/a"), null));
    int umask = 022;
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("Umask:")) {
        umask = Integer.parseInt(line.substring(6).strip(), 8);
      }
    }
    String expected = "";
    int mode = 0666 & ~umask;
    for (int bit = 8; bit >= 0; bit--) {
      expected += (mode & (1 << bit)) != 0 ? "rwx".charAt((8 - bit) % 3) : '-';
    }
    Path fresh = tmp.resolve("fresh.list");
    PrefetchList.write(fresh, "h", entries);
    assertEquals(
        expected,
        java.nio.file.attribute.PosixFilePermissions.toString(
            Files.getPosixFilePermissions(fresh)));

    Path shared = tmp.resolve("shared.list");
    Files.writeString(shared, "old\n");
    Files.setPosixFilePermissions(
        shared, java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-r--"));
    PrefetchList.write(shared, "h", entries);
    assertEquals(
        "rw-rw-r--",
        java.nio.file.attribute.PosixFilePermissions.toString(
            Files.getPosixFilePermissions(shared)));
  }

  @Test
  void write_withChunks_thenLoad_sameChunks_andOldReadersSeeComments() throws Exception {
    Digest a = Digest.sha256(utf8("a"), 0, 1);
    Digest b = Digest.sha256(utf8("b"), 0, 1);
    Path file = tmp.resolve("list");

    PrefetchList.write(file, "h", List.of(new PrefetchList.Entry(utf8("/a"), null)), List.of(a, b));

    String text = Files.readString(file);
    assertTrue(text.endsWith("#chunk " + a + "\n#chunk " + b + "\n"), text);
    PrefetchList.Contents back = PrefetchList.load(file, "--prefetch-list");
    assertEquals(List.of(a, b), back.chunks());
    assertEquals(1, back.entries().size(), "the chunk lines are no paths");
    assertEquals(1, PrefetchList.parse(Files.readAllBytes(file)).size());
  }

  @Test
  void contents_malformedChunkLine_isAComment() {
    Digest a = Digest.sha256(utf8("a"), 0, 1);
    PrefetchList.Contents c =
        PrefetchList.contents(
            utf8(
                "#chunk sha256:xyz\n#chunk "
                    + a.hex()
                    + "\n#chunks of the list\n#chunk "
                    + a
                    + "\r\n/p\n"));

    assertEquals(List.of(a), c.chunks());
    assertEquals(1, c.entries().size());
  }

  @Test
  void read_missingFile_namesOptionAndFile() {
    Path absent = tmp.resolve("absent");
    IOException e =
        assertThrows(IOException.class, () -> PrefetchList.read(absent, "--prefetch-list"));
    assertEquals("cannot read --prefetch-list " + absent + ": no such file", e.getMessage());
  }

  @Test
  void checkWritable_missingDirectoryOrADirectory_failsNamingTheOption() throws Exception {
    IOException noDir =
        assertThrows(
            IOException.class,
            () ->
                PrefetchList.checkWritable(tmp.resolve("no/such/list"), "--record-prefetch-list"));
    assertTrue(
        noDir.getMessage().startsWith("cannot write --record-prefetch-list "), noDir.getMessage());
    IOException dir =
        assertThrows(
            IOException.class, () -> PrefetchList.checkWritable(tmp, "--record-prefetch-list"));
    assertTrue(dir.getMessage().endsWith("it is a directory"), dir.getMessage());
    PrefetchList.checkWritable(tmp.resolve("fine"), "--record-prefetch-list");
    PrefetchList.checkWritable(null, "--record-prefetch-list");
  }

  @Test
  void parse_thousandsOfRangesOnALine_crlfAndRangesThatWantNothingOrEverything() {
    StringBuilder line = new StringBuilder("/sparse\t");
    for (int i = 0; i < 20_000; i++) {
      line.append(i == 0 ? "" : ",").append(i * 524_288L).append("+1");
    }
    List<PrefetchList.Entry> entries =
        PrefetchList.parse(
            utf8(line + "\r\n/crlf\r\n/empty\t100+0\n/huge\t5+999999999999999999\n"));

    assertEquals(4, entries.size());
    assertEquals(40_000, entries.get(0).ranges().length);
    assertTrue(entries.get(0).wants(524_288L * 19_999, 524_288L * 19_999 + 1));
    assertEquals("/crlf", text(entries.get(1)), "a CR before the newline is no part of the path");
    assertFalse(entries.get(2).wants(0, 1_000), "a range of length 0 wants nothing");
    assertTrue(entries.get(3).wants(1L << 50, (1L << 50) + 1), "far into any file");
    assertEquals(
        "/a\\x01b\\x1b[31m\\xff",
        new PrefetchList.Entry(
                new byte[] {'/', 'a', 1, 'b', 27, '[', '3', '1', 'm', (byte) 0xff}, null)
            .printable());
  }

  @Test
  @org.junit.jupiter.api.Timeout(30)
  void read_fifoOrOversizedList_failsAtOnceNamingTheFile() throws Exception {
    Path fifo = tmp.resolve("fifo");
    assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
    IOException e =
        assertThrows(IOException.class, () -> PrefetchList.read(fifo, "--prefetch-list"));
    assertEquals(
        "cannot read --prefetch-list " + fifo + ": it is not a regular file", e.getMessage());

    Path big = tmp.resolve("big");
    try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(big.toFile(), "rw")) {
      f.setLength(PrefetchList.MAX_BYTES + 1); // sparse: no disk used
    }
    e = assertThrows(IOException.class, () -> PrefetchList.read(big, "--prefetch-list"));
    assertTrue(e.getMessage().startsWith("cannot read --prefetch-list " + big), e.getMessage());
    assertTrue(e.getMessage().contains("at most " + PrefetchList.MAX_BYTES), e.getMessage());
  }

  @Test
  void write_neverReplacesAFifoOrALink_writesThroughTheLink() throws Exception {
    Path fifo = tmp.resolve("fifo");
    assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
    IOException e =
        assertThrows(
            IOException.class, () -> PrefetchList.checkWritable(fifo, "--record-prefetch-list"));
    assertTrue(e.getMessage().endsWith("it is not a regular file"), e.getMessage());
    assertThrows(IOException.class, () -> PrefetchList.write(fifo, "h", List.of()));
    assertTrue(
        Files.readAttributes(fifo, java.nio.file.attribute.BasicFileAttributes.class).isOther(),
        "the FIFO is still a FIFO");

    Path real = tmp.resolve("real.list");
    Path link = Files.createSymbolicLink(tmp.resolve("link.list"), real.getFileName());
    PrefetchList.checkWritable(link, "--record-prefetch-list");
    PrefetchList.write(link, "h", List.of(new PrefetchList.Entry(utf8("/a"), null)));
    assertTrue(Files.isSymbolicLink(link), "the link is still a link");
    assertEquals("# h\n/a\n", Files.readString(real));

    Path dangling = Files.createSymbolicLink(tmp.resolve("dangling"), tmp.resolve("nowhere/x"));
    e =
        assertThrows(
            IOException.class,
            () -> PrefetchList.checkWritable(dangling, "--record-prefetch-list"));
    assertTrue(e.getMessage().contains("no directory " + tmp.resolve("nowhere")), e.getMessage());
  }

  /**
   * What the recorder writes for partly and wholly read files, in first-read order and under their
   * paths, is what a prefetcher given that list fetches: exactly the chunks the reads needed.
   */
  @Test
  void recorder_listsWhatWasRead_andThePrefetcherFetchesExactlyThoseChunks() throws Exception {
    FakeImage fake = new FakeImage(1000);
    fake.dir("/lib");
    long big = fake.file("/lib/big", random(10_000, 1));
    long small = fake.file("/etc-small", random(300, 2));
    fake.file("/unread", random(5_000, 3));
    Map<Digest, byte[]> blobs = fake.blobs();
    Image image =
        fake.open(b -> CompletableFuture.completedFuture(blobs.get(b)), Duration.ofSeconds(5));
    ReadRecorder recorder = new ReadRecorder();
    image.recordReads(recorder);

    image.read(small, 0, new byte[300], 0, 300);
    image.read(big, 2500, new byte[10], 0, 10); // inside the file's 3rd chunk
    image.read(big, 9_990, new byte[10], 0, 10); // its last
    image.read(big, 2600, new byte[1], 0, 1); // the same chunk again: nothing new

    List<PrefetchList.Entry> entries = recorder.entries(image);
    assertEquals(2, entries.size());
    assertEquals("/etc-small", text(entries.get(0)));
    assertNull(entries.get(0).ranges(), "every chunk of it was read: the whole file");
    assertEquals("/lib/big", text(entries.get(1)));
    List<FileChunk> chunks = image.inode(big).chunks();
    long[] ends = new long[chunks.size()];
    long sum = 0;
    for (int i = 0; i < ends.length; i++) {
      sum += chunks.get(i).len();
      ends[i] = sum;
    }
    int third = 0;
    while (ends[third] <= 2500) {
      third++;
    }
    int last = chunks.size() - 1;
    long thirdStart = third == 0 ? 0 : ends[third - 1];
    assertArrayEquals(
        new long[] {thirdStart, chunks.get(third).len(), ends[last - 1], chunks.get(last).len()},
        entries.get(1).ranges());

    Path file = tmp.resolve("recorded");
    recorder.write(image, file, "test");
    // The chunks, by digest, in the order of the files first read and each file's chunk order.
    List<Digest> inOrder = new ArrayList<>();
    image.inode(small).chunks().forEach(c -> inOrder.add(c.blob()));
    inOrder.add(chunks.get(third).blob());
    inOrder.add(chunks.get(last).blob());
    assertEquals(
        inOrder.stream().distinct().toList(), PrefetchList.load(file, "--prefetch-list").chunks());
    List<Digest> asked = Collections.synchronizedList(new ArrayList<>());
    Image fresh = openRecording(fake, asked);
    Prefetcher p =
        Prefetcher.plan(fresh, PrefetchList.read(file, "--prefetch-list"), false, 4).start();
    p.done().get(10, TimeUnit.SECONDS);

    Set<Digest> expected = new HashSet<>();
    image.inode(small).chunks().forEach(c -> expected.add(c.blob()));
    expected.add(chunks.get(third).blob());
    expected.add(chunks.get(last).blob());
    assertEquals(expected, new HashSet<>(asked));
    assertEquals(expected.size(), asked.size(), "each chunk once: " + asked);
    assertEquals((long) expected.size(), fresh.stats().get("prefetchFetched"));

    // The same reads again follow the list: they read nothing ahead of it.
    asked.clear();
    fresh.read(small, 0, new byte[300], 0, 300);
    fresh.read(big, 2500, new byte[10], 0, 10);
    fresh.read(big, 9_990, new byte[10], 0, 10);
    assertEquals(0L, fresh.stats().get("readaheadChunks"));
    assertTrue(expected.containsAll(asked), "only planned chunks: " + asked);
    // A read the list did not foresee reads ahead as usual.
    fresh.read(big, 0, new byte[10], 0, 10);
    assertTrue(fresh.stats().get("readaheadChunks") > 0, fresh.stats().toString());
  }

  @Test
  void prefetcher_listedPathMissingFromImage_isSkipped() throws Exception {
    FakeImage fake = new FakeImage(1000);
    fake.file("/here", random(2000, 4));
    Map<Digest, byte[]> blobs = fake.blobs();
    Image image =
        fake.open(b -> CompletableFuture.completedFuture(blobs.get(b)), Duration.ofSeconds(5));
    List<PrefetchList.Entry> list = PrefetchList.parse(utf8("/gone\n/here\n"));

    Prefetcher p = Prefetcher.plan(image, list, false, 4).start();
    p.done().get(10, TimeUnit.SECONDS);

    assertEquals(
        (long) image.inode(image.resolve(utf8("/here")).ino()).chunks().size(),
        image.stats().get("prefetchFetched"));
    assertEquals(0L, image.stats().get("prefetchFailed"));
  }

  @Test
  void prefetcher_warnings_sayWhatIsWrong_malformedRangesIncluded_withoutClassNames()
      throws Exception {
    FakeImage fake = new FakeImage(1000);
    fake.file("/here", random(2000, 4));
    Map<Digest, byte[]> blobs = fake.blobs();
    Image image =
        fake.open(b -> CompletableFuture.completedFuture(blobs.get(b)), Duration.ofSeconds(5));
    List<PrefetchList.Entry> list =
        PrefetchList.parse(
            utf8("/gone\n/here\t0+10,\n/here\t0+99999999999999999999\n/here/x\n/here\n"));
    List<String> logged = prefetchWarnings(image, list, "--prefetch-list L");
    String warnings = String.join("\n", logged);

    assertTrue(
        warnings.contains("--prefetch-list L: /gone is not in the image; skipped"), warnings);
    assertTrue(warnings.contains("/here: malformed byte ranges '0+10,'"), warnings);
    assertTrue(
        warnings.contains("/here: malformed byte ranges '0+99999999999999999999'"), warnings);
    assertTrue(warnings.contains("/here/x is not in the image"), warnings);
    assertFalse(warnings.contains("Exception"), warnings);
    assertEquals(4, logged.size(), warnings);
  }

  /**
   * A list written by hand names paths as a program in the image sees them: links in the middle
   * ({@code /bin} of a merged-usr tree) and at the end ({@code python3}) are followed inside the
   * image, an absolute target from the image's root and {@code ..} never above it; a loop of links
   * and a dangling link are reported and skipped.
   */
  @Test
  void prefetcher_followsSymbolicLinksInsideTheImage() throws Exception {
    FakeImage fake = new FakeImage(1000);
    fake.dir("/usr");
    fake.dir("/usr/bin");
    fake.dir("/usr/lib");
    long python = fake.file("/usr/bin/python3.11", random(3000, 5));
    long lib = fake.file("/usr/lib/libx.so", random(2500, 6));
    fake.file("/usr/bin/other", random(2000, 7));
    fake.symlink("/usr/bin/python3", utf8("python3.11"));
    fake.symlink("/bin", utf8("usr/bin"));
    fake.symlink("/lib", utf8("/usr/lib"));
    fake.symlink("/up", utf8("../../../usr/bin/python3"));
    fake.symlink("/loop", utf8("loop"));
    fake.symlink("/dangling", utf8("/usr/nowhere"));
    List<Digest> asked = Collections.synchronizedList(new ArrayList<>());
    Image image = openRecording(fake, asked);
    List<PrefetchList.Entry> list =
        PrefetchList.parse(
            utf8("/bin/python3\n/lib\n/up\n/loop\n/dangling\n/bin/../lib/libx.so\n"));
    List<String> logged = prefetchWarnings(image, list, "L");

    assertEquals(python, image.resolveFollowingLinks(utf8("/up")).ino());
    assertEquals(lib, image.resolveFollowingLinks(utf8("/bin/../lib/libx.so")).ino());
    Set<Digest> expected = new HashSet<>();
    image.inode(python).chunks().forEach(c -> expected.add(c.blob()));
    image.inode(lib).chunks().forEach(c -> expected.add(c.blob()));
    assertEquals(expected, new HashSet<>(asked));
    String warnings = String.join("\n", logged);
    assertTrue(
        warnings.contains(
            "L: /loop cannot be resolved in the image: more than 40 symbolic links; skipped"),
        warnings);
    assertTrue(warnings.contains("L: /dangling is not in the image; skipped"), warnings);
    assertEquals(2, logged.size(), warnings);
  }

  /** What the prefetcher logged while it planned and fetched {@code list} (named {@code name}). */
  private static List<String> prefetchWarnings(
      Image image, List<PrefetchList.Entry> list, String name) throws Exception {
    ch.qos.logback.classic.Logger logger =
        (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(Prefetcher.class);
    ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> captured =
        new ch.qos.logback.core.read.ListAppender<>();
    captured.start();
    logger.addAppender(captured);
    try {
      Prefetcher.plan(image, list, name, false, 4).start().done().get(10, TimeUnit.SECONDS);
    } finally {
      logger.detachAppender(captured);
    }
    return captured.list.stream()
        .map(ch.qos.logback.classic.spi.ILoggingEvent::getFormattedMessage)
        .toList();
  }

  /**
   * {@code fake} over an in-memory source that adds each chunk it is asked for to {@code asked}.
   */
  private static Image openRecording(FakeImage fake, List<Digest> asked) throws Exception {
    Map<Digest, byte[]> blobs = fake.blobs();
    return fake.open(
        b -> {
          asked.add(b);
          return CompletableFuture.completedFuture(blobs.get(b));
        },
        Duration.ofSeconds(5));
  }
}
