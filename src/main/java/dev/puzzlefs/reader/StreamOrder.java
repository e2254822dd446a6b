package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * An image's data stream: every chunk once, in the order of first use with the files in ino order.
 * A directory's files have consecutive inos, so a reader walking a directory (tar, cp, a package
 * manager) wants the chunks that follow the one it waited for, even though they belong to other
 * files.
 */
final class StreamOrder {
  private final Digest[] order;
  private final Map<Digest, Integer> index = new HashMap<>();

  StreamOrder(Inode[] inodes) {
    List<Digest> chunks = new ArrayList<>();
    for (Inode inode : inodes) {
      if (inode.chunks() != null) {
        for (FileChunk c : inode.chunks()) {
          if (index.putIfAbsent(c.blob(), chunks.size()) == null) {
            chunks.add(c.blob());
          }
        }
      }
    }
    order = chunks.toArray(Digest[]::new);
  }

  /** Up to {@code count} chunks after {@code blob} in the stream; none if it is not there. */
  List<Digest> after(Digest blob, int count) {
    Integer at = index.get(blob);
    if (at == null) {
      return List.of();
    }
    return Arrays.asList(order).subList(at + 1, Math.min(order.length, at + 1 + count));
  }
}
