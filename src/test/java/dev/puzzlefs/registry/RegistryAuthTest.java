package dev.puzzlefs.registry;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.absent;
import static com.github.tomakehurst.wiremock.client.WireMock.containing;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.put;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.client.WireMock.urlPathEqualTo;
import static dev.puzzlefs.testing.Futures.await;
import static dev.puzzlefs.testing.Futures.failure;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.read.ListAppender;
import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.client.MappingBuilder;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.stubbing.Scenario;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.testing.TestImages;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Authentication flows a real registry process does not let a test steer (token expiry, refusals,
 * OAuth forms, redirects to storage), served by WireMock on 127.0.0.1: the registry and its token
 * server on one WireMock, blob storage on a second.
 */
class RegistryAuthTest {
  private static final String REPO = "auth/repo";
  private static final String USER = "puzzle";
  private static final String PASSWORD = "s3cret-Pa55word";
  private static final String SERVICE = "registry.test";
  private static final String PULL = "repository:" + REPO + ":pull";
  private static final String PUSH = "repository:" + REPO + ":pull,push";

  private static Vertx vertx;
  private WireMockServer server;
  private final byte[] blob = TestImages.randomBytes(new Random(11), 5000);
  private final Digest digest = Digest.sha256(blob);
  private final String blobPath = "/v2/" + REPO + "/blobs/" + digest;

  @BeforeAll
  static void startVertx() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stopVertx() throws Exception {
    await(vertx.close());
  }

  @BeforeEach
  void startServer() {
    server =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").dynamicPort());
    server.start();
  }

  @AfterEach
  void stopServer() {
    server.stop();
  }

  private RegistryClient client(CredentialSource credentials) {
    return new RegistryClient(
        vertx,
        "127.0.0.1:" + server.port(),
        new RegistryClientOptions()
            .plainHttp(true)
            .requestTimeout(Duration.ofSeconds(5))
            .initialBackoff(Duration.ofMillis(20))
            .maxBackoff(Duration.ofMillis(100))
            .credentials(credentials));
  }

  private static CredentialSource password(String password) {
    return fixed(Credentials.basic(USER, password));
  }

  private static CredentialSource fixed(Credentials credentials) {
    return new CredentialSource() {
      @Override
      public Credentials find(String registry) {
        return credentials;
      }

      @Override
      public String describe() {
        return "the test's credentials";
      }
    };
  }

  private static String basic(String user, String password) {
    return "Basic "
        + Base64.getEncoder()
            .encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  private String realm() {
    return "http://127.0.0.1:" + server.port() + "/token";
  }

  private String bearerChallenge(String scope) {
    return "Bearer realm=\"" + realm() + "\",service=\"" + SERVICE + "\",scope=\"" + scope + "\"";
  }

  /** Blob GETs: 401 with a bearer challenge unless they carry {@code Bearer token}. */
  private void blobNeedsToken(String token) {
    server.stubFor(
        get(blobPath)
            .atPriority(9)
            .willReturn(
                aResponse().withStatus(401).withHeader("WWW-Authenticate", bearerChallenge(PULL))));
    server.stubFor(
        get(blobPath)
            .atPriority(1)
            .withHeader("Authorization", equalTo("Bearer " + token))
            .willReturn(aResponse().withStatus(200).withBody(blob)));
  }

  private MappingBuilder tokenRequest(String scope) {
    return get(urlPathEqualTo("/token"))
        .withQueryParam("service", equalTo(SERVICE))
        .withQueryParam("scope", equalTo(scope));
  }

  private List<LoggedRequest> tokenRequests() {
    return server.findAll(getRequestedFor(urlPathEqualTo("/token")));
  }

  private int blobGets() {
    return server.findAll(getRequestedFor(urlEqualTo(blobPath))).size();
  }

  @Test
  void pullBlob_openRegistry_sendsNoAuthorization() throws Exception {
    server.stubFor(get(blobPath).willReturn(aResponse().withStatus(200).withBody(blob)));

    try (RegistryClient client = client(password(PASSWORD))) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    assertEquals(
        1,
        server
            .findAll(getRequestedFor(urlEqualTo(blobPath)).withHeader("Authorization", absent()))
            .size());
  }

  @Test
  void pullBlob_basicChallenge_answersWithCredentialsThenSendsThemFromTheStart() throws Exception {
    server.stubFor(
        get(blobPath)
            .atPriority(9)
            .willReturn(
                aResponse()
                    .withStatus(401)
                    .withHeader("WWW-Authenticate", "Basic realm=\"Registry Realm\"")));
    server.stubFor(
        get(blobPath)
            .atPriority(1)
            .withHeader("Authorization", equalTo(basic(USER, PASSWORD)))
            .willReturn(aResponse().withStatus(200).withBody(blob)));

    try (RegistryClient client = client(password(PASSWORD))) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    // One anonymous request learns the scheme; the rest are authenticated at once.
    assertEquals(3, blobGets());
  }

  @Test
  void pullBlob_basicChallengeWithoutCredentials_failsUnauthorizedNamingWhereItLooked() {
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse()
                    .withStatus(401)
                    .withHeader("WWW-Authenticate", "Basic realm=\"Registry Realm\"")));

    try (RegistryClient client = client(CredentialSource.NONE)) {
      Throwable e = failure(client.pullBlob(REPO, digest));

      assertInstanceOf(RegistryUnauthorizedException.class, e);
      assertTrue(e.getMessage().contains("HTTP 401"), e.getMessage());
      assertTrue(e.getMessage().contains("Basic realm"), e.getMessage());
      assertTrue(e.getMessage().contains("no credentials for 127.0.0.1:"), e.getMessage());
    }
    assertEquals(1, blobGets());
  }

  @Test
  void pullBlob_bearerChallengeAnonymous_getsTokenWithServiceAndScope() throws Exception {
    blobNeedsToken("anon-token");
    server.stubFor(
        tokenRequest(PULL)
            .withHeader("Authorization", absent())
            .willReturn(aResponse().withStatus(200).withBody("{\"token\":\"anon-token\"}")));

    try (RegistryClient client = client(CredentialSource.NONE)) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    assertEquals(1, tokenRequests().size());
    assertEquals(2, blobGets());
  }

  @Test
  void pullBlob_bearerWithPassword_sendsBasicToTokenServerAndTakesAccessToken() throws Exception {
    blobNeedsToken("user-token");
    server.stubFor(
        tokenRequest(PULL)
            .withQueryParam("account", equalTo(USER))
            .withHeader("Authorization", equalTo(basic(USER, PASSWORD)))
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withBody("{\"access_token\":\"user-token\",\"expires_in\":300}")));

    try (RegistryClient client = client(password(PASSWORD))) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    assertEquals(1, tokenRequests().size());
  }

  @Test
  void pullBlob_identityToken_exchangesItWithOAuthForm() throws Exception {
    blobNeedsToken("oauth-token");
    server.stubFor(
        post(urlPathEqualTo("/token"))
            .withRequestBody(containing("grant_type=refresh_token"))
            .withRequestBody(containing("refresh_token=refresh-me"))
            .withRequestBody(containing("service=" + SERVICE))
            .withRequestBody(containing("scope=repository%3Aauth%2Frepo%3Apull"))
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withBody("{\"access_token\":\"oauth-token\",\"expires_in\":300}")));

    try (RegistryClient client = client(fixed(Credentials.identityToken("", "refresh-me")))) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    assertEquals(1, server.findAll(postRequestedFor(urlPathEqualTo("/token"))).size());
  }

  @Test
  void tokens_cachedPerScope_pullTokenReusedAndPushGetsItsOwn() throws Exception {
    blobNeedsToken("pull-token");
    server.stubFor(
        tokenRequest(PULL)
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withBody("{\"token\":\"pull-token\",\"expires_in\":300}")));
    server.stubFor(
        get(urlPathEqualTo("/token"))
            .withQueryParam("scope", equalTo(PUSH))
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withBody("{\"token\":\"push-token\",\"expires_in\":300}")));
    byte[] manifest = "{\"schemaVersion\":2}".getBytes(StandardCharsets.UTF_8);
    server.stubFor(
        put("/v2/" + REPO + "/manifests/v1")
            .withHeader("Authorization", equalTo("Bearer push-token"))
            .willReturn(aResponse().withStatus(201)));

    try (RegistryClient client = client(CredentialSource.NONE)) {
      for (int i = 0; i < 3; i++) {
        assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
      }
      await(client.pushManifest(REPO, "v1", manifest, MediaTypes.MANIFEST));
    }

    List<String> scopes =
        tokenRequests().stream().map(r -> r.queryParameter("scope").firstValue()).toList();
    assertEquals(List.of(PULL, PUSH), scopes);
    // Only the first pull met a challenge; the push was authenticated from the start.
    assertEquals(4, blobGets());
  }

  @Test
  void tokens_expiresIn_isHonouredByFetchingAnewAfterIt() throws Exception {
    blobNeedsToken("short-token");
    server.stubFor(
        tokenRequest(PULL)
            .willReturn(
                aResponse()
                    .withStatus(200)
                    .withBody("{\"token\":\"short-token\",\"expires_in\":1}")));

    try (RegistryClient client = client(CredentialSource.NONE)) {
      await(client.pullBlob(REPO, digest));
      await(client.pullBlob(REPO, digest));
      assertEquals(1, tokenRequests().size());
      Thread.sleep(1200);
      await(client.pullBlob(REPO, digest));
    }

    assertEquals(2, tokenRequests().size());
    // The renewal happened before the request: no second challenge.
    assertEquals(4, blobGets());
  }

  @Test
  void pullBlob_tokenRefusedLater_isRefreshedOnceAndSucceeds() throws Exception {
    server.stubFor(
        tokenRequest(PULL)
            .inScenario("tokens")
            .whenScenarioStateIs(Scenario.STARTED)
            .willReturn(aResponse().withStatus(200).withBody("{\"token\":\"first\"}"))
            .willSetStateTo("second"));
    server.stubFor(
        tokenRequest(PULL)
            .inScenario("tokens")
            .whenScenarioStateIs("second")
            .willReturn(aResponse().withStatus(200).withBody("{\"token\":\"second\"}")));
    blobNeedsToken("first");
    try (RegistryClient client = client(CredentialSource.NONE)) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));

      // The registry revokes the first token: 403 without a new challenge.
      server.stubFor(
          get(blobPath)
              .atPriority(1)
              .withHeader("Authorization", equalTo("Bearer first"))
              .willReturn(aResponse().withStatus(403)));
      server.stubFor(
          get(blobPath)
              .atPriority(1)
              .withHeader("Authorization", equalTo("Bearer second"))
              .willReturn(aResponse().withStatus(200).withBody(blob)));

      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    assertEquals(2, tokenRequests().size());
    assertEquals(4, blobGets()); // anonymous, first, first (403), second
  }

  @Test
  void pullBlob_tokenAlwaysRefused_givesUpAfterOneRefresh() {
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse().withStatus(401).withHeader("WWW-Authenticate", bearerChallenge(PULL))));
    server.stubFor(
        tokenRequest(PULL).willReturn(aResponse().withStatus(200).withBody("{\"token\":\"t\"}")));

    try (RegistryClient client = client(CredentialSource.NONE)) {
      Throwable e = failure(client.pullBlob(REPO, digest));

      assertInstanceOf(RegistryUnauthorizedException.class, e);
      assertTrue(e.getMessage().contains("HTTP 401"), e.getMessage());
      assertTrue(e.getMessage().contains("anonymous access was refused"), e.getMessage());
    }
    assertEquals(2, tokenRequests().size());
    assertEquals(3, blobGets());
  }

  @Test
  void pullBlob_credentialsChangedBeforeRefresh_areReadAgain() throws Exception {
    server.stubFor(
        get(blobPath)
            .atPriority(9)
            .willReturn(
                aResponse().withStatus(401).withHeader("WWW-Authenticate", "Basic realm=\"r\"")));
    server.stubFor(
        get(blobPath)
            .atPriority(1)
            .withHeader("Authorization", equalTo(basic(USER, "new-password")))
            .willReturn(aResponse().withStatus(200).withBody(blob)));
    AtomicInteger lookups = new AtomicInteger();
    CredentialSource rotating =
        new CredentialSource() {
          @Override
          public Credentials find(String registry) {
            return Credentials.basic(
                USER, lookups.incrementAndGet() == 1 ? "old-password" : "new-password");
          }

          @Override
          public String describe() {
            return "a rotating source";
          }
        };

    try (RegistryClient client = client(rotating)) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }

    assertEquals(2, lookups.get());
    assertEquals(3, blobGets()); // anonymous, old password, new password
  }

  @Test
  void failedAuthentication_neitherMessageNorLogContainsPasswordOrToken() throws Exception {
    String token = "tok-" + "9f8e7d6c5b4a";
    server.stubFor(
        get(blobPath)
            .willReturn(
                aResponse().withStatus(401).withHeader("WWW-Authenticate", bearerChallenge(PULL))));
    server.stubFor(
        tokenRequest(PULL)
            .willReturn(aResponse().withStatus(200).withBody("{\"token\":\"" + token + "\"}")));
    String manifestPath = "/v2/" + REPO + "/manifests/v1";
    server.stubFor(
        get(manifestPath)
            .willReturn(
                aResponse().withStatus(401).withHeader("WWW-Authenticate", bearerChallenge(PULL))));
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    Logger ours = (Logger) LoggerFactory.getLogger("dev.puzzlefs");
    Level before = ours.getLevel();
    ListAppender<ILoggingEvent> captured = new ListAppender<>();
    captured.start();
    root.addAppender(captured);
    ours.setLevel(Level.DEBUG);
    String blobError;
    String tokenError;
    try (RegistryClient client = client(password(PASSWORD))) {
      blobError = failure(client.pullBlob(REPO, digest)).getMessage();
      // Now the token server refuses the password.
      server.stubFor(
          tokenRequest(PULL)
              .atPriority(1)
              .willReturn(
                  aResponse()
                      .withStatus(401)
                      .withBody("{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad\"}]}")));
      tokenError = failure(client.pullManifest(REPO, "v1")).getMessage();
    } finally {
      root.detachAppender(captured);
      ours.setLevel(before);
    }

    StringBuilder log = new StringBuilder();
    for (ILoggingEvent event : captured.list) {
      log.append(event.getFormattedMessage()).append('\n');
      if (event.getThrowableProxy() != null) {
        log.append(ThrowableProxyUtil.asString(event.getThrowableProxy())).append('\n');
      }
    }
    assertTrue(log.toString().contains("getting a token"), "debug lines were captured:\n" + log);
    assertTrue(blobError.contains("were refused"), blobError);
    assertTrue(tokenError.contains("HTTP 401"), tokenError);
    assertTrue(tokenError.contains("the token server refused the credentials"), tokenError);
    String encoded = basic(USER, PASSWORD).substring("Basic ".length());
    for (String text : List.of(blobError, tokenError, log.toString())) {
      assertFalse(text.contains(PASSWORD), text);
      assertFalse(text.contains(encoded), text);
      assertFalse(text.contains(token), text);
    }
  }

  @Test
  void pullBlob_redirectToStorage_followsWithoutAuthorization() throws Exception {
    WireMockServer storage =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").dynamicPort());
    storage.start();
    try {
      String signed = "/bucket/blob?X-Signature=abc";
      // Storage refuses any request that carries an Authorization header, as S3 does.
      storage.stubFor(
          get(signed)
              .atPriority(1)
              .withHeader(
                  "Authorization", com.github.tomakehurst.wiremock.client.WireMock.matching(".*"))
              .willReturn(aResponse().withStatus(400).withBody("only one auth mechanism allowed")));
      storage.stubFor(
          get(signed).atPriority(9).willReturn(aResponse().withStatus(200).withBody(blob)));
      server.stubFor(
          get(blobPath)
              .atPriority(9)
              .willReturn(
                  aResponse().withStatus(401).withHeader("WWW-Authenticate", "Basic realm=\"r\"")));
      server.stubFor(
          get(blobPath)
              .atPriority(1)
              .withHeader("Authorization", equalTo(basic(USER, PASSWORD)))
              .willReturn(
                  aResponse()
                      .withStatus(307)
                      .withHeader("Location", "http://127.0.0.1:" + storage.port() + signed)));

      try (RegistryClient client = client(password(PASSWORD))) {
        assertArrayEquals(blob, await(client.pullBlob(REPO, digest, blob.length)));
      }

      List<LoggedRequest> atStorage =
          storage.findAll(getRequestedFor(urlPathEqualTo("/bucket/blob")));
      assertEquals(1, atStorage.size());
      assertFalse(atStorage.get(0).containsHeader("Authorization"));
    } finally {
      storage.stop();
    }
  }

  @Test
  void pullBlob_redirectWithinRegistry_keepsAuthorization() throws Exception {
    String moved = "/v2/" + REPO + "/moved/" + digest;
    server.stubFor(
        get(blobPath)
            .atPriority(9)
            .willReturn(
                aResponse().withStatus(401).withHeader("WWW-Authenticate", "Basic realm=\"r\"")));
    server.stubFor(
        get(blobPath)
            .atPriority(1)
            .withHeader("Authorization", equalTo(basic(USER, PASSWORD)))
            .willReturn(aResponse().withStatus(302).withHeader("Location", moved)));
    server.stubFor(
        get(moved)
            .withHeader("Authorization", equalTo(basic(USER, PASSWORD)))
            .willReturn(aResponse().withStatus(200).withBody(blob)));

    try (RegistryClient client = client(password(PASSWORD))) {
      assertArrayEquals(blob, await(client.pullBlob(REPO, digest)));
    }
  }

  @Test
  void pullBlob_bearerChallengeWithPlainHttpRealmOnHttpsRegistry_refusesToSendCredentials() {
    // Unit-level: the authenticator is asked directly, nothing is sent anywhere.
    RegistryAuthenticator authenticator =
        new RegistryAuthenticator(
            "127.0.0.1:1",
            false,
            password(PASSWORD),
            vertx,
            fetcher -> {
              throw new AssertionError("no token may be fetched");
            },
            System::nanoTime);

    Throwable e = failure(authenticator.authenticate(bearerChallenge(PULL), PULL, null));

    assertInstanceOf(RegistryUnauthorizedException.class, e);
    assertTrue(e.getMessage().contains("plain-HTTP token server"), e.getMessage());
  }

  @Test
  void parse_challengeWithQuotedCommas_readsEveryParameter() {
    AuthChallenge c =
        AuthChallenge.parse(
            "Bearer realm=\"https://auth.example/token\",service=\"reg\","
                + "scope=\"repository:a/b:pull,push\",error=\"insufficient_scope\"");

    assertTrue(c.isBearer());
    assertEquals("https://auth.example/token", c.parameter("realm"));
    assertEquals("reg", c.parameter("service"));
    assertEquals("repository:a/b:pull,push", c.parameter("scope"));
    assertEquals("insufficient_scope", c.parameter("error"));
    assertTrue(AuthChallenge.parse("Basic realm=\"Registry Realm\"").isBasic());
    assertEquals(null, AuthChallenge.parse(null));
  }
}
