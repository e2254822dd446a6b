package dev.puzzlefs.format;

import java.util.Arrays;

/** An extended attribute: full name ({@code user.x}) and raw value. */
public record Xattr(byte[] key, byte[] value) {
  @Override
  public boolean equals(Object o) {
    return o instanceof Xattr x && Arrays.equals(x.key, key) && Arrays.equals(x.value, value);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(key) * 31 + Arrays.hashCode(value);
  }
}
