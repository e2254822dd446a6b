package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.registry.RegistryClient;
import java.util.concurrent.CompletableFuture;

/** Fetches blobs from one repository of a registry, one GET per blob. */
public final class RegistryBlobFetcher implements BlobFetcher {
  private final RegistryClient client;
  private final String repository;

  /** Fetches from {@code repository} through {@code client}, which the caller closes. */
  public RegistryBlobFetcher(RegistryClient client, String repository) {
    this.client = client;
    this.repository = repository;
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    return client.pullBlob(repository, blob).toCompletionStage().toCompletableFuture();
  }

  @Override
  public String source() {
    return client.registry() + "/" + repository;
  }
}
