package dev.puzzlefs.format;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Random;

/** Test inputs shared by the format tests. */
final class TestData {
  private TestData() {}

  /** The FastCDC reference picture, 109466 bytes, from the test class path. */
  static byte[] sekien() {
    try (InputStream in = TestData.class.getResourceAsStream("/vectors/SekienAkashita.jpg")) {
      if (in == null) {
        throw new IllegalStateException("vectors/SekienAkashita.jpg is not on the class path");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** {@code n} pseudo-random bytes, the same for the same seed. */
  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }
}
