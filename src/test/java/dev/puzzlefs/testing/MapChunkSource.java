package dev.puzzlefs.testing;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.reader.ChunkSource;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/** A chunk source over blobs held in memory; counts fetches so tests can see readahead. */
public final class MapChunkSource implements ChunkSource {
  private final Map<Digest, byte[]> blobs;
  private final AtomicInteger fetches = new AtomicInteger();

  public MapChunkSource(Map<Digest, byte[]> blobs) {
    this.blobs = Map.copyOf(blobs);
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    fetches.incrementAndGet();
    byte[] bytes = blobs.get(blob);
    if (bytes == null) {
      return CompletableFuture.failedFuture(new IOException("no blob " + blob));
    }
    return CompletableFuture.completedFuture(bytes);
  }

  /** How many times {@link #fetch} was called. */
  public int fetches() {
    return fetches.get();
  }
}
