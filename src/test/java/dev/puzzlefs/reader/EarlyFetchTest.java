package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class EarlyFetchTest {
  private static List<Digest> digests(int n) {
    List<Digest> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      byte[] b = ("chunk " + i).getBytes(StandardCharsets.UTF_8);
      out.add(Digest.sha256(b, 0, b.length));
    }
    return out;
  }

  /** Completes each fetch later, on another thread; records the order and the most in flight. */
  private static final class SlowSource implements ChunkSource {
    final List<Digest> asked = Collections.synchronizedList(new ArrayList<>());
    final AtomicInteger inFlight = new AtomicInteger();
    final AtomicInteger most = new AtomicInteger();
    final Digest failing;
    volatile boolean cheap;

    SlowSource(Digest failing) {
      this.failing = failing;
    }

    @Override
    public boolean fetchesRunsCheaply() {
      return cheap;
    }

    @Override
    public CompletableFuture<byte[]> fetch(Digest blob) {
      asked.add(blob);
      most.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
      return CompletableFuture.supplyAsync(
          () -> {
            inFlight.decrementAndGet();
            if (blob.equals(failing)) {
              throw new IllegalStateException(new IOException("no such blob"));
            }
            return new byte[1];
          },
          CompletableFuture.delayedExecutor(5, TimeUnit.MILLISECONDS));
    }
  }

  private static void awaitSettled(EarlyFetch f, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < deadline) {
      Map<String, Long> s = f.stats();
      if (s.get("earlyChunksFetched") + s.get("earlyChunksFailed") == n) {
        return;
      }
      Thread.sleep(5);
    }
  }

  @Test
  void start_fetchesEveryChunkInOrder_atMostNAtATime_countingFailures() throws Exception {
    List<Digest> chunks = digests(40);
    SlowSource source = new SlowSource(chunks.get(7));

    EarlyFetch f = EarlyFetch.start(source, chunks, 3);
    awaitSettled(f, 40);

    assertEquals(chunks, source.asked);
    assertTrue(source.most.get() <= 3, "at most 3 in flight, saw " + source.most.get());
    assertEquals(
        Map.of("earlyChunksPlanned", 40L, "earlyChunksFetched", 39L, "earlyChunksFailed", 1L),
        f.stats());
  }

  @Test
  void start_sourceThatFetchesManyCheaplyOnceReady_getsEveryChunkAtOnce() throws Exception {
    List<Digest> chunks = digests(60);
    SlowSource source = new SlowSource(null);
    CompletableFuture<Void> ready = new CompletableFuture<>();

    EarlyFetch f = EarlyFetch.start(source, chunks, 3, ready, 10_000);
    Thread.sleep(50);
    assertEquals(0, source.asked.size(), "nothing asked before the source is ready");
    source.cheap = true;
    ready.complete(null);
    awaitSettled(f, 60);

    assertEquals(chunks, source.asked);
    assertTrue(source.most.get() > 3, "more than 3 in flight, saw " + source.most.get());
  }

  @Test
  void start_sourceNeverReady_fetchesAtMostNAtATimeAfterTheWait() throws Exception {
    List<Digest> chunks = digests(30);
    SlowSource source = new SlowSource(null);

    long start = System.nanoTime();
    EarlyFetch f = EarlyFetch.start(source, chunks, 2, new CompletableFuture<>(), 40);
    awaitSettled(f, 30);

    assertEquals(chunks, source.asked);
    assertTrue(System.nanoTime() - start >= 40_000_000L, "waited for the source");
    assertTrue(source.most.get() <= 2, "at most 2 in flight, saw " + source.most.get());
  }

  @Test
  void startWhenListed_fetchesTheListOnceItArrives_orNothingWhenItFails() throws Exception {
    List<Digest> chunks = digests(20);
    SlowSource source = new SlowSource(null);
    CompletableFuture<List<Digest>> listed = new CompletableFuture<>();

    EarlyFetch f = EarlyFetch.startWhenListed(source, listed);
    Thread.sleep(30);
    assertEquals(0, source.asked.size(), "nothing asked before the list arrived");
    listed.complete(chunks);
    awaitSettled(f, 20);
    assertEquals(chunks, source.asked);
    assertEquals(20L, f.stats().get("earlyChunksPlanned"));

    SlowSource other = new SlowSource(null);
    EarlyFetch none =
        EarlyFetch.startWhenListed(
            other, CompletableFuture.failedFuture(new IOException("no pack")));
    Thread.sleep(30);
    assertEquals(0, other.asked.size());
    assertEquals(0L, none.stats().get("earlyChunksPlanned"));
    none.close();
  }

  @Test
  void close_startsNoMoreFetches() throws Exception {
    List<Digest> chunks = digests(200);
    SlowSource source = new SlowSource(null);

    EarlyFetch f = EarlyFetch.start(source, chunks, 1);
    Thread.sleep(30);
    f.close();
    int asked = source.asked.size();
    Thread.sleep(100);

    assertEquals(asked, source.asked.size(), "nothing asked after close");
    assertTrue(asked < 200, "closed before the end: " + asked);
  }

  @Test
  void start_sourceThatThrows_countsAndStops() throws Exception {
    ChunkSource closed =
        blob -> {
          throw new java.util.concurrent.RejectedExecutionException("closed");
        };

    EarlyFetch f = EarlyFetch.start(closed, digests(5), 2);
    awaitSettled(f, 1);

    assertEquals(1L, f.stats().get("earlyChunksFailed"));
    assertEquals(0L, f.stats().get("earlyChunksFetched"));
  }
}
