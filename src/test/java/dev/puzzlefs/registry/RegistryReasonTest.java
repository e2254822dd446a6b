package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.puzzlefs.format.Digest;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Why an attempt failed, as the retry warnings say it: what happened, not a Java class. */
class RegistryReasonTest {
  @Test
  void reason_ofOurOwnFailures_isTheirMessageWithoutTheirClass() {
    Digest expected = Digest.sha256("right".getBytes(StandardCharsets.UTF_8));
    Digest actual = Digest.sha256("wrong".getBytes(StandardCharsets.UTF_8));
    String mismatch =
        RegistryClient.reason(
            new BlobDigestMismatchException("could not fetch blob", expected, actual));
    assertEquals("the bytes received hash to " + actual + ", not " + expected, mismatch);
    String registry = RegistryClient.reason(new RegistryException("the registry said no"));
    assertEquals("the registry said no", registry);
    assertFalse(RegistryClient.reason(new java.io.IOException("disk full")).isEmpty());
  }
}
