package dev.puzzlefs.fuse;

import static dev.puzzlefs.testing.FakeImage.utf8;
import static dev.puzzlefs.testing.FuseTesting.bash;
import static dev.puzzlefs.testing.FuseTesting.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.FuseTesting;
import dev.puzzlefs.testing.FuseTesting.Result;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** One image with every kind of entry, mounted once and looked at with java.nio and the shell. */
@Tag("fuse")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PuzzleFsTest {
  private static final int CHUNK = 1000;
  private static final int MANY = 5000;
  private static final byte[] BAD_NAME = {'b', 'a', 'd', (byte) 0xff, 'n', 'a', 'm', 'e'};

  @TempDir static Path tmp;
  private Path mnt;
  private Mount mount;
  private final Map<String, byte[]> contents = new HashMap<>();
  private final Map<String, Long> inos = new HashMap<>();
  private final FakeImage fake = new FakeImage(CHUNK);

  private static byte[] random(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private void file(String path, byte[] content) {
    inos.put(path, fake.file(path, content));
    contents.put(path, content);
  }

  @BeforeAll
  void mountImage() throws Exception {
    FuseTesting.assumeFuse();
    file("/hello.txt", utf8("hello world\n"));
    file("/one", random(1500, 1));
    file("/empty", new byte[0]);
    file("/two", random(700, 2));
    file("/big", random(2500, 3));
    inos.put("/dangling", fake.symlink("/dangling", utf8("does/not/exist")));
    fake.symlink("/longest", utf8("l".repeat(4095)));
    fake.symlink("/path-max", utf8("p".repeat(4096)));
    fake.symlink("/too-long", utf8("t".repeat(5000)));
    fake.dir("/dir");
    file("/target", utf8("linked\n"));
    fake.hardlink("/dir/hard", inos.get("/target"));
    file("/café", utf8("accent\n"));
    file("/naïve", utf8("diaeresis\n"));
    inos.put("bad", fake.file(join("/", BAD_NAME), utf8("bad\n")));
    file("/owned", utf8("owned\n"));
    fake.owner(inos.get("/owned"), 65536, (int) 4294967294L);
    file("/secret", utf8("s\n"));
    fake.permissions(inos.get("/secret"), 0600);
    inos.put("/tty", fake.special("/tty", InodeKind.CHR, 259, 300));
    inos.put("/fifo", fake.special("/fifo", InodeKind.FIFO, 0, 0));
    fake.xattr(inos.get("/hello.txt"), "user.greeting", utf8("hi there"));
    fake.xattr(inos.get("/hello.txt"), "user.empty", new byte[0]);
    inos.put("/many", fake.dir("/many"));
    for (int i = 0; i < MANY; i++) {
      String name = String.format("/many/entry-%05d", i);
      inos.put(name, fake.file(name, new byte[0]));
    }

    mnt = Files.createDirectory(tmp.resolve("mnt"));
    mount = Mounter.mount(fake.open(), mnt, List.of(), Mounter.DEFAULT_READY_TIMEOUT);
  }

  private static byte[] join(String prefix, byte[] name) {
    byte[] p = utf8(prefix);
    byte[] all = Arrays.copyOf(p, p.length + name.length);
    System.arraycopy(name, 0, all, p.length, name.length);
    return all;
  }

  @AfterAll
  void unmount() throws IOException {
    try {
      if (mount != null) {
        mount.close();
      }
    } finally {
      if (mnt != null) {
        FuseTesting.forceUnmount(mnt);
      }
    }
  }

  private Path at(String path) {
    return mnt.resolve(path.substring(1));
  }

  @Test
  void read_everyFile_matchesImageBytes() throws IOException {
    for (Map.Entry<String, byte[]> file : contents.entrySet()) {
      assertArrayEquals(file.getValue(), Files.readAllBytes(at(file.getKey())), file.getKey());
      assertEquals(file.getValue().length, Files.size(at(file.getKey())), file.getKey());
    }
  }

  @Test
  void read_fileWhoseLastChunkIsShared_endsExactlyAtItsSize() throws Exception {
    byte[] one = contents.get("/one");
    try (FileChannel channel = FileChannel.open(at("/one"))) {
      ByteBuffer buf = ByteBuffer.allocate(100);
      assertEquals(1, channel.read(buf, one.length - 1));
      assertEquals(one[one.length - 1], buf.get(0));
      buf.clear();
      assertEquals(-1, channel.read(buf, one.length));
    }
    Result dd = run("dd", "if=" + at("/one"), "bs=1", "skip=" + one.length, "status=none");
    assertEquals(0, dd.status(), dd.stderr());
    assertEquals(0, dd.stdout().length);
  }

  @Test
  void read_emptyFileBetweenOthers_isEmpty() throws IOException {
    assertEquals(0, Files.size(at("/empty")));
    assertEquals(0, Files.readAllBytes(at("/empty")).length);
    assertArrayEquals(contents.get("/two"), Files.readAllBytes(at("/two")));
  }

  @Test
  void read_threeChunkFileAtOddOffsets_matches() throws IOException {
    byte[] big = contents.get("/big");
    try (FileChannel channel = FileChannel.open(at("/big"), StandardOpenOption.READ)) {
      int[][] cases = {{0, 1}, {1, 999}, {667, 1}, {999, 1003}, {1333, 1167}, {2499, 7}, {3, 2497}};
      for (int[] c : cases) {
        ByteBuffer buf = ByteBuffer.allocate(c[1]);
        int n = channel.read(buf, c[0]);
        int expected = Math.min(c[1], big.length - c[0]);
        assertEquals(expected, n, "offset " + c[0]);
        assertArrayEquals(
            Arrays.copyOfRange(big, c[0], c[0] + expected),
            Arrays.copyOf(buf.array(), n),
            "offset " + c[0]);
      }
    }
  }

  @Test
  void read_threeChunkFileWithCatAndDd_matches() throws Exception {
    Result cat = run("cat", at("/big").toString());
    assertEquals(0, cat.status(), cat.stderr());
    assertArrayEquals(contents.get("/big"), cat.stdout());

    Result dd = run("dd", "if=" + at("/big"), "bs=1M", "status=none");
    assertEquals(0, dd.status(), dd.stderr());
    assertArrayEquals(contents.get("/big"), dd.stdout());

    Result skip = run("dd", "if=" + at("/big"), "bs=333", "skip=3", "status=none");
    assertArrayEquals(Arrays.copyOfRange(contents.get("/big"), 999, 2500), skip.stdout());
  }

  @Test
  void symlink_dangling_listedAndReadlinkExact() throws Exception {
    Path link = at("/dangling");
    assertTrue(Files.isSymbolicLink(link));
    assertEquals(Path.of("does/not/exist"), Files.readSymbolicLink(link));
    Result readlink = run("readlink", link.toString());
    assertEquals("does/not/exist\n", readlink.out());
    Result ls = run("ls", "-l", mnt.toString());
    assertTrue(ls.out().contains("dangling -> does/not/exist"), ls.out());
    assertEquals(
        14L, Files.readAttributes(link, "unix:size", LinkOption.NOFOLLOW_LINKS).get("size"));
  }

  @Test
  void symlink_targetLongerThanLinuxTakes_readlinkSaysNameTooLong() throws Exception {
    String script =
        "import errno, os, sys\n"
            + "for name in sys.argv[1:]:\n"
            + "    try:\n"
            + "        print(name, len(os.readlink(name)))\n"
            + "    except OSError as e:\n"
            + "        print(name, errno.errorcode[e.errno])\n";
    String dir = mnt.toString();
    Result python =
        run("python3", "-c", script, dir + "/longest", dir + "/path-max", dir + "/too-long");

    assertEquals(
        List.of(
            dir + "/longest 4095", dir + "/path-max ENAMETOOLONG", dir + "/too-long ENAMETOOLONG"),
        python.lines());
  }

  @Test
  void hardLink_bothNames_oneInodeAndNlinkTwo() throws IOException {
    Object first = Files.getAttribute(at("/target"), "unix:ino");
    Object second = Files.getAttribute(at("/dir/hard"), "unix:ino");
    assertEquals(inos.get("/target"), first);
    assertEquals(first, second);
    assertEquals(2, Files.getAttribute(at("/target"), "unix:nlink"));
    assertEquals(2, Files.getAttribute(at("/dir/hard"), "unix:nlink"));
  }

  @Test
  void names_accentedAndNonUtf8_listedAndReadExactly() throws Exception {
    assertArrayEquals(utf8("accent\n"), Files.readAllBytes(at("/café")));
    assertArrayEquals(utf8("diaeresis\n"), Files.readAllBytes(at("/naïve")));

    Result ls = bash("ls -f " + mnt + " | od -An -tx1 | tr -d ' \\n'");
    assertTrue(ls.out().contains("626164ff6e616d65"), "no raw 'bad\\xffname' in " + ls.out());
    assertTrue(ls.out().contains("636166c3a9"), "no 'café' bytes in " + ls.out());

    Result cat = bash("cat " + mnt + "/bad$'\\xff'name");
    assertEquals(0, cat.status(), cat.stderr());
    assertEquals("bad\n", cat.out());
    Result stat = bash("stat -c %i " + mnt + "/bad$'\\xff'name");
    assertEquals(String.valueOf(inos.get("bad")), stat.out().strip());
    Result replaced = bash("cat " + mnt + "/bad$'\\xef\\xbf\\xbd'name");
    assertTrue(replaced.status() != 0, "the U+FFFD spelling must not find the 0xff name");

    // java.nio keeps the raw bytes of listed names too, so every listed entry opens.
    int regular = 0;
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(mnt)) {
      for (Path entry : entries) {
        if (Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS)) {
          Files.readAllBytes(entry);
          regular++;
        }
      }
    }
    assertEquals(contents.size() + 1, regular);
  }

  @Test
  void stat_largeUidAndGid_shownUnsigned() throws Exception {
    Result stat = run("stat", "-c", "%u %g", at("/owned").toString());
    assertEquals("65536 4294967294", stat.out().strip());
  }

  @Test
  void stat_permissionsAndTypes_matchImage() throws Exception {
    assertEquals(
        "rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(at("/secret"))));
    assertEquals(
        "rw-r--r--",
        PosixFilePermissions.toString(Files.getPosixFilePermissions(at("/hello.txt"))));
    Result stat = run("stat", "-c", "%F|%t|%T", at("/tty").toString(), at("/fifo").toString());
    assertEquals(List.of("character special file|103|12c", "fifo|0|0"), stat.lines());
    Result dirs = run("stat", "-c", "%F %h %i", mnt.toString(), at("/many").toString());
    assertEquals(List.of("directory 4 1", "directory 2 " + inos.get("/many")), dirs.lines());
    Result times = run("stat", "-c", "%X %Y %Z", at("/hello.txt").toString());
    assertEquals("0 0 0", times.out().strip());
  }

  @Test
  void readdir_5000Entries_eachOnceWithImageInodes() throws Exception {
    Result dupes = bash("ls -f " + at("/many") + " | sort | uniq -d");
    assertEquals(0, dupes.status(), dupes.stderr());
    assertEquals("", dupes.out());

    Result listing = run("ls", "-fi", at("/many").toString());
    Set<String> seen = new HashSet<>();
    for (String line : listing.lines()) {
      String[] parts = line.strip().split("\\s+");
      long ino = Long.parseLong(parts[0]);
      assertTrue(ino != 0, line);
      if (parts[1].equals(".")) {
        assertEquals(inos.get("/many"), ino);
      } else if (parts[1].equals("..")) {
        assertEquals(Image.ROOT_INO, ino);
      } else {
        assertEquals(inos.get("/many/" + parts[1]), ino, line);
      }
      seen.add(parts[1]);
    }
    assertEquals(MANY + 2, listing.lines().size());
    assertEquals(MANY + 2, seen.size());
  }

  @Test
  void xattrs_getAndList_followSizeConventions() throws Exception {
    String path = at("/hello.txt").toString();
    assertEquals("hi there", new String(Xattrs.get(path, "user.greeting"), StandardCharsets.UTF_8));
    assertEquals(0, Xattrs.get(path, "user.empty").length);
    assertEquals(8, Xattrs.size(path, "user.greeting"));
    assertEquals(Xattrs.ERANGE, Xattrs.getWithBuffer(path, "user.greeting", 3));
    assertEquals(Xattrs.ENODATA, Xattrs.getWithBuffer(path, "user.missing", 100));
    assertEquals(List.of("user.greeting", "user.empty"), Xattrs.list(path));
    assertEquals(List.of(), Xattrs.list(at("/two").toString()));

    Result python =
        run(
            "python3",
            "-c",
            "import os,sys\ntry:\n os.getxattr(sys.argv[1], 'user.missing')\n"
                + "except OSError as e:\n print(e.strerror)",
            path);
    assertEquals("No data available", python.out().strip());
  }

  @Test
  void writes_anyKind_failWithReadOnlyFileSystem() throws Exception {
    for (String script :
        List.of(
            "touch " + mnt + "/new",
            "mkdir " + mnt + "/newdir",
            "echo x > " + mnt + "/hello.txt",
            "echo x >> " + mnt + "/hello.txt",
            "rm " + mnt + "/hello.txt",
            "mv " + mnt + "/hello.txt " + mnt + "/moved",
            "ln -s x " + mnt + "/newlink",
            "chmod 777 " + mnt + "/hello.txt",
            "truncate -s 0 " + mnt + "/hello.txt")) {
      Result result = bash(script);
      assertTrue(result.status() != 0, script);
      assertTrue(
          result.stderr().contains("Read-only file system"), script + ": " + result.stderr());
    }
    FileSystemException e =
        assertThrows(FileSystemException.class, () -> Files.write(at("/hello.txt"), new byte[1]));
    assertTrue(String.valueOf(e.getReason()).contains("Read-only"), e.toString());
    assertArrayEquals(contents.get("/hello.txt"), Files.readAllBytes(at("/hello.txt")));
  }

  @Test
  void statfs_dfAndStatF_reportPlausibleNumbers() throws Exception {
    Result df = run("df", mnt.toString());
    assertEquals(0, df.status(), df.stderr());
    Result stat = run("stat", "-f", "-c", "%S %b %c %l %f", mnt.toString());
    long totalBytes = contents.values().stream().mapToLong(b -> b.length).sum() + "bad\n".length();
    String[] fields = stat.out().strip().split(" ");
    assertEquals("4096", fields[0]);
    assertEquals((totalBytes + 4095) / 4096, Long.parseLong(fields[1]));
    assertTrue(Long.parseLong(fields[2]) > MANY, stat.out());
    assertEquals("255", fields[3]);
    assertEquals("0", fields[4]);
    Result mounts = bash("grep ' " + mnt + " ' /proc/self/mountinfo");
    assertTrue(mounts.out().contains("fuse.puzzlefs puzzlefs ro"), mounts.out());
  }

  @Test
  void read_aroundChunkBoundariesInSmallPieces_matches() throws IOException {
    byte[] big = contents.get("/big");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (var in = Files.newInputStream(at("/big"))) {
      byte[] piece = new byte[77];
      int n;
      while ((n = in.read(piece)) > 0) {
        out.write(piece, 0, n);
      }
    }
    assertArrayEquals(big, out.toByteArray());
  }
}
