package dev.puzzlefs.format;

import java.util.ArrayList;
import java.util.List;

/**
 * The decoded rootfs blob. {@code layers.get(0)} is the newest layer; each layer's inodes are
 * sorted by ino. {@code verity} is sorted by blob digest.
 */
public record Rootfs(List<List<Inode>> layers, List<VerityData> verity, long manifestVersion) {
  /** The only manifest version this implementation reads and writes. */
  public static final long MANIFEST_VERSION = 3;

  public Rootfs {
    layers = layers.stream().map(List::copyOf).toList();
    verity = List.copyOf(verity);
  }

  /** One use of a chunk blob: inode {@code ino} reads from {@code blob}. */
  public record ChunkUse(long ino, Digest blob) {}

  /** Every chunk every inode of every layer reads, newest layer first, in file order. */
  public List<ChunkUse> chunkUses() {
    List<ChunkUse> out = new ArrayList<>();
    for (List<Inode> layer : layers) {
      for (Inode inode : layer) {
        if (inode.chunks() != null) {
          for (FileChunk c : inode.chunks()) {
            out.add(new ChunkUse(inode.ino(), c.blob()));
          }
        }
      }
    }
    return out;
  }
}
