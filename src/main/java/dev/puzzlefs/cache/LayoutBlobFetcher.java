package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;

/** Reads blobs from a local OCI layout on {@code executor}, never on the caller's thread. */
public final class LayoutBlobFetcher implements BlobFetcher {
  private final OciLayout layout;
  private final Executor executor;

  /** Reads from {@code layout}, doing the file I/O on {@code executor}. */
  public LayoutBlobFetcher(OciLayout layout, Executor executor) {
    this.layout = layout;
    this.executor = executor;
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    return CompletableFuture.supplyAsync(() -> read(blob), executor);
  }

  private byte[] read(Digest blob) {
    try (InputStream in = layout.openBlob(blob)) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new CompletionException(e);
    }
  }

  @Override
  public String source() {
    return layout.root().toString();
  }
}
