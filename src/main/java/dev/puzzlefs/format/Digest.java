package dev.puzzlefs.format;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * A SHA-256 content digest. Validated on creation; prints as {@code sha256:<hex>}. Ordered by the
 * unsigned bytes, which is the order the rootfs blob keeps its verity table in.
 */
public final class Digest implements Comparable<Digest> {
  /** The only algorithm PuzzleFS images use. */
  public static final String ALGORITHM = "sha256";

  private static final HexFormat HEX = HexFormat.of();
  private final byte[] bytes;

  private Digest(byte[] bytes) {
    this.bytes = bytes;
  }

  /** Wraps 32 raw digest bytes (copied). */
  public static Digest of(byte[] raw) {
    if (raw == null || raw.length != 32) {
      throw new IllegalArgumentException(
          "a sha256 digest has 32 bytes, got " + (raw == null ? "null" : raw.length));
    }
    return new Digest(raw.clone());
  }

  /** Parses {@code sha256:<64 lowercase hex>}. */
  public static Digest parse(String text) {
    if (text == null || !text.startsWith(ALGORITHM + ":")) {
      throw new IllegalArgumentException("not a sha256 digest: " + text);
    }
    return fromHex(text.substring(ALGORITHM.length() + 1));
  }

  /** Parses 64 lowercase hex characters without a prefix. */
  public static Digest fromHex(String hex) {
    if (hex.length() != 64
        || !hex.chars().allMatch(c -> (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      throw new IllegalArgumentException("not 64 lowercase hex characters: " + hex);
    }
    return new Digest(HEX.parseHex(hex));
  }

  /** The sha256 of {@code data[off, off+len)}. */
  public static Digest sha256(byte[] data, int off, int len) {
    MessageDigest md = newSha256();
    md.update(data, off, len);
    return new Digest(md.digest());
  }

  /** The sha256 of all of {@code data}. */
  public static Digest sha256(byte[] data) {
    return sha256(data, 0, data.length);
  }

  /** A fresh SHA-256 message digest; every JDK has one. */
  public static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JDK has no SHA-256", e);
    }
  }

  /** A copy of the 32 raw bytes. */
  public byte[] bytes() {
    return bytes.clone();
  }

  /** The 64 lowercase hex characters, without prefix. */
  public String hex() {
    return HEX.formatHex(bytes);
  }

  /** True when {@code raw} holds exactly these 32 bytes. */
  public boolean matches(byte[] raw) {
    return Arrays.equals(bytes, raw);
  }

  @Override
  public int compareTo(Digest other) {
    return Arrays.compareUnsigned(bytes, other.bytes);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Digest && Arrays.equals(bytes, ((Digest) o).bytes);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(bytes);
  }

  @Override
  public String toString() {
    return ALGORITHM + ":" + hex();
  }
}
