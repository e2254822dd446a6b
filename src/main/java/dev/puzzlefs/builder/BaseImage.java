package dev.puzzlefs.builder;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The image a delta build starts from: its layers, its chunk blobs and which ino each of its paths
 * has, so that the new layer can keep those inos, white out the ones that vanished and list every
 * chunk the old layers still reference.
 *
 * <p>Paths are keyed by their raw bytes held in an ISO-8859-1 string (one char per byte, so any
 * name, UTF-8 or not, maps to exactly one key).
 */
final class BaseImage {
  private final String tag;
  private final List<List<Inode>> layers;
  private final List<VerityData> verity;
  private final Map<Digest, Descriptor> chunks;
  private final Map<String, Long> inoByPath;
  private final Set<Long> visibleInos;
  private final long maxIno;

  private BaseImage(
      String tag,
      List<List<Inode>> layers,
      List<VerityData> verity,
      Map<Digest, Descriptor> chunks,
      Map<String, Long> inoByPath,
      Set<Long> visibleInos,
      long maxIno) {
    this.tag = tag;
    this.layers = layers;
    this.verity = verity;
    this.chunks = chunks;
    this.inoByPath = inoByPath;
    this.visibleInos = visibleInos;
    this.maxIno = maxIno;
  }

  /** Reads the image tagged {@code tag} in {@code layout}; every blob it names must be there. */
  static BaseImage load(OciLayout layout, String tag) throws IOException {
    ImageManifest manifest;
    try {
      manifest = layout.manifest(tag);
    } catch (OciException e) {
      throw new IOException("base layer: " + e.getMessage(), e);
    }
    Descriptor rootfsDesc = null;
    Map<Digest, Descriptor> chunks = new LinkedHashMap<>();
    for (Descriptor d : manifest.layers() == null ? List.<Descriptor>of() : manifest.layers()) {
      if (MediaTypes.ROOTFS.equals(d.mediaType())) {
        rootfsDesc = d;
      } else {
        chunks.putIfAbsent(d.digestValue(), d);
      }
    }
    if (rootfsDesc == null) {
      throw new IOException(
          "base layer '" + tag + "' is not a PuzzleFS image: its manifest has no rootfs layer");
    }
    Rootfs rootfs;
    try {
      rootfs = RootfsCodec.decode(layout.readBlob(rootfsDesc));
    } catch (FormatException e) {
      throw new IOException(
          "base layer '" + tag + "': rootfs blob " + rootfsDesc.digest() + ": " + e.getMessage(),
          e);
    }
    Map<Long, Inode> merged = new HashMap<>();
    long maxIno = 0;
    for (List<Inode> layer : rootfs.layers()) {
      for (Inode inode : layer) {
        merged.putIfAbsent(inode.ino(), inode);
        maxIno = Math.max(maxIno, inode.ino());
      }
    }
    Set<Long> visible = new HashSet<>();
    for (Inode inode : merged.values()) {
      if (inode.kind() != InodeKind.WHT) {
        visible.add(inode.ino());
      }
    }
    for (Digest d : chunks.keySet()) {
      if (!layout.hasBlob(d)) {
        throw new IOException(
            "base layer '"
                + tag
                + "' lists chunk "
                + d
                + " but "
                + layout.root()
                + " does not hold it; the delta would name a blob no one can fetch");
      }
    }
    Map<String, Long> inoByPath = paths(tag, merged);
    for (Rootfs.ChunkUse use : rootfs.chunkUses()) {
      if (!chunks.containsKey(use.blob())) {
        throw new IOException(
            "base layer '"
                + tag
                + "': ino "
                + use.ino()
                + " uses chunk "
                + use.blob()
                + " that its manifest does not list");
      }
    }
    return new BaseImage(tag, rootfs.layers(), rootfs.verity(), chunks, inoByPath, visible, maxIno);
  }

  /** Every path reachable from the root, with its ino; refuses a directory reached twice. */
  private static Map<String, Long> paths(String tag, Map<Long, Inode> merged) throws IOException {
    Inode root = merged.get(1L);
    if (root == null || root.kind() != InodeKind.DIR) {
      throw new IOException("base layer '" + tag + "' has no root directory (ino 1)");
    }
    Map<String, Long> out = new HashMap<>();
    out.put("", 1L);
    Set<Long> seenDirs = new HashSet<>();
    seenDirs.add(1L);
    Deque<Map.Entry<String, Inode>> todo = new ArrayDeque<>();
    todo.add(Map.entry("", root));
    while (!todo.isEmpty()) {
      Map.Entry<String, Inode> dir = todo.poll();
      for (DirEntry e : dir.getValue().entries()) {
        Inode child = merged.get(e.ino());
        if (child == null || child.kind() == InodeKind.WHT) {
          continue; // a dangling entry names nothing a new tree could keep
        }
        String name = new String(e.name(), StandardCharsets.ISO_8859_1);
        String path = dir.getKey().isEmpty() ? name : dir.getKey() + "/" + name;
        out.put(path, e.ino());
        if (child.kind() == InodeKind.DIR) {
          if (!seenDirs.add(e.ino())) {
            throw new IOException(
                "base layer '"
                    + tag
                    + "' is malformed: directory ino "
                    + e.ino()
                    + " is reached twice (at "
                    + new String(path.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8)
                    + ")");
          }
          todo.add(Map.entry(path, child));
        }
      }
    }
    return out;
  }

  /** The key of a relative path given as raw bytes with '/' separators. */
  static String key(byte[] path) {
    return new String(path, StandardCharsets.ISO_8859_1);
  }

  /** The base's ino for {@code pathKey}, or -1 if the base has no such path. */
  long inoOf(String pathKey) {
    Long ino = inoByPath.get(pathKey);
    return ino == null ? -1 : ino;
  }

  /** Every ino the base image shows (any layer's, unless a newer layer whites it out). */
  Set<Long> visibleInos() {
    return visibleInos;
  }

  /** The highest ino any layer of the base has used, whiteouts included. */
  long maxIno() {
    return maxIno;
  }

  List<List<Inode>> layers() {
    return layers;
  }

  List<VerityData> verity() {
    return verity;
  }

  /** The base manifest's chunk descriptors, in its order. */
  Map<Digest, Descriptor> chunks() {
    return chunks;
  }

  String tag() {
    return tag;
  }

  @Override
  public String toString() {
    return "base image '" + tag + "'";
  }
}
