package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Where an image lives in a registry: {@code docker://HOST[:PORT]/REPO[/MORE][:TAG][@sha256:HEX]}.
 *
 * <p>The first path component is always the registry host (there is no implicit Docker Hub). A
 * reference with neither tag nor digest means the tag {@value #DEFAULT_TAG}, as with docker. When
 * both are given the digest decides what is fetched and the tag is kept for display and pushing.
 */
public final class ImageReference {
  /** The scheme every reference starts with. */
  public static final String SCHEME = "docker://";

  /** The tag used when a reference names neither a tag nor a digest. */
  public static final String DEFAULT_TAG = "latest";

  // Repository and tag grammars of the OCI distribution spec.
  private static final Pattern REPOSITORY =
      Pattern.compile("[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*");
  private static final Pattern TAG = Pattern.compile("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  private static final Pattern HOST =
      Pattern.compile(
          "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*");
  private static final Pattern IPV6 = Pattern.compile("\\[[0-9a-fA-F:.]+\\]");

  private final String host;
  private final int port;
  private final String repository;
  private final String tag;
  private final Digest digest;

  private ImageReference(String host, int port, String repository, String tag, Digest digest) {
    this.host = host;
    this.port = port;
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }

  /**
   * Parses a reference.
   *
   * @throws InvalidImageReferenceException naming the input and what is wrong with it
   */
  public static ImageReference parse(String input) {
    if (input == null || !input.startsWith(SCHEME)) {
      throw new InvalidImageReferenceException(
          String.valueOf(input),
          "it must start with " + SCHEME + " (docker://HOST[:PORT]/REPO:TAG)");
    }
    String rest = input.substring(SCHEME.length());

    Digest digest = null;
    int at = rest.indexOf('@');
    if (at >= 0) {
      String digestText = rest.substring(at + 1);
      try {
        digest = Digest.parse(digestText);
      } catch (IllegalArgumentException e) {
        throw new InvalidImageReferenceException(
            input, "'" + digestText + "' is not a digest of the form sha256:<64 lowercase hex>");
      }
      rest = rest.substring(0, at);
    }

    int slash = rest.indexOf('/');
    if (rest.isEmpty() || slash == 0) {
      throw new InvalidImageReferenceException(input, "it names no registry host");
    }
    if (slash < 0 || slash == rest.length() - 1) {
      throw new InvalidImageReferenceException(input, "it names no repository after the host");
    }
    String hostPort = rest.substring(0, slash);
    String path = rest.substring(slash + 1);

    String tag = null;
    int colon = path.lastIndexOf(':');
    if (colon >= 0) {
      tag = path.substring(colon + 1);
      path = path.substring(0, colon);
      if (!TAG.matcher(tag).matches()) {
        throw new InvalidImageReferenceException(
            input,
            "'" + tag + "' is not a valid tag (letters, digits, '.', '_', '-'; 128 at most)");
      }
    }
    if (!REPOSITORY.matcher(path).matches()) {
      throw new InvalidImageReferenceException(
          input,
          "'"
              + path
              + "' is not a valid repository name (lowercase letters and digits,"
              + " separated by '.', '_', '-' or '/')");
    }
    if (tag == null && digest == null) {
      tag = DEFAULT_TAG;
    }
    String[] hp = splitHostPort(input, hostPort);
    return new ImageReference(hp[0], Integer.parseInt(hp[1]), path, tag, digest);
  }

  private static String[] splitHostPort(String input, String hostPort) {
    String hostPart = hostPort;
    String portPart = null;
    int colon = hostPort.lastIndexOf(':');
    if (colon >= 0 && colon > hostPort.lastIndexOf(']')) {
      hostPart = hostPort.substring(0, colon);
      portPart = hostPort.substring(colon + 1);
    }
    if (!HOST.matcher(hostPart).matches() && !IPV6.matcher(hostPart).matches()) {
      throw new InvalidImageReferenceException(
          input, "'" + hostPart + "' is not a valid registry host name or address");
    }
    int port = -1;
    if (portPart != null) {
      try {
        port = Integer.parseInt(portPart);
      } catch (NumberFormatException e) {
        port = 0;
      }
      if (port < 1 || port > 65535 || !portPart.chars().allMatch(Character::isDigit)) {
        throw new InvalidImageReferenceException(
            input, "'" + portPart + "' is not a port number (1 to 65535)");
      }
    }
    return new String[] {hostPart.toLowerCase(Locale.ROOT), Integer.toString(port)};
  }

  /** The registry host name or address (IPv6 in brackets), lowercased. */
  public String host() {
    return host;
  }

  /** The explicit port, or -1 when the reference names none. */
  public int port() {
    return port;
  }

  /** {@code HOST[:PORT]} as a {@link RegistryClient} expects it. */
  public String registry() {
    return port < 0 ? host : host + ":" + port;
  }

  /** The repository path inside the registry, for example {@code library/debian}. */
  public String repository() {
    return repository;
  }

  /** The tag; empty only for a digest-only reference. */
  public Optional<String> tag() {
    return Optional.ofNullable(tag);
  }

  /** The pinned manifest digest, if the reference has one. */
  public Optional<Digest> digest() {
    return Optional.ofNullable(digest);
  }

  /** What to put after {@code /manifests/}: the digest when there is one, else the tag. */
  public String reference() {
    return digest != null ? digest.toString() : tag;
  }

  /** This reference pinned to {@code manifestDigest}, keeping host, repository and tag. */
  public ImageReference withDigest(Digest manifestDigest) {
    return new ImageReference(host, port, repository, tag, manifestDigest);
  }

  /** The same repository, tag and digest on another registry ({@code HOST[:PORT]}): a mirror. */
  public ImageReference onRegistry(String registry) {
    return parse(
        SCHEME
            + registry
            + "/"
            + repository
            + (tag != null ? ":" + tag : "")
            + (digest != null ? "@" + digest : ""));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ImageReference && toString().equals(o.toString());
  }

  @Override
  public int hashCode() {
    return Objects.hash(toString());
  }

  /** The canonical form, which {@link #parse} reads back to an equal reference. */
  @Override
  public String toString() {
    return SCHEME
        + registry()
        + "/"
        + repository
        + (tag != null ? ":" + tag : "")
        + (digest != null ? "@" + digest : "");
  }
}
