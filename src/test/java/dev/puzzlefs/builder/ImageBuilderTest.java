package dev.puzzlefs.builder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.Processes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageBuilderTest {
  @TempDir Path tmp;

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private Rootfs buildAndDecode(Path src, OciLayout layout) throws IOException {
    new ImageBuilder(2).build(src, layout, "t");
    ImageManifest m = layout.manifest("t");
    Descriptor rootfs =
        m.layers().stream().filter(d -> d.mediaType().equals(MediaTypes.ROOTFS)).findFirst().get();
    return RootfsCodec.decode(layout.readBlob(rootfs.digestValue()));
  }

  private static Inode inode(Rootfs r, long ino) {
    return r.layers().get(0).get((int) ino - 1);
  }

  private static long child(Rootfs r, long dir, String name) {
    for (DirEntry e : inode(r, dir).entries()) {
      if (new String(e.name(), StandardCharsets.UTF_8).equals(name)) {
        return e.ino();
      }
    }
    throw new AssertionError("no entry " + name + " in ino " + dir);
  }

  @Test
  void build_formatExampleTree_numbersInodesBreadthPerDirectoryDepthFirst() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src.resolve("a"));
    Files.createDirectories(src.resolve("c"));
    Files.writeString(src.resolve("b"), "b");
    Files.writeString(src.resolve("a/x"), "x");
    Files.writeString(src.resolve("c/y"), "y");

    Rootfs r = buildAndDecode(src, OciLayout.openOrCreate(tmp.resolve("oci")));

    assertEquals(2, child(r, 1, "a"));
    assertEquals(3, child(r, 1, "b"));
    assertEquals(4, child(r, 1, "c"));
    assertEquals(5, child(r, 2, "x"));
    assertEquals(6, child(r, 4, "y"));
    assertEquals(6, r.layers().get(0).size());
    assertEquals(3, r.manifestVersion());
  }

  @Test
  void build_sameTreeFromTwoPaths_givesSameManifestDigest() throws Exception {
    for (String name : List.of("one", "two")) {
      Path src = tmp.resolve(name).resolve("deeper");
      Files.createDirectories(src.resolve("d/e"));
      Files.write(src.resolve("d/e/f"), random(300_000, 1));
      Files.write(src.resolve("g"), random(70_000, 2));
      Files.createSymbolicLink(src.resolve("l"), Path.of("d/e/f"));
    }
    BuildResult a =
        new ImageBuilder(2)
            .build(tmp.resolve("one/deeper"), OciLayout.openOrCreate(tmp.resolve("o1")), "t");
    BuildResult b =
        new ImageBuilder(1)
            .build(tmp.resolve("two/deeper"), OciLayout.openOrCreate(tmp.resolve("o2")), "t");
    assertEquals(a.manifest(), b.manifest());
    assertArrayEquals(a.manifestVerity(), b.manifestVerity());
  }

  @Test
  void build_filesSpanningChunks_piecesCoverTheStreamInOrder() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    byte[] big = random(700_000, 3);
    byte[] small = random(10, 4);
    Files.write(src.resolve("a-big"), big);
    Files.write(src.resolve("b-empty"), new byte[0]);
    Files.write(src.resolve("c-small"), small);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));

    Rootfs r = buildAndDecode(src, layout);

    Inode a = inode(r, child(r, 1, "a-big"));
    Inode empty = inode(r, child(r, 1, "b-empty"));
    Inode c = inode(r, child(r, 1, "c-small"));
    assertEquals(big.length, a.size());
    assertTrue(a.chunks().size() >= 3, "700 kB must span several chunks");
    assertEquals(List.of(), empty.chunks());
    assertEquals(InodeKind.FILE, empty.kind());
    // The small file continues the big file's last chunk: the stream spans file boundaries.
    FileChunk last = a.chunks().get(a.chunks().size() - 1);
    assertEquals(last.blob(), c.chunks().get(0).blob());
    assertEquals(last.offset() + last.len(), c.chunks().get(0).offset());
    assertArrayEquals(big, reassemble(layout, a));
    assertArrayEquals(small, reassemble(layout, c));
    // Every chunk is listed once in the manifest and has its fs-verity digest recorded.
    ImageManifest m = layout.manifest("t");
    long chunkLayers =
        m.layers().stream().filter(d -> d.mediaType().equals(MediaTypes.FILEDATA)).count();
    assertEquals(chunkLayers, m.layers().stream().map(Descriptor::digest).distinct().count() - 1);
    assertEquals(chunkLayers, r.verity().size());
    for (var v : r.verity()) {
      assertArrayEquals(FsVerity.digest(layout.readBlob(v.blob())), v.verity());
    }
  }

  private static byte[] reassemble(OciLayout layout, Inode file) throws IOException {
    var out = new java.io.ByteArrayOutputStream();
    for (FileChunk c : file.chunks()) {
      byte[] blob = layout.readBlob(c.blob());
      out.write(blob, (int) c.offset(), (int) c.len());
    }
    return out.toByteArray();
  }

  @Test
  void build_hardLinkAndSymlinks_recordOneInodeAndExactTargets() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Files.writeString(src.resolve("first"), "shared bytes");
    Files.createLink(src.resolve("second"), src.resolve("first"));
    Files.createSymbolicLink(src.resolve("dangling"), Path.of("../nowhere/at all"));

    Rootfs r = buildAndDecode(src, OciLayout.openOrCreate(tmp.resolve("oci")));

    assertEquals(child(r, 1, "first"), child(r, 1, "second"));
    Inode link = inode(r, child(r, 1, "dangling"));
    assertEquals(InodeKind.LNK, link.kind());
    assertArrayEquals("../nowhere/at all".getBytes(StandardCharsets.UTF_8), link.symlinkTarget());
    assertEquals(3, r.layers().get(0).size(), "root, one file inode, one symlink");
  }

  @Test
  void build_hardLinkedSymlinkFifoAndDevice_shareOneInoEachInWalkOrder() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src.resolve("d"));
    Files.createSymbolicLink(src.resolve("a-link"), Path.of("target"));
    Processes.run(
        10,
        "bash",
        "-c",
        "cd '"
            + src
            + "' && ln -P a-link d/link-too && mkfifo b-fifo && ln b-fifo d/fifo-too"
            + " && mknod c-chr c 1 3 && ln c-chr d/chr-too");

    Rootfs r = buildAndDecode(src, OciLayout.openOrCreate(tmp.resolve("oci")));

    // root 1; a-link 2, b-fifo 3, c-chr 4, d 5; then d's entries reuse 2, 3, 4.
    assertEquals(2, child(r, 1, "a-link"));
    assertEquals(3, child(r, 1, "b-fifo"));
    assertEquals(4, child(r, 1, "c-chr"));
    assertEquals(5, child(r, 1, "d"));
    assertEquals(2, child(r, 5, "link-too"));
    assertEquals(3, child(r, 5, "fifo-too"));
    assertEquals(4, child(r, 5, "chr-too"));
    assertEquals(5, r.layers().get(0).size(), "one inode per hard-linked group");
    assertArrayEquals("target".getBytes(StandardCharsets.UTF_8), inode(r, 2).symlinkTarget());
    assertEquals(InodeKind.FIFO, inode(r, 3).kind());
    assertEquals(InodeKind.CHR, inode(r, 4).kind());
  }

  @Test
  void build_ownersPermissionsAndXattrs_areRecorded() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Path f = Files.writeString(src.resolve("owned"), "x");
    Files.setAttribute(f, "unix:uid", 65536);
    Files.setAttribute(f, "unix:gid", (int) 4294967294L);
    Files.setAttribute(f, "unix:mode", 04751);
    UserDefinedFileAttributeView view =
        Files.getFileAttributeView(f, UserDefinedFileAttributeView.class);
    view.write("zeta", java.nio.ByteBuffer.wrap(new byte[] {0, 1, 2}));
    view.write("alpha", java.nio.ByteBuffer.wrap("v".getBytes(StandardCharsets.UTF_8)));

    Rootfs r = buildAndDecode(src, OciLayout.openOrCreate(tmp.resolve("oci")));

    Inode i = inode(r, child(r, 1, "owned"));
    assertEquals(65536L, Integer.toUnsignedLong(i.uid()));
    assertEquals(4294967294L, Integer.toUnsignedLong(i.gid()));
    assertEquals(04751, i.permissions());
    assertEquals(2, i.xattrs().size());
    assertArrayEquals("user.alpha".getBytes(StandardCharsets.UTF_8), i.xattrs().get(0).key());
    assertArrayEquals(new byte[] {0, 1, 2}, i.xattrs().get(1).value());
    assertNull(inode(r, 1).xattrs(), "no xattrs and no target: additional stays null");
  }

  @Test
  void build_missingRootfs_failsNamingItAndLeavesNoTag() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    IOException e =
        assertThrows(
            IOException.class, () -> new ImageBuilder(1).build(tmp.resolve("absent"), layout, "t"));
    assertTrue(e.getMessage().contains("absent"), e.getMessage());
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
    assertFalse(layout.findTag("t").isPresent());
  }

  @Test
  void build_corruptBlobAlreadyInStore_failsWithoutOverwritingOrTagging() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    byte[] data = random(1000, 9);
    Files.write(src.resolve("a"), data);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    Path blob = layout.blobPath(dev.puzzlefs.format.Digest.sha256(data));
    Files.write(blob, "not these bytes".getBytes(StandardCharsets.UTF_8));

    IOException e =
        assertThrows(IOException.class, () -> new ImageBuilder(1).build(src, layout, "t"));

    assertTrue(e.getMessage().contains(blob.toString()), e.getMessage());
    assertFalse(layout.findTag("t").isPresent());
    assertEquals("not these bytes", Files.readString(blob));
  }

  @Test
  void build_rootfsGivenThroughASymlink_recordsTheSameImage() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Files.writeString(src.resolve("a"), "x");
    Files.getFileAttributeView(src, UserDefinedFileAttributeView.class)
        .write("dirx", java.nio.ByteBuffer.wrap(new byte[] {1}));
    Path link = Files.createSymbolicLink(tmp.resolve("link"), src);
    BuildResult direct =
        new ImageBuilder(1).build(src, OciLayout.openOrCreate(tmp.resolve("o1")), "t");
    BuildResult viaLink =
        new ImageBuilder(1).build(link, OciLayout.openOrCreate(tmp.resolve("o2")), "t");
    assertEquals(direct.manifest(), viaLink.manifest());
  }

  @Test
  void stream_fileChangedSinceTheWalk_failsNamingIt() throws Exception {
    Path f = Files.writeString(tmp.resolve("f"), "12345");
    SourceNode node = new SourceNode(2, InodeKind.FILE, f, 0, 0, 0644, 0, null, null);
    node.size = 10; // what the walk saw before the file shrank
    node.modified = Files.getLastModifiedTime(f);
    var chunker =
        new dev.puzzlefs.format.Chunker(dev.puzzlefs.format.FastCdc.PUZZLEFS, (b, o, l) -> {});
    IOException e =
        assertThrows(
            IOException.class,
            () -> ImageBuilder.stream(node, chunker, new byte[64], new ImageBuilder.Listener() {}));
    assertTrue(e.getMessage().contains(f + " changed while it was read"), e.getMessage());
  }

  /** The walked node of {@code name} under {@code src}. */
  private static SourceNode walked(Path src, String name) throws IOException {
    return TreeWalker.walk(src).stream()
        .filter(n -> n.path.getFileName().toString().equals(name))
        .findFirst()
        .orElseThrow();
  }

  /** Streams {@code node}, returning what the chunker was given (if it returns). */
  private static byte[] streamed(SourceNode node) throws IOException {
    var out = new java.io.ByteArrayOutputStream();
    var chunker =
        new dev.puzzlefs.format.Chunker(
            dev.puzzlefs.format.FastCdc.PUZZLEFS, (b, o, l) -> out.write(b, o, l));
    ImageBuilder.stream(node, chunker, new byte[64], new ImageBuilder.Listener() {});
    chunker.finish();
    return out.toByteArray();
  }

  @Test
  void stream_fileReplacedBySymlinkToASecret_isRefusedNotRead() throws Exception {
    // Break-it pass 4: a file swapped for a symlink after the walk, the symlink given the
    // file's time and pointing at a file of the same size outside ROOTFS, was read into the image.
    Path secret = Files.writeString(tmp.resolve("secret"), "TOP SECRET");
    Path src = Files.createDirectories(tmp.resolve("src"));
    Path f = Files.writeString(src.resolve("f"), "0123456789");
    Path reference = Files.createFile(tmp.resolve("reference"));
    assertEquals(0, Processes.run(10, "touch", "-r", f.toString(), reference.toString()).exit());
    SourceNode node = walked(src, "f");
    Files.delete(f);
    Files.createSymbolicLink(f, secret);
    assertEquals(
        0, Processes.run(10, "touch", "-h", "-r", reference.toString(), f.toString()).exit());
    assertEquals(
        node.modified,
        Files.readAttributes(f, "unix:lastModifiedTime", java.nio.file.LinkOption.NOFOLLOW_LINKS)
            .get("lastModifiedTime"),
        "the symlink has the walked file's time");

    IOException e = assertThrows(IOException.class, () -> streamed(node));
    assertTrue(e.getMessage().contains(f + " changed while it was read"), e.getMessage());
  }

  @Test
  void stream_parentDirectoryReplacedBySymlink_isRefusedNotRead() throws Exception {
    // The same through a directory: d/f is opened through a symlink d -> elsewhere, where a file
    // of the same size and time waits; only the file's identity tells them apart.
    Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
    Path src = Files.createDirectories(tmp.resolve("src"));
    Path d = Files.createDirectories(src.resolve("d"));
    Path f = Files.writeString(d.resolve("f"), "0123456789");
    Path secret = Files.writeString(elsewhere.resolve("f"), "TOP SECRET");
    Files.setLastModifiedTime(secret, Files.getLastModifiedTime(f));
    SourceNode node = walked(src, "f");
    Files.move(d, tmp.resolve("d-moved"));
    Files.createSymbolicLink(d, elsewhere);

    IOException e = assertThrows(IOException.class, () -> streamed(node));
    assertTrue(e.getMessage().contains("changed while it was read"), e.getMessage());
  }

  @Test
  void stream_fileReplacedByFifo_failsInsteadOfBlocking() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("src"));
    Path f = Files.writeString(src.resolve("f"), "0123456789");
    SourceNode node = walked(src, "f");
    Files.delete(f);
    Processes.run(10, "mkfifo", f.toString());

    IOException e =
        org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
            java.time.Duration.ofSeconds(10),
            () -> assertThrows(IOException.class, () -> streamed(node)));
    assertTrue(e.getMessage().contains("no longer a regular file"), e.getMessage());
  }

  @Test
  void build_layoutFiles_areReadableByOthers() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Files.writeString(src.resolve("a"), "x");
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    BuildResult r = new ImageBuilder(1).build(src, layout, "t");
    for (Path p : List.of(tmp.resolve("oci/index.json"), layout.blobPath(r.manifest()))) {
      assertEquals(
          "rw-r--r--",
          java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p)),
          p.toString());
    }
  }

  @Test
  void build_retagging_replacesTheOldEntry() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Files.writeString(src.resolve("a"), "1");
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    new ImageBuilder(1).build(src, layout, "t");
    Files.writeString(src.resolve("a"), "2");
    BuildResult second = new ImageBuilder(1).build(src, layout, "t");
    new ImageBuilder(1).build(src, layout, "other");

    assertEquals(2, layout.index().manifests().size());
    assertEquals(second.manifest(), layout.resolveTag("t").digestValue());
  }

  @Test
  void build_manifest_hasEmptyConfigRootfsAnnotationAndCanonicalJson() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Files.writeString(src.resolve("a"), "hello\n");
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    BuildResult r = new ImageBuilder(1).build(src, layout, "t");

    byte[] manifestBytes = layout.readBlob(r.manifest());
    String json = new String(manifestBytes, StandardCharsets.UTF_8);
    assertFalse(json.contains(" ") || json.contains("\n"), json);
    assertTrue(json.startsWith("{\"config\":{\"data\":\"e30=\",\"digest\":\"sha256:44136fa"), json);
    ImageManifest m = layout.manifest("t");
    Descriptor rootfs = m.layers().get(0);
    assertEquals(MediaTypes.ROOTFS, rootfs.mediaType());
    assertEquals(
        HexFormat.of().formatHex(FsVerity.digest(layout.readBlob(rootfs.digestValue()))),
        rootfs.annotation(MediaTypes.VERITY_ROOT_HASH));
    assertArrayEquals(FsVerity.digest(manifestBytes), r.manifestVerity());
    assertNotNull(layout.readBlob(m.config().digestValue()));
    try (Stream<Path> blobs = Files.list(tmp.resolve("oci/blobs/sha256"))) {
      assertTrue(blobs.noneMatch(p -> p.getFileName().toString().startsWith(".")), "temp files");
    }
  }

  @Test
  void awaitQuietly_onAnInterruptedThread_stillWaitsForTheWritesUnderWay() throws Exception {
    // A signal stops a build by interrupting its thread; the chunk writes still running must end
    // (removing their temporary files) before the build reports and the JVM exits.
    java.util.concurrent.ExecutorService workers =
        java.util.concurrent.Executors.newFixedThreadPool(1);
    java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
    workers.execute(
        () -> {
          started.countDown();
          long end = System.nanoTime() + 300_000_000L;
          while (System.nanoTime() < end) {
            Thread.onSpinWait(); // a write that does not stop when interrupted
          }
        });
    started.await();
    workers.shutdownNow();
    Thread.currentThread().interrupt();
    try {
      ImageBuilder.awaitQuietly(workers);

      assertTrue(workers.isTerminated(), "returned before the write ended");
      assertTrue(Thread.currentThread().isInterrupted(), "the interrupt is kept");
    } finally {
      Thread.interrupted();
    }
  }
}
