package dev.puzzlefs.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Delta builds ({@code --base-layer}): the layer structure the format asks for. */
class DeltaBuildTest {
  @TempDir Path tmp;

  private Path v1;
  private Path v2;
  private OciLayout layout;

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  @BeforeEach
  void trees() throws IOException {
    v1 = Files.createDirectories(tmp.resolve("v1"));
    Files.write(v1.resolve("big"), random(2_000_000, 1));
    Files.write(v1.resolve("changed"), random(300_000, 2));
    Files.writeString(v1.resolve("gone"), "removed in v2\n");
    Files.writeString(v1.resolve("linked"), "two names in v1, separate files in v2\n");
    Files.createLink(v1.resolve("linked-too"), v1.resolve("linked"));
    Files.createDirectories(v1.resolve("dir/sub"));
    Files.writeString(v1.resolve("dir/sub/deep"), "deep\n");
    Files.writeString(v1.resolve("dir/kept"), "kept\n");
    Files.createDirectories(v1.resolve("gone-dir/inner"));
    Files.writeString(v1.resolve("gone-dir/inner/file"), "inner\n");
    Files.createSymbolicLink(v1.resolve("link"), Path.of("big"));

    v2 = Files.createDirectories(tmp.resolve("v2"));
    Files.write(v2.resolve("big"), random(2_000_000, 1));
    byte[] changed = random(300_000, 2);
    changed[150_000] ^= 1;
    Files.write(v2.resolve("changed"), changed);
    Files.writeString(v2.resolve("linked"), "two names in v1, separate files in v2\n");
    Files.writeString(v2.resolve("linked-too"), "now on its own\n");
    Files.createDirectories(v2.resolve("dir/sub"));
    Files.writeString(v2.resolve("dir/sub/deep"), "deep\n");
    Files.writeString(v2.resolve("dir/kept"), "kept\n");
    Files.writeString(v2.resolve("dir/new"), "new in v2\n");
    Files.write(v2.resolve("added-big"), random(1_000_000, 3));
    Files.createSymbolicLink(v2.resolve("link"), Path.of("changed"));

    layout = OciLayout.openOrCreate(tmp.resolve("oci"));
  }

  private Rootfs rootfs(String tag) throws IOException {
    Descriptor d = rootfsDescriptor(layout.manifest(tag));
    return RootfsCodec.decode(layout.readBlob(d.digestValue()));
  }

  private static Descriptor rootfsDescriptor(ImageManifest m) {
    return m.layers().stream()
        .filter(d -> d.mediaType().equals(MediaTypes.ROOTFS))
        .findFirst()
        .orElseThrow();
  }

  /** The visible inode of {@code ino}: first hit over the layers, null for absent or whiteout. */
  private static Inode lookup(Rootfs r, long ino) {
    for (List<Inode> layer : r.layers()) {
      for (Inode i : layer) {
        if (i.ino() == ino) {
          return i.kind() == InodeKind.WHT ? null : i;
        }
      }
    }
    return null;
  }

  /** Every path reachable from the root, with its ino. */
  private static Map<String, Long> paths(Rootfs r) {
    Map<String, Long> out = new HashMap<>();
    walk(r, 1, "", out);
    return out;
  }

  private static void walk(Rootfs r, long dir, String prefix, Map<String, Long> out) {
    for (DirEntry e : lookup(r, dir).entries()) {
      String path = prefix + "/" + new String(e.name(), StandardCharsets.UTF_8);
      out.put(path, e.ino());
      Inode child = lookup(r, e.ino());
      assertTrue(child != null, path + " names ino " + e.ino() + " which does not exist");
      if (child.kind() == InodeKind.DIR) {
        walk(r, e.ino(), path, out);
      }
    }
  }

  private static long maxIno(Rootfs r) {
    long max = 0;
    for (List<Inode> layer : r.layers()) {
      for (Inode i : layer) {
        max = Math.max(max, i.ino());
      }
    }
    return max;
  }

  private Set<Path> blobFiles() throws IOException {
    try (Stream<Path> s = Files.list(layout.root().resolve("blobs/sha256"))) {
      return new HashSet<>(s.toList());
    }
  }

  @Test
  void delta_keepsInosWhitesOutRemovedAndNumbersNewAboveTheBase() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    BuildResult r = new ImageBuilder(2).build(v2, layout, "v2", "v1");
    Rootfs base = rootfs("v1");
    Rootfs delta = rootfs("v2");

    assertEquals(2, delta.layers().size());
    assertEquals(2, r.layers());
    assertEquals(base.layers().get(0), delta.layers().get(1), "the base layer is kept as it was");

    Map<String, Long> before = paths(base);
    Map<String, Long> after = paths(delta);
    for (String kept :
        List.of("/big", "/changed", "/linked", "/dir", "/dir/sub", "/dir/sub/deep")) {
      assertEquals(before.get(kept), after.get(kept), kept + " keeps its ino");
    }
    assertEquals(before.get("/link"), after.get("/link"), "a changed symlink keeps its ino");
    assertEquals(before.get("/linked"), before.get("/linked-too"), "v1 had one hard-linked file");
    assertNotEquals(after.get("/linked"), after.get("/linked-too"), "v2 has two files");

    long baseMax = maxIno(base);
    for (String added : List.of("/dir/new", "/added-big", "/linked-too")) {
      assertTrue(after.get(added) > baseMax, added + " numbered above the base's highest ino");
    }
    Set<Long> whiteouts = new HashSet<>();
    for (Inode i : delta.layers().get(0)) {
      if (i.kind() == InodeKind.WHT) {
        whiteouts.add(i.ino());
      }
    }
    Set<Long> gone =
        Set.of(
            before.get("/gone"),
            before.get("/gone-dir"),
            before.get("/gone-dir/inner"),
            before.get("/gone-dir/inner/file"));
    assertEquals(gone, whiteouts, "exactly the vanished inos are whited out");
    assertEquals(gone.size(), r.whiteouts());
    for (long ino : gone) {
      assertEquals(null, lookup(delta, ino), "ino " + ino + " no longer exists");
    }

    List<Inode> top = delta.layers().get(0);
    for (int i = 1; i < top.size(); i++) {
      assertTrue(top.get(i - 1).ino() < top.get(i).ino(), "the new layer is sorted by ino");
    }
    assertEquals(after.size() + 1 + gone.size(), top.size(), "complete tree + whiteouts");
  }

  @Test
  void delta_listsEveryChunkAnyLayerUsesOnceAndKnowsTheirVerity() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    new ImageBuilder(2).build(v2, layout, "v2", "v1");
    Rootfs delta = rootfs("v2");
    ImageManifest m = layout.manifest("v2");

    Set<Digest> used = new HashSet<>();
    for (List<Inode> layer : delta.layers()) {
      for (Inode i : layer) {
        if (i.chunks() != null) {
          for (FileChunk c : i.chunks()) {
            used.add(c.blob());
          }
        }
      }
    }
    List<Digest> listed = new ArrayList<>();
    for (Descriptor d : m.layers()) {
      if (!d.mediaType().equals(MediaTypes.ROOTFS)) {
        listed.add(d.digestValue());
        assertEquals(Files.size(layout.blobPath(d.digestValue())), d.size(), d.digest());
      }
    }
    assertEquals(listed.size(), new LinkedHashSet<>(listed).size(), "each chunk listed once");
    assertEquals(used, new HashSet<>(listed), "the manifest lists exactly the chunks in use");
    Set<Digest> verity = new HashSet<>();
    for (VerityData v : delta.verity()) {
      verity.add(v.blob());
    }
    assertEquals(used, verity, "fsVerityData covers old and new chunks");
  }

  @Test
  void delta_unchangedChunksAreReusedNotWrittenAgain() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    Set<Path> afterBase = blobFiles();
    BuildResult r = new ImageBuilder(2).build(v2, layout, "v2", "v1");
    Set<Path> added = blobFiles();
    added.removeAll(afterBase);

    assertTrue(r.chunksReused() >= 7, "the 2 MB file's chunks come back unchanged: " + r);
    assertTrue(r.bytesReused() >= 1_500_000, r.toString());
    assertEquals(r.chunks() - r.chunksReused(), r.chunksWritten(), r.toString());
    // New blobs: the new chunks, the rootfs and the manifest (the config existed).
    assertEquals(r.chunksWritten() + 2, added.size(), added.toString());
  }

  @Test
  void delta_ofAnUnchangedTree_reusesEveryChunkAndWhitesOutNothing() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    BuildResult r = new ImageBuilder(2).build(v1, layout, "again", "v1");
    Rootfs delta = rootfs("again");

    assertEquals(r.chunks(), r.chunksReused());
    assertEquals(0, r.chunksWritten());
    assertEquals(0, r.whiteouts());
    assertEquals(paths(rootfs("v1")), paths(delta));
  }

  @Test
  void delta_onADelta_stacksThreeLayersAndKeepsWhiteoutsEffective() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    new ImageBuilder(2).build(v2, layout, "v2", "v1");
    long goneIno = paths(rootfs("v1")).get("/gone");
    Files.writeString(v2.resolve("gone"), "back again in v3\n");
    BuildResult r = new ImageBuilder(2).build(v2, layout, "v3", "v2");
    Rootfs v3 = rootfs("v3");

    assertEquals(3, v3.layers().size());
    assertEquals(3, r.layers());
    long back = paths(v3).get("/gone");
    assertTrue(back > maxIno(rootfs("v2")), "a whited-out ino is never reused");
    assertNotEquals(goneIno, back);
    assertEquals(paths(rootfs("v2")).get("/added-big"), paths(v3).get("/added-big"));
  }

  @Test
  void delta_compressedOnAnUncompressedBase_readsBothKinds() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    new ImageBuilder(2, Compression.ZSTD).build(v2, layout, "v2", "v1");
    ImageManifest m = layout.manifest("v2");
    Set<String> types = new HashSet<>();
    for (Descriptor d : m.layers()) {
      types.add(d.mediaType());
    }
    assertTrue(types.contains(MediaTypes.FILEDATA), "the base's chunks keep their type");
    assertTrue(types.contains(MediaTypes.FILEDATA_ZSTD), "the new chunks are zstd: " + types);
  }

  @Test
  void delta_missingBaseTag_failsNamingItAndTagsNothing() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    IOException e =
        assertThrows(IOException.class, () -> new ImageBuilder(2).build(v2, layout, "v2", "nope"));
    assertTrue(e.getMessage().contains("nope"), e.getMessage());
    assertTrue(e.getMessage().contains("v1"), "lists the tags that exist: " + e.getMessage());
    assertFalse(layout.findTag("v2").isPresent());
  }

  @Test
  void delta_baseMissingAChunkBlob_failsBeforeTagging() throws Exception {
    new ImageBuilder(2).build(v1, layout, "v1");
    Inode big = lookup(rootfs("v1"), paths(rootfs("v1")).get("/big"));
    Files.delete(layout.blobPath(big.chunks().get(0).blob()));
    // The base's missing blob is one the new tree also cuts: the build stores it again. A chunk
    // only the old layer needs must not be silently dropped from the new manifest.
    Files.writeString(v2.resolve("big"), "big is different now\n");
    IOException e =
        assertThrows(IOException.class, () -> new ImageBuilder(2).build(v2, layout, "v2", "v1"));
    assertTrue(e.getMessage().contains(big.chunks().get(0).blob().toString()), e.getMessage());
    assertFalse(layout.findTag("v2").isPresent());
  }
}
