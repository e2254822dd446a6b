package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.Inode;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * Fetching ahead along an image's data stream ({@link StreamOrder}: every file's chunks in the
 * order the builder wrote them), for a walk that reads file after file to the end (tar, cp): the
 * next files' chunks are on their way before the walk opens them.
 *
 * <p>The window grows as the kernel's readahead does ({@link StreamWindow}): a stall of such a read
 * asks for the chunks that follow the one it waited for, twice as many each time the next stall is
 * on one of them. From a source that fetches runs of neighbours cheaply (a registry image with a
 * chunk pack), the window also carries a marker: a read that reaches it asks for the next window at
 * once, instead of running off the end of this one and waiting a round trip.
 *
 * <p>Safe for concurrent use by every reading thread of an image.
 */
final class StreamAhead {
  private final Inode[] inodes;
  private final ChunkSource source;
  private final RecentChunks recent;
  private final LongAdder fetchedAhead;
  private final StreamWindow window =
      new StreamWindow(Image.STREAM_AHEAD_CHUNKS, Image.MAX_STREAM_AHEAD_CHUNKS);

  /** The data stream's order, built on first use: a program that reads a few files needs none. */
  private volatile StreamOrder order;

  /**
   * Fetches through {@code recent} from {@code source}, along the stream of {@code inodes},
   * counting each chunk asked for in {@code fetchedAhead}.
   */
  StreamAhead(Inode[] inodes, ChunkSource source, RecentChunks recent, LongAdder fetchedAhead) {
    this.inodes = inodes;
    this.source = source;
    this.recent = recent;
    this.fetchedAhead = fetchedAhead;
  }

  /**
   * After a sequential read that takes its file to the end had to wait for {@code blob}: starts
   * fetching the chunks that follow it in the data stream.
   */
  void afterStall(Digest blob) {
    // Asked each time: a registry source stops fetching runs cheaply when its pack fails.
    int size =
        window.after(
            blob,
            source.fetchesRunsCheaply()
                ? Image.MAX_STREAM_AHEAD_RUN_CHUNKS
                : Image.MAX_STREAM_AHEAD_CHUNKS);
    // With the chunk that follows it: a stall there means the reader ran off the window's end.
    List<Digest> next = order().after(blob, size + 1);
    window.asked(next);
    fetch(next, size);
  }

  /**
   * When a sequential read reaches the marker of the last window at {@code blob}: fetches the next
   * window, the chunks after that one's end, while the reader reads the rest of it. Only from a
   * source that fetches runs cheaply: there a walk waits on round trips, and a lazy read of every
   * file of minbase took a fifth less time, with a fifth of the stalls and half the registry
   * requests. A local image keeps waiting for a stall: fetching on was slower there (more work
   * competing with the reads, bench/FINDINGS.md).
   */
  void reached(Digest blob) {
    if (!source.fetchesRunsCheaply()) {
      return;
    }
    Digest end = window.reached(blob);
    if (end == null) {
      return;
    }
    int size = window.size();
    List<Digest> next = order().after(end, size + 1);
    window.continued(next);
    fetch(next, size);
  }

  private void fetch(List<Digest> next, int size) {
    for (Digest chunk : next.subList(0, Math.min(size, next.size()))) {
      recent.fetch(chunk);
      fetchedAhead.increment();
    }
  }

  private StreamOrder order() {
    StreamOrder o = order;
    if (o == null) {
      synchronized (this) {
        o = order;
        if (o == null) {
          o = new StreamOrder(inodes);
          order = o;
        }
      }
    }
    return o;
  }
}
