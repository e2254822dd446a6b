package dev.puzzlefs.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.Processes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A chunk blob of a local layout that is a fifo fails its fetch at once instead of holding one of
 * the mount's few I/O threads forever (break-it pass 4: with four such reads every later read of
 * the mount timed out).
 */
class LayoutBlobFetcherTest {
  @TempDir Path tmp;
  private final ExecutorService io = Executors.newFixedThreadPool(1);

  @AfterEach
  void tearDown() {
    io.shutdownNow();
  }

  @Test
  void fifoBlob_failsAtOnce_andTheThreadStaysFree() throws Exception {
    byte[] good = "good chunk".getBytes(StandardCharsets.UTF_8);
    byte[] bad = "bad chunk".getBytes(StandardCharsets.UTF_8);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    layout.putBlob(good);
    Digest fifo = layout.putBlob(bad);
    Files.delete(layout.blobPath(fifo));
    Processes.run(10, "mkfifo", layout.blobPath(fifo).toString());
    LayoutBlobFetcher fetcher = new LayoutBlobFetcher(layout, io);

    for (int i = 0; i < 3; i++) {
      ExecutionException e =
          assertThrows(
              ExecutionException.class, () -> fetcher.fetch(fifo).get(5, TimeUnit.SECONDS));
      assertInstanceOf(OciException.class, e.getCause());
      assertTrue(e.getCause().getMessage().contains("is not a regular file"), e.getMessage());
    }
    assertArrayEquals(good, fetcher.fetch(Digest.sha256(good)).get(5, TimeUnit.SECONDS));
  }

  @Test
  void blobOfAnotherSizeThanTheManifestSays_failsUnread() throws Exception {
    byte[] chunk = "a chunk".getBytes(StandardCharsets.UTF_8);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    Digest d = layout.putBlob(chunk);
    LayoutBlobFetcher fetcher =
        new LayoutBlobFetcher(layout, io, java.util.Map.of(d, (long) chunk.length + 1));

    ExecutionException e =
        assertThrows(ExecutionException.class, () -> fetcher.fetch(d).get(5, TimeUnit.SECONDS));

    assertInstanceOf(OciException.class, e.getCause());
    assertTrue(
        e.getCause()
            .getMessage()
            .equals(
                "blob "
                    + layout.blobPath(d)
                    + " is 7 bytes, but the manifest says 8; the layout is damaged"),
        e.getCause().getMessage());
  }

  @Test
  void blobLargerThanAnyChunk_failsUnreadEvenUnlisted() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    Digest d = layout.putBlob("x".getBytes(StandardCharsets.UTF_8));
    try (java.io.RandomAccessFile f =
        new java.io.RandomAccessFile(layout.blobPath(d).toFile(), "rw")) {
      f.setLength(LayoutBlobFetcher.MAX_CHUNK_BLOB_BYTES + 1);
    }
    LayoutBlobFetcher fetcher = new LayoutBlobFetcher(layout, io);

    ExecutionException e =
        assertThrows(ExecutionException.class, () -> fetcher.fetch(d).get(5, TimeUnit.SECONDS));

    assertTrue(e.getCause().getMessage().contains("more than any chunk"), e.getMessage());
  }

  @Test
  void blobLinkedThroughAFile_failsSayingWhy() throws Exception {
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    Digest d = layout.putBlob("x".getBytes(StandardCharsets.UTF_8));
    Path file = Files.writeString(tmp.resolve("file"), "not a directory");
    Files.delete(layout.blobPath(d));
    Files.createSymbolicLink(layout.blobPath(d), file.resolve("x"));
    LayoutBlobFetcher fetcher = new LayoutBlobFetcher(layout, io);

    ExecutionException e =
        assertThrows(ExecutionException.class, () -> fetcher.fetch(d).get(5, TimeUnit.SECONDS));

    // Java 17 reports the path through a file as ENOTDIR, Java 25 as a missing file: either way
    // the message says why, not the bare path a file error's message often is.
    String said = e.getCause().getMessage();
    assertTrue(
        said.equals("cannot read blob " + layout.blobPath(d) + ": Not a directory")
            || said.equals("blob " + d + " is missing from " + layout.root()),
        said);
  }
}
