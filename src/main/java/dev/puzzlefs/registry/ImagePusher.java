package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import io.vertx.core.Future;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pushes a tagged image from a local OCI layout to a registry: every blob the manifest names
 * (config, rootfs, chunks) that the registry lacks, a few at a time, then the manifest itself, byte
 * for byte, so its digest is the same in both places. Blobs are read and verified off the event
 * loop; a chunk the registry already has is not read at all. The rootfs is read first: an image
 * whose rootfs reads a chunk its manifest does not list is refused before anything is sent.
 */
public final class ImagePusher {
  private static final Logger LOG = LoggerFactory.getLogger(ImagePusher.class);

  /** Blobs checked or uploaded at once unless told otherwise. */
  public static final int DEFAULT_PARALLELISM = 6;

  private final RegistryClient client;
  private final int parallelism;
  private volatile Listener listener = new Listener() {};
  private volatile boolean pack;
  private volatile List<Digest> prefetch = List.of();
  private volatile long segmentBytes = ChunkPack.SEGMENT_BYTES;

  /** Told how far a push has come; called on the client's threads, so it must be thread-safe. */
  public interface Listener {
    /** The image has {@code blobs} blobs of {@code bytes} bytes in all to check or upload. */
    default void planned(long blobs, long bytes) {}

    /** {@code blobs} more blobs of {@code bytes} bytes are in the registry (sent or found). */
    default void done(long blobs, long bytes) {}
  }

  /** A pusher over {@code client} with {@value #DEFAULT_PARALLELISM} blobs at once. */
  public ImagePusher(RegistryClient client) {
    this(client, DEFAULT_PARALLELISM);
  }

  /** A pusher over {@code client} handling {@code parallelism} blobs at once. */
  public ImagePusher(RegistryClient client, int parallelism) {
    if (parallelism < 1) {
      throw new IllegalArgumentException("parallelism must be at least 1, got " + parallelism);
    }
    this.client = client;
    this.parallelism = parallelism;
  }

  /** Reports progress to {@code listener} from now on; returns this pusher. */
  public ImagePusher listener(Listener listener) {
    this.listener = java.util.Objects.requireNonNull(listener, "listener");
    return this;
  }

  /**
   * Also pushes a chunk pack of the image (see {@link ChunkPack}) after the image itself, so that
   * lazy readers fetch runs of chunks with one request; returns this pusher. The pack costs the
   * registry the space of the image's chunks once more.
   */
  public ImagePusher withPack(boolean withPack) {
    this.pack = withPack;
    return this;
  }

  /**
   * Publishes {@code chunks} with the chunk pack as its prefetch list (see {@link ChunkPack}): the
   * chunks a lazy mount given no list of its own fetches first. Chunks the image does not have, and
   * repeats, are left out. Only with {@link #withPack}; returns this pusher.
   */
  public ImagePusher withPrefetch(List<Digest> chunks) {
    this.prefetch = List.copyOf(chunks);
    return this;
  }

  /** The prefetch list to publish: the given chunks the image has, each once, in order. */
  private List<Digest> publishedPrefetch(LocalImage image) {
    if (prefetch.isEmpty() || image.chunksInOrder() == null) {
      return List.of();
    }
    Set<Digest> has = new java.util.HashSet<>();
    for (Descriptor chunk : image.chunksInOrder()) {
      has.add(chunk.digestValue());
    }
    Set<Digest> out = new LinkedHashSet<>();
    for (Digest d : prefetch) {
      if (has.contains(d)) {
        out.add(d);
      }
    }
    if (out.size() < prefetch.size()) {
      LOG.info(
          "{} of the {} chunks of the prefetch list are repeated or not in the image; left out",
          prefetch.size() - out.size(),
          prefetch.size());
    }
    return List.copyOf(out);
  }

  /**
   * Cuts the chunk pack into segments of at most {@code bytes} (default {@link
   * ChunkPack#SEGMENT_BYTES}); returns this pusher.
   */
  public ImagePusher segmentBytes(long bytes) {
    if (bytes < 1) {
      throw new IllegalArgumentException("segment size must be positive, got " + bytes);
    }
    this.segmentBytes = bytes;
    return this;
  }

  /**
   * Pushes the image tagged {@code tag} in {@code layout} to {@code target}, whose registry must be
   * the client's. Fails with an {@link OciException} if the layout is missing or corrupt, and a
   * {@link RegistryException} if the registry fails.
   */
  public Future<PushSummary> push(OciLayout layout, String tag, ImageReference target) {
    if (!target.registry().equals(client.registry())) {
      return Future.failedFuture(
          new IllegalArgumentException(
              "cannot push to " + target + " with a client for " + client.registry()));
    }
    return client
        .vertx()
        .executeBlocking(() -> LocalImage.read(layout, tag), false)
        .compose(
            image ->
                pushBlobs(layout, image, target)
                    .compose(s -> pushManifest(image, s))
                    .compose(
                        summary ->
                            pack
                                ? new PackPusher(client, layout, target.repository())
                                    .push(
                                        image.chunksInOrder(),
                                        summary,
                                        image.bytes().length,
                                        segmentBytes,
                                        publishedPrefetch(image))
                                    .map(summary::withPack)
                                : Future.succeededFuture(summary)));
  }

  private Future<Counts> pushBlobs(OciLayout layout, LocalImage image, ImageReference target) {
    ConcurrencyLimiter limiter = new ConcurrencyLimiter(parallelism);
    Counts counts = new Counts(target);
    List<Future<Void>> all = new ArrayList<>();
    long bytes = 0;
    for (Descriptor blob : image.blobs()) {
      bytes += blob.size();
    }
    listener.planned(image.blobs().size(), bytes);
    for (Descriptor blob : image.blobs()) {
      all.add(limiter.run(() -> pushBlob(layout, blob, target.repository(), counts)));
    }
    return Future.all(all).map(done -> counts);
  }

  private Future<Void> pushBlob(
      OciLayout layout, Descriptor blob, String repository, Counts counts) {
    Digest digest = blob.digestValue();
    return client
        .hasBlob(repository, digest)
        .compose(
            present -> {
              if (present) {
                LOG.debug("blob {} already in {}", digest, repository);
                counts.skipped.incrementAndGet();
                listener.done(1, blob.size());
                return Future.succeededFuture();
              }
              return client
                  .vertx()
                  .executeBlocking(() -> readBlob(layout, blob), false)
                  .compose(data -> client.pushBlob(repository, digest, data).map(data.length))
                  .map(
                      length -> {
                        LOG.debug("uploaded blob {} ({} bytes) to {}", digest, length, repository);
                        counts.uploaded.incrementAndGet();
                        counts.bytes.addAndGet(length);
                        listener.done(1, length);
                        return null;
                      });
            });
  }

  private Future<PushSummary> pushManifest(LocalImage image, Counts counts) {
    ImageReference target = counts.target;
    String mediaType =
        image.descriptor().mediaType() != null
            ? image.descriptor().mediaType()
            : MediaTypes.MANIFEST;
    return client
        .pushManifest(target.repository(), target.reference(), image.bytes(), mediaType)
        .map(
            digest ->
                new PushSummary(
                    counts.uploaded.get(),
                    counts.skipped.get(),
                    counts.bytes.get(),
                    digest,
                    target,
                    null));
  }

  private static byte[] readBlob(OciLayout layout, Descriptor blob) throws OciException {
    try {
      byte[] data = layout.readBlob(blob);
      if (data.length != blob.size()) {
        throw new OciException(
            "blob "
                + blob.digest()
                + " in "
                + layout.root()
                + " has "
                + data.length
                + " bytes but the manifest says "
                + blob.size());
      }
      return data;
    } catch (OciException e) {
      throw e;
    } catch (java.io.IOException e) {
      throw new OciException("cannot read blob " + blob.digest() + " from " + layout.root(), e);
    }
  }

  /** Upload tallies shared by the concurrent blob pushes. */
  private static final class Counts {
    final AtomicInteger uploaded = new AtomicInteger();
    final AtomicInteger skipped = new AtomicInteger();
    final AtomicLong bytes = new AtomicLong();
    final ImageReference target;

    Counts(ImageReference target) {
      this.target = target;
    }
  }

  /**
   * The manifest behind a tag: its index entry, exact bytes, the blobs it names, and the chunks its
   * rootfs reads in order (null when it has no rootfs, or one that does not decode).
   */
  private record LocalImage(
      Descriptor descriptor, byte[] bytes, List<Descriptor> blobs, List<Descriptor> chunksInOrder) {
    static LocalImage read(OciLayout layout, String tag) throws java.io.IOException {
      Descriptor descriptor = layout.resolveTag(tag);
      byte[] bytes = layout.readBlob(descriptor);
      ImageManifest manifest =
          ImageManifest.parse(bytes, "manifest " + descriptor.digest() + " of " + tag);
      checkManifestSize(layout, tag, bytes.length, manifest);
      Map<String, Descriptor> blobs = new LinkedHashMap<>();
      if (manifest.config() != null) {
        blobs.put(manifest.config().digest(), manifest.config());
      }
      Map<Digest, Descriptor> layers = new HashMap<>();
      Descriptor rootfs = null;
      if (manifest.layers() != null) {
        for (Descriptor layer : manifest.layers()) {
          blobs.putIfAbsent(layer.digest(), layer);
          layers.putIfAbsent(layer.digestValue(), layer);
          if (rootfs == null && MediaTypes.ROOTFS.equals(layer.mediaType())) {
            rootfs = layer;
          }
        }
      }
      List<Descriptor> inOrder =
          rootfs == null ? null : checkChunksListed(layout, tag, rootfs, layers);
      return new LocalImage(descriptor, bytes, List.copyOf(blobs.values()), inOrder);
    }

    /**
     * Refuses, before any blob is sent, an image whose manifest is larger than registries accept
     * (and than a mount fetches): PuzzleFS lists every chunk as a layer, so an image of more than
     * about 27,000 chunks (some 1.7 GB of file data) has a manifest over 4 MiB.
     */
    private static void checkManifestSize(
        OciLayout layout, String tag, int bytes, ImageManifest manifest) throws OciException {
      if (bytes <= ManifestPuller.MAX_MANIFEST_BYTES) {
        return;
      }
      int layers = manifest.layers() == null ? 0 : manifest.layers().size();
      throw new OciException(
          "image "
              + tag
              + " in "
              + layout.root()
              + " has a manifest of "
              + bytes
              + " bytes ("
              + layers
              + " layers, one per chunk), more than the "
              + ManifestPuller.MAX_MANIFEST_BYTES
              + " bytes registries accept for a manifest (and that a mount fetches); nothing was"
              + " pushed. Mount it from the layout, or push the tree as images of fewer chunks"
              + " (split it into parts of under about 1.5 GB)");
    }

    /**
     * Refuses an image whose rootfs reads a chunk the manifest's layers do not list: the registry
     * would get an image that cannot be read. Names the first such chunk and how many there are. A
     * rootfs that does not decode is pushed as it is, unchecked, as before. Returns the chunks in
     * the order the rootfs first uses them (the order of its data stream), each once; null when the
     * rootfs does not decode.
     */
    private static List<Descriptor> checkChunksListed(
        OciLayout layout, String tag, Descriptor rootfsLayer, Map<Digest, Descriptor> layers)
        throws java.io.IOException {
      Rootfs rootfs;
      try {
        rootfs = RootfsCodec.decode(layout.readBlob(rootfsLayer));
      } catch (FormatException e) {
        LOG.warn(
            "rootfs blob {} of {} does not decode, so its chunks are not checked: {}",
            rootfsLayer.digest(),
            tag,
            e.getMessage());
        return null;
      }
      Set<Digest> missing = new LinkedHashSet<>();
      Map<Digest, Descriptor> inOrder = new LinkedHashMap<>();
      for (Rootfs.ChunkUse use : rootfs.chunkUses()) {
        Descriptor listed = layers.get(use.blob());
        if (listed == null) {
          missing.add(use.blob());
        } else {
          inOrder.putIfAbsent(use.blob(), listed);
        }
      }
      if (!missing.isEmpty()) {
        throw new OciException(
            "image "
                + tag
                + " in "
                + layout.root()
                + " is incomplete: its rootfs uses chunk "
                + missing.iterator().next()
                + ", which its manifest does not list ("
                + missing.size()
                + (missing.size() == 1 ? " chunk" : " chunks")
                + " missing in all); nothing was pushed");
      }
      return List.copyOf(inOrder.values());
    }
  }
}
