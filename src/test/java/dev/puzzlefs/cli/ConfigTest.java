package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigTest {
  @TempDir Path tmp;

  @Test
  void documentedDefaults_equalTheBuiltInOnes() throws Exception {
    ObjectMapper json = new ObjectMapper();
    assertEquals(
        json.readTree(json.writeValueAsBytes(new Config())),
        json.readTree(Files.readAllBytes(Path.of("conf/puzzlefs.json"))));
  }

  @Test
  void read_partialFile_keepsDefaultsForTheRest() throws Exception {
    Path f = Files.writeString(tmp.resolve("c.json"), "{\"registry\":{\"retries\":7}}");
    Config c = Config.read(f);
    assertEquals(7, c.registry.retries);
    assertEquals(5, c.registry.connectTimeoutSeconds);
    assertEquals(32L << 20, c.cache.memoryBytes);
  }

  @Test
  void read_unknownKey_failsNamingFileAndKey() throws Exception {
    Path f = Files.writeString(tmp.resolve("c.json"), "{\"cache\":{\"sizee\":1}}");
    IOException e = assertThrows(IOException.class, () -> Config.read(f));
    assertTrue(
        e.getMessage().contains(f.toString()) && e.getMessage().contains("sizee"), e.getMessage());
  }

  private String invalid(String json) throws Exception {
    Path f = tmp.resolve("c.json");
    Files.writeString(f, json);
    IOException e = assertThrows(IOException.class, () -> Config.read(f));
    assertTrue(e.getMessage().startsWith("configuration " + f + " is "), e.getMessage());
    assertTrue(!e.getMessage().contains("dev.puzzlefs"), "no class names: " + e.getMessage());
    return e.getMessage().substring(("configuration " + f + " is ").length());
  }

  @Test
  void read_badValues_nameTheKeyAndTheRange() throws Exception {
    assertEquals(
        "invalid: cache.memoryBytes must be between 0 and 68719476736, got 9223372036854775807",
        invalid("{\"cache\": {\"memoryBytes\": 9223372036854775807}}"));
    assertEquals(
        "invalid: registry.retries must be between 0 and 100, got -3;"
            + " mount.readTimeoutSeconds must be between 1 and 86400, got 0",
        invalid("{\"registry\": {\"retries\": -3}, \"mount\": {\"readTimeoutSeconds\": 0}}"));
    assertEquals(
        "invalid: cache.memoryBytes must be a whole number (line 1, column 27)",
        invalid("{\"cache\": {\"memoryBytes\": \"lots\"}}"));
    assertEquals("empty; write {} for the defaults", invalid("  \n"));
    assertTrue(invalid("[]").startsWith("invalid: the file must be an object"));
    assertTrue(invalid("{\"cache\": {").startsWith("invalid: not valid JSON"));
    assertTrue(
        invalid("{\"registry\": {\"retries\": 1e20}}").contains("out of range"),
        "a number too large for its key");
  }

  @Test
  void load_missingExplicitFile_failsNamingIt() {
    IOException e = assertThrows(IOException.class, () -> Config.load(tmp.resolve("absent.json")));
    assertTrue(e.getMessage().contains("absent.json"), e.getMessage());
  }

  @Test
  void cacheDirectory_configuredWins() throws Exception {
    Config c =
        Config.read(
            Files.writeString(tmp.resolve("c.json"), "{\"cache\":{\"directory\":\"/x/y\"}}"));
    assertEquals(Path.of("/x/y"), c.cacheDirectory());
  }
}
