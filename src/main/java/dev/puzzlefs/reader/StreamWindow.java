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
 *
 * <p>A window also carries a marker, its middle chunk, as the kernel's readahead does: a read that
 * reaches the marker has the next window fetched at once ({@link #reached}), the same size, while
 * the second half is read. Without it a walk that outran the fetches stopped at the end of every
 * window and waited a whole round trip for the next.
 */
final class StreamWindow {
  private final int initial;
  private final int max;
  private Set<Digest> asked = new HashSet<>();
  private Set<Digest> previous = new HashSet<>();
  private int window;
  private Digest marker;
  private Digest end;

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
        asked.contains(stalledOn) || previous.contains(stalledOn)
            ? Math.min(limit, window * 2)
            : Math.min(limit, Math.max(initial, window / 2));
    return window;
  }

  /**
   * Remembers the chunks of the window just fetched after a stall, and the one after them, in place
   * of the last windows'; its middle chunk becomes the marker.
   */
  synchronized void asked(List<Digest> chunks) {
    previous.clear();
    start(chunks);
  }

  /**
   * The last chunk of the current window when {@code blob} is its marker, which it then no longer
   * is: the caller fetches the next window from there ({@link #continued}). Null for any other
   * chunk.
   */
  synchronized Digest reached(Digest blob) {
    if (marker == null || !marker.equals(blob)) {
      return null;
    }
    marker = null;
    return end;
  }

  /** The size of the window fetched next. */
  synchronized int size() {
    return window;
  }

  /**
   * Remembers the window fetched after a read reached the marker (and the one after it); the window
   * before stays remembered too, since the reader is still in it.
   */
  synchronized void continued(List<Digest> chunks) {
    Set<Digest> last = previous;
    previous = asked;
    asked = last;
    start(chunks);
  }

  private void start(List<Digest> chunks) {
    asked.clear();
    asked.addAll(chunks);
    // the list ends with the chunk after the window, when there is one
    int fetched = Math.min(window, chunks.size());
    marker = fetched < 2 ? null : chunks.get(fetched / 2);
    end = fetched == 0 ? null : chunks.get(fetched - 1);
  }
}
