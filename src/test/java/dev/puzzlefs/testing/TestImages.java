package dev.puzzlefs.testing;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small OCI layouts with a PuzzleFS-shaped manifest (empty config, rootfs, chunks) for tests. */
public final class TestImages {
  private TestImages() {}

  /**
   * An image in a layout: its manifest digest and every blob the manifest names, config first.
   *
   * @param blobs digest to bytes, in manifest order (config, rootfs, chunks)
   */
  public record Image(
      OciLayout layout, String tag, Digest manifestDigest, Map<Digest, byte[]> blobs) {
    /** The total size of the blobs. */
    public long blobBytes() {
      return blobs.values().stream().mapToLong(b -> b.length).sum();
    }

    /** The chunk blobs (every blob after config and rootfs). */
    public List<Digest> chunks() {
      return new ArrayList<>(blobs.keySet()).subList(2, blobs.size());
    }
  }

  /** Random bytes from a seeded generator. */
  public static byte[] randomBytes(Random random, int size) {
    byte[] data = new byte[size];
    random.nextBytes(data);
    return data;
  }

  /**
   * Creates (or extends) a layout in {@code dir} with an image tagged {@code tag}: the empty
   * config, a random "rootfs" and {@code chunks} random chunk blobs of up to {@code maxChunk}
   * bytes.
   */
  public static Image create(Path dir, String tag, int chunks, int maxChunk, long seed)
      throws IOException {
    Random random = new Random(seed);
    OciLayout layout = OciLayout.openOrCreate(dir);
    Map<Digest, byte[]> blobs = new LinkedHashMap<>();

    byte[] config = "{}".getBytes(StandardCharsets.UTF_8);
    Digest configDigest = layout.putBlob(config);
    blobs.put(configDigest, config);

    List<Descriptor> layers = new ArrayList<>();
    byte[] rootfs = randomBytes(random, 4096);
    Digest rootfsDigest = layout.putBlob(rootfs);
    blobs.put(rootfsDigest, rootfs);
    layers.add(Descriptor.of(MediaTypes.ROOTFS, rootfsDigest, rootfs.length));

    for (int i = 0; i < chunks; i++) {
      byte[] chunk = randomBytes(random, 1 + random.nextInt(maxChunk));
      Digest d = layout.putBlob(chunk);
      blobs.put(d, chunk);
      layers.add(Descriptor.of(MediaTypes.FILEDATA, d, chunk.length));
    }

    ImageManifest manifest =
        new ImageManifest(
            2,
            MediaTypes.MANIFEST,
            Descriptor.of(MediaTypes.EMPTY, configDigest, config.length),
            layers,
            null);
    byte[] manifestBytes = Json.write(manifest);
    Digest manifestDigest = layout.putBlob(manifestBytes);
    layout.tag(tag, Descriptor.of(MediaTypes.MANIFEST, manifestDigest, manifestBytes.length));
    return new Image(layout, tag, manifestDigest, blobs);
  }

  /**
   * Writes {@code rootfsBlob} (any bytes, well formed or not) and {@code chunks} into the layout in
   * {@code dir} as a PuzzleFS image tagged {@code tag}, annotated as a builder would annotate it,
   * and returns the manifest's fs-verity digest in hex: what {@code --digest} takes.
   */
  public static String writeRootfs(
      Path dir, String tag, byte[] rootfsBlob, Map<Digest, byte[]> chunks) throws IOException {
    OciLayout layout = OciLayout.openOrCreate(dir);
    byte[] config = "{}".getBytes(StandardCharsets.UTF_8);
    Digest configDigest = layout.putBlob(config);
    Digest rootfsDigest = layout.putBlob(rootfsBlob);
    List<Descriptor> layers = new ArrayList<>();
    layers.add(
        Descriptor.of(MediaTypes.ROOTFS, rootfsDigest, rootfsBlob.length)
            .withAnnotations(
                Map.of(
                    MediaTypes.VERITY_ROOT_HASH,
                    HexFormat.of().formatHex(FsVerity.digest(rootfsBlob)))));
    for (Map.Entry<Digest, byte[]> chunk : chunks.entrySet()) {
      layout.putBlob(chunk.getValue());
      layers.add(Descriptor.of(MediaTypes.FILEDATA, chunk.getKey(), chunk.getValue().length));
    }
    ImageManifest manifest =
        new ImageManifest(
            2,
            MediaTypes.MANIFEST,
            Descriptor.of(MediaTypes.EMPTY, configDigest, config.length),
            layers,
            null);
    byte[] manifestBytes = Json.write(manifest);
    Digest manifestDigest = layout.putBlob(manifestBytes);
    layout.tag(tag, Descriptor.of(MediaTypes.MANIFEST, manifestDigest, manifestBytes.length));
    return HexFormat.of().formatHex(FsVerity.digest(manifestBytes));
  }
}
