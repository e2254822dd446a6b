package dev.puzzlefs.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.testing.Processes;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A layout on a real, small tmpfs that is full when index.json is rewritten. */
class OciLayoutFullDiskTest {
  @TempDir Path tmp;
  private Path tmpfs;

  @BeforeEach
  void mountTmpfs() throws Exception {
    tmpfs = Files.createDirectory(tmp.resolve("small"));
    Processes.run(30, "mount", "-t", "tmpfs", "-o", "size=1m", "puzzlefs-test", tmpfs.toString());
  }

  @AfterEach
  void unmountTmpfs() throws Exception {
    Processes.run(30, "umount", tmpfs.toString());
  }

  /** Writes zeros to a new file in {@code dir} until the disk is full. */
  private static void fill(Path dir) throws IOException {
    byte[] block = new byte[64 * 1024];
    try (OutputStream out = Files.newOutputStream(dir.resolve("filler"))) {
      while (true) {
        out.write(block);
      }
    } catch (IOException full) {
      assertTrue(String.valueOf(full.getMessage()).contains("No space left"), full.toString());
    }
  }

  @Test
  void tag_onAFullDisk_failsNamingIndexJsonAndKeepsTheOldIndex() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmpfs.resolve("oci"));
    Path index = layout.root().resolve("index.json");
    String before = Files.readString(index);
    fill(tmpfs);
    Descriptor manifest = Descriptor.of(MediaTypes.MANIFEST, Digest.sha256(new byte[] {1}), 1);

    IOException e = assertThrows(IOException.class, () -> layout.tag("v1", manifest));

    assertEquals("cannot write " + index + ": No space left on device", e.getMessage());
    assertEquals(before, Files.readString(index));
  }
}
