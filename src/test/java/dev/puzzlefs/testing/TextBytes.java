package dev.puzzlefs.testing;

import java.nio.charset.StandardCharsets;
import java.util.Random;

/** Compressible test data: text-like bytes, words drawn from a small vocabulary. */
public final class TextBytes {
  private static final String[] WORDS = {
    "lorem ", "ipsum ", "dolor ", "sit ", "amet\n", "usr/", "lib/", "share ", "x86_64-linux-gnu "
  };

  private TextBytes() {}

  /** {@code n} bytes of words, the same for the same seed; zstd shrinks them several times. */
  public static byte[] of(int n, long seed) {
    Random random = new Random(seed);
    byte[] out = new byte[n];
    int at = 0;
    while (at < n) {
      byte[] w = WORDS[random.nextInt(WORDS.length)].getBytes(StandardCharsets.UTF_8);
      int take = Math.min(w.length, n - at);
      System.arraycopy(w, 0, out, at, take);
      at += take;
    }
    return out;
  }
}
