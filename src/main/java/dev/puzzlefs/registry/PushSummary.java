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
 */
public record PushSummary(
    int uploaded,
    int skipped,
    long bytesUploaded,
    Digest manifestDigest,
    ImageReference reference) {

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
        + " already present";
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
