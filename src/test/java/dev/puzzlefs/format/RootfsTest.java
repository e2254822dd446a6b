package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class RootfsTest {
  private static Digest d(String s) {
    return Digest.sha256(s.getBytes(StandardCharsets.UTF_8));
  }

  private static Inode file(long ino, Digest... blobs) {
    List<FileChunk> chunks = new java.util.ArrayList<>();
    for (Digest b : blobs) {
      chunks.add(new FileChunk(b, 0, false, 10));
    }
    return new Inode(ino, InodeKind.FILE, 0, 0, 0644, 0, 0, null, chunks, null, null);
  }

  @Test
  void chunkUses_everyChunkOfEveryLayer_newestFirst_withItsIno_repeatsKept() {
    Inode dir = new Inode(1, InodeKind.DIR, 0, 0, 0755, 0, 0, List.of(), null, null, null);
    Rootfs rootfs =
        new Rootfs(
            List.of(List.of(dir, file(2, d("a"), d("b"))), List.of(file(3, d("a")), file(4))),
            List.of(),
            Rootfs.MANIFEST_VERSION);

    assertEquals(
        List.of(
            new Rootfs.ChunkUse(2, d("a")),
            new Rootfs.ChunkUse(2, d("b")),
            new Rootfs.ChunkUse(3, d("a"))),
        rootfs.chunkUses());
  }
}
