package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.Processes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The extractor over in-memory images: what it writes, and the images it refuses. */
class ExtractorTest {
  @TempDir Path tmp;

  private static int mode(Path p) throws IOException {
    return (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
  }

  private static Object ino(Path p) throws IOException {
    return Files.getAttribute(p, "unix:ino", LinkOption.NOFOLLOW_LINKS);
  }

  private static List<Path> list(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.toList();
    }
  }

  @Test
  void extractInto_filesSpanningChunks_bytesExactAndSummaryCounts() throws Exception {
    FakeImage fake = new FakeImage(1000);
    byte[] big = new byte[3_000_000]; // more than one read buffer
    new Random(3).nextBytes(big);
    fake.dir("/d");
    fake.file("/d/big", big);
    fake.file("/empty", new byte[0]);
    Path out = Files.createDirectory(tmp.resolve("out"));

    Extractor.Summary s = new Extractor(fake.open(), false).extractInto(out);

    assertArrayEquals(big, Files.readAllBytes(out.resolve("d/big")));
    assertEquals(0, Files.size(out.resolve("empty")));
    assertEquals(new Extractor.Summary(2, 2, big.length, 0, 0, 0, 0), s);
  }

  @Test
  void extractInto_fileOfMostlyZeros_writtenWithHolesAndExactBytes() throws Exception {
    FakeImage fake = new FakeImage(1 << 16);
    byte[] sparse = new byte[3 * (1 << 20) + 5000]; // ends in zeros past the last read buffer
    sparse[1] = 1; // one block of data at the start
    sparse[(1 << 20) - 1] = 2; // the last byte of one read buffer ...
    sparse[1 << 20] = 3; // ... and the first of the next
    sparse[2 * (1 << 20) + 4095] = 4; // the last byte of a block
    fake.file("/sparse", sparse);
    fake.file("/zeros", new byte[1 << 20]);
    Path out = Files.createDirectory(tmp.resolve("out"));

    new Extractor(fake.open(), false).extractInto(out);

    assertArrayEquals(sparse, Files.readAllBytes(out.resolve("sparse")));
    assertArrayEquals(new byte[1 << 20], Files.readAllBytes(out.resolve("zeros")));
    long allocated = allocatedBytes(out.resolve("sparse"));
    assertTrue(allocated <= 64 * 1024, "four 4 KiB blocks hold data, not " + allocated + " bytes");
    assertEquals(0, allocatedBytes(out.resolve("zeros")));
  }

  @Test
  void extractInto_pathLongerThanPathMax_madeWithEveryKindAndMetadata() throws Exception {
    FakeImage fake = new FakeImage(64);
    StringBuilder dir = new StringBuilder();
    for (char c = 'a'; c < 'a' + 17; c++) { // 17 levels of 256 bytes: beyond PATH_MAX
      dir.append('/').append(String.valueOf(c).repeat(255));
      fake.dir(dir.toString());
    }
    long file = fake.file(dir + "/file", FakeImage.utf8("deep\n"));
    fake.hardlink(dir + "/link", file);
    fake.hardlink("/near", file);
    fake.symlink(dir + "/sym", FakeImage.utf8("file"));
    fake.special(dir + "/fifo", InodeKind.FIFO, 0, 0);
    fake.permissions(file, 0640).xattr(file, "user.k", FakeImage.utf8("v"));
    Path out = Files.createDirectory(tmp.resolve("out"));
    try {
      new Extractor(fake.open(), false).extractInto(out);
      assertDeepTreeReadable(out);
    } finally {
      // The JDK cannot delete what it cannot name in one call; rm walks with descriptors.
      Processes.run(30, "rm", "-rf", out.toString());
    }
  }

  private static void assertDeepTreeReadable(Path out) throws Exception {
    // Reached the way a program must: one directory descriptor at a time.
    String script =
        "import os,stat,sys\n"
            + "fd=os.open(sys.argv[1],os.O_RDONLY)\n"
            + "for c in 'abcdefghijklmnopq': fd=os.open(c*255,os.O_RDONLY,dir_fd=fd)\n"
            + "f=os.open('file',os.O_RDONLY,dir_fd=fd)\n"
            + "st=os.stat(f)\n"
            + "print(os.read(f,100).decode(),oct(st.st_mode),st.st_nlink,"
            + "os.getxattr(f,'user.k').decode(),os.readlink('sym',dir_fd=fd),"
            + "stat.S_ISFIFO(os.stat('fifo',dir_fd=fd).st_mode))\n";
    assertEquals(
        "deep\n 0o100640 3 v file True\n",
        Processes.run(30, "python3", "-c", script, out.toString()).out());
    assertEquals("deep\n", Files.readString(out.resolve("near")));
  }

  /** What {@code stat} says the file occupies on disk. */
  private static long allocatedBytes(Path p) throws Exception {
    String[] blocks =
        Processes.run(10, "stat", "-c", "%b %B", p.toString()).out().trim().split(" ");
    return Long.parseLong(blocks[0]) * Long.parseLong(blocks[1]);
  }

  @Test
  void extractInto_socketFifoAndHardLinkedSymlink_madeAsTheirOwnKind() throws Exception {
    FakeImage fake = new FakeImage(64);
    fake.file("/target", FakeImage.utf8("t"));
    long link = fake.symlink("/s", FakeImage.utf8("target"));
    fake.hardlink("/s2", link);
    fake.special("/sock", InodeKind.SOCK, 0, 0);
    fake.special("/fifo", InodeKind.FIFO, 0, 0);
    Path out = Files.createDirectory(tmp.resolve("out"));

    Extractor.Summary s = new Extractor(fake.open(), false).extractInto(out);

    assertEquals(0140000, mode(out.resolve("sock")) & 0170000);
    assertEquals(0010000, mode(out.resolve("fifo")) & 0170000);
    assertTrue(Files.isSymbolicLink(out.resolve("s2")), "the link, not the file it names");
    assertEquals(ino(out.resolve("s")), ino(out.resolve("s2")));
    assertEquals(1, s.hardLinks());
    assertEquals(2, s.specialFiles());
  }

  @Test
  void extractInto_readOnlyDirectory_getsChildrenThenItsMode() throws Exception {
    FakeImage fake = new FakeImage(64);
    long ro = fake.dir("/ro");
    fake.permissions(ro, 0555);
    fake.dir("/ro/sub");
    fake.file("/ro/sub/f", FakeImage.utf8("x"));
    Path out = Files.createDirectory(tmp.resolve("out"));

    new Extractor(fake.open(), false).extractInto(out);

    assertEquals(0555, mode(out.resolve("ro")) & 07777);
    assertEquals("x", Files.readString(out.resolve("ro/sub/f")));
  }

  @Test
  void extractInto_entryNamedDotDot_refusedWithoutWritingOutside() throws Exception {
    FakeImage fake = new FakeImage(64);
    fake.dir("/d");
    fake.file("/d/..", FakeImage.utf8("escape"));
    Path out = Files.createDirectory(tmp.resolve("out"));

    // The image is refused when opened, before an extractor could write anything.
    FormatException e =
        assertThrows(
            FormatException.class, () -> new Extractor(fake.open(), false).extractInto(out));

    assertTrue(e.getMessage().contains("invalid entry name '..'"), e.getMessage());
    assertEquals(List.of(), list(out));
    assertEquals(List.of(out), list(tmp));
  }

  @Test
  void extractInto_directoryListedTwice_refusedInsteadOfLooping() throws Exception {
    FakeImage fake = new FakeImage(64);
    long d = fake.dir("/d");
    fake.hardlink("/d/again", d);
    Path out = Files.createDirectory(tmp.resolve("out"));

    FormatException e =
        assertThrows(
            FormatException.class, () -> new Extractor(fake.open(), false).extractInto(out));

    // Refused when the image is opened, before the extractor could loop over it.
    assertTrue(
        e.getMessage().contains("directory ino " + d + " is listed again as 'again'"),
        e.getMessage());
  }

  @Test
  void extractInto_corruptChunk_failsNamingFileAndBlob() throws Exception {
    FakeImage fake = new FakeImage(64);
    fake.file("/a", new byte[200]);
    Map<Digest, byte[]> blobs = fake.blobs();
    Digest bad = blobs.keySet().iterator().next();
    ChunkSource failing =
        blob ->
            blob.equals(bad)
                ? CompletableFuture.failedFuture(new IOException("chunk " + blob + " is corrupt"))
                : CompletableFuture.completedFuture(blobs.get(blob));
    Path out = Files.createDirectory(tmp.resolve("out"));
    Image image = fake.open(failing, Duration.ofSeconds(5));

    IOException e =
        assertThrows(IOException.class, () -> new Extractor(image, false).extractInto(out));

    assertTrue(e.getMessage().startsWith("cannot extract /a: "), e.getMessage());
    assertTrue(e.getMessage().contains(bad.toString()), e.getMessage());
  }

  @Test
  void extractInto_failureAfterAReadOnlyDirectory_leavesItPrivateAndRemovable() throws Exception {
    FakeImage fake = new FakeImage(64);
    long ro = fake.dir("/a-ro");
    fake.permissions(ro, 0500);
    fake.file("/a-ro/f", FakeImage.utf8("x"));
    fake.file("/b", new byte[100]);
    Map<Digest, byte[]> blobs = fake.blobs();
    Digest last = fake.rootfs().layers().get(0).get(3).chunks().get(1).blob();
    ChunkSource failing =
        blob ->
            blob.equals(last)
                ? CompletableFuture.failedFuture(new IOException("gone"))
                : CompletableFuture.completedFuture(blobs.get(blob));
    Path out = Files.createDirectory(tmp.resolve("out"));
    Image image = fake.open(failing, Duration.ofSeconds(5));

    assertThrows(IOException.class, () -> new Extractor(image, false).extractInto(out));

    assertEquals(0700, mode(out.resolve("a-ro")) & 07777);
    assertEquals("x", Files.readString(out.resolve("a-ro/f")));
  }

  @Test
  void extractInto_nonEmptyDirectory_refusedBeforeWriting() throws Exception {
    FakeImage fake = new FakeImage(64);
    fake.file("/a", FakeImage.utf8("a"));
    Path out = Files.createDirectory(tmp.resolve("out"));
    Files.writeString(out.resolve("mine"), "keep");

    IOException e =
        assertThrows(IOException.class, () -> new Extractor(fake.open(), false).extractInto(out));

    assertTrue(e.getMessage().endsWith("is not empty"), e.getMessage());
    assertEquals(List.of(out.resolve("mine")), list(out));
    assertFalse(Files.exists(out.resolve("a")));
  }
}
