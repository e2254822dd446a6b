package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.registry.RegistryClient;
import java.util.concurrent.CompletableFuture;
import java.util.function.ToLongFunction;

/** Fetches blobs from one repository of a registry, one GET per blob. */
public final class RegistryBlobFetcher implements BlobFetcher {
  private final RegistryClient client;
  private final String repository;
  private final ToLongFunction<Digest> expectedSizes;

  /**
   * Fetches from {@code repository} through {@code client}, which the caller closes; a blob may be
   * as large as the client's {@code maxBlobBytes}.
   */
  public RegistryBlobFetcher(RegistryClient client, String repository) {
    this(client, repository, blob -> -1);
  }

  /**
   * Fetches from {@code repository} through {@code client}, which the caller closes, expecting each
   * blob to be at most {@code expectedSizes} of its digest bytes long (a negative size means
   * unknown: the client's {@code maxBlobBytes}). A longer response is cut off and not retried.
   */
  public RegistryBlobFetcher(
      RegistryClient client, String repository, ToLongFunction<Digest> expectedSizes) {
    this.client = client;
    this.repository = repository;
    this.expectedSizes = expectedSizes;
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    long size = expectedSizes.applyAsLong(blob);
    return (size < 0 ? client.pullBlob(repository, blob) : client.pullBlob(repository, blob, size))
        .toCompletionStage()
        .toCompletableFuture();
  }

  @Override
  public java.util.Map<String, Long> stats() {
    return java.util.Map.of(
        "registryRequests", client.requests(),
        "registryRetries", client.retries(),
        "registryFailures", client.failures());
  }

  /** True: the registry client hands out only bodies that hash to the blob's digest. */
  @Override
  public boolean verifiesDigests() {
    return true;
  }

  @Override
  public String source() {
    return client.registry() + "/" + repository;
  }
}
