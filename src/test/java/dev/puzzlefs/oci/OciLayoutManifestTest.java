package dev.puzzlefs.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Manifests and index entries a layout may hold but no image can be read from: each is refused,
 * naming the file or blob and the cause, rather than read in one of its possible meanings.
 */
class OciLayoutManifestTest {
  @TempDir Path tmp;

  private static final String EMPTY_CONFIG =
      "{\"mediaType\":\""
          + MediaTypes.EMPTY
          + "\",\"digest\":\""
          + Digest.sha256("{}".getBytes(StandardCharsets.UTF_8))
          + "\",\"size\":2}";

  /** A manifest's JSON with {@code schemaVersion} and one layer per media type given. */
  private static byte[] manifest(int schemaVersion, String... layerTypes) {
    List<String> layers = new ArrayList<>();
    for (int i = 0; i < layerTypes.length; i++) {
      layers.add(
          "{\"mediaType\":\""
              + layerTypes[i]
              + "\",\"digest\":\""
              + Digest.sha256(new byte[] {(byte) i})
              + "\",\"size\":1}");
    }
    return ("{\"schemaVersion\":"
            + schemaVersion
            + ",\"mediaType\":\""
            + MediaTypes.MANIFEST
            + "\",\"config\":"
            + EMPTY_CONFIG
            + ",\"layers\":["
            + String.join(",", layers)
            + "]}")
        .getBytes(StandardCharsets.UTF_8);
  }

  private static OciLayout tagged(Path dir, String tag, byte[] manifest) throws Exception {
    OciLayout layout = OciLayout.openOrCreate(dir);
    Digest d = layout.putBlob(manifest);
    layout.tag(tag, Descriptor.of(MediaTypes.MANIFEST, d, manifest.length));
    return layout;
  }

  @Test
  void manifest_schemaVersionOtherThan2_isRefusedNamingTheBlobAndTheVersion() throws Exception {
    for (int version : new int[] {1, 3}) {
      byte[] bytes = manifest(version, MediaTypes.ROOTFS, MediaTypes.FILEDATA);
      OciLayout layout = tagged(tmp.resolve("v" + version), "t", bytes);

      OciException e = assertThrows(OciException.class, () -> layout.manifest("t"));

      assertTrue(e.getMessage().contains("manifest " + Digest.sha256(bytes)), e.getMessage());
      assertTrue(e.getMessage().contains("schemaVersion " + version), e.getMessage());
    }
  }

  @Test
  void manifest_withoutSchemaVersion_isRefusedSayingSo() throws Exception {
    byte[] bytes =
        new String(manifest(2, MediaTypes.ROOTFS), StandardCharsets.UTF_8)
            .replace("\"schemaVersion\":2,", "")
            .getBytes(StandardCharsets.UTF_8);
    OciLayout layout = tagged(tmp.resolve("oci"), "t", bytes);

    OciException e = assertThrows(OciException.class, () -> layout.manifest("t"));

    assertTrue(e.getMessage().contains("has no schemaVersion"), e.getMessage());
  }

  @Test
  void manifest_withASecondRootfsLayer_isRefusedNamingBoth() throws Exception {
    byte[] bytes = manifest(2, MediaTypes.ROOTFS, MediaTypes.FILEDATA, MediaTypes.ROOTFS);
    OciLayout layout = tagged(tmp.resolve("oci"), "t", bytes);

    OciException e = assertThrows(OciException.class, () -> layout.manifest("t"));

    assertTrue(e.getMessage().contains("manifest " + Digest.sha256(bytes)), e.getMessage());
    assertTrue(e.getMessage().contains("2 rootfs layers"), e.getMessage());
    assertTrue(e.getMessage().contains(Digest.sha256(new byte[] {0}).toString()), e.getMessage());
    assertTrue(e.getMessage().contains(Digest.sha256(new byte[] {2}).toString()), e.getMessage());
  }

  @Test
  void resolveTag_namedTwiceInTheIndex_isRefusedAsAmbiguousNamingTheTagAndTheFile()
      throws Exception {
    byte[] first = manifest(2, MediaTypes.ROOTFS);
    byte[] second = manifest(2, MediaTypes.ROOTFS, MediaTypes.FILEDATA);
    OciLayout layout = tagged(tmp.resolve("oci"), "other", first);
    Descriptor a = descriptor(layout, first, "t");
    Descriptor b = descriptor(layout, second, "t");
    writeIndex(layout, a, b, layout.resolveTag("other"));

    OciException e = assertThrows(OciException.class, () -> layout.resolveTag("t"));

    String index = layout.root().resolve("index.json").toString();
    assertTrue(e.getMessage().contains(index), e.getMessage());
    assertTrue(e.getMessage().contains("tag 't'"), e.getMessage());
    assertTrue(e.getMessage().contains("ambiguous"), e.getMessage());
    assertTrue(e.getMessage().contains(a.digest()) && e.getMessage().contains(b.digest()));
    assertThrows(OciException.class, () -> layout.manifest("t"));
    assertEquals(Digest.sha256(first), layout.resolveTag("other").digestValue(), "other tags open");
  }

  @Test
  void tag_overAnIndexNamingTheTagTwice_replacesBothEntriesWithOne() throws Exception {
    byte[] first = manifest(2, MediaTypes.ROOTFS);
    byte[] second = manifest(2, MediaTypes.ROOTFS, MediaTypes.FILEDATA);
    OciLayout layout = OciLayout.openOrCreate(tmp.resolve("oci"));
    writeIndex(layout, descriptor(layout, first, "t"), descriptor(layout, second, "t"));
    byte[] third = manifest(2, MediaTypes.ROOTFS, MediaTypes.FILEDATA, MediaTypes.FILEDATA);
    Digest d = layout.putBlob(third);

    layout.tag("t", Descriptor.of(MediaTypes.MANIFEST, d, third.length));
    layout.tag("t", Descriptor.of(MediaTypes.MANIFEST, d, third.length));

    assertEquals(1, layout.index().manifests().size());
    assertEquals(d, layout.resolveTag("t").digestValue());
  }

  @Test
  void index_hugeIndexJson_isRefusedBeforeItIsRead() throws Exception {
    OciLayout layout = tagged(tmp.resolve("oci"), "t", manifest(2, MediaTypes.ROOTFS));
    Path index = layout.root().resolve("index.json");
    try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(index.toFile(), "rw")) {
      f.setLength(1L << 32); // sparse: 4 GiB of NULs after the document, no disk
    }

    OciException e = assertThrows(OciException.class, () -> layout.resolveTag("t"));

    assertTrue(
        e.getMessage().contains(index + " is 4294967296 bytes, more than the"), e.getMessage());
  }

  @Test
  void index_junkAfterTheDocument_isRefusedNamingTheFile() throws Exception {
    OciLayout layout = tagged(tmp.resolve("oci"), "t", manifest(2, MediaTypes.ROOTFS));
    Path index = layout.root().resolve("index.json");
    Files.write(index, new byte[] {0, 0, 0}, java.nio.file.StandardOpenOption.APPEND);

    OciException e = assertThrows(OciException.class, () -> layout.resolveTag("t"));

    assertTrue(e.getMessage().startsWith(index + " is not a valid ImageIndex"), e.getMessage());
  }

  private static Descriptor descriptor(OciLayout layout, byte[] manifest, String tag)
      throws Exception {
    Digest d = layout.putBlob(manifest);
    return Descriptor.of(MediaTypes.MANIFEST, d, manifest.length)
        .withAnnotations(Map.of(MediaTypes.REF_NAME, tag));
  }

  private static void writeIndex(OciLayout layout, Descriptor... entries) throws Exception {
    Files.write(
        layout.root().resolve("index.json"),
        Json.write(new ImageIndex(2, null, List.of(entries), null)));
  }
}
