package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.EdgeCaseTree;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TreeSnapshot;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Awkward trees through the real builder and the real mount: what goes in comes out, entry by
 * entry, with every edge the format has to get right.
 */
class EdgeCaseTreeTest {
  @TempDir Path tmp;
  private Path src;
  private Path mnt;

  @BeforeEach
  void makeTree() throws Exception {
    src = Files.createDirectories(tmp.resolve("src"));
    EdgeCaseTree.make(src);
    mnt = Files.createDirectories(tmp.resolve("mnt"));
    Cli.ok("build", src.toString(), tmp.resolve("oci").toString(), "edge");
    Cli.ok("mount", tmp.resolve("oci").toString(), "edge", mnt.toString());
  }

  @AfterEach
  void unmount() {
    Cli.unmountQuietly(mnt);
  }

  @Test
  void mount_awkwardTree_matchesSourceEntryByEntry() throws Exception {
    String diff = TreeSnapshot.of(src).diff(TreeSnapshot.of(mnt), 20);
    assertEquals("", diff);
  }

  @Test
  void read_fileWithSharedLastChunk_atSizeMinusOneAndAtSize() throws Exception {
    byte[] expected = Files.readAllBytes(src.resolve("a-big"));
    try (RandomAccessFile f = new RandomAccessFile(mnt.resolve("a-big").toFile(), "r")) {
      byte[] buf = new byte[100];
      f.seek(expected.length - 1);
      assertEquals(1, f.read(buf));
      assertEquals(expected[expected.length - 1], buf[0]);
      f.seek(expected.length);
      assertEquals(-1, f.read(buf), "0 bytes at EOF, not the next file's bytes");
    }
    assertArrayEquals(expected, Files.readAllBytes(mnt.resolve("a-big")));
  }

  @Test
  void hardLink_oneInodeAndNlinkTwoOnBothNames() throws Exception {
    Object a = Files.getAttribute(mnt.resolve("linked"), "unix:ino");
    assertEquals(a, Files.getAttribute(mnt.resolve("linked-too"), "unix:ino"));
    assertEquals(2, Files.getAttribute(mnt.resolve("linked"), "unix:nlink"));
    assertEquals(2, Files.getAttribute(mnt.resolve("linked-too"), "unix:nlink"));
  }

  @Test
  void bigDirectory_everyEntryOnceWithStableNonZeroInodes() throws Exception {
    Processes.Result ls = Processes.run(30, "ls", "-f", "-i", mnt.resolve("many").toString());
    Set<String> names = new HashSet<>();
    Set<String> inos = new HashSet<>();
    for (String line : ls.out().split("\n")) {
      String[] parts = line.trim().split(" ", 2);
      assertNotEquals("0", parts[0], line);
      assertTrue(names.add(parts[1]), "listed twice: " + parts[1]);
      inos.add(parts[0]);
    }
    assertEquals(5002, names.size(), "5000 entries plus . and ..");
    Processes.Result again = Processes.run(30, "ls", "-f", "-i", mnt.resolve("many").toString());
    assertEquals(
        new HashSet<>(Arrays.asList(ls.out().split("\n"))),
        new HashSet<>(Arrays.asList(again.out().split("\n"))),
        "stable inode numbers");
    assertEquals(5002, inos.size());
  }

  @Test
  void danglingSymlink_listedAndReadlinkExact() throws Exception {
    assertTrue(Files.isSymbolicLink(mnt.resolve("dangling")));
    assertEquals(Path.of("/no/such/target"), Files.readSymbolicLink(mnt.resolve("dangling")));
    assertEquals("/no/such/target\n", Processes.run(10, "readlink", mnt + "/dangling").out());
  }
}
