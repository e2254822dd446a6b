package dev.puzzlefs.format;

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
}
