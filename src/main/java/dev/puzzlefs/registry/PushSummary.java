package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;

/**
 * What {@link ImagePusher#push} did.
 *
 * @param uploaded blobs sent to the registry
 * @param skipped blobs the registry already had
 * @param bytesUploaded bytes of the blobs sent
 * @param manifestDigest the digest of the pushed manifest
 * @param reference where the manifest now lives
 * @param pack the chunk pack pushed beside the image; null when none was asked for
 */
public record PushSummary(
    int uploaded,
    int skipped,
    long bytesUploaded,
    Digest manifestDigest,
    ImageReference reference,
    Pack pack) {

  /**
   * The chunk pack pushed with an image (see {@link ChunkPack}).
   *
   * @param manifest the digest of the pack's manifest
   * @param segments how many segments it has
   * @param chunks how many chunks it holds
   * @param bytes the segments' bytes in all
   * @param uploaded the segments' bytes sent (the registry lacked them)
   * @param prefetch how many chunks its published prefetch list names
   */
  public record Pack(
      Digest manifest, int segments, int chunks, long bytes, long uploaded, int prefetch) {
    /** No pack was made: the image has no file data, so a reader fetches no chunk at all. */
    public static final Pack NOT_NEEDED = new Pack(null, 0, 0, 0, 0, 0);
  }

  /** The same summary with {@code newPack}. */
  PushSummary withPack(Pack newPack) {
    return new PushSummary(uploaded, skipped, bytesUploaded, manifestDigest, reference, newPack);
  }

  /** One line for a person: {@code pushed docker://..: 3 blobs uploaded (1.2 MiB), 5 present}. */
  @Override
  public String toString() {
    return "pushed "
        + reference
        + " ("
        + manifestDigest
        + "): "
        + uploaded
        + (uploaded == 1 ? " blob" : " blobs")
        + " uploaded ("
        + humanBytes(bytesUploaded)
        + "), "
        + skipped
        + " already present"
        + (pack == null
            ? ""
            : pack.manifest() == null
                ? "; no chunk pack (the image has no file data)"
                : "; chunk pack "
                    + pack.manifest()
                    + ": "
                    + pack.chunks()
                    + " chunks in "
                    + pack.segments()
                    + (pack.segments() == 1 ? " segment (" : " segments (")
                    + humanBytes(pack.bytes())
                    + ", "
                    + humanBytes(pack.uploaded())
                    + " uploaded)"
                    + (pack.prefetch() == 0
                        ? ""
                        : ", with a prefetch list of " + pack.prefetch() + " chunks"));
  }

  private static String humanBytes(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    if (bytes < 1024 * 1024) {
      return String.format(java.util.Locale.ROOT, "%.1f KiB", bytes / 1024.0);
    }
    return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024));
  }
}
