package dev.puzzlefs.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.testing.Processes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Checks {@code docker-compose.yml} with {@code docker-compose config} (which fails on a file
 * Compose would refuse) and reads the normalised result: a registry, a mounter with what FUSE needs
 * running {@code bench/run} against the registry by name, and the JMH bench after it. Needs the
 * {@code docker-compose} command ({@code .ci/setup-debian} installs it), not a Docker engine.
 */
class ComposeFileTest {
  private static JsonNode services;

  @BeforeAll
  static void config() throws Exception {
    Path file = Path.of("docker-compose.yml").toAbsolutePath();
    assertTrue(Files.exists(file), "no " + file);
    Processes.Result config =
        Processes.run(60, "docker-compose", "-f", file.toString(), "config", "--no-interpolate");
    assertEquals(0, config.exit(), "docker-compose config failed: " + config.stderr());
    // docker-compose prints YAML; its own Python YAML module turns it into JSON for Jackson.
    Processes.Result json =
        Processes.exec(
            60,
            config.stdout(),
            "python3",
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)");
    assertEquals(0, json.exit(), json.stderr());
    services = new ObjectMapper().readTree(json.stdout()).get("services");
    assertNotNull(services, "no services in " + config.out());
  }

  @Test
  void services_areRegistryMounterAndBench() {
    List<String> names = new ArrayList<>();
    services.fieldNames().forEachRemaining(names::add);
    assertEquals(List.of("bench", "mounter", "registry"), names.stream().sorted().toList());
    assertTrue(services.at("/registry/image").asText().startsWith("registry:"));
  }

  @Test
  void mounter_hasWhatFuseNeeds() {
    JsonNode mounter = services.get("mounter");
    assertTrue(texts(mounter.get("devices")).stream().anyMatch(d -> d.startsWith("/dev/fuse")));
    assertTrue(texts(mounter.get("cap_add")).contains("SYS_ADMIN"));
    assertTrue(texts(mounter.get("security_opt")).contains("apparmor:unconfined"));
  }

  @Test
  void mounter_runsTheHarnessAgainstTheRegistryService() {
    JsonNode mounter = services.get("mounter");
    assertEquals("[\"bench/run\"]", mounter.get("command").toString());
    assertEquals("registry:5000", mounter.at("/environment/PUZZLEFS_BENCH_REGISTRY").asText());
    assertTrue(mounter.at("/depends_on").has("registry"));
  }

  @Test
  void bench_runsJmhAfterTheMounterFinished() {
    JsonNode bench = services.get("bench");
    assertTrue(texts(bench.get("command")).contains("-Pjmh"));
    assertEquals(
        "service_completed_successfully", bench.at("/depends_on/mounter/condition").asText());
  }

  private static List<String> texts(JsonNode array) {
    assertNotNull(array);
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }
}
