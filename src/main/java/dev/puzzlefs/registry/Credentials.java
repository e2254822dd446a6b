package dev.puzzlefs.registry;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Objects;

/**
 * What a client presents to a registry or its token server: a user name and password, or an
 * identity token (an OAuth2 refresh token, as {@code docker login} stores for some registries).
 * {@link #toString()} never shows the secret, so a stray log line or message cannot leak it.
 */
public final class Credentials {
  private final String username;
  private final String secret;
  private final boolean identityToken;

  private Credentials(String username, String secret, boolean identityToken) {
    this.username = Objects.requireNonNull(username, "username");
    this.secret = Objects.requireNonNull(secret, "secret");
    this.identityToken = identityToken;
  }

  /** A user name and password, sent as HTTP basic authentication. */
  public static Credentials basic(String username, String password) {
    return new Credentials(username, password, false);
  }

  /**
   * An identity token, exchanged at the token server for access tokens; {@code username} may be
   * empty.
   */
  public static Credentials identityToken(String username, String token) {
    return new Credentials(username, token, true);
  }

  /** The user name, possibly empty for an identity token. */
  public String username() {
    return username;
  }

  /** True for an identity token, which cannot be sent as basic authentication. */
  public boolean isIdentityToken() {
    return identityToken;
  }

  /** The password or identity token. */
  String secret() {
    return secret;
  }

  /** {@code Basic base64(user:password)}; only for a password. */
  String basicAuthorization() {
    if (identityToken) {
      throw new IllegalStateException("an identity token is not a password");
    }
    String pair = username + ":" + secret;
    return "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Credentials c
        && c.username.equals(username)
        && c.secret.equals(secret)
        && c.identityToken == identityToken;
  }

  @Override
  public int hashCode() {
    return Objects.hash(username, secret, identityToken);
  }

  /** Names the kind and the user, never the secret. */
  @Override
  public String toString() {
    return (identityToken ? "identity token" : "password") + " for user '" + username + "'";
  }
}
