package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.EdgeCaseTree;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TreeSnapshot;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code puzzlefs extract} as a user runs it: trees built by the real builder come back entry by
 * entry, and a bad target or a corrupt blob fails without leaving anything that looks extracted.
 */
class ExtractTest {
  @TempDir Path tmp;
  private Path src;
  private Path oci;

  @BeforeEach
  void setUp() throws Exception {
    src = Files.createDirectories(tmp.resolve("src"));
    oci = tmp.resolve("oci");
  }

  /** A small tree whose one big file spans several chunks. */
  private void smallTree() throws Exception {
    Files.writeString(src.resolve("hello"), "hello\n");
    Files.createDirectories(src.resolve("dir"));
    byte[] data = new byte[300_000];
    new Random(11).nextBytes(data);
    Files.write(src.resolve("dir/data"), data);
  }

  /** Builds {@code src} as {@code tag} and returns the manifest digest build printed. */
  private String build(String tag) throws Exception {
    String out = Cli.ok("build", src.toString(), oci.toString(), tag).out();
    String prefix = "puzzlefs image manifest digest: ";
    assertTrue(out.startsWith(prefix), out);
    return out.substring(prefix.length()).trim();
  }

  /** Flips one bit in the middle of the image's largest chunk blob, keeping its name. */
  private Digest corruptLargestChunk(String tag) throws Exception {
    OciLayout layout = OciLayout.open(oci);
    Descriptor chunk =
        layout.manifest(tag).layers().stream()
            .filter(d -> d.mediaType().equals(MediaTypes.FILEDATA))
            .max(Comparator.comparingLong(Descriptor::size))
            .orElseThrow();
    try (RandomAccessFile f =
        new RandomAccessFile(layout.blobPath(chunk.digestValue()).toFile(), "rw")) {
      long at = f.length() / 2;
      f.seek(at);
      int b = f.read();
      f.seek(at);
      f.write(b ^ 1);
    }
    return chunk.digestValue();
  }

  private Set<String> namesIn(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
    }
  }

  private static String fail(String... args) throws Exception {
    Processes.Result r = Cli.run(args);
    assertNotEquals(0, r.exit(), "expected failure of " + String.join(" ", args));
    return r.stderr();
  }

  @Test
  void extract_awkwardTree_matchesSourceEntryByEntry() throws Exception {
    EdgeCaseTree.make(src);
    // More cases an extractor can get wrong: the order of chown, xattrs and chmod (a chown drops
    // security.capability and setuid; a default ACL set before the children would be inherited),
    // a directory only readable, a socket, a symlink target that is not UTF-8.
    try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      s.bind(UnixDomainSocketAddress.of(src.resolve("sock")));
    }
    Processes.run(
        30,
        "bash",
        "-c",
        "cd '"
            + src
            + "' && echo cap > cap && setfattr -n security.capability"
            + " -v 0x0100000200200000000000000000000000000000 cap"
            + " && mkdir acl && echo child > acl/child && mkdir acl/sub"
            + " && setfattr -n system.posix_acl_default -v 0x02000000"
            + "01000700ffffffff02000700d204000004000500ffffffff10000700ffffffff20000500ffffffff acl"
            + " && mkdir ro && echo x > ro/child && chmod 0555 ro"
            + " && mkdir shared && chmod 03777 shared && chown 1000:1000 shared"
            + " && ln -s $'tar\\xfeget//x/' badlink");
    String digest = build("edge");
    Path out = tmp.resolve("out");

    Cli.ok("extract", "--digest", digest, oci.toString(), "edge", out.toString());

    assertEquals("", TreeSnapshot.of(src).diff(TreeSnapshot.of(out), 20));
    assertEquals(Set.of("src", "oci", "out"), namesIn(tmp), "no partial tree left beside it");
  }

  @Test
  void extract_intoExistingEmptyDir_fillsItAndGivesItTheRootsMode() throws Exception {
    smallTree();
    Files.setPosixFilePermissions(src, PosixFilePermissions.fromString("rwxr-x--x"));
    build("v1");
    Path out = Files.createDirectory(tmp.resolve("out"));
    Files.setPosixFilePermissions(out, PosixFilePermissions.fromString("rwx------"));

    Cli.ok("extract", oci.toString(), "v1", out.toString());

    assertEquals("", TreeSnapshot.of(src).diff(TreeSnapshot.of(out), 20));
  }

  @Test
  void extract_intoNonEmptyDir_failsAndChangesNothing() throws Exception {
    smallTree();
    build("v1");
    Path out = Files.createDirectory(tmp.resolve("out"));
    Files.writeString(out.resolve("mine"), "keep me\n");
    Files.createDirectory(out.resolve("sub"));
    TreeSnapshot before = TreeSnapshot.of(out);

    String err = fail("extract", oci.toString(), "v1", out.toString());

    assertTrue(err.contains("cannot extract into " + out + ": it is not empty"), err);
    assertEquals("", before.diff(TreeSnapshot.of(out), 20));
    assertEquals(Set.of("src", "oci", "out"), namesIn(tmp));
  }

  @Test
  void extract_asRootIntoADirAnotherUserOwns_isRefusedBeforeAnythingIsWritten() throws Exception {
    smallTree();
    build("v1");
    // That user could swap a directory of the tree for a symlink mid-way, and root's later
    // chown and chmod calls on paths below it would land outside the target.
    Path theirs = Files.createDirectory(tmp.resolve("theirs"));
    Files.setAttribute(theirs, "unix:uid", 65534);

    String err = fail("extract", oci.toString(), "v1", theirs.toString());

    assertTrue(
        err.contains(
            "cannot extract into " + theirs + ": it belongs to user 65534, who could swap"),
        err);
    assertTrue(err.contains("extract into a directory that only root can write"), err);
    try (var entries = Files.list(theirs)) {
      assertEquals(0, entries.count());
    }

    // A new DIR under a directory every user can write (and no sticky bit) is refused as well,
    // before a hidden sibling is made there.
    Path open = Files.createDirectory(tmp.resolve("open"));
    Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
    String err2 = fail("extract", oci.toString(), "v1", open.resolve("new/tree").toString());
    assertTrue(
        err2.contains(
            "cannot extract into "
                + open.resolve("new/tree")
                + ": the directory "
                + open
                + " above it is writable by every user"),
        err2);
    assertEquals(Set.of(), namesIn(open));

    // With the sticky bit (as /tmp has), no one can rename what root made there: allowed.
    Files.setAttribute(open, "unix:mode", 01777);
    Cli.ok("extract", oci.toString(), "v1", open.resolve("new/tree").toString());
    assertEquals("", TreeSnapshot.of(src).diff(TreeSnapshot.of(open.resolve("new/tree")), 20));
  }

  @Test
  void extract_targetIsAFile_failsAndLeavesIt() throws Exception {
    smallTree();
    build("v1");
    Path out = Files.writeString(tmp.resolve("out"), "a file\n");

    String err = fail("extract", oci.toString(), "v1", out.toString());

    assertTrue(err.contains("it exists and is not a directory"), err);
    assertEquals("a file\n", Files.readString(out));
  }

  @Test
  void extract_corruptChunkBlob_failsNamingItAndLeavesNoTree() throws Exception {
    smallTree();
    build("v1");
    Digest bad = corruptLargestChunk("v1");
    Path out = tmp.resolve("out");

    String err = fail("extract", oci.toString(), "v1", out.toString());

    assertTrue(err.contains("could not read chunk " + bad), err);
    assertTrue(err.contains("is corrupt"), err);
    assertTrue(err.contains("removed the partly extracted tree"), err);
    assertFalse(Files.exists(out));
    assertEquals(Set.of("src", "oci"), namesIn(tmp), "no partial tree left beside it");
  }

  @Test
  void extract_corruptChunkBlobIntoEmptyDir_leavesItEmpty() throws Exception {
    smallTree();
    build("v1");
    Digest bad = corruptLargestChunk("v1");
    Path out = Files.createDirectory(tmp.resolve("out"));

    String err = fail("extract", oci.toString(), "v1", out.toString());

    assertTrue(err.contains(bad.toString()), err);
    assertEquals(Set.of(), namesIn(out));
  }

  @Test
  void extract_wrongDigest_failsBeforeWritingAnything() throws Exception {
    smallTree();
    String digest = build("v1");
    String wrong = (digest.charAt(0) == '0' ? "1" : "0") + digest.substring(1);
    Path out = tmp.resolve("out");

    String err = fail("extract", "--digest", wrong, oci.toString(), "v1", out.toString());

    assertTrue(err.contains("has fs-verity digest " + digest), err);
    assertEquals(Set.of("src", "oci"), namesIn(tmp));
  }
}
