package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.builder.Compression;
import dev.puzzlefs.builder.ImageBuilder;
import dev.puzzlefs.cache.CachingChunkSource;
import dev.puzzlefs.cache.LayoutBlobFetcher;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.TextBytes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image built with {@code --compression zstd} by the real builder, read back through the real
 * layout fetcher and cache (sha256 and fs-verity checked on the stored bytes).
 */
class CompressedBuildReadTest {
  @TempDir Path tmp;
  private final ExecutorService io = Executors.newFixedThreadPool(2);

  @AfterEach
  void stop() {
    io.shutdownNow();
  }

  private static Path write(Path file, byte[] data) throws Exception {
    Files.createDirectories(file.getParent());
    return Files.write(file, data);
  }

  /** A mixed tree: big text and noise, many small files, frame-sized and empty files. */
  private static List<Path> tree(Path src) throws Exception {
    Random random = new Random(21);
    List<Path> files = new ArrayList<>();
    files.add(write(src.resolve("big.txt"), TextBytes.of(700_001, 22)));
    byte[] noise = new byte[300_007];
    random.nextBytes(noise);
    files.add(write(src.resolve("noise.bin"), noise));
    for (int i = 0; i < 60; i++) {
      int size = random.nextInt(20_000);
      byte[] data = i % 3 == 0 ? new byte[size] : TextBytes.of(size, i);
      if (i % 3 == 0) {
        random.nextBytes(data);
      }
      files.add(write(src.resolve("many/f" + i), data));
    }
    files.add(write(src.resolve("frame"), TextBytes.of(4096, 23)));
    files.add(write(src.resolve("empty"), new byte[0]));
    Files.createLink(src.resolve("many/link-to-big"), src.resolve("big.txt"));
    files.add(src.resolve("many/link-to-big"));
    return files;
  }

  private static Rootfs rootfs(OciLayout layout) throws Exception {
    var rootfsLayer =
        layout.manifest("t").layers().stream()
            .filter(d -> d.mediaType().equals(MediaTypes.ROOTFS))
            .findFirst()
            .get();
    return RootfsCodec.decode(layout.readBlob(rootfsLayer.digestValue()));
  }

  @Test
  void read_everyFileOfACompressedBuild_atOddOffsets_matchesTheSource() throws Exception {
    Path src = tmp.resolve("src");
    List<Path> files = tree(src);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    new ImageBuilder(2, Compression.ZSTD).build(src, layout, "t");
    Rootfs rootfs = rootfs(layout);

    Map<Digest, byte[]> expectedVerity = new HashMap<>();
    for (VerityData v : rootfs.verity()) {
      expectedVerity.put(v.blob(), v.verity());
    }
    CachingChunkSource source =
        CachingChunkSource.builder(new LayoutBlobFetcher(layout, io))
            .executor(io)
            .maxMemoryBytes(1 << 20)
            .verity(expectedVerity::get, FsVerity::digest)
            .build();

    try (Image image = Image.open(rootfs, source, Duration.ofSeconds(30))) {
      assertMixedChunks(rootfs);
      Random random = new Random(24);
      for (Path file : files) {
        byte[] expected = Files.readAllBytes(file);
        String name = src.relativize(file).toString();
        Inode inode = image.resolve(name.getBytes(StandardCharsets.UTF_8));
        assertEquals(expected.length, image.size(inode.ino()), name);

        assertArrayEquals(expected, readAll(image, inode.ino(), 4093), name + " in 4093s");
        assertArrayEquals(expected, readAll(image, inode.ino(), 131_072), name + " in 128 KiBs");
        for (int i = 0; i < 20 && expected.length > 0; i++) {
          int offset = 1 + 2 * random.nextInt(Math.max(1, expected.length / 2));
          int size = 1 + 2 * random.nextInt(20_000);
          byte[] buf = new byte[size];
          int n = image.read(inode.ino(), offset, buf, 0, size);
          assertEquals(Math.max(0, Math.min(size, expected.length - offset)), n, name);
          if (n > 0) {
            assertArrayEquals(
                Arrays.copyOfRange(expected, offset, offset + n),
                Arrays.copyOf(buf, n),
                name + " at " + offset + " size " + size);
          }
        }
      }
    }
  }

  private static void assertMixedChunks(Rootfs rootfs) {
    long compressed = 0;
    long raw = 0;
    for (Inode inode : rootfs.layers().get(0)) {
      if (inode.kind() == InodeKind.FILE) {
        for (FileChunk c : inode.chunks()) {
          if (c.compressed()) {
            compressed++;
          } else {
            raw++;
          }
        }
      }
    }
    assertTrue(compressed > 0 && raw > 0, compressed + " compressed, " + raw + " raw pieces");
  }

  private static byte[] readAll(Image image, long ino, int bufferSize) throws Exception {
    byte[] out = new byte[(int) image.size(ino)];
    int at = 0;
    while (true) {
      int n = image.read(ino, at, out, at, Math.min(bufferSize, out.length - at));
      if (n == 0) {
        return out;
      }
      at += n;
    }
  }
}
