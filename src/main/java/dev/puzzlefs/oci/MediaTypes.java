package dev.puzzlefs.oci;

/** Media types and annotation keys PuzzleFS images use. */
public final class MediaTypes {
  /** An OCI image manifest. */
  public static final String MANIFEST = "application/vnd.oci.image.manifest.v1+json";

  /** An OCI image index. */
  public static final String INDEX = "application/vnd.oci.image.index.v1+json";

  /** The OCI empty descriptor's media type, used for the config. */
  public static final String EMPTY = "application/vnd.oci.empty.v1+json";

  /** The Cap'n Proto rootfs blob. */
  public static final String ROOTFS = "application/vnd.puzzlefs.image.rootfs.v1";

  /** An uncompressed chunk blob. */
  public static final String FILEDATA = "application/vnd.puzzlefs.image.filedata.v1";

  /** A chunk blob from a compressed build. */
  public static final String FILEDATA_ZSTD = "application/vnd.puzzlefs.image.filedata.v1+zstd";

  /** The tag annotation on an index entry. */
  public static final String REF_NAME = "org.opencontainers.image.ref.name";

  /** Annotation on the rootfs descriptor: lowercase hex fs-verity digest of the rootfs blob. */
  public static final String VERITY_ROOT_HASH = "io.puzzlefsoci.puzzlefs.puzzlefs_verity_root_hash";

  private MediaTypes() {}
}
