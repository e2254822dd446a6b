package dev.puzzlefs.format;

import java.util.Arrays;

/** The expected fs-verity digest ({@code verity}, 32 bytes) of the chunk blob {@code blob}. */
public record VerityData(Digest blob, byte[] verity) {
  @Override
  public boolean equals(Object o) {
    return o instanceof VerityData v && v.blob.equals(blob) && Arrays.equals(v.verity, verity);
  }

  @Override
  public int hashCode() {
    return blob.hashCode() * 31 + Arrays.hashCode(verity);
  }
}
