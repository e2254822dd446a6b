package dev.puzzlefs.oci;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;

/**
 * An OCI image manifest. A PuzzleFS manifest has the empty config, the rootfs blob and one layer
 * per chunk blob.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public record ImageManifest(
    @JsonProperty("schemaVersion") Integer schemaVersion,
    @JsonProperty("mediaType") String mediaType,
    @JsonProperty("config") Descriptor config,
    @JsonProperty("layers") List<Descriptor> layers,
    @JsonProperty("annotations") Map<String, String> annotations) {

  /**
   * Parses {@code bytes} as a manifest, refusing one that no image can be read from: a {@code
   * schemaVersion} other than 2, or more than one rootfs layer (a reader finds the rootfs by media
   * type, so with two it would pick one by guess). {@code what} names the manifest in the error,
   * for example {@code "manifest sha256:... of tag v1 in images/"}.
   */
  public static ImageManifest parse(byte[] bytes, String what) throws OciException {
    ImageManifest manifest = Json.read(bytes, ImageManifest.class, what);
    if (manifest.schemaVersion() == null) {
      throw new OciException(
          what + " has no schemaVersion: it is not an OCI image manifest (schemaVersion 2)");
    }
    if (manifest.schemaVersion() != 2) {
      throw new OciException(
          what
              + " has schemaVersion "
              + manifest.schemaVersion()
              + ": only an OCI image manifest, schemaVersion 2, can be read");
    }
    List<String> rootfs =
        manifest.layers() == null
            ? List.of()
            : manifest.layers().stream()
                .filter(d -> MediaTypes.ROOTFS.equals(d.mediaType()))
                .map(Descriptor::digest)
                .toList();
    if (rootfs.size() > 1) {
      throw new OciException(
          what
              + " lists "
              + rootfs.size()
              + " rootfs layers ("
              + MediaTypes.ROOTFS
              + "): "
              + String.join(", ", rootfs)
              + "; an image has exactly one, and which to read would be a guess");
    }
    return manifest;
  }
}
