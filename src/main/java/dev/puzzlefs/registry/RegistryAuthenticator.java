package dev.puzzlefs.registry;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides what {@code Authorization} header a request to one registry carries, and what to do when
 * the registry refuses one.
 *
 * <p>Why it works this way: a client cannot know in advance how a registry wants to be spoken to,
 * so the first request goes anonymously and the registry's {@code WWW-Authenticate} challenge
 * decides. {@code Basic} is answered with the user name and password; {@code Bearer} sends the
 * client to the token server it names for a token limited to a scope ({@code repository:a/b:pull},
 * or {@code pull,push} for uploads). The challenge is remembered, so later requests are
 * authenticated from the start. Tokens are cached per scope until shortly before {@code expires_in}
 * runs out, and one token fetch per scope is shared by every request that needs it. When the
 * registry refuses a header (401, or 403 for a token lacking access) the caller asks for a fresh
 * one once: credentials are read again and a new token is fetched, which covers a token that
 * expired early, was revoked, or a password that changed since.
 *
 * <p>Credentials and tokens appear in no message and no log line.
 */
final class RegistryAuthenticator {
  private static final Logger LOG = LoggerFactory.getLogger(RegistryAuthenticator.class);

  /** At most this much of a token's lifetime is cut off, so it is renewed before it lapses. */
  private static final long MAX_EARLY_RENEWAL_SECONDS = 10;

  private final String registry;
  private final boolean plainHttp;
  private final CredentialSource source;
  private final Vertx vertx;
  private final Function<TokenFetcher, Future<AccessToken>> tokenRunner;
  private final LongSupplier nanoTime;
  private final ConcurrentHashMap<String, Future<CachedToken>> tokens = new ConcurrentHashMap<>();
  private volatile AuthChallenge challenge;
  private volatile String basic;
  private volatile boolean credentialsFound;

  RegistryAuthenticator(
      String registry,
      boolean plainHttp,
      CredentialSource source,
      Vertx vertx,
      Function<TokenFetcher, Future<AccessToken>> tokenRunner,
      LongSupplier nanoTime) {
    this.registry = registry;
    this.plainHttp = plainHttp;
    this.source = source;
    this.vertx = vertx;
    this.tokenRunner = tokenRunner;
    this.nanoTime = nanoTime;
  }

  /**
   * The header for a first request needing {@code scope}: none until the registry has challenged,
   * then the basic credentials or a (cached, else new) token.
   */
  Future<String> authorization(String scope) {
    AuthChallenge known = challenge;
    if (known == null) {
      return Future.succeededFuture(null);
    }
    if (known.isBasic()) {
      return Future.succeededFuture(basic);
    }
    if (known.isBearer()) {
      return token(known, scope, null).map(RegistryAuthenticator::bearer);
    }
    return Future.succeededFuture(null);
  }

  /**
   * A new header after the registry refused a request for {@code scope} with {@code rejection}
   * ({@code WWW-Authenticate} value, may be null), when {@code sent} (null: none) was sent.
   * Completes with null when nothing else can be tried; fails when getting credentials or a token
   * failed.
   */
  Future<String> authenticate(String rejection, String scope, String sent) {
    AuthChallenge parsed = AuthChallenge.parse(rejection);
    AuthChallenge current = parsed != null ? parsed : challenge;
    if (current == null) {
      return Future.succeededFuture(null);
    }
    challenge = current;
    if (current.isBasic()) {
      return credentials()
          .map(
              found -> {
                if (found == null || found.isIdentityToken()) {
                  return null;
                }
                String header = found.basicAuthorization();
                basic = header;
                LOG.debug("answering {}'s basic challenge with {}", registry, found);
                return header;
              });
    }
    if (current.isBearer()) {
      String rejectedToken =
          sent != null && sent.regionMatches(true, 0, "Bearer ", 0, 7) ? sent.substring(7) : null;
      if (sent != null && rejectedToken == null) {
        // A basic header refused with a bearer challenge: start over with tokens.
        basic = null;
      }
      return token(current, scope, rejectedToken == null ? "" : rejectedToken)
          .map(RegistryAuthenticator::bearer);
    }
    return Future.succeededFuture(null);
  }

  /** Whether the last lookup found credentials, for messages about a refusal. */
  boolean credentialsFound() {
    return credentialsFound;
  }

  /** Where credentials come from, for messages. */
  String source() {
    return source.describe();
  }

  /**
   * The token for {@code scope}: the cached one unless it is stale or is {@code rejected} (the one
   * the registry just refused; "" to refuse any cached token, null to accept it), else a new one.
   */
  private Future<String> token(AuthChallenge bearer, String scope, String rejected) {
    String realm = bearer.parameter("realm");
    if (realm == null || realm.isEmpty()) {
      return Future.failedFuture(
          new RegistryUnauthorizedException(
              registry + " asks for a bearer token but names no token server (realm)"));
    }
    long now = nanoTime.getAsLong();
    Future<CachedToken> entry =
        tokens.compute(
            scope,
            (key, existing) -> {
              if (existing != null && usable(existing, now, rejected)) {
                return existing;
              }
              return fetch(bearer, realm, scope);
            });
    return entry.map(CachedToken::value);
  }

  private boolean usable(Future<CachedToken> existing, long now, String rejected) {
    if (!existing.isComplete()) {
      // A fetch in flight is shared, unless it is a refresh after its own token was refused.
      return true;
    }
    if (existing.failed()) {
      return false;
    }
    CachedToken cached = existing.result();
    if (rejected != null && (rejected.isEmpty() || rejected.equals(cached.value()))) {
      return false;
    }
    return now - cached.staleAtNanos() < 0;
  }

  private Future<CachedToken> fetch(AuthChallenge bearer, String realm, String scope) {
    long started = nanoTime.getAsLong();
    if (!plainHttp && realm.toLowerCase(Locale.ROOT).startsWith("http://")) {
      return Future.failedFuture(
          new RegistryUnauthorizedException(
              registry
                  + " names a plain-HTTP token server; refusing to send credentials there"
                  + " (use plain HTTP for the registry too if this is a test setup)"));
    }
    List<String> scopes = new ArrayList<>();
    scopes.add(scope);
    String asked = bearer.parameter("scope");
    if (asked != null && !asked.isEmpty() && !asked.equals(scope)) {
      scopes.add(asked);
    }
    String service = bearer.parameter("service");
    return credentials()
        .compose(
            found -> {
              LOG.debug(
                  "getting a token for {} on {} ({})",
                  String.join(" ", scopes),
                  registry,
                  found == null ? "anonymous" : found);
              return tokenRunner
                  .apply(new TokenFetcher(registry, realm, service, scopes, found))
                  .recover(e -> Future.failedFuture(withHint(e, found)));
            })
        .map(token -> new CachedToken(token.value(), started + lifetimeNanos(token)));
  }

  /** A token server's refusal, with what was presented to it and where that came from. */
  private Throwable withHint(Throwable failure, Credentials presented) {
    if (!(failure instanceof RegistryUnauthorizedException)) {
      return failure;
    }
    String hint =
        presented == null
            ? "no credentials for " + registry + " in " + source.describe()
            : "the token server refused the credentials for "
                + registry
                + " from "
                + source.describe();
    return new RegistryUnauthorizedException(failure.getMessage() + "; " + hint);
  }

  /**
   * The token's lifetime less a margin (a tenth, at most 10 s) so it is renewed before it lapses.
   */
  private static long lifetimeNanos(AccessToken token) {
    long seconds = token.expiresInSeconds();
    long margin = Math.min(MAX_EARLY_RENEWAL_SECONDS * 1000, seconds * 100);
    return TimeUnit.MILLISECONDS.toNanos(seconds * 1000 - margin);
  }

  /** Looks the credentials up anew, off the event loop. */
  private Future<Credentials> credentials() {
    return vertx
        .executeBlocking(() -> source.find(registry), false)
        .recover(
            e ->
                Future.failedFuture(
                    new RegistryException(
                        "could not read the credentials for "
                            + registry
                            + " from "
                            + source.describe()
                            + ": "
                            + e.getMessage(),
                        e)))
        .map(
            found -> {
              credentialsFound = found != null;
              return found;
            });
  }

  private static String bearer(String token) {
    return "Bearer " + Objects.requireNonNull(token);
  }

  /** A token and when it is to be renewed, in {@code nanoTime} terms. */
  private record CachedToken(String value, long staleAtNanos) {
    @Override
    public String toString() {
      return "cached token";
    }
  }
}
