package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.puzzlefs.oci.ImageIndex;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.OciException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class MainTest {
  @Test
  void describe_damagedJson_saysWhatIsWrongOnceWithoutJacksonsLocation() {
    byte[] cut =
        "{\"schemaVersion\": 2, \"manifests\": [ {\"x\": ".getBytes(StandardCharsets.UTF_8);
    OciException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            OciException.class, () -> Json.read(cut, ImageIndex.class, "oci/index.json"));

    String said = Main.describe(e);

    assertEquals(e.getMessage(), said);
    assertEquals(1, said.split("Unexpected end-of-input", -1).length - 1, "said once: " + said);
  }

  @Test
  void describe_causeThatAddsSomething_isAppended() {
    Exception e = new java.io.IOException("cannot open x", new RuntimeException("disk on fire"));

    assertEquals("cannot open x: disk on fire", Main.describe(e));
  }
}
