package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.OciException;
import io.vertx.core.Future;
import java.util.List;
import java.util.Map;

/**
 * Finds the chunk pack of an image in its repository (see {@link ChunkPack}): the referrers tag of
 * the image's manifest, the pack manifest it lists, then the pack's index. Completes with null when
 * the image has no pack; fails when a pack is there but broken or cannot be fetched, so that the
 * caller can say so and read without it.
 */
final class PackFinder {
  private final RegistryClient client;
  private final String repository;

  PackFinder(RegistryClient client, String repository) {
    this.client = client;
    this.repository = repository;
  }

  Future<ChunkPack> find(Digest image, Map<Digest, Long> chunkSizes) {
    String tag = ChunkPack.referrersTag(image);
    return client
        .pullManifestIfAny(repository, tag)
        .map(pulled -> (PulledManifest) pulled)
        .recover(
            failure ->
                failure instanceof ManifestNotFoundException
                    ? Future.succeededFuture(null)
                    : Future.failedFuture(failure))
        .compose(
            referrers -> {
              if (referrers == null) {
                return Future.succeededFuture(null);
              }
              ChunkPack.Referrer entry;
              try {
                entry = packEntry(referrers, tag);
              } catch (OciException e) {
                return Future.failedFuture(e);
              }
              return entry == null
                  ? Future.succeededFuture(null)
                  : fetchPack(image, chunkSizes, entry);
            });
  }

  /** The last pack listed under {@code tag}, or null when none is. */
  private ChunkPack.Referrer packEntry(PulledManifest referrers, String tag) throws OciException {
    ChunkPack.Referrers index =
        Json.read(
            referrers.bytes(),
            ChunkPack.Referrers.class,
            "referrers index " + tag + " in " + client.registry() + "/" + repository);
    List<ChunkPack.Referrer> listed = index.manifests() == null ? List.of() : index.manifests();
    ChunkPack.Referrer found = null;
    for (ChunkPack.Referrer r : listed) {
      if (ChunkPack.ARTIFACT_TYPE.equals(r.artifactType())) {
        found = r;
      }
    }
    return found;
  }

  private Future<ChunkPack> fetchPack(
      Digest image, Map<Digest, Long> chunkSizes, ChunkPack.Referrer entry) {
    Digest packDigest;
    try {
      packDigest = Digest.parse(entry.digest());
    } catch (IllegalArgumentException e) {
      return Future.failedFuture(
          new OciException("the referrers index of " + image + ": " + e.getMessage(), e));
    }
    String what = "chunk pack " + packDigest + " of image " + image;
    return client
        .pullManifest(repository, packDigest.toString())
        .compose(
            pulled -> {
              ChunkPack.PackManifest manifest;
              try {
                manifest = Json.read(pulled.bytes(), ChunkPack.PackManifest.class, what);
                check(manifest, image, what);
              } catch (OciException e) {
                return Future.failedFuture(e);
              }
              var index = manifest.layers().get(0);
              return client
                  .pullBlob(repository, index.digestValue(), index.size())
                  .compose(
                      bytes -> {
                        try {
                          return Future.succeededFuture(
                              ChunkPack.parse(image, chunkSizes, packDigest, manifest, bytes));
                        } catch (OciException e) {
                          return Future.failedFuture(e);
                        }
                      });
            });
  }

  private static void check(ChunkPack.PackManifest manifest, Digest image, String what)
      throws OciException {
    if (!ChunkPack.ARTIFACT_TYPE.equals(manifest.artifactType())) {
      throw new OciException(what + ": artifact type " + manifest.artifactType());
    }
    if (manifest.subject() == null || !image.toString().equals(manifest.subject().digest())) {
      throw new OciException(
          what
              + ": it refers to "
              + (manifest.subject() == null ? "no image" : manifest.subject().digest())
              + ", not to this image");
    }
    if (manifest.layers() == null
        || manifest.layers().isEmpty()
        || manifest.layers().get(0) == null
        || !ChunkPack.INDEX_MEDIA_TYPE.equals(manifest.layers().get(0).mediaType())) {
      throw new OciException(what + ": its first layer is not the pack's index");
    }
    var index = manifest.layers().get(0);
    if (index.size() <= 0 || index.size() > ChunkPack.MAX_INDEX_BYTES) {
      throw new OciException(what + ": its index is " + index.size() + " bytes long");
    }
    try {
      index.digestValue();
    } catch (IllegalArgumentException e) {
      throw new OciException(what + ": " + e.getMessage(), e);
    }
  }
}
