package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class FsVerityTest {
  private static final HexFormat HEX = HexFormat.of();
  private static final String FSVERITY = "/usr/bin/fsverity";

  static String hex(byte[] b) {
    return HEX.formatHex(b);
  }

  static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  @Test
  void digest_formatVectors() {
    byte[] a = new byte[1048577];
    Arrays.fill(a, (byte) 'a');

    assertEquals(
        "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95",
        hex(FsVerity.digest(new byte[0])));
    assertEquals(
        "9c76eecc7b76fcb46199cb27b90cf59a660e10575bb0412128905129d5b1c2aa",
        hex(FsVerity.digest(ascii("hello\n"))));
    assertEquals(
        "59f153a1ac82915898164dcc3c12eb96ddd8b3f9426816822bcf90a4a47fc23d",
        hex(FsVerity.digest(a)));
    assertEquals(
        "1a194a268a7afc10cea811e499e1dcb3e55db4b386dea180c62fa4f7e9590b57",
        hex(FsVerity.digest(ascii("meshuggah rocks"))));
    assertEquals(
        "7f943a505c946ab0b3bc97afd3ab20cc376b16a0560b1da6f9abf5f6086d4515",
        hex(FsVerity.digest(ascii("{}"))));
    assertEquals(
        "3d57915768b0151c164196cee1d8a1c48a20149a40d3b3a9e7ac97350919340a",
        hex(FsVerity.digest(TestData.sekien())));
  }

  @Test
  void vectors_sha256AndSizesAreTheOnesListed() {
    assertEquals(
        "3abd5ce0f91f640d88dca1f26b37037b02415927cacec9626d87668a715ec12d",
        Digest.sha256(ascii("meshuggah rocks")).hex());
    assertTrue(Digest.sha256(new byte[0]).hex().startsWith("e3b0c442"));
    assertEquals(
        "d9e749d9367fc908876749d6502eb212fee88c9a94892fb07da5ef3ba8bc39ed",
        Digest.sha256(TestData.sekien()).hex());
    assertEquals(109466, TestData.sekien().length);
  }

  @ParameterizedTest
  @ValueSource(
      ints = {
        0,
        1,
        4095,
        4096,
        4097,
        4096 * 128,
        4096 * 128 + 1,
        4096 * 129,
        3 * 1024 * 1024 + 12345,
        4096 * 128 * 128,
        4096 * 128 * 128 + 1
      })
  void digest_matchesFsverityTool(int size, @TempDir Path dir) throws Exception {
    Assertions.assertTrue(Files.isExecutable(Paths.get(FSVERITY)), FSVERITY + " is not installed");
    byte[] data = TestData.random(size, size);
    Path file = dir.resolve("f");
    Files.write(file, data);

    assertEquals(fsverityTool(file), hex(FsVerity.digest(data)), "size " + size);
  }

  @Test
  void hasher_oddPiecesEqualOneShot() {
    byte[] data = TestData.random(4096 * 300 + 77, 5);
    byte[] expected = FsVerity.digest(data);
    for (int piece : List.of(1, 7, 4095, 4097, 8191, 100000)) {
      FsVerity.Hasher h = new FsVerity.Hasher();
      for (int off = 0; off < data.length; off += piece) {
        h.update(data, off, Math.min(piece, data.length - off));
      }

      assertEquals(hex(expected), hex(h.finish()), "pieces of " + piece);
    }
  }

  @Test
  void digest_inputStreamAndRangeEqualArray() throws IOException {
    byte[] data = TestData.random(200000, 9);
    byte[] padded = new byte[data.length + 20];
    System.arraycopy(data, 0, padded, 10, data.length);

    String expected = hex(FsVerity.digest(data));

    assertEquals(expected, hex(FsVerity.digest(new ByteArrayInputStream(data))));
    assertEquals(expected, hex(FsVerity.digest(padded, 10, data.length)));
  }

  /** The digest {@code fsverity digest FILE} prints, as lowercase hex. */
  static String fsverityTool(Path file) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(FSVERITY, "digest", file.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "fsverity finished");
    assertEquals(0, p.exitValue(), "fsverity digest failed: " + out);
    String[] words = out.trim().split(" ");
    assertEquals(2, words.length, "fsverity printed: " + out);
    assertTrue(words[0].startsWith("sha256:"), "fsverity printed: " + out);
    return words[0].substring("sha256:".length());
  }
}
