package dev.puzzlefs.reader;

import static dev.puzzlefs.testing.FakeImage.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.testing.MapChunkSource;
import dev.puzzlefs.testing.Processes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Hand-made images whose entries try to reach outside the extraction target: names that are paths,
 * two entries with one name (a symlink, then a directory or file to be written through it), hard
 * links to symlinks, trees deeper than a path can be. Each is refused naming the entry, or made
 * harmlessly, and the directory beside the target stays exactly as it was.
 */
class ExtractorEscapeTest {
  @TempDir Path tmp;
  private Path outside;
  private Path out;
  private Map<String, String> outsideBefore;

  @BeforeEach
  void outsideAndTarget() throws IOException {
    outside = Files.createDirectory(tmp.resolve("outside"));
    Files.writeString(outside.resolve("victim"), "original");
    Files.createDirectory(outside.resolve("sub"));
    out = Files.createDirectory(tmp.resolve("out"));
    outsideBefore = snapshot(outside);
  }

  /** Every path under {@code dir}, with its type and, for files and symlinks, its contents. */
  private static Map<String, String> snapshot(Path dir) throws IOException {
    Map<String, String> entries = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        String value;
        if (Files.isSymbolicLink(p)) {
          value = "link " + Files.readSymbolicLink(p);
        } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
          value = "file " + Files.readString(p);
        } else {
          value = "dir";
        }
        entries.put(dir.relativize(p).toString(), value);
      }
    }
    return entries;
  }

  /** Nothing changed beside the target, and only the target and the outside dir exist. */
  private void assertNothingEscaped() throws IOException {
    assertEquals(outsideBefore, snapshot(outside));
    try (Stream<Path> beside = Files.list(tmp)) {
      assertEquals(
          List.of("out", "outside"), beside.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  private static Inode dir(long ino, DirEntry... entries) {
    return new Inode(ino, InodeKind.DIR, 0, 0, 0755, 0, 0, List.of(entries), null, null, null);
  }

  private static Inode emptyFile(long ino) {
    return new Inode(ino, InodeKind.FILE, 0, 0, 0644, 0, 0, null, List.of(), null, null);
  }

  private static Inode symlink(long ino, String target) {
    return new Inode(ino, InodeKind.LNK, 0, 0, 0777, 0, 0, null, null, null, utf8(target));
  }

  private static DirEntry entry(String name, long ino) {
    return entry(utf8(name), ino);
  }

  private static DirEntry entry(byte[] name, long ino) {
    return new DirEntry(ino, name);
  }

  /** Opens {@code inodes} as one layer and extracts it into {@link #out}. */
  private Extractor.Summary extract(Inode... inodes) throws IOException {
    Rootfs rootfs = new Rootfs(List.of(List.of(inodes)), List.of(), 3);
    Image image = Image.open(rootfs, new MapChunkSource(Map.of()), Duration.ofSeconds(5));
    return new Extractor(image, false).extractInto(out);
  }

  private List<String> extracted() throws IOException {
    try (Stream<Path> s = Files.list(out)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"..", ".", "", "../outside", "a/../../outside", "/tmp", "x\0y"})
  void extractInto_entryNameThatIsAPath_refusedNamingIt(String name) throws IOException {
    // A directory with a file in it, under a name that would put both somewhere else.
    FormatException e =
        assertThrows(
            FormatException.class,
            () -> extract(dir(1, entry(name, 2)), dir(2, entry("victim", 3)), emptyFile(3)));

    String shown = name.replace("\0", "\\x00");
    assertTrue(e.getMessage().contains("invalid entry name '" + shown + "'"), e.getMessage());
    assertEquals(List.of(), extracted());
    assertNothingEscaped();
  }

  @ParameterizedTest
  @ValueSource(strings = {"ABSOLUTE", "..", "../outside", "../../../../../../../../.."})
  void extractInto_symlinkThenDirectoryOfTheSameName_refusedNamingTheName(String target)
      throws IOException {
    String to = target.equals("ABSOLUTE") ? outside.toString() : target;
    // "a" -> outside, then "a"/"planted": the directory would be written through the symlink.
    Inode[] image = {
      dir(1, entry("a", 2), entry("a", 3)),
      symlink(2, to),
      dir(3, entry("planted", 4)),
      emptyFile(4)
    };

    FormatException e = assertThrows(FormatException.class, () -> extract(image));

    assertTrue(e.getMessage().contains("holds the name 'a' twice"), e.getMessage());
    assertEquals(List.of(), extracted());
    assertNothingEscaped();
  }

  @Test
  void extractInto_symlinkThenFileOfTheSameName_refused() throws IOException {
    Inode[] image = {
      dir(1, entry("victim", 2), entry("victim", 3)),
      symlink(2, outside.resolve("victim").toString()),
      emptyFile(3)
    };

    FormatException e = assertThrows(FormatException.class, () -> extract(image));

    assertTrue(e.getMessage().contains("holds the name 'victim' twice"), e.getMessage());
    assertNothingEscaped();
  }

  @Test
  void extractInto_hardLinkWhoseFirstNameIsASymlink_linksTheSymlinkItself() throws IOException {
    // Ino 2 is a symlink to a file outside with two names: the second name must become another
    // name of the symlink, never of the file it points to (which link() without flags ensures).
    Extractor.Summary s =
        extract(
            dir(1, entry("first", 2), entry("second", 2)),
            symlink(2, outside.resolve("victim").toString()));

    assertEquals(1, s.hardLinks());
    Path second = out.resolve("second");
    assertTrue(Files.isSymbolicLink(second));
    assertEquals(
        Files.getAttribute(out.resolve("first"), "unix:ino", LinkOption.NOFOLLOW_LINKS),
        Files.getAttribute(second, "unix:ino", LinkOption.NOFOLLOW_LINKS));
    assertEquals(1, (int) Files.getAttribute(outside.resolve("victim"), "unix:nlink"));
    assertNothingEscaped();
  }

  @Test
  void extractInto_hardLinkSharingANameWithASymlink_refused() throws IOException {
    // "a" -> outside, then "a" again as a second name of file ino 3 (first named "b").
    Inode[] image = {
      dir(1, entry("a", 2), entry("a", 3), entry("b", 3)),
      symlink(2, outside.toString()),
      emptyFile(3)
    };

    FormatException e = assertThrows(FormatException.class, () -> extract(image));

    assertTrue(e.getMessage().contains("holds the name 'a' twice"), e.getMessage());
    assertNothingEscaped();
  }

  @Test
  void extractInto_treeDeeperThanAPathCanBe_isWrittenWholeInsideTheTarget() throws Exception {
    // 20 levels of 250-byte names make a path longer than PATH_MAX (4096): the extractor walks
    // down through open directories instead of handing the kernel one long path.
    List<Inode> chain = new ArrayList<>();
    int depth = 20;
    String name = "d".repeat(250);
    for (int i = 1; i < depth; i++) {
      chain.add(dir(i, entry(name, i + 1)));
    }
    chain.add(dir(depth));

    extract(chain.toArray(Inode[]::new));

    Processes.Result r =
        Processes.run(
            30, "bash", "-c", "cd '" + out + "' && for i in $(seq 19); do cd d*; done && pwd");
    assertTrue(r.out().strip().length() > 4096, "the deepest directory exists: " + r.out());
    assertNothingEscaped();
    // JUnit's cleanup cannot delete paths that long.
    Processes.run(30, "rm", "-rf", out.toString());
  }

  @Test
  void requireTrusted_targetOfAnotherUser_isRefusedNamingTheOwner() throws Exception {
    if (Posix.geteuid() == 0) {
      Files.setAttribute(out, "unix:uid", 65534); // root's own directories are always trusted
    }
    int owner = (Integer) Files.getAttribute(out, "unix:uid");
    int someoneElse = Posix.geteuid() == 0 ? 0 : owner + 1;

    IOException e =
        assertThrows(IOException.class, () -> Extractor.requireTrusted(out, out, someoneElse));

    assertTrue(
        e.getMessage().contains("it belongs to user " + owner + ", who could swap"),
        e.getMessage());
    Extractor.requireTrusted(out, out, owner); // its own user may
  }

  @Test
  void requireTrusted_worldWritableDirAbove_isRefusedUnlessSticky() throws Exception {
    Path shared = Files.createDirectory(tmp.resolve("shared"));
    Path target = Files.createDirectory(shared.resolve("target"));
    Files.setAttribute(shared, "unix:mode", 0777);
    int euid = Posix.geteuid();

    IOException e =
        assertThrows(IOException.class, () -> Extractor.requireTrusted(target, target, euid));
    assertTrue(
        e.getMessage().contains("the directory " + shared + " above it is writable by every user"),
        e.getMessage());

    Files.setAttribute(shared, "unix:mode", 01777);
    Extractor.requireTrusted(target, target, euid);
  }

  @Test
  void chmod_onASymlink_failsAndLeavesItsTargetAlone() throws Exception {
    Path victim = outside.resolve("victim");
    Files.setAttribute(victim, "unix:mode", 0600);
    Path link = Files.createSymbolicLink(out.resolve("link"), victim);

    assertThrows(
        IOException.class,
        () -> Posix.chmod(Posix.cString(link.toString().getBytes(StandardCharsets.UTF_8)), 04777));

    assertEquals(0600, ((Integer) Files.getAttribute(victim, "unix:mode")) & 07777);
  }
}
