package dev.puzzlefs.builder;

import dev.puzzlefs.format.Digest;

/**
 * What a build produced: the manifest's sha256 and fs-verity digest, and counts for the summary.
 * {@code chunks} counts distinct chunks of the new layer; of those, {@code chunksReused} (stored in
 * {@code bytesReused} bytes) were already chunks of the base image of a delta build. {@code
 * replaced} is the digest of the other manifest the tag named before the build, or null.
 */
public record BuildResult(
    Digest manifest,
    byte[] manifestVerity,
    long inodes,
    long files,
    long bytes,
    int chunks,
    int chunksWritten,
    long storedBytes,
    int layers,
    int chunksReused,
    long bytesReused,
    int whiteouts,
    String replaced) {

  /** The manifest's fs-verity digest in lowercase hex, as {@code mount --digest} takes it. */
  public String manifestVerityHex() {
    return java.util.HexFormat.of().formatHex(manifestVerity);
  }
}
