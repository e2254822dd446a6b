package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading Docker's config.json and running credential helpers (small shell scripts). */
class DockerConfigCredentialsTest {
  private static final String REGISTRY = "127.0.0.1:5000";

  @TempDir Path tmp;

  private DockerConfigCredentials source(String json) throws IOException {
    Path file = tmp.resolve("config.json");
    Files.writeString(file, json, StandardCharsets.UTF_8);
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    return new DockerConfigCredentials(file, Map.of("PATH", bin.toString()));
  }

  /** Writes {@code docker-credential-NAME} running {@code script}, with the host on stdin. */
  private void helper(String name, String script) throws IOException {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    Path program = bin.resolve("docker-credential-" + name);
    Files.writeString(program, "#!/bin/sh\n" + script + "\n", StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(program, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  private static String b64(String text) {
    return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void find_base64AuthUnderUrlKey_givesUserAndPassword() throws Exception {
    DockerConfigCredentials source =
        source(
            "{\"auths\":{\"https://127.0.0.1:5000/v2/\":{\"auth\":\""
                + b64("alice:pa:ss")
                + "\"},\"other:1\":{\"auth\":\""
                + b64("bob:x")
                + "\"}}}");

    Credentials c = source.find(REGISTRY);

    assertEquals(Credentials.basic("alice", "pa:ss"), c);
    assertEquals("password for user 'alice'", c.toString());
  }

  @Test
  void find_usernameAndPasswordFields_areUsed() throws Exception {
    DockerConfigCredentials source =
        source("{\"auths\":{\"127.0.0.1:5000\":{\"username\":\"carol\",\"password\":\"pw\"}}}");

    assertEquals(Credentials.basic("carol", "pw"), source.find(REGISTRY));
  }

  @Test
  void find_identityToken_winsOverPassword() throws Exception {
    DockerConfigCredentials source =
        source(
            "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\""
                + b64("dave:pw")
                + "\",\"identitytoken\":\"refresh-1\"}}}");

    Credentials c = source.find(REGISTRY);

    assertTrue(c.isIdentityToken());
    assertEquals(Credentials.identityToken("dave", "refresh-1"), c);
  }

  @Test
  void find_noEntryOrNoFile_givesNull() throws Exception {
    assertNull(
        source("{\"auths\":{\"elsewhere:1\":{\"auth\":\"" + b64("a:b") + "\"}}}").find(REGISTRY));
    assertNull(new DockerConfigCredentials(tmp.resolve("absent.json"), Map.of()).find(REGISTRY));
  }

  @Test
  void find_credHelperForTheRegistry_isRunWithTheHostOnStdin() throws Exception {
    helper(
        "test",
        "[ \"$1\" = get ] || exit 3\n"
            + "read host\n"
            + "[ \"$host\" = 127.0.0.1:5000 ] || { echo 'credentials not found'; exit 1; }\n"
            + "echo '{\"ServerURL\":\"'$host'\",\"Username\":\"erin\","
            + "\"Secret\":\"from-helper\"}'");
    DockerConfigCredentials source =
        source(
            "{\"credHelpers\":{\"127.0.0.1:5000\":\"test\"},"
                + "\"auths\":{\"127.0.0.1:5000\":{\"auth\":\""
                + b64("stale:stale")
                + "\"}}}");

    assertEquals(Credentials.basic("erin", "from-helper"), source.find(REGISTRY));
  }

  @Test
  void find_credsStoreWithoutTheRegistry_fallsBackToAuths() throws Exception {
    helper("store", "echo 'credentials not found in native keychain'; exit 1");
    DockerConfigCredentials source =
        source(
            "{\"credsStore\":\"store\",\"auths\":{\"127.0.0.1:5000\":{\"auth\":\""
                + b64("frank:pw")
                + "\"}}}");

    assertEquals(Credentials.basic("frank", "pw"), source.find(REGISTRY));
  }

  @Test
  void find_helperTokenUser_givesIdentityToken() throws Exception {
    helper("tok", "cat >/dev/null; echo '{\"Username\":\"<token>\",\"Secret\":\"idt\"}'");
    DockerConfigCredentials source = source("{\"credsStore\":\"tok\"}");

    assertEquals(Credentials.identityToken("", "idt"), source.find(REGISTRY));
  }

  @Test
  void find_helperFailingOrMissing_failsWithoutItsOutput() throws Exception {
    helper("broken", "echo 'leaked-secret-value' >&2; echo 'leaked-secret-value'; exit 2");

    IOException failed =
        assertThrows(IOException.class, () -> source("{\"credsStore\":\"broken\"}").find(REGISTRY));
    IOException missing =
        assertThrows(IOException.class, () -> source("{\"credsStore\":\"nope\"}").find(REGISTRY));

    assertTrue(
        failed.getMessage().contains("docker-credential-broken get failed"), failed.getMessage());
    assertFalse(failed.getMessage().contains("leaked"), failed.getMessage());
    assertTrue(
        missing.getMessage().contains("docker-credential-nope is not on the PATH"),
        missing.getMessage());
  }

  @Test
  void find_fileChangedBetweenLookups_isReadAgain() throws Exception {
    DockerConfigCredentials source =
        source("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"" + b64("gina:one") + "\"}}}");
    assertEquals(Credentials.basic("gina", "one"), source.find(REGISTRY));

    Files.writeString(
        source.file(), "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"" + b64("gina:two") + "\"}}}");

    assertEquals(Credentials.basic("gina", "two"), source.find(REGISTRY));
  }

  @Test
  void find_invalidJson_failsNamingFileAndPlaceButNotItsText() throws Exception {
    DockerConfigCredentials source =
        source("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"very-secret-value\" oops}}}");

    IOException e = assertThrows(IOException.class, () -> source.find(REGISTRY));

    assertTrue(e.getMessage().contains(source.file().toString()), e.getMessage());
    assertTrue(e.getMessage().contains("line 1"), e.getMessage());
    assertFalse(e.getMessage().contains("very-secret-value"), e.getMessage());
  }

  @Test
  void defaultFile_dockerConfigVariableElseHome() {
    Path home = Path.of("/home/u");

    assertEquals(
        Path.of("/etc/dc/config.json"),
        DockerConfigCredentials.defaultFile(Map.of("DOCKER_CONFIG", "/etc/dc"), home));
    assertEquals(
        Path.of("/home/u/.docker/config.json"),
        DockerConfigCredentials.defaultFile(Map.of(), home));
  }

  @Test
  void matches_dockerHubNamesShareTheLegacyKey() {
    assertTrue(
        DockerConfigCredentials.matches("https://index.docker.io/v1/", "registry-1.docker.io"));
    assertTrue(DockerConfigCredentials.matches("http://127.0.0.1:5000", REGISTRY));
    assertFalse(DockerConfigCredentials.matches("127.0.0.1:5001", REGISTRY));
    assertFalse(DockerConfigCredentials.matches("127.0.0.1", REGISTRY));
  }
}
