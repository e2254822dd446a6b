package dev.puzzlefs.cli;

import dev.puzzlefs.cache.BlobFetcher;
import dev.puzzlefs.cache.CachingChunkSource;
import dev.puzzlefs.cache.FallbackBlobFetcher;
import dev.puzzlefs.cache.HangTolerantExecutor;
import dev.puzzlefs.cache.LayoutBlobFetcher;
import dev.puzzlefs.cache.PackedBlobFetcher;
import dev.puzzlefs.cache.RegistryBlobFetcher;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.reader.EarlyFetch;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.reader.Prefetcher;
import dev.puzzlefs.registry.ChunkPack;
import dev.puzzlefs.registry.ImagePuller;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.PulledImage;
import dev.puzzlefs.registry.RegistryClient;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * Opens an image for mounting, from a local layout or a registry: the manifest and the rootfs blob
 * are read (and checked against {@code --digest} when given) before anything is mounted; chunks
 * come later through a verifying cache.
 */
final class OpenedImage implements AutoCloseable {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(OpenedImage.class);

  /**
   * How long a recorded list's early fetch waits for the search for the image's chunk pack before
   * it fetches chunk by chunk: about as long as the rootfs blob takes to arrive and be decoded,
   * which the reads of those chunks wait for anyway.
   */
  static final long PACK_SEARCH_WAIT_MILLIS = 150;

  private final Image image;
  private final AutoCloseable[] resources;
  private volatile CompletableFuture<?> settled = CompletableFuture.completedFuture(null);

  private OpenedImage(Image image, AutoCloseable... resources) {
    this.image = image;
    this.resources = resources;
  }

  Image image() {
    return image;
  }

  /**
   * Completes once the image's chunk source knows how it fetches (a registry image: when the search
   * for its chunk pack has ended, found or not); completed at once for any other.
   */
  CompletableFuture<?> settled() {
    return settled;
  }

  /**
   * Settings the opener needs, resolved from the configuration and flags. A registry image is
   * cached on disk in {@code cacheDir} unless it is null, and starts fetching {@code earlyChunks}
   * (a recorded prefetch list's {@code #chunk} lines) as soon as its manifest has arrived; without
   * them, and with {@code publishedList}, the prefetch list published with its chunk pack (see
   * {@link dev.puzzlefs.registry.ChunkPack}) as soon as the pack is found.
   */
  record Settings(
      String expectedManifestVerity,
      Duration readTimeout,
      long memoryBytes,
      Path cacheDir,
      long diskBytes,
      List<Digest> earlyChunks,
      boolean publishedList) {
    Settings(
        String expectedManifestVerity,
        Duration readTimeout,
        long memoryBytes,
        Path cacheDir,
        long diskBytes) {
      this(expectedManifestVerity, readTimeout, memoryBytes, cacheDir, diskBytes, List.of(), false);
    }
  }

  /** Opens tag {@code tag} of the layout in {@code dir}. */
  static OpenedImage local(Path dir, String tag, Settings s) throws IOException {
    OciLayout layout = OciLayout.open(dir);
    Descriptor desc = layout.resolveTag(tag);
    byte[] manifestBytes = layout.readBlob(desc);
    String named = named(desc, tag, dir);
    checkManifest(manifestBytes, s, named);
    ImageManifest manifest = ImageManifest.parse(manifestBytes, "manifest " + named);
    Descriptor rootfsDesc = rootfsOf(manifest, named);
    Rootfs rootfs = decode(layout.readBlob(rootfsDesc), rootfsDesc, s);
    // Four threads read the blobs, and one more for each read that hangs (storage that stopped
    // answering): the others go on being read.
    HangTolerantExecutor io = new HangTolerantExecutor(4, 64, LOCAL_READ_HUNG_NANOS, "puzzlefs-io");
    CachingChunkSource source =
        cache(
            new LayoutBlobFetcher(layout, io, layerSizes(manifest)), rootfs, s, /* disk= */ false);
    try {
      return new OpenedImage(open(rootfs, rootfsDesc, source, s), io::shutdownNow);
    } catch (IOException e) {
      io.shutdownNow();
      throw e;
    }
  }

  /** Opens {@code ref} from its registry with {@code client}, which the result then owns. */
  static OpenedImage remote(ImageReference ref, RegistryClient client, Settings s)
      throws IOException, InterruptedException {
    return remote(ref, List.of(client), s);
  }

  /**
   * Opens {@code ref} through {@code clients}: registry mirrors in order, then the origin last. The
   * manifest, the rootfs blob and each chunk come from the first that provides them. The result
   * owns the clients.
   */
  static OpenedImage remote(ImageReference ref, List<RegistryClient> clients, Settings s)
      throws IOException, InterruptedException {
    AutoCloseable[] owned = clients.toArray(AutoCloseable[]::new);
    Early early = null;
    try {
      PulledImage pulled = null;
      RegistryClient from = null;
      IOException failure = null;
      for (RegistryClient client : clients) {
        try {
          pulled =
              Futures.await(
                  new ImagePuller(client).fetchManifest(ref.onRegistry(client.registry())),
                  "fetch of " + ref + " from " + client.registry());
          from = client;
          break;
        } catch (IOException e) {
          failure = failure == null ? e : failure;
          if (client != clients.get(clients.size() - 1)) {
            LOG.info("mirror {} could not provide {}: {}", client.registry(), ref, e.getMessage());
          } else {
            throw clients.size() == 1 ? e : new IOException(e.getMessage(), failure);
          }
        }
      }
      checkManifest(pulled.bytes(), s, pulled.digest() + " (" + ref + ")");
      Descriptor rootfsDesc = rootfsOf(pulled.manifest(), pulled.digest() + " (" + ref + ")");
      Map<Digest, Long> sizes = layerSizes(pulled.manifest());
      List<BlobFetcher> fetchers = new ArrayList<>();
      PackedBlobFetcher packed = null;
      for (RegistryClient client : clients) {
        BlobFetcher blobs =
            new RegistryBlobFetcher(client, ref.repository(), d -> sizes.getOrDefault(d, -1L));
        // The registry that had the manifest may also have a chunk pack of the image; looked for
        // beside the first reads, and used once found.
        if (client == from) {
          packed = PackedBlobFetcher.find(client, ref.repository(), pulled.digest(), sizes, blobs);
          fetchers.add(packed);
        } else {
          fetchers.add(blobs);
        }
      }
      // Start with the registry that had the manifest; the others stay behind it in order.
      int first = clients.indexOf(from);
      BlobFetcher fetcher = new FallbackBlobFetcher(fetchers.subList(first, fetchers.size()));
      // The rootfs first: the client runs a bounded number of requests at once, and the early
      // chunks must not queue the blob everything else waits for behind them.
      CompletableFuture<byte[]> rootfsFetch = fetcher.fetch(rootfsDesc.digestValue());
      early = startEarly(fetcher, packed.search(), sizes, rootfsDesc.digestValue(), s);
      byte[] blob = Futures.await(rootfsFetch, "fetch of the rootfs blob of " + ref);
      Rootfs rootfs = decode(blob, rootfsDesc, s);
      CachingChunkSource source =
          early != null ? early.source() : cache(fetcher, rootfs, s, s.cacheDir() != null);
      Image image = open(rootfs, rootfsDesc, source, s);
      OpenedImage opened;
      if (early == null) {
        opened = new OpenedImage(image, owned);
      } else {
        image.addStats(early.fetch()::stats);
        AutoCloseable[] all = java.util.Arrays.copyOf(owned, owned.length + 1);
        all[owned.length] = early.fetch();
        opened = new OpenedImage(image, all);
      }
      opened.settled = packed.search();
      return opened;
    } catch (IOException | RuntimeException | InterruptedException e) {
      if (early != null) {
        early.fetch().close();
        early.source().close();
      }
      for (RegistryClient client : clients) {
        client.close();
      }
      throw e;
    }
  }

  /**
   * The listed chunks to fetch early: each once, in the list's order, never the rootfs blob
   * (fetched already, and no chunk) nor a chunk the manifest does not list.
   */
  private static List<Digest> wanted(
      List<Digest> listed, Map<Digest, Long> inManifest, Digest rootfs) {
    java.util.Set<Digest> wanted = new java.util.LinkedHashSet<>();
    for (Digest d : listed) {
      if (inManifest.containsKey(d) && !d.equals(rootfs)) {
        wanted.add(d);
      }
    }
    if (wanted.size() < listed.size()) {
      LOG.debug(
          "{} of the {} listed chunks are repeated, the rootfs blob or not in this image's"
              + " manifest; not fetching them",
          listed.size() - wanted.size(),
          listed.size());
    }
    return List.copyOf(wanted);
  }

  /** The chunk source made before the rootfs blob arrived, and the early fetch into it. */
  private record Early(CachingChunkSource source, EarlyFetch fetch) {}

  /**
   * Starts fetching the settings' early chunks that the manifest lists, into the chunk source the
   * image will read from; null when there are none, or when chunks must also match fs-verity
   * digests that only the rootfs blob holds.
   */
  private static Early startEarly(
      BlobFetcher fetcher,
      CompletableFuture<ChunkPack> packSearch,
      Map<Digest, Long> inManifest,
      Digest rootfs,
      Settings s)
      throws IOException {
    if (s.expectedManifestVerity() != null) {
      return null;
    }
    if (s.earlyChunks().isEmpty()) {
      if (!s.publishedList()) {
        return null;
      }
      CachingChunkSource source = cache(fetcher, null, s, s.cacheDir() != null);
      CompletableFuture<List<Digest>> published =
          packSearch.handle(
              (pack, failure) -> {
                if (failure != null || pack == null || pack.prefetch().isEmpty()) {
                  return List.of();
                }
                LOG.debug(
                    "fetching the {} chunks of the prefetch list published with {}",
                    pack.prefetch().size(),
                    pack.manifest());
                return wanted(pack.prefetch(), inManifest, rootfs);
              });
      return new Early(source, EarlyFetch.startWhenListed(source, published));
    }
    List<Digest> wanted = wanted(s.earlyChunks(), inManifest, rootfs);
    if (wanted.isEmpty()) {
      return null;
    }
    CachingChunkSource source = cache(fetcher, null, s, s.cacheDir() != null);
    return new Early(
        source,
        EarlyFetch.start(
            source, wanted, Prefetcher.LIST_IN_FLIGHT, packSearch, PACK_SEARCH_WAIT_MILLIS));
  }

  /**
   * An image's metadata without its chunks: the manifest and the decoded rootfs blob.
   *
   * @param manifestDigest the manifest's digest, {@code sha256:HEX}
   * @param manifestSize the manifest's length in bytes
   * @param manifest the manifest
   * @param rootfsBlob the rootfs blob's descriptor
   * @param rootfs the decoded rootfs blob
   */
  record Metadata(
      String manifestDigest,
      long manifestSize,
      ImageManifest manifest,
      Descriptor rootfsBlob,
      Rootfs rootfs) {}

  /**
   * How errors name the manifest {@code desc}: its digest, then the tag and layout it came from.
   */
  private static String named(Descriptor desc, String tag, Path dir) {
    return desc.digest() + " (tag " + tag + " of " + dir + ")";
  }

  /** The metadata of tag {@code tag} of the layout in {@code dir}. */
  static Metadata localMetadata(Path dir, String tag) throws IOException {
    OciLayout layout = OciLayout.open(dir);
    Descriptor desc = layout.resolveTag(tag);
    byte[] manifestBytes = layout.readBlob(desc);
    String named = named(desc, tag, dir);
    ImageManifest manifest = ImageManifest.parse(manifestBytes, "manifest " + named);
    Descriptor rootfsDesc = rootfsOf(manifest, named);
    Rootfs rootfs = decode(layout.readBlob(rootfsDesc), rootfsDesc, NO_CHECKS);
    return new Metadata(desc.digest(), manifestBytes.length, manifest, rootfsDesc, rootfs);
  }

  /** The metadata of {@code ref}, fetched with {@code client} (which stays the caller's). */
  static Metadata remoteMetadata(ImageReference ref, RegistryClient client)
      throws IOException, InterruptedException {
    ImagePuller puller = new ImagePuller(client);
    PulledImage pulled = Futures.await(puller.fetchManifest(ref), "fetch of " + ref);
    Descriptor rootfsDesc = rootfsOf(pulled.manifest(), pulled.digest() + " (" + ref + ")");
    byte[] blob =
        Futures.await(
            puller.fetchBlob(ref.repository(), rootfsDesc.digestValue(), rootfsDesc.size()),
            "fetch of the rootfs blob of " + ref);
    return new Metadata(
        pulled.digest().toString(),
        pulled.bytes().length,
        pulled.manifest(),
        rootfsDesc,
        decode(blob, rootfsDesc, NO_CHECKS));
  }

  private static final Settings NO_CHECKS = new Settings(null, Duration.ofSeconds(1), 0, null, 0);

  /** The size each layer of {@code manifest} has, by digest, as its descriptor says. */
  static Map<Digest, Long> layerSizes(ImageManifest manifest) {
    Map<Digest, Long> sizes = new HashMap<>();
    if (manifest.layers() != null) {
      for (Descriptor d : manifest.layers()) {
        try {
          sizes.put(d.digestValue(), d.size());
        } catch (IllegalArgumentException e) {
          // Not a sha256 digest: no chunk can name this layer, so its size is never asked for.
        }
      }
    }
    return sizes;
  }

  private static void checkManifest(byte[] manifest, Settings s, String what) throws IOException {
    if (s.expectedManifestVerity() == null) {
      return;
    }
    String actual = HexFormat.of().formatHex(FsVerity.digest(manifest));
    if (!actual.equals(s.expectedManifestVerity().toLowerCase(java.util.Locale.ROOT))) {
      throw new IOException(
          "manifest "
              + what
              + " has fs-verity digest "
              + actual
              + ", not the expected --digest "
              + s.expectedManifestVerity());
    }
  }

  /**
   * The rootfs layer of {@code manifest}, found by media type; {@code what} names the manifest in
   * the error (its digest, and the tag or reference it was reached by).
   */
  static Descriptor rootfsOf(ImageManifest manifest, String what) throws OciException {
    if (manifest.layers() != null) {
      for (Descriptor d : manifest.layers()) {
        if (MediaTypes.ROOTFS.equals(d.mediaType())) {
          return d;
        }
      }
    }
    throw new OciException(
        "manifest "
            + what
            + " is not a PuzzleFS image: it has no layer of type "
            + MediaTypes.ROOTFS);
  }

  private static Rootfs decode(byte[] blob, Descriptor desc, Settings s) throws IOException {
    if (s.expectedManifestVerity() != null) {
      String expected = desc.annotation(MediaTypes.VERITY_ROOT_HASH);
      String actual = HexFormat.of().formatHex(FsVerity.digest(blob));
      if (expected == null || !expected.equals(actual)) {
        throw new IOException(
            "rootfs blob "
                + desc.digest()
                + " has fs-verity digest "
                + actual
                + " but its manifest expects "
                + expected);
      }
    }
    try {
      return RootfsCodec.decode(blob);
    } catch (IOException e) {
      throw new IOException("rootfs blob " + desc.digest() + ": " + e.getMessage(), e);
    }
  }

  /** Indexes {@code rootfs}; a structure no filesystem can hold is an error naming its blob. */
  private static Image open(Rootfs rootfs, Descriptor desc, CachingChunkSource source, Settings s)
      throws IOException {
    try {
      return Image.open(rootfs, source, s.readTimeout());
    } catch (IOException e) {
      source.close();
      throw new IOException("rootfs blob " + desc.digest() + ": " + e.getMessage(), e);
    }
  }

  static final java.time.Duration FAILURE_MEMORY = java.time.Duration.ofSeconds(10);

  private static CachingChunkSource cache(
      BlobFetcher fetcher, Rootfs rootfs, Settings s, boolean disk) throws IOException {
    CachingChunkSource.Builder b =
        CachingChunkSource.builder(fetcher)
            .maxMemoryBytes(s.memoryBytes())
            .fetchTimeout(s.readTimeout());
    if (disk) {
      b.diskCache(s.cacheDir(), s.diskBytes());
    }
    if (!(fetcher instanceof LayoutBlobFetcher)) {
      // A registry's damaged or missing blob: one fetch (with its attempts) per 10 s, not per read.
      // A local layout's is read again each time: reading a file costs little, and it may be fixed.
      b.failureMemory(FAILURE_MEMORY);
    }
    if (s.expectedManifestVerity() != null) {
      Map<Digest, byte[]> expected = new HashMap<>();
      for (VerityData v : rootfs.verity()) {
        expected.put(v.blob(), v.verity());
      }
      b.verity(expected::get, FsVerity::digest);
    }
    return b.build();
  }

  /**
   * A local blob read that has taken this long is taken to hang: one takes well under a millisecond
   * from the page cache, and tens from a busy disk.
   */
  private static final long LOCAL_READ_HUNG_NANOS =
      java.util.concurrent.TimeUnit.SECONDS.toNanos(1);

  @Override
  public void close() {
    image.close();
    for (AutoCloseable r : resources) {
      try {
        r.close();
      } catch (Exception e) {
        // closing on the way out; nothing left to tell the user
      }
    }
  }
}
