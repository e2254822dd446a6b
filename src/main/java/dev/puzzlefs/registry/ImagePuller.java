package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageIndex;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import io.vertx.core.Future;
import java.nio.charset.StandardCharsets;

/**
 * What a mount needs from a registry: the image manifest behind a reference (through an index if
 * there is one) and verified blobs.
 */
public final class ImagePuller {
  private final RegistryClient client;

  /** A puller over {@code client}. */
  public ImagePuller(RegistryClient client) {
    this.client = client;
  }

  /**
   * The manifest {@code reference} names. If it names an index, the entry for linux/amd64 is taken,
   * else the first image manifest in it. Fails with {@link ManifestNotFoundException} when absent
   * and {@link OciException} when the document is not a manifest.
   */
  public Future<PulledImage> fetchManifest(ImageReference reference) {
    if (!reference.registry().equals(client.registry())) {
      return Future.failedFuture(
          new IllegalArgumentException(
              "cannot fetch " + reference + " with a client for " + client.registry()));
    }
    String repository = reference.repository();
    return client
        .pullManifest(repository, reference.reference())
        .compose(
            pulled -> {
              if (!isIndex(pulled)) {
                return Future.succeededFuture(pulled);
              }
              try {
                return client.pullManifest(repository, choose(pulled, reference).digest());
              } catch (OciException e) {
                return Future.failedFuture(e);
              }
            })
        .compose(
            pulled -> {
              try {
                return Future.succeededFuture(parse(reference, pulled));
              } catch (OciException e) {
                return Future.failedFuture(e);
              }
            });
  }

  /** The verified bytes of blob {@code digest} in {@code repository}. */
  public Future<byte[]> fetchBlob(String repository, Digest digest) {
    return client.pullBlob(repository, digest);
  }

  /**
   * The verified bytes of blob {@code digest}, which its descriptor says is {@code size} bytes
   * long; a longer body is cut off and fails with {@link BlobTooLargeException}.
   */
  public Future<byte[]> fetchBlob(String repository, Digest digest, long size) {
    return client.pullBlob(repository, digest, size);
  }

  private static boolean isIndex(PulledManifest pulled) {
    String type = pulled.mediaType();
    if (MediaTypes.INDEX.equals(type) || ManifestPuller.DOCKER_MANIFEST_LIST.equals(type)) {
      return true;
    }
    if (MediaTypes.MANIFEST.equals(type) || ManifestPuller.DOCKER_MANIFEST.equals(type)) {
      return false;
    }
    // An unhelpful Content-Type: an index has "manifests", an image manifest has "layers".
    String text = new String(pulled.bytes(), StandardCharsets.UTF_8);
    return text.contains("\"manifests\"") && !text.contains("\"layers\"");
  }

  private static Descriptor choose(PulledManifest pulled, ImageReference reference)
      throws OciException {
    String what = "index " + pulled.digest() + " of " + reference;
    ImageIndex index = Json.read(pulled.bytes(), ImageIndex.class, what);
    if (index.manifests() == null || index.manifests().isEmpty()) {
      throw new OciException(what + " lists no manifests");
    }
    Descriptor firstManifest = null;
    for (Descriptor d : index.manifests()) {
      Descriptor.Platform p = d.platform();
      if (p != null && "linux".equals(p.os()) && "amd64".equals(p.architecture())) {
        return d;
      }
      if (firstManifest == null && !MediaTypes.INDEX.equals(d.mediaType())) {
        firstManifest = d;
      }
    }
    if (firstManifest == null) {
      throw new OciException(what + " lists only nested indexes, which are not supported");
    }
    return firstManifest;
  }

  private static PulledImage parse(ImageReference reference, PulledManifest pulled)
      throws OciException {
    String what = "manifest " + pulled.digest() + " of " + reference;
    if (isIndex(pulled)) {
      throw new OciException(what + " is another index; nested indexes are not supported");
    }
    ImageManifest manifest = ImageManifest.parse(pulled.bytes(), what);
    if (manifest.config() == null || manifest.layers() == null) {
      throw new OciException(what + " is not an image manifest: it lacks config or layers");
    }
    return new PulledImage(
        reference.withDigest(pulled.digest()), pulled.digest(), manifest, pulled.bytes());
  }
}
