package dev.puzzlefs.builder;

import dev.puzzlefs.format.Chunker;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;

/**
 * Receives the chunks the chunker cuts from the data stream and stores them: hashing (sha256 and
 * fs-verity) and writing run on worker threads while the caller goes on reading files, with a bound
 * on chunks in flight so memory stays flat.
 */
final class ChunkWriter implements Chunker.ChunkSink {
  /** A stored chunk: its name, its fs-verity digest and its length in the stream. */
  record StoredChunk(Digest digest, byte[] verity, int length, boolean written) {}

  private final OciLayout layout;
  private final ExecutorService workers;
  private final Semaphore inFlight;
  private final List<CompletableFuture<StoredChunk>> chunks = new ArrayList<>();

  ChunkWriter(OciLayout layout, ExecutorService workers, int maxInFlight) {
    this.layout = layout;
    this.workers = workers;
    this.inFlight = new Semaphore(maxInFlight);
  }

  @Override
  public void chunk(byte[] buf, int off, int len) throws IOException {
    byte[] copy = java.util.Arrays.copyOfRange(buf, off, off + len);
    try {
      inFlight.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("build interrupted");
    }
    chunks.add(
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return store(copy);
              } finally {
                inFlight.release();
              }
            },
            workers));
  }

  private StoredChunk store(byte[] data) {
    Digest digest = Digest.sha256(data);
    byte[] verity = FsVerity.digest(data);
    try {
      boolean written = layout.putBlob(digest, data, data.length);
      return new StoredChunk(digest, verity, data.length, written);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Waits for every chunk and returns them in stream order. */
  List<StoredChunk> finish() throws IOException {
    List<StoredChunk> out = new ArrayList<>(chunks.size());
    for (CompletableFuture<StoredChunk> f : chunks) {
      try {
        out.add(f.get());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("build interrupted");
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof UncheckedIOException u) {
          throw u.getCause();
        }
        throw new IOException("could not store a chunk: " + cause, cause);
      }
    }
    return out;
  }
}
