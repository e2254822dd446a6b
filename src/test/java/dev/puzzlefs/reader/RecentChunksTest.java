package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.puzzlefs.format.Digest;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;

class RecentChunksTest {
  /** A source that counts its fetches per chunk and fetches runs cheaply while told to. */
  private static final class Counting implements ChunkSource {
    final Map<Digest, Integer> fetches = new ConcurrentHashMap<>();
    volatile boolean cheapRuns;

    @Override
    public CompletableFuture<byte[]> fetch(Digest blob) {
      fetches.merge(blob, 1, Integer::sum);
      return CompletableFuture.completedFuture(new byte[] {1});
    }

    @Override
    public boolean fetchesRunsCheaply() {
      return cheapRuns;
    }
  }

  private static Digest chunk(int i) {
    return Digest.sha256(("chunk " + i).getBytes(StandardCharsets.UTF_8));
  }

  /** Fetches chunks 0 to {@code count - 1}, then chunk 0 again. */
  private static void fetchThenFirstAgain(RecentChunks recent, int count) {
    for (int i = 0; i < count; i++) {
      recent.fetch(chunk(i));
    }
    recent.fetch(chunk(0));
  }

  @Test
  void keepsTheLargerNumberOfFetchesWhileTheSourceFetchesRunsCheaply() {
    Counting source = new Counting();
    source.cheapRuns = true;
    RecentChunks recent = new RecentChunks(source, 4, 10);
    fetchThenFirstAgain(recent, 10);
    assertEquals(1, source.fetches.get(chunk(0)), "kept among the last 10");
    fetchThenFirstAgain(recent, 12);
    assertEquals(2, source.fetches.get(chunk(0)), "pushed out by 11 others");
  }

  @Test
  void keepsTheSmallerNumber_andShrinksToItOnceRunsAreNoLongerCheap() {
    Counting source = new Counting();
    RecentChunks recent = new RecentChunks(source, 4, 10);
    fetchThenFirstAgain(recent, 5);
    assertEquals(2, source.fetches.get(chunk(0)), "pushed out by 4 others");

    source.cheapRuns = true;
    for (int i = 100; i < 110; i++) {
      recent.fetch(chunk(i));
    }
    source.cheapRuns = false;
    recent.fetch(chunk(200)); // the map shrinks to the last 4 at once
    recent.fetch(chunk(106));
    assertEquals(2, source.fetches.get(chunk(106)), "fell out when the map shrank");
    recent.fetch(chunk(109));
    assertEquals(1, source.fetches.get(chunk(109)), "among the last 4");
  }
}
