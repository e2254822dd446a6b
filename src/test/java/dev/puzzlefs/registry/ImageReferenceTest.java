package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ImageReferenceTest {
  private static final String HEX =
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  @Test
  void parse_hostPortRepoTag_splitsEveryPart() {
    ImageReference ref = ImageReference.parse("docker://127.0.0.1:5000/puzzle/debian:bookworm");

    assertEquals("127.0.0.1", ref.host());
    assertEquals(5000, ref.port());
    assertEquals("127.0.0.1:5000", ref.registry());
    assertEquals("puzzle/debian", ref.repository());
    assertEquals(Optional.of("bookworm"), ref.tag());
    assertEquals(Optional.empty(), ref.digest());
    assertEquals("bookworm", ref.reference());
  }

  @Test
  void parse_noTag_defaultsToLatest() {
    ImageReference ref = ImageReference.parse("docker://registry.example.com/app");

    assertEquals("registry.example.com", ref.registry());
    assertEquals(-1, ref.port());
    assertEquals(Optional.of("latest"), ref.tag());
    assertEquals("docker://registry.example.com/app:latest", ref.toString());
  }

  @Test
  void parse_digest_referencesTheDigest() {
    ImageReference ref = ImageReference.parse("docker://localhost:5000/a/b/c@sha256:" + HEX);

    assertEquals("a/b/c", ref.repository());
    assertEquals(Optional.empty(), ref.tag());
    assertEquals(Optional.of(Digest.fromHex(HEX)), ref.digest());
    assertEquals("sha256:" + HEX, ref.reference());
  }

  @Test
  void parse_tagAndDigest_digestWins() {
    ImageReference ref = ImageReference.parse("docker://localhost/app:v1@sha256:" + HEX);

    assertEquals(Optional.of("v1"), ref.tag());
    assertEquals("sha256:" + HEX, ref.reference());
  }

  @Test
  void parse_upperCaseHost_isLowercased() {
    assertEquals(
        "registry.local:443", ImageReference.parse("docker://Registry.LOCAL:443/x:y").registry());
  }

  @Test
  void parse_bracketedIpv6_keepsPort() {
    ImageReference ref = ImageReference.parse("docker://[::1]:5000/app:1");

    assertEquals("[::1]", ref.host());
    assertEquals(5000, ref.port());
  }

  @ParameterizedTest
  @CsvSource({
    "docker://127.0.0.1:5000/repo:tag",
    "docker://example.com/a/b-c/d_e.f:1.0-rc_1",
    "docker://h:1/r@sha256:" + HEX,
  })
  void toString_parsedReference_roundTrips(String text) {
    ImageReference ref = ImageReference.parse(text);

    assertEquals(text, ref.toString());
    assertEquals(ref, ImageReference.parse(ref.toString()));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "127.0.0.1:5000/repo:tag | must start with docker://",
        "oci:/tmp/layout:tag | must start with docker://",
        "docker:// | names no registry host",
        "docker:///repo:tag | names no registry host",
        "docker://localhost:5000 | names no repository",
        "docker://localhost:5000/ | names no repository",
        "docker://localhost:99999/repo | not a port number",
        "docker://localhost:port/repo | not a port number",
        "docker://bad_host/repo | not a valid registry host",
        "docker://localhost/Repo:tag | not a valid repository name",
        "docker://localhost/repo//x | not a valid repository name",
        "docker://localhost/repo: | not a valid tag",
        "docker://localhost/repo:-bad | not a valid tag",
        "docker://localhost/repo@sha256:abc | not a digest",
        "docker://localhost/repo@md5:" + HEX + " | not a digest",
      })
  void parse_badReference_failsNamingInputAndProblem(String input, String problem) {
    InvalidImageReferenceException e =
        assertThrows(InvalidImageReferenceException.class, () -> ImageReference.parse(input));

    assertTrue(e.getMessage().contains("'" + input + "'"), e.getMessage());
    assertTrue(e.getMessage().contains(problem), e.getMessage());
  }

  @Test
  void parse_null_fails() {
    assertThrows(InvalidImageReferenceException.class, () -> ImageReference.parse(null));
  }
}
