package dev.puzzlefs.reader;

import dev.puzzlefs.format.Digest;
import java.util.Arrays;
import java.util.Set;

/**
 * The files a prefetch list named and the chunks it planned for them. A read of such a file that
 * ends in a planned chunk follows the list: the list was recorded from the same reads and its
 * chunks are being fetched already, so reading further ahead would only fetch chunks the command
 * never read.
 */
final class ListedReads {
  private final long[] inos; // sorted
  private final Set<Digest> chunks;

  private ListedReads(long[] inos, Set<Digest> chunks) {
    this.inos = inos;
    this.chunks = chunks;
  }

  /** The list's files and planned chunks, or null when it named no file. */
  static ListedReads of(Set<Long> inos, Set<Digest> chunks) {
    if (inos.isEmpty()) {
      return null;
    }
    long[] sorted = inos.stream().mapToLong(Long::longValue).sorted().toArray();
    return new ListedReads(sorted, Set.copyOf(chunks));
  }

  /** True when a read of file {@code ino} that ends in chunk {@code last} follows the list. */
  boolean follows(long ino, Digest last) {
    return Arrays.binarySearch(inos, ino) >= 0 && chunks.contains(last);
  }
}
