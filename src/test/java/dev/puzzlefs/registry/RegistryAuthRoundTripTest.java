package dev.puzzlefs.registry;

import static dev.puzzlefs.testing.Futures.await;
import static dev.puzzlefs.testing.Futures.failure;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.testing.TestImages;
import dev.puzzlefs.testing.TestRegistry;
import dev.puzzlefs.testing.TokenServer;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Authenticated pushes and pulls against real distribution registry processes: one with htpasswd
 * basic authentication, one trusting a {@link TokenServer} for bearer tokens. Credentials come from
 * a Docker {@code config.json}.
 */
class RegistryAuthRoundTripTest {
  private static final String USER = "alice";
  private static final String PASSWORD = "Pw-for-alice-123";

  @TempDir static Path shared;
  @TempDir Path tmp;

  private static Vertx vertx;
  private static TestRegistry basicRegistry;
  private static TestRegistry tokenRegistry;
  private static TokenServer tokenServer;

  @BeforeAll
  static void startRegistries() throws Exception {
    assertTrue(TestRegistry.available(), TestRegistry.BINARY + " is not installed");
    vertx = Vertx.vertx();
    basicRegistry = TestRegistry.launch(TestRegistry.htpasswdAuth(shared, USER, PASSWORD));
    tokenServer = TokenServer.start(shared, USER, PASSWORD);
    tokenRegistry = TestRegistry.launch(tokenServer.registryAuth());
  }

  @AfterAll
  static void stopRegistries() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {basicRegistry, tokenRegistry, tokenServer}) {
      if (c != null) {
        c.close();
      }
    }
    if (vertx != null) {
      await(vertx.close());
    }
  }

  /** A Docker config.json in {@code tmp} with {@code password} for {@code registry}. */
  private DockerConfigCredentials dockerConfig(TestRegistry registry, String password)
      throws Exception {
    Path file = tmp.resolve("docker").resolve("config.json");
    Files.createDirectories(file.getParent());
    String auth =
        Base64.getEncoder()
            .encodeToString((USER + ":" + password).getBytes(StandardCharsets.UTF_8));
    Files.writeString(
        file, "{\"auths\":{\"" + registry.hostPort() + "\":{\"auth\":\"" + auth + "\"}}}");
    return new DockerConfigCredentials(file, Map.of("PATH", ""));
  }

  private static RegistryClient client(TestRegistry registry, CredentialSource credentials) {
    return new RegistryClient(
        vertx,
        registry.hostPort(),
        new RegistryClientOptions()
            .plainHttp(true)
            .requestTimeout(Duration.ofSeconds(20))
            .initialBackoff(Duration.ofMillis(50))
            .credentials(credentials));
  }

  private static ImageReference ref(TestRegistry registry, String repoAndTag) {
    return ImageReference.parse("docker://" + registry.hostPort() + "/" + repoAndTag);
  }

  /** Pushes a small image with {@code client} and pulls it back, checking every byte. */
  private void pushAndPull(RegistryClient client, TestRegistry registry, String repo, int seed)
      throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v1", 4, 10_000, seed);
    ImageReference target = ref(registry, repo + ":v1");

    PushSummary pushed = await(new ImagePusher(client).push(image.layout(), "v1", target));
    assertEquals(image.blobs().size(), pushed.uploaded());

    ImagePuller puller = new ImagePuller(client);
    PulledImage pulled = await(puller.fetchManifest(target));
    assertEquals(image.manifestDigest(), pulled.digest());
    for (Map.Entry<Digest, byte[]> blob : image.blobs().entrySet()) {
      assertArrayEquals(blob.getValue(), await(puller.fetchBlob(repo, blob.getKey())));
    }
  }

  @Test
  void htpasswd_pushAndPullWithDockerConfigCredentials_succeed() throws Exception {
    try (RegistryClient client = client(basicRegistry, dockerConfig(basicRegistry, PASSWORD))) {
      pushAndPull(client, basicRegistry, "basic/ok", 1);
    }
  }

  @Test
  void htpasswd_noCredentials_failsUnauthorizedSayingNoneWereFound() throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v1", 1, 100, 2);
    DockerConfigCredentials absent =
        new DockerConfigCredentials(tmp.resolve("none.json"), Map.of());
    try (RegistryClient client = client(basicRegistry, absent)) {
      Throwable push =
          failure(
              new ImagePusher(client)
                  .push(image.layout(), "v1", ref(basicRegistry, "basic/denied:v1")));
      Throwable pull = failure(client.pullManifest("basic/ok", "v1"));

      for (Throwable e : new Throwable[] {push, pull}) {
        assertInstanceOf(RegistryUnauthorizedException.class, e);
        assertTrue(e.getMessage().contains("HTTP 401"), e.getMessage());
        assertTrue(e.getMessage().contains("Basic realm=\"puzzlefs-test\""), e.getMessage());
        assertTrue(
            e.getMessage().contains("no credentials for " + basicRegistry.hostPort()),
            e.getMessage());
      }
    }
  }

  @Test
  void htpasswd_wrongPassword_failsNamingTheConfigButNotThePassword() throws Exception {
    String wrong = "Not-the-password-987";
    try (RegistryClient client = client(basicRegistry, dockerConfig(basicRegistry, wrong))) {
      Throwable e = failure(client.hasBlob("basic/ok", Digest.sha256(new byte[] {1})));

      assertInstanceOf(RegistryUnauthorizedException.class, e);
      assertTrue(e.getMessage().contains("were refused"), e.getMessage());
      assertTrue(e.getMessage().contains("config.json"), e.getMessage());
      assertFalse(e.getMessage().contains(wrong), e.getMessage());
    }
  }

  @Test
  void token_pushAndPullWithDockerConfigCredentials_succeedWithScopedTokens() throws Exception {
    int before = tokenServer.requests().size();
    try (RegistryClient client = client(tokenRegistry, dockerConfig(tokenRegistry, PASSWORD))) {
      pushAndPull(client, tokenRegistry, "token/ok", 3);
    }

    var asked = tokenServer.requests().subList(before, tokenServer.requests().size());
    assertTrue(
        asked.stream().anyMatch(q -> q.contains("scope=repository%3Atoken%2Fok%3Apull%2Cpush")),
        asked.toString());
    assertTrue(
        asked.stream()
            .anyMatch(
                q ->
                    q.contains("scope=repository%3Atoken%2Fok%3Apull&")
                        || q.endsWith("scope=repository%3Atoken%2Fok%3Apull")),
        asked.toString());
    // Cached per scope: a handful of token requests for dozens of registry requests.
    assertTrue(asked.size() <= 4, asked.toString());
  }

  @Test
  void token_noCredentials_tokenServerRefusesAndPullFailsUnauthorized() throws Exception {
    DockerConfigCredentials absent =
        new DockerConfigCredentials(tmp.resolve("none.json"), Map.of());
    try (RegistryClient client = client(tokenRegistry, absent)) {
      Throwable e = failure(client.pullManifest("token/ok", "v1"));

      assertInstanceOf(RegistryUnauthorizedException.class, e);
      assertTrue(
          e.getMessage().contains("get a token for repository:token/ok:pull"), e.getMessage());
      assertTrue(e.getMessage().contains("HTTP 401"), e.getMessage());
      assertTrue(
          e.getMessage().contains("no credentials for " + tokenRegistry.hostPort()),
          e.getMessage());
    }
  }

  @Test
  void token_expiredTokenRefusedByRegistry_isRefreshedOnceAndPullSucceeds() throws Exception {
    try (RegistryClient client = client(tokenRegistry, dockerConfig(tokenRegistry, PASSWORD))) {
      pushAndPull(client, tokenRegistry, "token/expiry", 4);
    }
    tokenServer.issueExpired(1);
    int before = tokenServer.requests().size();

    try (RegistryClient client = client(tokenRegistry, dockerConfig(tokenRegistry, PASSWORD))) {
      PulledImage pulled =
          await(new ImagePuller(client).fetchManifest(ref(tokenRegistry, "token/expiry:v1")));
      assertEquals(pulled.digest(), Digest.sha256(pulled.bytes()));
    }

    assertEquals(2, tokenServer.requests().size() - before, tokenRegistry.describe());
  }

  @Test
  void token_registryRefusesEveryToken_givesUpAfterOneRefresh() throws Exception {
    tokenServer.issueExpired(100);
    int before = tokenServer.requests().size();
    try (RegistryClient client = client(tokenRegistry, dockerConfig(tokenRegistry, PASSWORD))) {
      Throwable e = failure(client.pullManifest("token/ok", "v1"));

      assertInstanceOf(RegistryUnauthorizedException.class, e);
      assertTrue(e.getMessage().contains("HTTP 401"), e.getMessage());
      assertTrue(e.getMessage().contains("were refused"), e.getMessage());
      for (String token : tokenServer.issued()) {
        assertFalse(e.getMessage().contains(token), e.getMessage());
      }
    } finally {
      tokenServer.issueExpired(0);
    }

    assertEquals(2, tokenServer.requests().size() - before);
  }
}
