package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Chunks whose read timed out in the last {@link #WINDOW_NANOS}. The kernel asks again at once
 * after a failed readahead (one page, synchronously); a read of such a chunk fails at once instead
 * of making the reader wait a second deadline. After the window, a read waits in full again.
 */
final class RecentTimeouts {
  static final long WINDOW_NANOS = TimeUnit.SECONDS.toNanos(2);

  private final Map<Digest, Long> since = new ConcurrentHashMap<>();

  /** True when a read of {@code blob} timed out less than the window ago. */
  boolean timedOutLately(Digest blob) {
    if (since.isEmpty()) { // nearly always: one look, no hashing, on every chunk a read awaits
      return false;
    }
    Long t = since.get(blob);
    return t != null && System.nanoTime() - t < WINDOW_NANOS;
  }

  /** A read of {@code blob} timed out now; the window starts at its first timeout. */
  void timedOut(Digest blob) {
    long now = System.nanoTime();
    since.values().removeIf(t -> now - t >= WINDOW_NANOS);
    since.putIfAbsent(blob, now);
  }

  /** {@code blob} arrived after all. */
  void arrived(Digest blob) {
    if (!since.isEmpty()) {
      since.remove(blob);
    }
  }
}
