package dev.puzzlefs.reader;

import static dev.puzzlefs.testing.FakeImage.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.Xattr;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * Images that decode but describe something no filesystem holds are refused when opened, with a
 * message naming the directory and entry (or inode) at fault, so that lookups, reads and the
 * extractor never meet them.
 */
class ImageValidationTest {
  private static final Digest CHUNK = Digest.sha256(new byte[] {1});

  private static Inode dir(long ino, DirEntry... entries) {
    return new Inode(ino, InodeKind.DIR, 0, 0, 0755, 0, 0, List.of(entries), null, null, null);
  }

  private static DirEntry entry(String name, long ino) {
    return new DirEntry(ino, utf8(name));
  }

  private static Inode file(long ino, FileChunk... chunks) {
    return new Inode(ino, InodeKind.FILE, 0, 0, 0644, 0, 0, null, List.of(chunks), null, null);
  }

  private static Inode symlink(long ino, byte[] target) {
    return new Inode(ino, InodeKind.LNK, 0, 0, 0777, 0, 0, null, null, null, target);
  }

  private static Image open(Rootfs rootfs) throws FormatException {
    return Image.open(rootfs, blob -> new CompletableFuture<>(), Duration.ofSeconds(1));
  }

  private static Image open(Inode... layer) throws FormatException {
    return open(new Rootfs(List.of(List.of(layer)), List.of(), 3));
  }

  /** Opening {@code layer} fails, quickly, with a message holding every one of {@code parts}. */
  private static void refused(List<Inode> layer, String... parts) {
    Rootfs rootfs = new Rootfs(List.of(layer), List.of(), 3);
    FormatException e =
        assertTimeoutPreemptively(
            Duration.ofSeconds(5), () -> assertThrows(FormatException.class, () -> open(rootfs)));
    for (String part : parts) {
      assertTrue(e.getMessage().contains(part), "'" + part + "' not in: " + e.getMessage());
    }
  }

  @Test
  void open_directoryListingItself_refusedNamingIt() {
    refused(
        List.of(dir(1, entry("d", 2)), dir(2, entry("self", 2))),
        "directory ino 2 is listed again as 'self' in directory /d (ino 2)",
        "already /d");
  }

  @Test
  void open_directoryListingAnAncestor_refused() {
    refused(
        List.of(dir(1, entry("a", 2)), dir(2, entry("b", 3)), dir(3, entry("up", 2))),
        "directory ino 2 is listed again as 'up' in directory /a/b (ino 3)");
  }

  @Test
  void open_directoryListingTheRoot_refused() {
    refused(
        List.of(dir(1, entry("a", 2)), dir(2, entry("root", 1))),
        "directory ino 1 is listed again as 'root' in directory /a (ino 2)",
        "already /)");
  }

  @Test
  void open_directoryUnderTwoParents_refused() {
    refused(
        List.of(
            dir(1, entry("a", 2), entry("b", 3)),
            dir(2, entry("shared", 4)),
            dir(3, entry("x", 4)),
            dir(4)),
        "directory ino 4 is listed again as 'x' in directory /b (ino 3)",
        "already /a/shared");
  }

  @Test
  void open_entryNamingAnInoNoLayerHolds_refused() {
    refused(List.of(dir(1, entry("ghost", 9))), "directory / (ino 1) names 'ghost' ino 9");
  }

  @Test
  void open_entryNamingAWhitedOutIno_refused() {
    List<Inode> top = List.of(dir(1, entry("gone", 2)), Inode.whiteout(2));
    List<Inode> bottom = List.of(dir(1, entry("gone", 2)), file(2));

    FormatException e =
        assertThrows(
            FormatException.class, () -> open(new Rootfs(List.of(top, bottom), List.of(), 3)));

    assertTrue(e.getMessage().contains("names 'gone' ino 2, which no layer holds"), e.getMessage());
  }

  @Test
  void open_twoEntriesWithOneName_refused() {
    refused(
        List.of(dir(1, entry("a", 2), entry("a", 3)), symlink(2, utf8("/tmp")), dir(3)),
        "directory / (ino 1) holds the name 'a' twice");
  }

  @Test
  void open_entriesOutOfNameOrder_refused() {
    refused(
        List.of(dir(1, entry("b", 2), entry("a", 3)), file(2), file(3)),
        "directory / (ino 1) is not sorted by name: 'b' comes before 'a'");
  }

  @Test
  void open_entriesSortedUnsigned_accepted() throws Exception {
    // 0xff sorts after 'a' as an unsigned byte, before it as a signed one.
    Inode root =
        dir(1, new DirEntry(2, new byte[] {'a'}), new DirEntry(3, new byte[] {(byte) 0xff}));

    assertEquals(3, open(root, file(2), file(3)).inodeCount());
  }

  @Test
  void open_nameLongerThanAnyDirectoryHolds_refused() {
    String name = "n".repeat(256);
    refused(List.of(dir(1, entry(name, 2)), file(2)), "invalid entry name", "longer than 255");
  }

  @Test
  void open_layerBuiltOutOfInoOrder_refused() {
    Rootfs twice = new Rootfs(List.of(List.of(dir(1), file(2), file(2))), List.of(), 3);
    Rootfs unsorted = new Rootfs(List.of(List.of(dir(1), file(3), file(2))), List.of(), 3);

    FormatException e1 = assertThrows(FormatException.class, () -> open(twice));
    FormatException e2 = assertThrows(FormatException.class, () -> open(unsorted));

    assertEquals("layer 0 holds ino 2 twice", e1.getMessage());
    assertEquals("layer 0 is not sorted by ino: ino 2 follows ino 3", e2.getMessage());
  }

  @Test
  void open_chunkLengthOrOffsetPast2To63_refused() {
    refused(
        List.of(dir(1, entry("f", 2)), file(2, new FileChunk(CHUNK, 0, false, -1))),
        "file ino 2 chunk 0",
        "takes 18446744073709551615 bytes at offset 0");
    refused(
        List.of(dir(1, entry("f", 2)), file(2, new FileChunk(CHUNK, Long.MIN_VALUE, false, 1))),
        "at offset 9223372036854775808");
  }

  @Test
  void open_chunkRangeEndingPastWhatAChunkHolds_refused() {
    refused(
        List.of(dir(1, entry("f", 2)), file(2, new FileChunk(CHUNK, 1L << 31, false, 1))),
        "file ino 2 chunk 0 (" + CHUNK + ")",
        "past the");
    refused(
        List.of(dir(1, entry("f", 2)), file(2, new FileChunk(CHUNK, 1L << 62, false, 1L << 62))),
        "file ino 2 chunk 0",
        "at offset 4611686018427387904");
  }

  @Test
  void open_chunkLengthsThatWouldAddUpPast2To63_refusedChunkByChunk() {
    long half = 1L << 62;
    refused(
        List.of(
            dir(1, entry("f", 2)),
            file(2, new FileChunk(CHUNK, 0, false, half), new FileChunk(CHUNK, 0, false, half))),
        "file ino 2 chunk 0",
        "takes " + half + " bytes");
  }

  @Test
  void open_symlinkWithoutATarget_refused() {
    refused(List.of(dir(1, entry("l", 2)), symlink(2, null)), "symlink ino 2 has no target");
    refused(List.of(dir(1, entry("l", 2)), symlink(2, new byte[0])), "symlink ino 2 has no target");
    refused(
        List.of(dir(1, entry("l", 2)), symlink(2, new byte[] {'a', 0, 'b'})),
        "symlink ino 2 has a NUL in its target");
  }

  @Test
  void open_deviceNumberPast32Bits_refusedNamingInoAndValue() {
    Inode chr = new Inode(2, InodeKind.CHR, 0, 0, 0600, 4294967304L, 0, null, null, null, null);
    Inode blk = new Inode(2, InodeKind.BLK, 0, 0, 0600, 8, 1L << 32 | 1, null, null, null, null);
    refused(
        List.of(dir(1, entry("c", 2)), chr),
        "character device ino 2 has major number 4294967304, which does not fit in 32 bits");
    refused(
        List.of(dir(1, entry("b", 2)), blk),
        "block device ino 2 has minor number 4294967297, which does not fit in 32 bits");
  }

  @Test
  void open_deviceNumbersOf32Bits_accepted() throws Exception {
    Inode chr =
        new Inode(2, InodeKind.CHR, 0, 0, 0600, 0xffff_ffffL, 0xffff_ffffL, null, null, null, null);

    assertEquals(2, open(dir(1, entry("c", 2)), chr).inodeCount());
  }

  @Test
  void open_xattrNamedEmptyOrWithNul_refused() {
    for (byte[] key : List.of(new byte[0], new byte[] {'u', 0, 'x'})) {
      Inode root =
          new Inode(
              1,
              InodeKind.DIR,
              0,
              0,
              0755,
              0,
              0,
              List.of(),
              null,
              List.of(new Xattr(key, utf8("v"))),
              null);
      refused(List.of(root), "ino 1 has an extended attribute named");
    }
  }

  @Test
  void open_directoryChainAHundredThousandDeep_opensAndResolves() throws Exception {
    int depth = 100_000;
    List<Inode> layer = new ArrayList<>();
    for (int i = 1; i < depth; i++) {
      layer.add(dir(i, entry("d", i + 1)));
    }
    layer.add(dir(depth));
    // Through the codec too: encode and decode keep no stack per level either.
    Rootfs rootfs =
        RootfsCodec.decode(RootfsCodec.encode(new Rootfs(List.of(layer), List.of(), 3)));

    Image image = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> open(rootfs));

    byte[] path = "/d".repeat(depth - 1).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    assertEquals(depth, image.resolve(path).ino());
    assertEquals(depth - 1, image.parent(depth));
  }

  @Test
  void open_deepTreeWithALoopAtTheBottom_refusedNamingTheWholePath() {
    List<Inode> layer = new ArrayList<>();
    for (int i = 1; i < 50; i++) {
      layer.add(dir(i, entry("d", i + 1)));
    }
    layer.add(dir(50, entry("loop", 10)));

    refused(
        layer, "'loop' in directory " + "/d".repeat(49) + " (ino 50)", "already " + "/d".repeat(9));
  }

  @Test
  void open_unreachableDirectoryWithAnInvalidEntry_accepted() throws Exception {
    // Nothing can reach ino 3, so nothing can meet its dangling entry; a lower layer's leftover.
    Image image = open(dir(1, entry("a", 2)), file(2), dir(3, entry("ghost", 99)));

    assertEquals(3, image.parent(3));
    assertEquals(3, image.inodeCount());
  }
}
