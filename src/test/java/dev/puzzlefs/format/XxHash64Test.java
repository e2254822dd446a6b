package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.luben.zstd.ZstdCompressCtx;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class XxHash64Test {
  /** The low 32 bits of XXH64, as zstd writes them as a frame's content checksum. */
  private static int zstdChecksum(byte[] data) {
    try (ZstdCompressCtx ctx = new ZstdCompressCtx()) {
      ctx.setLevel(1);
      ctx.setChecksum(true);
      byte[] frame = ctx.compress(data);
      return ByteBuffer.wrap(frame, frame.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
    }
  }

  @Test
  void hash_empty_isTheReferenceValue() {
    assertEquals(0xEF46DB3751D8E999L, XxHash64.hash(new byte[0], 0, 0));
  }

  @Test
  void hash_everyTailLength_agreesWithZstdFrameChecksums() {
    byte[] data = TestData.random(5000, 11);
    for (int len :
        new int[] {1, 3, 4, 7, 8, 9, 15, 31, 32, 33, 63, 64, 65, 100, 4095, 4096, 4999}) {
      byte[] slice = java.util.Arrays.copyOf(data, len);
      assertEquals(zstdChecksum(slice), (int) XxHash64.hash(slice, 0, len), "length " + len);
    }
  }

  @Test
  void hash_sliceOfLargerArray_usesOnlyTheSlice() {
    byte[] data = TestData.random(200, 12);
    byte[] slice = java.util.Arrays.copyOfRange(data, 17, 17 + 150);
    assertEquals(XxHash64.hash(slice, 0, 150), XxHash64.hash(data, 17, 150));
  }
}
