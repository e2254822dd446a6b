package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches each blob from the first of several fetchers that has it: registry mirrors in order, then
 * the origin. A fetcher that fails (unreachable, no such blob, wrong bytes) hands over to the next;
 * the blob fails only when the last one does, with every fetcher's reason.
 */
public final class FallbackBlobFetcher implements BlobFetcher {
  private static final Logger LOG = LoggerFactory.getLogger(FallbackBlobFetcher.class);

  private final List<BlobFetcher> fetchers;
  private final java.util.concurrent.atomic.LongAdder fallbacks =
      new java.util.concurrent.atomic.LongAdder();

  /** Tries {@code fetchers} in order; at least one. */
  public FallbackBlobFetcher(List<BlobFetcher> fetchers) {
    if (fetchers.isEmpty()) {
      throw new IllegalArgumentException("no fetchers");
    }
    this.fetchers = List.copyOf(fetchers);
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    return attempt(blob, 0, new StringBuilder());
  }

  private CompletableFuture<byte[]> attempt(Digest blob, int index, StringBuilder reasons) {
    BlobFetcher fetcher = fetchers.get(index);
    CompletableFuture<byte[]> f;
    try {
      f = fetcher.fetch(blob);
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    return f.handle(
            (bytes, failure) -> {
              if (failure == null) {
                return CompletableFuture.completedFuture(bytes);
              }
              Throwable cause = unwrap(failure);
              String reason = fetcher.source() + ": " + cause.getMessage();
              if (index + 1 == fetchers.size()) {
                if (fetchers.size() == 1) {
                  return CompletableFuture.<byte[]>failedFuture(cause);
                }
                reasons.append(reason);
                return CompletableFuture.<byte[]>failedFuture(
                    new IOException(
                        "no source could provide " + blob + " (" + reasons + ")", cause));
              }
              reasons.append(reason).append("; ");
              fallbacks.increment();
              LOG.info(
                  "{} could not provide {} ({}); trying {}",
                  fetcher.source(),
                  blob,
                  cause.getMessage(),
                  fetchers.get(index + 1).source());
              return attempt(blob, index + 1, reasons);
            })
        .thenCompose(x -> x);
  }

  private static Throwable unwrap(Throwable t) {
    while (t instanceof CompletionException && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  /** As the first fetcher: the one that provides every blob unless it fails. */
  @Override
  public boolean verifiesDigests() {
    return fetchers.stream().allMatch(BlobFetcher::verifiesDigests);
  }

  @Override
  public boolean fetchesRunsCheaply() {
    return fetchers.get(0).fetchesRunsCheaply();
  }

  /** The fetchers' counters, summed, and how many blobs a later fetcher had to provide. */
  @Override
  public java.util.Map<String, Long> stats() {
    java.util.Map<String, Long> sum = new java.util.TreeMap<>();
    for (BlobFetcher f : fetchers) {
      f.stats().forEach((k, v) -> sum.merge(k, v, Long::sum));
    }
    sum.put("mirrorFallbacks", fallbacks.sum());
    return sum;
  }

  @Override
  public String source() {
    StringBuilder out = new StringBuilder();
    for (BlobFetcher f : fetchers) {
      if (out.length() > 0) {
        out.append(", then ");
      }
      out.append(f.source());
    }
    return out.toString();
  }
}
