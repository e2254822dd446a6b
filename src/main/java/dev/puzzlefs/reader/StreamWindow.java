package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * How many chunks of the data stream to fetch after a read stalled, ramping up like the kernel's
 * readahead: {@code initial} at first, twice the last window (at most {@code max}) when the stall
 * is on a chunk the last window asked for or on the one right after it, which means the reader
 * walks the stream faster than the fetches arrive (tar or cp of a tree from a registry), and half
 * the last window (at least {@code initial}) when it stalls anywhere else.
 */
final class StreamWindow {
  private final int initial;
  private final int max;
  private final Set<Digest> asked = new HashSet<>();
  private int window;

  StreamWindow(int initial, int max) {
    if (initial < 1 || max < initial) {
      throw new IllegalArgumentException("window " + initial + " to " + max);
    }
    this.initial = initial;
    this.max = max;
    this.window = initial;
  }

  /** The window for a stall on {@code stalledOn}. */
  int after(Digest stalledOn) {
    return after(stalledOn, max);
  }

  /**
   * The window for a stall on {@code stalledOn}, growing up to {@code most} this time (at least the
   * first window) instead of the usual most: for a source whose most can change.
   */
  synchronized int after(Digest stalledOn, int most) {
    int limit = Math.max(initial, most);
    window =
        asked.contains(stalledOn)
            ? Math.min(limit, window * 2)
            : Math.min(limit, Math.max(initial, window / 2));
    return window;
  }

  /**
   * Remembers the chunks of the window just fetched, and the one after them, in place of the last
   * window's.
   */
  synchronized void asked(List<Digest> chunks) {
    asked.clear();
    asked.addAll(chunks);
  }
}
