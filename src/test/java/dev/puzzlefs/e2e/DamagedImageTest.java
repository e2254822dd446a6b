package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.FuseTesting;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestImages;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Damaged and hostile images through the commands a user runs: a rootfs that describes no possible
 * tree is refused at mount time naming its blob; a chunk blob corrupted on disk fails only the
 * reads that need it, with a log line naming it, while the mount keeps serving; extract of entries
 * aimed outside the target refuses and leaves the outside alone.
 */
class DamagedImageTest {
  @TempDir Path tmp;
  private Path oci;
  private Path mnt;

  @BeforeEach
  void dirs() throws IOException {
    FuseTesting.assumeFuse();
    oci = tmp.resolve("oci");
    mnt = Files.createDirectories(tmp.resolve("mnt"));
  }

  @AfterEach
  void unmount() {
    Cli.unmountQuietly(mnt);
  }

  private boolean mounted() throws IOException {
    return !Files.getAttribute(tmp, "unix:dev").equals(Files.getAttribute(mnt, "unix:dev"));
  }

  private static String fail(String... args) throws Exception {
    Processes.Result r = Cli.run(args);
    assertNotEquals(0, r.exit(), "expected failure of " + String.join(" ", args));
    return r.stderr();
  }

  private static Inode dir(long ino, DirEntry... entries) {
    return new Inode(ino, InodeKind.DIR, 0, 0, 0755, 0, 0, List.of(entries), null, null, null);
  }

  private static DirEntry entry(String name, long ino) {
    return new DirEntry(ino, name.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void mount_rootfsWithADirectoryInsideItself_failsAtMountNamingTheBlobAndTheLoop()
      throws Exception {
    Rootfs loop =
        new Rootfs(List.of(List.of(dir(1, entry("a", 2)), dir(2, entry("up", 1)))), List.of(), 3);
    byte[] blob = RootfsCodec.encode(loop);
    TestImages.writeRootfs(oci, "loop", blob, Map.of());

    String err = fail("mount", oci.toString(), "loop", mnt.toString());

    assertTrue(err.contains("rootfs blob " + Digest.sha256(blob)), err);
    assertTrue(err.contains("directory ino 1 is listed again as 'up' in directory /a"), err);
    assertFalse(mounted());
  }

  @Test
  void mount_rootfsOfRandomBytes_failsAtMountNamingTheBlob() throws Exception {
    byte[] blob = new byte[4096];
    new Random(5).nextBytes(blob);
    TestImages.writeRootfs(oci, "noise", blob, Map.of());

    String err = fail("mount", "-f", oci.toString(), "noise", mnt.toString());

    assertTrue(err.contains("rootfs blob " + Digest.sha256(blob) + ": "), err);
    assertTrue(err.contains("malformed"), err);
    assertFalse(mounted());
  }

  /**
   * Builds two files of random bytes, a and b, whose chunks differ; returns the manifest's verity.
   */
  private String buildTwoFiles(Path src) throws Exception {
    Files.createDirectories(src);
    Random random = new Random(17);
    for (String name : List.of("a", "b")) {
      byte[] data = new byte[400_000];
      random.nextBytes(data);
      Files.write(src.resolve(name), data);
    }
    Cli.ok("build", src.toString(), oci.toString(), "v1");
    OciLayout layout = OciLayout.open(oci);
    return HexFormat.of()
        .formatHex(FsVerity.digest(layout.readBlob(layout.resolveTag("v1").digestValue())));
  }

  /** A chunk blob that file {@code /a} reads and {@code /b} does not. */
  private Digest chunkOnlyOfA() throws Exception {
    OciLayout layout = OciLayout.open(oci);
    Descriptor rootfs =
        layout.manifest("v1").layers().stream()
            .filter(d -> MediaTypes.ROOTFS.equals(d.mediaType()))
            .findFirst()
            .orElseThrow();
    List<Inode> inodes = RootfsCodec.decode(layout.readBlob(rootfs.digestValue())).layers().get(0);
    Map<String, Long> names = new TreeMap<>();
    for (DirEntry e : inodes.get(0).entries()) {
      names.put(new String(e.name(), StandardCharsets.UTF_8), e.ino());
    }
    Set<Digest> ofB =
        inodes.get((int) (names.get("b") - 1)).chunks().stream()
            .map(FileChunk::blob)
            .collect(Collectors.toSet());
    return inodes.get((int) (names.get("a") - 1)).chunks().stream()
        .map(FileChunk::blob)
        .filter(d -> !ofB.contains(d))
        .findFirst()
        .orElseThrow();
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void mount_chunkCorruptedOnDisk_eioForTheReadThatNeedsItAndTheMountStaysUp(boolean digest)
      throws Exception {
    Path src = tmp.resolve("src");
    String verity = buildTwoFiles(src);
    Digest bad = chunkOnlyOfA();
    try (RandomAccessFile f =
        new RandomAccessFile(OciLayout.open(oci).blobPath(bad).toFile(), "rw")) {
      f.seek(100);
      int b = f.read();
      f.seek(100);
      f.write(b ^ 0x01);
    }
    Path log = tmp.resolve("mount.log");

    if (digest) {
      Cli.ok(
          "mount",
          "--digest",
          verity,
          "--log-file",
          log.toString(),
          oci.toString(),
          "v1",
          mnt.toString());
    } else {
      Cli.ok("mount", "--log-file", log.toString(), oci.toString(), "v1", mnt.toString());
    }

    assertArrayEquals(Files.readAllBytes(src.resolve("b")), Files.readAllBytes(mnt.resolve("b")));
    IOException e = assertThrows(IOException.class, () -> Files.readAllBytes(mnt.resolve("a")));
    assertTrue(String.valueOf(e.getMessage()).contains("Input/output error"), e.toString());
    assertTrue(mounted(), "the mount is still up");
    assertArrayEquals(Files.readAllBytes(src.resolve("b")), Files.readAllBytes(mnt.resolve("b")));
    assertEquals(400_000, Files.size(mnt.resolve("a")));
    String line = awaitLogLine(log, bad.toString());
    assertTrue(line.contains("EIO") && line.contains("is corrupt"), line);
  }

  /**
   * A chunk blob replaced by a huge (sparse) file: read whole, it would fill the mount's heap and
   * kill it (with the mount server, every mount it serves). Its size is checked against the
   * manifest's before a byte is read: EIO for the reads that need it, and the mount stays up.
   */
  @Test
  void mount_chunkBlobReplacedByAHugeFile_eioAndTheMountStaysUp() throws Exception {
    Path src = tmp.resolve("src");
    buildTwoFiles(src);
    Digest bad = chunkOnlyOfA();
    Path blob = OciLayout.open(oci).blobPath(bad);
    Files.delete(blob);
    try (RandomAccessFile f = new RandomAccessFile(blob.toFile(), "rw")) {
      f.setLength(1L << 30);
    }
    Path log = tmp.resolve("mount.log");

    Cli.ok("mount", "--log-file", log.toString(), oci.toString(), "v1", mnt.toString());

    IOException e = assertThrows(IOException.class, () -> Files.readAllBytes(mnt.resolve("a")));
    assertTrue(String.valueOf(e.getMessage()).contains("Input/output error"), e.toString());
    assertTrue(mounted(), "the mount is still up");
    assertArrayEquals(Files.readAllBytes(src.resolve("b")), Files.readAllBytes(mnt.resolve("b")));
    String line = awaitLogLine(log, bad.toString());
    assertTrue(line.contains("1073741824 bytes, but the manifest says"), line);
  }

  /** The first line of {@code log} holding {@code text}, waiting a little for it to be written. */
  private static String awaitLogLine(Path log, String text) throws Exception {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (true) {
      try (Stream<String> lines = Files.lines(log)) {
        var found = lines.filter(l -> l.contains(text)).findFirst();
        if (found.isPresent()) {
          return found.get();
        }
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no line naming " + text + " in:\n" + Files.readString(log));
      }
      Thread.sleep(100);
    }
  }

  @Test
  void extract_symlinkThenDirectoryOfTheSameName_refusedNamingItAndOutsideUnchanged()
      throws Exception {
    Path outside = Files.createDirectory(tmp.resolve("outside"));
    Inode link =
        new Inode(
            2,
            InodeKind.LNK,
            0,
            0,
            0777,
            0,
            0,
            null,
            null,
            null,
            outside.toString().getBytes(StandardCharsets.UTF_8));
    Inode planted = new Inode(4, InodeKind.FILE, 0, 0, 0644, 0, 0, null, List.of(), null, null);
    Rootfs hostile =
        new Rootfs(
            List.of(
                List.of(
                    dir(1, entry("a", 2), entry("a", 3)),
                    link,
                    dir(3, entry("planted", 4)),
                    planted)),
            List.of(),
            3);
    byte[] blob = RootfsCodec.encode(hostile);
    TestImages.writeRootfs(oci, "hostile", blob, Map.of());
    Path out = tmp.resolve("out");

    String err = fail("extract", oci.toString(), "hostile", out.toString());

    assertTrue(err.contains("rootfs blob " + Digest.sha256(blob)), err);
    assertTrue(err.contains("holds the name 'a' twice"), err);
    try (Stream<Path> s = Files.list(outside)) {
      assertEquals(List.of(), s.toList());
    }
    assertFalse(Files.exists(out));
  }
}
