package dev.puzzlefs.registry;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * An image's chunk pack, as a reader uses it: where each packed chunk lies in which segment.
 *
 * <p>A pack is our extension to the image format, pushed beside an image by {@code push --pack} and
 * never needed to read it: the image's chunk blobs, concatenated as stored in the order a walk of
 * the image meets them, cut into segments of at most {@link #SEGMENT_BYTES}. A lazy reader then
 * fetches a run of chunks the image's data stream holds one after the other (a walk, a prefetch)
 * with one range request instead of one request per chunk; each chunk cut out of a range is still
 * checked against its own digest.
 *
 * <p>In the registry, the pack is an OCI artifact that refers to the image: a manifest with {@code
 * artifactType} {@value #ARTIFACT_TYPE}, the empty config, the pack's index as its first layer
 * ({@value #INDEX_MEDIA_TYPE}: {@code {"segments":[["sha256:..",..],..],"version":1}}, the chunks
 * of each segment in order) and the segments after it ({@value #SEGMENT_MEDIA_TYPE}), and a {@code
 * subject} naming the image's manifest. Readers find it through the referrers tag schema of the OCI
 * distribution spec: tag {@code sha256-<hex of the image manifest's digest>} holds an index that
 * lists it. Registries without the referrers API (docker-registry 2.8) keep such tags like any
 * other. Chunk sizes come from the image's manifest, so the index holds digests only.
 *
 * <p>The index may also hold {@code "prefetch":["sha256:..",..]}: the chunks a recorded command
 * needed (a prefetch list published with the image, {@code push --prefetch-list}), which a lazy
 * mount given no list of its own fetches at once, as if that list had been given. Readers that do
 * not know the field ignore it.
 */
public final class ChunkPack {
  /** The pack manifest's {@code artifactType}. */
  public static final String ARTIFACT_TYPE = "application/vnd.puzzlefs.pack.v1";

  /** The media type of the pack's index, the first layer of its manifest. */
  public static final String INDEX_MEDIA_TYPE = "application/vnd.puzzlefs.pack.index.v1+json";

  /** The media type of each segment. */
  public static final String SEGMENT_MEDIA_TYPE = "application/vnd.puzzlefs.pack.segment.v1";

  /** The most bytes a segment holds, unless one chunk alone is larger. */
  public static final long SEGMENT_BYTES = 16L << 20;

  /** The largest pack index a reader accepts. */
  static final long MAX_INDEX_BYTES = 64L << 20;

  /**
   * Where a packed chunk lies: {@code length} bytes from {@code offset} of blob {@code segment}.
   */
  public record Location(Digest segment, long offset, int length) {}

  /** The most chunks a published prefetch list may name. */
  static final int MAX_PREFETCH_CHUNKS = 1 << 20;

  private final Digest manifest;
  private final Map<Digest, Location> locations;
  private final int segments;
  private final List<Digest> prefetch;

  private ChunkPack(
      Digest manifest, Map<Digest, Location> locations, int segments, List<Digest> prefetch) {
    this.manifest = manifest;
    this.locations = locations;
    this.segments = segments;
    this.prefetch = prefetch;
  }

  /** The chunks published for a lazy mount to fetch first, in order; empty when there are none. */
  public List<Digest> prefetch() {
    return prefetch;
  }

  /** Where {@code chunk} lies in the pack, or null when the pack does not hold it. */
  public Location locate(Digest chunk) {
    return locations.get(chunk);
  }

  /** The digest of the pack's manifest, for messages. */
  public Digest manifest() {
    return manifest;
  }

  /** How many chunks the pack holds. */
  public int chunks() {
    return locations.size();
  }

  /** How many segments the pack has. */
  public int segments() {
    return segments;
  }

  /** The referrers-schema tag that lists the artifacts referring to manifest {@code subject}. */
  public static String referrersTag(Digest subject) {
    return Digest.ALGORITHM + "-" + subject.hex();
  }

  /**
   * The chunks of each segment, in order: {@code chunks} (as stored, in the order to pack them) cut
   * into runs of at most {@code segmentBytes}.
   */
  static List<List<Descriptor>> plan(List<Descriptor> chunks, long segmentBytes) {
    List<List<Descriptor>> out = new ArrayList<>();
    List<Descriptor> current = new ArrayList<>();
    long bytes = 0;
    for (Descriptor chunk : chunks) {
      if (!current.isEmpty() && bytes + chunk.size() > segmentBytes) {
        out.add(current);
        current = new ArrayList<>();
        bytes = 0;
      }
      current.add(chunk);
      bytes += chunk.size();
    }
    if (!current.isEmpty()) {
      out.add(current);
    }
    return out;
  }

  /**
   * The pack that manifest {@code packManifest} (digest {@code packDigest}) and its index {@code
   * indexBytes} describe, for the image whose manifest is {@code image} and whose chunks have the
   * sizes {@code chunkSizes}. Fails, naming the pack and the cause, when the pack does not fit the
   * image: another subject, a chunk the image does not list, a chunk twice, or segment sizes that
   * are not the sum of their chunks'.
   */
  static ChunkPack parse(
      Digest image,
      Map<Digest, Long> chunkSizes,
      Digest packDigest,
      PackManifest packManifest,
      byte[] indexBytes)
      throws OciException {
    String what = "chunk pack " + packDigest + " of image " + image;
    List<Descriptor> layers = packManifest.layers() == null ? List.of() : packManifest.layers();
    Index index = Json.read(indexBytes, Index.class, "the index of " + what);
    if (index.version() != 1) {
      throw new OciException(what + ": index version " + index.version() + ", expected 1");
    }
    List<List<String>> segments = index.segments() == null ? List.of() : index.segments();
    if (segments.size() != layers.size() - 1) {
      throw new OciException(
          what
              + ": its index lists "
              + segments.size()
              + " segments but its manifest has "
              + (layers.size() - 1));
    }
    Map<Digest, Location> locations = new HashMap<>();
    for (int i = 0; i < segments.size(); i++) {
      Descriptor segment = layers.get(i + 1);
      if (segment == null) {
        throw new OciException(what + ": layer " + (i + 1) + " is null");
      }
      if (segments.get(i) == null) {
        throw new OciException(what + ": segment " + (i + 1) + " of its index is null");
      }
      if (!SEGMENT_MEDIA_TYPE.equals(segment.mediaType())) {
        throw new OciException(
            what + ": layer " + (i + 1) + " has media type " + segment.mediaType());
      }
      Digest segmentDigest = parseDigest(segment.digest(), what);
      long offset = 0;
      for (String text : segments.get(i)) {
        Digest chunk = parseDigest(text, what);
        Long size = chunkSizes.get(chunk);
        if (size == null) {
          throw new OciException(what + ": it packs " + chunk + ", which the image does not list");
        }
        if (size <= 0 || size > Integer.MAX_VALUE) {
          throw new OciException(what + ": chunk " + chunk + " has a size of " + size);
        }
        if (locations.put(chunk, new Location(segmentDigest, offset, (int) (long) size)) != null) {
          throw new OciException(what + ": it packs " + chunk + " twice");
        }
        offset += size;
      }
      if (offset != segment.size()) {
        throw new OciException(
            what
                + ": segment "
                + segmentDigest
                + " is "
                + segment.size()
                + " bytes but its chunks add up to "
                + offset);
      }
    }
    List<Digest> prefetch = new ArrayList<>();
    if (index.prefetch() != null) {
      if (index.prefetch().size() > MAX_PREFETCH_CHUNKS) {
        throw new OciException(
            what + ": its prefetch list names " + index.prefetch().size() + " chunks");
      }
      for (String text : index.prefetch()) {
        if (text == null) {
          throw new OciException(what + ": its prefetch list holds a null");
        }
        Digest chunk = parseDigest(text, what);
        if (!chunkSizes.containsKey(chunk)) {
          throw new OciException(
              what + ": its prefetch list names " + chunk + ", which the image does not list");
        }
        prefetch.add(chunk);
      }
    }
    return new ChunkPack(packDigest, Map.copyOf(locations), segments.size(), List.copyOf(prefetch));
  }

  private static Digest parseDigest(String text, String what) throws OciException {
    try {
      return Digest.parse(text);
    } catch (IllegalArgumentException e) {
      throw new OciException(what + ": " + e.getMessage(), e);
    }
  }

  /**
   * The pack's index: the chunk digests of each segment, in order, and the published prefetch
   * list's chunks (null when there is none).
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record Index(
      @JsonProperty("version") int version,
      @JsonProperty("segments") List<List<String>> segments,
      @JsonProperty("prefetch") List<String> prefetch) {
    Index(int version, List<List<String>> segments) {
      this(version, segments, null);
    }
  }

  /** The pack's manifest: an OCI image manifest with an artifact type and a subject. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record PackManifest(
      @JsonProperty("schemaVersion") int schemaVersion,
      @JsonProperty("mediaType") String mediaType,
      @JsonProperty("artifactType") String artifactType,
      @JsonProperty("config") Descriptor config,
      @JsonProperty("layers") List<Descriptor> layers,
      @JsonProperty("subject") Descriptor subject) {}

  /** An entry of a referrers index: a descriptor with the referrer's artifact type. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record Referrer(
      @JsonProperty("mediaType") String mediaType,
      @JsonProperty("digest") String digest,
      @JsonProperty("size") long size,
      @JsonProperty("artifactType") String artifactType,
      @JsonProperty("annotations") Map<String, String> annotations) {}

  /** A referrers index: the manifests that refer to one subject. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record Referrers(
      @JsonProperty("schemaVersion") int schemaVersion,
      @JsonProperty("mediaType") String mediaType,
      @JsonProperty("manifests") List<Referrer> manifests) {
    static Referrers empty() {
      return new Referrers(2, MediaTypes.INDEX, List.of());
    }
  }
}
