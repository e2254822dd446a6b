package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import io.vertx.core.Future;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pushes the chunk pack of an image that is already in the registry (see {@link ChunkPack}): its
 * segments (two at a time, each read and verified from the layout, at most {@link
 * ChunkPack#SEGMENT_BYTES} in memory apiece), its index, the empty config, its manifest by digest,
 * and last the referrers index that lists it. Until that last step readers do not see the pack, so
 * a pack push that fails midway leaves the image as readable as before.
 */
final class PackPusher {
  private static final Logger LOG = LoggerFactory.getLogger(PackPusher.class);
  private static final byte[] EMPTY_CONFIG = {'{', '}'};
  private static final int SEGMENTS_AT_ONCE = 2;

  private final RegistryClient client;
  private final OciLayout layout;
  private final String repository;

  PackPusher(RegistryClient client, OciLayout layout, String repository) {
    this.client = client;
    this.layout = layout;
    this.repository = repository;
  }

  /**
   * Packs {@code chunks} (in order) for the image {@code image} just pushed, whose manifest is
   * {@code manifestSize} bytes, in segments of at most {@code segmentBytes}, with {@code prefetch}
   * (chunks of the image) as its published prefetch list. Fails, saying that the image was pushed,
   * when {@code chunks} is empty or null (its rootfs does not decode).
   */
  Future<PushSummary.Pack> push(
      List<Descriptor> chunks,
      PushSummary image,
      long manifestSize,
      long segmentBytes,
      List<Digest> prefetch) {
    if (chunks == null) {
      return Future.failedFuture(
          new OciException(
              "cannot make a chunk pack of "
                  + image.reference()
                  + ": its rootfs does not decode; the image itself was pushed, without a pack"));
    }
    if (chunks.isEmpty()) {
      // Nothing to fetch, so nothing to pack: the push did what was asked.
      return Future.succeededFuture(PushSummary.Pack.NOT_NEEDED);
    }
    List<List<Descriptor>> plan = ChunkPack.plan(chunks, segmentBytes);
    ConcurrencyLimiter limiter = new ConcurrencyLimiter(SEGMENTS_AT_ONCE);
    AtomicLong uploaded = new AtomicLong();
    List<Future<Descriptor>> segments = new ArrayList<>();
    for (List<Descriptor> segment : plan) {
      segments.add(limiter.run(() -> pushSegment(segment, uploaded)));
    }
    return Future.all(segments)
        .compose(
            all -> {
              List<Descriptor> layers = new ArrayList<>();
              List<List<String>> index = new ArrayList<>();
              long bytes = 0;
              for (int i = 0; i < plan.size(); i++) {
                Descriptor segment = segments.get(i).result();
                layers.add(segment);
                bytes += segment.size();
                index.add(plan.get(i).stream().map(Descriptor::digest).toList());
              }
              byte[] indexBytes =
                  Json.write(
                      new ChunkPack.Index(
                          1,
                          index,
                          prefetch.isEmpty()
                              ? null
                              : prefetch.stream().map(Digest::toString).toList()));
              long total = bytes;
              return pushSmallBlob(indexBytes)
                  .compose(
                      indexDigest -> {
                        layers.add(
                            0,
                            Descriptor.of(
                                ChunkPack.INDEX_MEDIA_TYPE, indexDigest, indexBytes.length));
                        return pushSmallBlob(EMPTY_CONFIG);
                      })
                  .compose(config -> pushManifest(image, manifestSize, layers))
                  .compose(packManifest -> pushReferrer(image.manifestDigest(), packManifest))
                  .map(
                      packManifest ->
                          new PushSummary.Pack(
                              packManifest.digestValue(),
                              plan.size(),
                              chunks.size(),
                              total,
                              uploaded.get(),
                              prefetch.size()));
            });
  }

  /** Reads, joins and uploads one segment (unless the registry has it); its descriptor. */
  private Future<Descriptor> pushSegment(List<Descriptor> chunks, AtomicLong uploaded) {
    return client
        .vertx()
        .executeBlocking(() -> join(chunks), false)
        .compose(
            bytes -> {
              Digest digest = Digest.sha256(bytes);
              Descriptor segment =
                  Descriptor.of(ChunkPack.SEGMENT_MEDIA_TYPE, digest, bytes.length);
              return client
                  .hasBlob(repository, digest)
                  .compose(
                      present -> {
                        if (present) {
                          return Future.succeededFuture(segment);
                        }
                        return client
                            .pushBlob(repository, digest, bytes)
                            .map(
                                v -> {
                                  uploaded.addAndGet(bytes.length);
                                  LOG.debug(
                                      "uploaded pack segment {} ({} chunks, {} bytes)",
                                      digest,
                                      chunks.size(),
                                      bytes.length);
                                  return segment;
                                });
                      });
            });
  }

  /** The chunks' stored bytes, one after the other, each read from the layout and verified. */
  private byte[] join(List<Descriptor> chunks) throws IOException {
    long size = 0;
    for (Descriptor chunk : chunks) {
      size += chunk.size();
    }
    if (size > Integer.MAX_VALUE - 16) {
      throw new OciException("a pack segment of " + size + " bytes is too large");
    }
    byte[] out = new byte[(int) size];
    int at = 0;
    for (Descriptor chunk : chunks) {
      byte[] bytes = layout.readBlob(chunk);
      System.arraycopy(bytes, 0, out, at, bytes.length);
      at += bytes.length;
    }
    return out;
  }

  private Future<Digest> pushSmallBlob(byte[] bytes) {
    Digest digest = Digest.sha256(bytes);
    return client
        .hasBlob(repository, digest)
        .compose(
            present ->
                present
                    ? Future.succeededFuture(digest)
                    : client.pushBlob(repository, digest, bytes).map(digest));
  }

  /** Pushes the pack's manifest by digest; its descriptor. */
  private Future<Descriptor> pushManifest(
      PushSummary image, long manifestSize, List<Descriptor> layers) {
    Descriptor config = Descriptor.of(MediaTypes.EMPTY, Digest.sha256(EMPTY_CONFIG), 2);
    Descriptor subject = Descriptor.of(MediaTypes.MANIFEST, image.manifestDigest(), manifestSize);
    byte[] manifest =
        Json.write(
            new ChunkPack.PackManifest(
                2, MediaTypes.MANIFEST, ChunkPack.ARTIFACT_TYPE, config, layers, subject));
    Digest digest = Digest.sha256(manifest);
    return client
        .pushManifest(repository, digest.toString(), manifest, MediaTypes.MANIFEST)
        .map(Descriptor.of(MediaTypes.MANIFEST, digest, manifest.length));
  }

  /**
   * Lists the pack whose manifest is {@code pack} under the referrers tag of {@code image}, in
   * place of any pack listed there before; other referrers stay.
   */
  private Future<Descriptor> pushReferrer(Digest image, Descriptor pack) {
    String tag = ChunkPack.referrersTag(image);
    return client
        .pullManifestIfAny(repository, tag)
        .map(
            pulled -> {
              try {
                return Json.read(
                    pulled.bytes(),
                    ChunkPack.Referrers.class,
                    "referrers index " + tag + " in " + client.registry() + "/" + repository);
              } catch (OciException e) {
                LOG.warn("{}; replacing it", e.getMessage());
                return ChunkPack.Referrers.empty();
              }
            })
        .recover(
            failure ->
                failure instanceof ManifestNotFoundException
                    ? Future.succeededFuture(ChunkPack.Referrers.empty())
                    : Future.failedFuture(failure))
        .compose(
            old -> {
              List<ChunkPack.Referrer> listed = new ArrayList<>();
              if (old.manifests() != null) {
                for (ChunkPack.Referrer r : old.manifests()) {
                  if (!ChunkPack.ARTIFACT_TYPE.equals(r.artifactType())) {
                    listed.add(r);
                  }
                }
              }
              listed.add(
                  new ChunkPack.Referrer(
                      MediaTypes.MANIFEST,
                      pack.digest(),
                      pack.size(),
                      ChunkPack.ARTIFACT_TYPE,
                      null));
              byte[] index =
                  Json.write(new ChunkPack.Referrers(2, MediaTypes.INDEX, List.copyOf(listed)));
              return client.pushManifest(repository, tag, index, MediaTypes.INDEX).map(pack);
            });
  }
}
