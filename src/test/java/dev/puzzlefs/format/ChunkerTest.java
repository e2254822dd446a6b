package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ChunkerTest {
  /** Records each chunk's bytes (copied, since the chunker may reuse its buffer). */
  static final class Recorder implements Chunker.ChunkSink {
    final List<byte[]> chunks = new ArrayList<>();

    @Override
    public void chunk(byte[] buf, int off, int len) {
      byte[] copy = new byte[len];
      System.arraycopy(buf, off, copy, 0, len);
      chunks.add(copy);
    }

    int[] lengths() {
      return chunks.stream().mapToInt(c -> c.length).toArray();
    }
  }

  static Recorder chunkInPieces(FastCdc cdc, byte[] data, int piece) throws IOException {
    Recorder r = new Recorder();
    Chunker chunker = new Chunker(cdc, r);
    for (int off = 0; off < data.length; off += piece) {
      chunker.write(data, off, Math.min(piece, data.length - off));
      assertEquals(Math.min(off + piece, data.length), chunker.position());
    }
    chunker.finish();
    return r;
  }

  static void assertSameChunks(FastCdc cdc, byte[] data, Recorder r) {
    int[] expected = FastCdcTest.lengths(FastCdcTest.cutAll(cdc, data));
    assertArrayEquals(expected, r.lengths());
    ByteArrayOutputStream joined = new ByteArrayOutputStream();
    r.chunks.forEach(joined::writeBytes);
    assertArrayEquals(data, joined.toByteArray(), "chunks put together give the stream back");
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 7, 100000, 65535, 65536, 262147})
  void write_sekienInAwkwardPiecesMatchesOneCutLoop(int piece) throws IOException {
    FastCdc cdc = new FastCdc(4096, 16384, 65535);
    byte[] data = TestData.sekien();

    Recorder r = chunkInPieces(cdc, data, piece);

    assertArrayEquals(new int[] {21325, 17140, 28084, 18217, 24700}, r.lengths());
    assertSameChunks(cdc, data, r);
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 7, 100000, 262144, 1 << 20, 3 << 20})
  void write_longStreamInAwkwardPiecesMatchesOneCutLoop(int piece) throws IOException {
    byte[] data = new byte[3 << 20];
    System.arraycopy(TestData.random(2 << 20, 11), 0, data, 0, 2 << 20);
    byte[] sekien = TestData.sekien();
    System.arraycopy(sekien, 0, data, data.length - sekien.length, sekien.length);

    Recorder r = chunkInPieces(FastCdc.PUZZLEFS, data, piece);

    assertTrue(r.chunks.size() > 10);
    assertSameChunks(FastCdc.PUZZLEFS, data, r);
  }

  @Test
  void finish_emptyStreamEmitsNothing() throws IOException {
    Recorder r = new Recorder();
    Chunker chunker = new Chunker(FastCdc.PUZZLEFS, r);

    chunker.write(new byte[0], 0, 0);
    chunker.finish();

    assertEquals(0, r.chunks.size());
    assertEquals(0, chunker.position());
    assertEquals(0, chunker.emitted());
  }

  @Test
  void emitted_countsOnlyBytesHandedToTheSink() throws IOException {
    Recorder r = new Recorder();
    Chunker chunker = new Chunker(FastCdc.PUZZLEFS, r);

    chunker.write(TestData.random(1000, 1), 0, 1000);

    assertEquals(1000, chunker.position());
    assertEquals(0, chunker.emitted(), "fewer than max bytes are held back");
    chunker.finish();
    assertEquals(1000, chunker.emitted());
    assertArrayEquals(new int[] {1000}, r.lengths());
  }
}
