package dev.puzzlefs.oci;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.testing.Processes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Blobs read whole (manifests, rootfs blobs) from a layout that may be damaged or hostile: only a
 * regular file of the size its descriptor gives is read (break-it pass 4: a rootfs blob that was a
 * fifo hung inspect, extract and mount, ignoring SIGTERM, and one linked to /dev/zero ran the mount
 * server out of memory, taking every mount it served down with it).
 */
class OciLayoutBlobTest {
  @TempDir Path tmp;

  private static final byte[] DATA = "a blob".getBytes(StandardCharsets.UTF_8);

  private OciLayout layoutWithBlob() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    layout.putBlob(DATA);
    return layout;
  }

  private static Descriptor descriptor(long size) {
    return Descriptor.of("application/octet-stream", Digest.sha256(DATA), size);
  }

  @Test
  void readBlob_ofTheRightSize_isRead() throws Exception {
    assertArrayEquals(DATA, layoutWithBlob().readBlob(descriptor(DATA.length)));
  }

  @Test
  void readBlob_thatIsAFifo_failsAtOnce() throws Exception {
    OciLayout layout = layoutWithBlob();
    Path blob = layout.blobPath(Digest.sha256(DATA));
    Files.delete(blob);
    Processes.run(10, "mkfifo", blob.toString());
    OciException e =
        assertTimeoutPreemptively(
            Duration.ofSeconds(10),
            () -> assertThrows(OciException.class, () -> layout.readBlob(descriptor(DATA.length))));
    assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
    assertTimeoutPreemptively(
        Duration.ofSeconds(10),
        () -> assertThrows(OciException.class, () -> layout.readBlob(Digest.sha256(DATA))));
  }

  @Test
  void readBlob_linkedToDevZero_failsInsteadOfFillingMemory() throws Exception {
    OciLayout layout = layoutWithBlob();
    Path blob = layout.blobPath(Digest.sha256(DATA));
    Files.delete(blob);
    Files.createSymbolicLink(blob, Path.of("/dev/zero"));
    OciException e =
        assertThrows(OciException.class, () -> layout.readBlob(descriptor(DATA.length)));
    assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
  }

  @Test
  void readBlob_whoseSizeDiffersFromItsDescriptor_isRefusedBeforeReading() throws Exception {
    OciLayout layout = layoutWithBlob();
    OciException e = assertThrows(OciException.class, () -> layout.readBlob(descriptor(1L << 62)));
    assertTrue(
        e.getMessage().contains("is 6 bytes, but its descriptor says 4611686018427387904"),
        e.getMessage());
    assertThrows(OciException.class, () -> layout.readBlob(descriptor(-5)));
  }
}
