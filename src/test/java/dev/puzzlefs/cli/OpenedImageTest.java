package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OpenedImageTest {
  @TempDir Path tmp;

  @Test
  void localMetadata_ofAnImageOfAnotherKind_namesTheTagAndTheLayout() throws Exception {
    // An OCI image of tar layers, as umoci or skopeo make them.
    byte[] layer = "not a rootfs".getBytes(StandardCharsets.UTF_8);
    Path dir = tmp.resolve("oci");
    OciLayout layout = OciLayout.openOrCreate(dir);
    Digest layerDigest = layout.putBlob(layer);
    byte[] manifest =
        ("{\"schemaVersion\":2,\"mediaType\":\""
                + MediaTypes.MANIFEST
                + "\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                + "\"digest\":\""
                + layerDigest
                + "\",\"size\":"
                + layer.length
                + "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                + "\"digest\":\""
                + layerDigest
                + "\",\"size\":"
                + layer.length
                + "}]}")
            .getBytes(StandardCharsets.UTF_8);
    Digest m = layout.putBlob(manifest);
    layout.tag("latest", Descriptor.of(MediaTypes.MANIFEST, m, manifest.length));

    OciException e =
        assertThrows(OciException.class, () -> OpenedImage.localMetadata(dir, "latest"));

    assertTrue(
        e.getMessage()
            .startsWith("manifest " + m + " (tag latest of " + dir + ") is not a PuzzleFS image"),
        e.getMessage());
  }
}
