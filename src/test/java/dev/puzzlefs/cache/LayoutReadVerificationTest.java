package dev.puzzlefs.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.reader.ChunkReadException;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.testing.FakeImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sequential reads over a local layout, where the readahead fetches and verifies the next chunks on
 * the I/O threads while the reads go on: a corrupt chunk among them fails the reads that need it,
 * and only those, every time, and its bytes are never served.
 */
class LayoutReadVerificationTest {
  private static final int CHUNK = 4096;
  private static final int CHUNKS = 16;
  private static final int BAD = 5;

  @TempDir Path tmp;
  private final ExecutorService io = Executors.newFixedThreadPool(4);

  @AfterEach
  void tearDown() {
    io.shutdownNow();
  }

  @Test
  void corruptChunkAmongReadahead_failsItsReadsOnly_andIsNeverServedOrCached() throws Exception {
    byte[] content = new byte[CHUNK * CHUNKS];
    new Random(7).nextBytes(content);
    FakeImage fake = new FakeImage(CHUNK);
    long ino = fake.file("/big", content);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    for (Map.Entry<Digest, byte[]> blob : fake.blobs().entrySet()) {
      layout.putBlob(blob.getValue(), blob.getValue().length);
    }
    List<FileChunk> chunks =
        fake.rootfs().layers().get(0).stream()
            .filter(i -> i.ino() == ino)
            .findFirst()
            .orElseThrow()
            .chunks();
    Digest bad = chunks.get(BAD).blob();
    Path badFile = layout.blobPath(bad);
    byte[] good = Files.readAllBytes(badFile);
    byte[] corrupt = good.clone();
    corrupt[100] ^= 0x01;
    Files.write(badFile, corrupt);

    CachingChunkSource source =
        CachingChunkSource.builder(new LayoutBlobFetcher(layout, io))
            .executor(io)
            .fetchTimeout(Duration.ofSeconds(10))
            .build();
    try (Image image = Image.open(fake.rootfs(), source, Duration.ofSeconds(10))) {
      for (int pass = 0; pass < 2; pass++) {
        for (int c = 0; c < CHUNKS; c++) {
          byte[] dst = new byte[CHUNK];
          Arrays.fill(dst, (byte) 0x5a);
          long offset = (long) c * CHUNK;
          if (c == BAD) {
            ChunkReadException e =
                assertThrows(
                    ChunkReadException.class, () -> image.read(ino, offset, dst, 0, CHUNK));
            assertTrue(causedByVerification(e), String.valueOf(e));
            // Nothing of the corrupt chunk reached the caller's buffer.
            byte[] untouched = new byte[CHUNK];
            Arrays.fill(untouched, (byte) 0x5a);
            assertArrayEquals(untouched, dst);
          } else {
            assertEquals(CHUNK, image.read(ino, offset, dst, 0, CHUNK));
            assertArrayEquals(
                Arrays.copyOfRange(content, (int) offset, (int) offset + CHUNK), dst, "chunk " + c);
          }
        }
      }
      assertTrue(source.stats().get("fetchErrors") >= 2, source.stats().toString());

      Files.write(badFile, good);
      byte[] dst = new byte[CHUNK];
      assertEquals(CHUNK, image.read(ino, (long) BAD * CHUNK, dst, 0, CHUNK));
      assertArrayEquals(Arrays.copyOfRange(content, BAD * CHUNK, (BAD + 1) * CHUNK), dst);
    }
  }

  private static boolean causedByVerification(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof ChunkVerificationException) {
        return true;
      }
    }
    return false;
  }
}
