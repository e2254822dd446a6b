package dev.puzzlefs.oci;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/**
 * An OCI content descriptor. {@code digest} is kept as the {@code sha256:<hex>} string on the wire;
 * use {@link #digestValue()} for the validated value.
 *
 * <p>Example: {@code {"digest":"sha256:ab..","mediaType":"application/vnd...","size":2}}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Descriptor(
    @JsonProperty("mediaType") String mediaType,
    @JsonProperty("digest") String digest,
    @JsonProperty("size") long size,
    @JsonProperty("annotations") Map<String, String> annotations,
    @JsonProperty("platform") Platform platform,
    @JsonProperty("data") String data) {

  /** {@code {"architecture":..,"os":..}} of an index entry. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Platform(
      @JsonProperty("architecture") String architecture, @JsonProperty("os") String os) {}

  /** A plain descriptor: media type, digest and size. */
  public static Descriptor of(String mediaType, dev.puzzlefs.format.Digest digest, long size) {
    return new Descriptor(mediaType, digest.toString(), size, null, null, null);
  }

  /** The digest, validated. */
  public dev.puzzlefs.format.Digest digestValue() {
    return dev.puzzlefs.format.Digest.parse(digest);
  }

  /** This descriptor with its annotations replaced. */
  public Descriptor withAnnotations(Map<String, String> newAnnotations) {
    return new Descriptor(mediaType, digest, size, newAnnotations, platform, data);
  }

  /** This descriptor with a platform. */
  public Descriptor withPlatform(Platform newPlatform) {
    return new Descriptor(mediaType, digest, size, annotations, newPlatform, data);
  }

  /** An annotation value, or null. */
  public String annotation(String key) {
    return annotations == null ? null : annotations.get(key);
  }
}
