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
