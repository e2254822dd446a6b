package dev.puzzlefs.builder;

import dev.puzzlefs.format.Chunker;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.SeekableZstd;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;

/**
 * Receives the chunks the chunker cuts from the data stream and stores them: compressing (when
 * asked), hashing (sha256 and fs-verity) and writing run on worker threads while the caller goes on
 * reading files, with a bound on chunks in flight so memory stays flat.
 */
final class ChunkWriter implements Chunker.ChunkSink {
  /**
   * A stored chunk: its name and fs-verity digest (both of the stored bytes), its length in the
   * stream, the length of its blob, and whether the blob is seekable zstd.
   */
  record StoredChunk(
      Digest digest,
      byte[] verity,
      int length,
      int storedLength,
      boolean compressed,
      boolean written) {}

  private final OciLayout layout;
  private final ExecutorService workers;
  private final Compression compression;
  private final Semaphore inFlight;
  private final List<CompletableFuture<StoredChunk>> chunks = new ArrayList<>();

  /** fs-verity digests of the blobs this build has stored, so a repeated chunk is stored once. */
  private final ConcurrentHashMap<Digest, byte[]> storedVerity = new ConcurrentHashMap<>();

  ChunkWriter(OciLayout layout, ExecutorService workers, int maxInFlight, Compression compression) {
    this.layout = layout;
    this.workers = workers;
    this.compression = compression;
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
    byte[] stored = data;
    boolean compressed = false;
    if (compression == Compression.ZSTD) {
      byte[] zstd = SeekableZstd.compress(data);
      if (zstd.length < data.length) {
        stored = zstd;
        compressed = true;
      }
    }
    Digest digest = Digest.sha256(stored);
    byte[] known = storedVerity.get(digest);
    if (known != null) {
      return new StoredChunk(digest, known, data.length, stored.length, compressed, false);
    }
    byte[] verity = FsVerity.digest(stored);
    try {
      // Two workers may cut the same chunk at once: only the first to claim it writes it.
      boolean first = storedVerity.putIfAbsent(digest, verity) == null;
      boolean written = first && layout.putBlob(digest, stored, stored.length);
      return new StoredChunk(digest, verity, data.length, stored.length, compressed, written);
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
