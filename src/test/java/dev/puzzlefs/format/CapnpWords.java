package dev.puzzlefs.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A one-segment Cap'n Proto message written word by word, for blobs that no message builder would
 * write: lists that claim more elements than exist, pointers that alias one another.
 */
final class CapnpWords {
  static final int BYTE_ELEMENTS = 2;
  static final int INLINE_COMPOSITE = 7;

  private final List<Long> words = new ArrayList<>();

  /** Appends {@code word}; returns its index in the segment. */
  int add(long word) {
    words.add(word);
    return words.size() - 1;
  }

  /** Appends {@code count} zero words; returns the index of the first. */
  int reserve(int count) {
    int first = words.size();
    for (int i = 0; i < count; i++) {
      words.add(0L);
    }
    return first;
  }

  void set(int index, long word) {
    words.set(index, word);
  }

  int size() {
    return words.size();
  }

  /** A struct pointer at word {@code from} to a struct at word {@code to}. */
  static long structPointer(int from, int to, int dataWords, int pointers) {
    long offset = to - from - 1;
    return ((offset << 2) & 0xffffffffL) | ((long) dataWords << 32) | ((long) pointers << 48);
  }

  /**
   * A list pointer at word {@code from} to a list at word {@code to}; {@code count} is elements, or
   * for an inline composite list the words after the tag.
   */
  static long listPointer(int from, int to, int elementSize, int count) {
    long offset = to - from - 1;
    return ((offset << 2) & 0xffffffffL) | 1 | ((long) elementSize << 32) | ((long) count << 35);
  }

  /** The tag word in front of an inline composite list of {@code count} structs. */
  static long compositeTag(int count, int dataWords, int pointers) {
    return (((long) count << 2) & 0xffffffffL) | ((long) dataWords << 32) | ((long) pointers << 48);
  }

  /** The message in stream framing: a one-segment table, then the words. */
  byte[] message() {
    ByteBuffer out = ByteBuffer.allocate(8 + 8 * words.size()).order(ByteOrder.LITTLE_ENDIAN);
    out.putInt(0).putInt(words.size());
    for (long w : words) {
      out.putLong(w);
    }
    return out.array();
  }
}
