package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.builder.RawNames;
import dev.puzzlefs.testing.FidelityTree;
import dev.puzzlefs.testing.FuseTesting;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.RawXattrs;
import dev.puzzlefs.testing.TreeSnapshot;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every kind of file a container root filesystem can hold ({@link FidelityTree}) goes through
 * {@code puzzlefs build}, then comes back through {@code puzzlefs mount} and through {@code
 * puzzlefs extract}; both must equal the source in everything {@code stat}, {@code readlink},
 * {@code getfattr} and {@code sha256sum} can see (times aside: the format has none) and in what
 * {@code rsync -aHAX --checksum} compares. The tree is built, mounted and extracted once for all
 * the checks.
 */
@Tag("e2e")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FidelityTest {
  /** Ino-sharing names, one group per line: hard links of every kind of non-directory. */
  private static final List<List<String>> LINK_GROUPS =
      List.of(
          List.of("hard-a", "dir/hard-b", "dir/sub/hard-c"),
          List.of("link-rel", "link-rel-hard"),
          List.of("link-dangling", "dir/link-dangling-hard"),
          List.of("fifo", "fifo-hard"),
          List.of("sock", "dir/sock-hard"),
          List.of("chr-null", "chr-null-hard"));

  private Path src;
  private Path mnt;
  private Path out;
  private TreeSnapshot source;

  @BeforeAll
  void buildMountAndExtract(@TempDir Path tmp) throws Exception {
    FuseTesting.assumeFuse();
    for (String tool : List.of("rsync", "getfattr", "setfattr", "python3", "mknod")) {
      assertEquals(
          0,
          Processes.exec(10, null, "sh", "-c", "command -v " + tool).exit(),
          tool + " is not installed (.ci/setup-debian installs it)");
    }
    src = Files.createDirectories(tmp.resolve("src"));
    mnt = Files.createDirectories(tmp.resolve("mnt"));
    out = tmp.resolve("out");
    Path oci = tmp.resolve("oci");
    int room = 4095 - FidelityTree.DEEP_PATH_LENGTH - 1;
    assertTrue(
        out.toString().length() <= room,
        "the deepest path under " + out + " would not fit in PATH_MAX; use a shorter TMPDIR");

    step("make the tree", () -> FidelityTree.make(src));
    step("build", () -> Cli.ok("build", src.toString(), oci.toString(), "fidelity"));
    step("mount", () -> Cli.ok("mount", oci.toString(), "fidelity", mnt.toString()));
    step("extract", () -> Cli.ok("extract", oci.toString(), "fidelity", out.toString()));
    step("snapshot the source", () -> source = TreeSnapshot.of(src));
  }

  @AfterAll
  void unmount() {
    Cli.unmountQuietly(mnt);
  }

  private interface Step {
    void run() throws Exception;
  }

  /** Runs one step of the setup and says how long it took, to show where time goes. */
  private static void step(String what, Step step) throws Exception {
    long start = System.nanoTime();
    step.run();
    System.out.printf("FidelityTest: %s took %.1f s%n", what, (System.nanoTime() - start) / 1e9);
  }

  // ---- The whole tree, as tools see it ----

  @Test
  void mount_matchesSourceInEverythingStatReadlinkGetfattrAndSha256See() throws Exception {
    assertEquals("", source.diff(TreeSnapshot.of(mnt), 20));
  }

  @Test
  void extract_matchesSourceInEverythingStatReadlinkGetfattrAndSha256See() throws Exception {
    assertEquals("", source.diff(TreeSnapshot.of(out), 20));
  }

  @Test
  void mount_rsyncWithChecksumsFindsNoDifference() throws Exception {
    assertEquals("", rsyncDifferences(mnt));
  }

  @Test
  void extract_rsyncWithChecksumsFindsNoDifference() throws Exception {
    assertEquals("", rsyncDifferences(out));
  }

  /**
   * What {@code rsync} would change to make {@code target} a copy of the source: contents by
   * checksum, hard links, ACLs, extended attributes, owners by number, permissions, devices,
   * specials and symlinks; not times, which the format does not keep.
   */
  private String rsyncDifferences(Path target) throws Exception {
    Processes.Result r =
        Processes.exec(
            600,
            null,
            "rsync",
            "-aHAXn",
            "--no-times",
            "--checksum",
            "--numeric-ids",
            "--itemize-changes",
            src + "/",
            target + "/");
    assertEquals(0, r.exit(), "rsync failed: " + r.stderr());
    return r.out() + r.stderr();
  }

  // ---- Things a tree comparison does not see ----

  @Test
  void mount_everyDirectory_listsEachNameOnceAndDotAndDotDot() throws Exception {
    for (Path dir : directories(src)) {
      Path rel = src.relativize(dir);
      assertEquals(names(dir), names(mnt.resolve(rel)), "entries of /" + rel);
    }
    List<String> many = lsAll(mnt.resolve("many"));
    assertEquals(FidelityTree.MANY_ENTRIES + 2, many.size());
    assertEquals(many.size(), new HashSet<>(many).size(), "no name listed twice");
    assertTrue(many.contains(".") && many.contains(".."), "lists . and ..");
    for (int i = 0; i < FidelityTree.MANY_ENTRIES; i += 9999) {
      assertTrue(many.contains(String.format("entry-%06d", i)), "lists entry " + i);
    }
    assertTrue(lsAll(mnt.resolve("empty-dir")).equals(List.of(".", "..")));
  }

  @Test
  void mountAndExtract_hardLinks_oneInodePerGroupWithItsLinkCount() throws Exception {
    for (Path root : List.of(mnt, out)) {
      Set<Object> inos = new HashSet<>();
      for (List<String> group : LINK_GROUPS) {
        Object ino = attr(root.resolve(group.get(0)), "ino");
        assertTrue(inos.add(ino), "groups do not share inodes: " + group);
        for (String name : group) {
          Path p = root.resolve(name);
          assertEquals(ino, attr(p, "ino"), name + " in " + root);
          assertEquals(group.size(), attr(p, "nlink"), name + " in " + root);
          assertEquals(attr(src.resolve(name), "mode"), attr(p, "mode"), name + " in " + root);
        }
      }
      assertEquals(Path.of("file"), Files.readSymbolicLink(root.resolve("link-rel-hard")));
    }
  }

  @Test
  void mount_directoryLinkCounts_twoPlusSubdirectories() throws Exception {
    for (Path dir : directories(src)) {
      Path rel = src.relativize(dir);
      long subdirs;
      try (Stream<Path> s = Files.list(dir)) {
        subdirs = s.filter(p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)).count();
      }
      assertEquals((int) (2 + subdirs), attr(mnt.resolve(rel), "nlink"), "nlink of /" + rel);
    }
  }

  @Test
  void mountAndExtract_devices_keepMajorAndMinorAbove255() throws Exception {
    for (Path root : List.of(src, mnt, out)) {
      assertEquals(
          "character special file 12c:11170\nblock special file fff:fffff\n"
              + "block special file 7:0\n",
          Processes.run(
                  10,
                  "stat",
                  "-c",
                  "%F %t:%T",
                  root.resolve("chr-big").toString(),
                  root.resolve("blk-big").toString(),
                  root.resolve("blk-loop").toString())
              .out(),
          "in " + root);
    }
    assertEquals(0x12c, FidelityTree.BIG_MAJOR);
    assertEquals(0x11170, FidelityTree.BIG_MINOR);
  }

  @Test
  void mount_xattrs_exactValuesInKeyOrderAndErangeForShortBuffers() throws Exception {
    for (String name : List.of("xattrs", "dir", "fifo", "link-rel", "setuid", "")) {
      Path source = src.resolve(name);
      Path mounted = mnt.resolve(name);
      List<byte[]> keys = keys(RawXattrs.list(source, 1 << 16).bytes());
      keys.sort(Arrays::compareUnsigned);
      byte[] expectedList = join(keys);

      long length = RawXattrs.list(mounted, 0).result();
      assertEquals(expectedList.length, length, "listxattr size of /" + name);
      assertArrayEquals(expectedList, RawXattrs.list(mounted, (int) length).bytes(), name);
      if (length > 0) {
        assertEquals(-RawXattrs.ERANGE, RawXattrs.list(mounted, (int) length - 1).result());
      }
      for (byte[] key : keys) {
        String what = new String(key, StandardCharsets.UTF_8) + " of /" + name;
        byte[] value = RawXattrs.get(source, key, 1 << 16).bytes();
        assertEquals(value.length, RawXattrs.get(mounted, key, 0).result(), what);
        assertArrayEquals(value, RawXattrs.get(mounted, key, value.length).bytes(), what);
        if (value.length > 1) { // a buffer of size 0 asks for the length instead
          assertEquals(
              -RawXattrs.ERANGE, RawXattrs.get(mounted, key, value.length - 1).result(), what);
        }
      }
    }
    byte[] missing = "user.missing".getBytes(StandardCharsets.UTF_8);
    assertEquals(-RawXattrs.ENODATA, RawXattrs.get(mnt.resolve("xattrs"), missing, 64).result());
    assertEquals(7, keys(RawXattrs.list(mnt.resolve("xattrs"), 1 << 16).bytes()).size());
  }

  @Test
  void mountAndExtract_hugeFile_bytesAroundThe4GiBBoundary() throws Exception {
    for (Path root : List.of(mnt, out)) {
      try (RandomAccessFile f = new RandomAccessFile(root.resolve("huge").toFile(), "r")) {
        assertEquals(FidelityTree.HUGE_SIZE, f.length());
        for (long at : FidelityTree.HUGE_DATA_AT) {
          f.seek(at);
          assertEquals((int) (at % 251) + 1, f.read(), "byte " + at + " in " + root);
        }
        byte[] around = new byte[16];
        f.seek((4L << 30) - 8);
        f.readFully(around);
        byte[] expected = new byte[16];
        expected[5] = (byte) (((4L << 30) - 3) % 251 + 1);
        expected[8] = (byte) ((4L << 30) % 251 + 1);
        assertArrayEquals(expected, around, "zeros and data across 4 GiB in " + root);
        f.seek(FidelityTree.HUGE_SIZE);
        assertEquals(-1, f.read(), "end of file in " + root);
      }
    }
  }

  @Test
  void extract_sparseFiles_keepTheirHoles() throws Exception {
    assertTrue(
        allocated(out.resolve("huge")) <= 1 << 20, "huge: " + allocated(out.resolve("huge")));
    assertTrue(allocated(out.resolve("sparse")) <= 64 << 10, "sparse");
    assertEquals(0, allocated(out.resolve("all-hole")), "all-hole");
    long total =
        Long.parseLong(Processes.run(60, "du", "-s", "-B1", out.toString()).out().split("\\s")[0]);
    assertTrue(total < 64 << 20, "the extracted tree takes " + total + " bytes of disk");
  }

  @Test
  void mountAndExtract_deepPathAndLongNames_reachable() throws Exception {
    String expected = Files.readString(src.resolve(FidelityTree.DEEP_FILE));
    for (Path root : List.of(mnt, out)) {
      assertEquals(expected, Files.readString(root.resolve(FidelityTree.DEEP_FILE)));
      assertEquals(
          4095,
          Files.readSymbolicLink(root.resolve("link-4095")).toString().length(),
          "in " + root);
      assertTrue(Files.isDirectory(root.resolve("D".repeat(255))));
    }
    assertEquals(FidelityTree.DEEP_PATH_LENGTH, FidelityTree.DEEP_FILE.length());
  }

  // ---- helpers ----

  private static Object attr(Path p, String name) throws IOException {
    return Files.getAttribute(p, "unix:" + name, LinkOption.NOFOLLOW_LINKS);
  }

  /** Bytes on disk, as {@code stat} reports them. */
  private static long allocated(Path p) throws Exception {
    String[] b = Processes.run(10, "stat", "-c", "%b %B", p.toString()).out().trim().split(" ");
    return Long.parseLong(b[0]) * Long.parseLong(b[1]);
  }

  private static List<Path> directories(Path root) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      return s.filter(p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)).toList();
    }
  }

  /** Each raw name the directory lists, with how often it lists it. */
  private static Map<String, Integer> names(Path dir) throws IOException {
    Map<String, Integer> counts = new TreeMap<>();
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
      for (Path p : s) {
        counts.merge(Arrays.toString(RawNames.bytes(p.getFileName())), 1, Integer::sum);
      }
    }
    return counts;
  }

  /** {@code ls -fa}: every name readdir returns, in its order, {@code .} and {@code ..} too. */
  private static List<String> lsAll(Path dir) throws Exception {
    return Arrays.asList(Processes.run(60, "ls", "-fa", dir.toString()).out().split("\n"));
  }

  private static List<byte[]> keys(byte[] list) {
    List<byte[]> keys = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < list.length; i++) {
      if (list[i] == 0) {
        keys.add(Arrays.copyOfRange(list, start, i));
        start = i + 1;
      }
    }
    return keys;
  }

  private static byte[] join(List<byte[]> keys) {
    int n = 0;
    for (byte[] k : keys) {
      n += k.length + 1;
    }
    byte[] out = new byte[n];
    int at = 0;
    for (byte[] k : keys) {
      System.arraycopy(k, 0, out, at, k.length);
      at += k.length + 1;
    }
    return out;
  }
}
