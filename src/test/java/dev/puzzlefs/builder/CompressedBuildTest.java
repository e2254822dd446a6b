package dev.puzzlefs.builder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.SeekableZstd;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.TextBytes;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code build --compression zstd}: what is stored, what the rootfs says, and reproducibility. */
class CompressedBuildTest {
  @TempDir Path tmp;
  private Path src;
  private byte[] text;
  private byte[] noise;

  @BeforeEach
  void tree() throws IOException {
    src = Files.createDirectories(tmp.resolve("src"));
    text = TextBytes.of(900_000, 1);
    noise = new byte[700_000];
    new Random(2).nextBytes(noise);
    Files.write(src.resolve("a-text"), text);
    Files.write(src.resolve("b-noise"), noise);
    Files.createDirectories(src.resolve("c"));
    Files.write(
        src.resolve("c/small"), "small and compressible? no".getBytes(StandardCharsets.UTF_8));
  }

  private static Rootfs rootfs(OciLayout layout) throws IOException {
    ImageManifest m = layout.manifest("t");
    Descriptor d =
        m.layers().stream().filter(l -> l.mediaType().equals(MediaTypes.ROOTFS)).findFirst().get();
    return RootfsCodec.decode(layout.readBlob(d.digestValue()));
  }

  private static Inode file(Rootfs r, String name) {
    List<Inode> inodes = r.layers().get(0);
    for (DirEntry e : inodes.get(0).entries()) {
      if (new String(e.name(), StandardCharsets.UTF_8).equals(name)) {
        return inodes.get((int) e.ino() - 1);
      }
    }
    throw new AssertionError("no " + name);
  }

  /** The file's bytes as a reader gets them: each piece from its blob, decompressed if flagged. */
  private static byte[] reassemble(OciLayout layout, Inode file) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (FileChunk c : file.chunks()) {
      byte[] blob = layout.readBlob(c.blob());
      if (c.compressed()) {
        out.writeBytes(SeekableZstd.open(blob).read(c.offset(), (int) c.len()));
      } else {
        out.write(blob, (int) c.offset(), (int) c.len());
      }
    }
    return out.toByteArray();
  }

  private static long blobBytes(Path oci) throws IOException {
    try (Stream<Path> blobs = Files.list(oci.resolve("blobs/sha256"))) {
      return blobs.mapToLong(p -> p.toFile().length()).sum();
    }
  }

  @Test
  void build_zstd_compressesTextChunksAndStoresNoiseRaw() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    new ImageBuilder(2, Compression.ZSTD).build(src, layout, "t");
    Rootfs r = rootfs(layout);

    List<FileChunk> textPieces = file(r, "a-text").chunks();
    List<FileChunk> noisePieces = file(r, "b-noise").chunks();
    assertTrue(textPieces.size() >= 3 && noisePieces.size() >= 3, "several chunks each");
    // The last text chunk runs on into the noise, so only the pieces before it are pure text.
    for (FileChunk c : textPieces.subList(0, textPieces.size() - 1)) {
      assertTrue(c.compressed(), "text chunk " + c.blob() + " is stored compressed");
    }
    for (FileChunk c : noisePieces.subList(1, noisePieces.size())) {
      assertFalse(c.compressed(), "noise chunk " + c.blob() + " is stored raw");
    }
    assertArrayEquals(text, reassemble(layout, file(r, "a-text")));
    assertArrayEquals(noise, reassemble(layout, file(r, "b-noise")));
  }

  @Test
  void build_zstd_manifestAndVerityDescribeTheStoredBytes() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    BuildResult result = new ImageBuilder(2, Compression.ZSTD).build(src, layout, "t");
    Rootfs r = rootfs(layout);
    ImageManifest m = layout.manifest("t");

    List<Descriptor> chunks = m.layers().subList(1, m.layers().size());
    long stored = 0;
    for (Descriptor d : chunks) {
      assertEquals(MediaTypes.FILEDATA_ZSTD, d.mediaType());
      assertEquals(Files.size(layout.blobPath(d.digestValue())), d.size());
      stored += d.size();
    }
    assertEquals(stored, result.storedBytes());
    assertEquals(chunks.size(), r.verity().size());
    for (VerityData v : r.verity()) {
      assertArrayEquals(FsVerity.digest(layout.readBlob(v.blob())), v.verity());
    }
  }

  @Test
  void build_zstd_layoutIsSmallerThanTheUncompressedBuild() throws Exception {
    BuildResult plain =
        new ImageBuilder(2).build(src, OciLayout.openOrCreate(tmp.resolve("plain")), "t");
    BuildResult zstd =
        new ImageBuilder(2, Compression.ZSTD)
            .build(src, OciLayout.openOrCreate(tmp.resolve("zstd")), "t");

    long plainBytes = blobBytes(tmp.resolve("plain"));
    long zstdBytes = blobBytes(tmp.resolve("zstd"));
    // The text (900 kB) shrinks several times; the noise (700 kB) stays as it is.
    assertTrue(zstdBytes < plainBytes - 500_000, zstdBytes + " vs " + plainBytes);
    assertTrue(zstd.storedBytes() < plain.storedBytes() - 500_000);
    assertEquals(plain.bytes(), zstd.bytes());
    assertEquals(plain.chunks(), zstd.chunks(), "compression does not change the cut");
    assertNotEquals(plain.manifest(), zstd.manifest());
  }

  @Test
  void build_zstdSameTreeTwice_givesSameManifestDigest() throws Exception {
    Path copy = tmp.resolve("elsewhere/src");
    Files.createDirectories(copy.resolve("c"));
    for (String name : List.of("a-text", "b-noise", "c/small")) {
      Files.copy(src.resolve(name), copy.resolve(name));
    }

    BuildResult a =
        new ImageBuilder(2, Compression.ZSTD)
            .build(src, OciLayout.openOrCreate(tmp.resolve("o1")), "t");
    BuildResult b =
        new ImageBuilder(1, Compression.ZSTD)
            .build(copy, OciLayout.openOrCreate(tmp.resolve("o2")), "t");

    assertEquals(a.manifest(), b.manifest());
    assertArrayEquals(a.manifestVerity(), b.manifestVerity());
  }
}
