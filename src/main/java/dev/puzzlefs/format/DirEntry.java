package dev.puzzlefs.format;

import java.util.Arrays;

/** One name in a directory; names are raw bytes, compared unsigned. */
public record DirEntry(long ino, byte[] name) implements Comparable<DirEntry> {
  @Override
  public int compareTo(DirEntry o) {
    return Arrays.compareUnsigned(name, o.name);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof DirEntry e && e.ino == ino && Arrays.equals(e.name, name);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(ino) * 31 + Arrays.hashCode(name);
  }

  @Override
  public String toString() {
    return "DirEntry["
        + ino
        + " "
        + new String(name, java.nio.charset.StandardCharsets.UTF_8)
        + "]";
  }
}
