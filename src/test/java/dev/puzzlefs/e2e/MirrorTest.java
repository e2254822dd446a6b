package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Registry mirrors, with two real registries: a mirror holding the image serves it even with the
 * origin stopped; a mirror that lacks the image or is down hands over to the origin.
 */
class MirrorTest {
  @TempDir Path tmp;
  private TestRegistry origin;
  private TestRegistry mirror;
  private Path src;
  private Path oci;
  private final List<Path> mounts = new ArrayList<>();

  @BeforeEach
  void registries() throws Exception {
    origin = TestRegistry.launch();
    mirror = TestRegistry.launch();
    src = Files.createDirectories(tmp.resolve("src"));
    byte[] data = new byte[600_000];
    new Random(31).nextBytes(data);
    Files.write(src.resolve("data"), data);
    Files.writeString(src.resolve("small"), "from whichever registry has it\n");
    oci = tmp.resolve("oci");
    Cli.ok("build", src.toString(), oci.toString(), "v1");
    Cli.ok("push", "--plain-http", oci.toString(), "v1", ref(origin));
  }

  @AfterEach
  void stop() throws Exception {
    for (Path m : mounts) {
      Cli.unmountQuietly(m);
    }
    origin.close();
    mirror.close();
  }

  private static String ref(TestRegistry r) {
    return "docker://" + r.hostPort() + "/mirrored/image:v1";
  }

  private Path mountViaMirror(String name) throws Exception {
    Path m = Files.createDirectories(tmp.resolve(name));
    Cli.ok(
        "mount",
        "--plain-http",
        "--retries",
        "1",
        "--mirror",
        mirror.hostPort(),
        "--cache-dir",
        tmp.resolve("cache-" + name).toString(),
        ref(origin),
        m.toString());
    mounts.add(m);
    return m;
  }

  private void assertTreeReads(Path m) throws Exception {
    assertArrayEquals(
        Files.readAllBytes(src.resolve("data")), Files.readAllBytes(m.resolve("data")));
    assertEquals(Files.readString(src.resolve("small")), Files.readString(m.resolve("small")));
  }

  private static JsonNode stats(Path mnt) throws Exception {
    Processes.Result r =
        Processes.run(30, "getfattr", "--only-values", "-n", "user.puzzlefs.stats", mnt.toString());
    return new ObjectMapper().readTree(r.stdout());
  }

  @Test
  void mirrorWithTheImage_servesItWithTheOriginStopped() throws Exception {
    Cli.ok("push", "--plain-http", oci.toString(), "v1", ref(mirror));
    origin.stop();
    Path m = mountViaMirror("via-mirror");
    assertTreeReads(m);
    assertTrue(stats(m).get("fetchedBlobs").asLong() > 0);
  }

  @Test
  void mirrorWithoutTheImage_handsOverToTheOrigin() throws Exception {
    Path m = mountViaMirror("empty-mirror");
    assertTreeReads(m);
  }

  @Test
  void mirrorDown_handsOverToTheOrigin() throws Exception {
    mirror.stop();
    long start = System.nanoTime();
    Path m = mountViaMirror("mirror-down");
    long millis = (System.nanoTime() - start) / 1_000_000;
    assertTreeReads(m);
    // A mirror refusing connections is passed over at once, not waited for as an origin would be
    // (its 5 s of patience for a registry restarting).
    assertTrue(millis < 4500, "mounted through a down mirror in " + millis + " ms");
  }

  @Test
  void mirrorMissingOneChunk_thatChunkComesFromTheOrigin() throws Exception {
    Cli.ok("push", "--plain-http", oci.toString(), "v1", ref(mirror));
    // Delete one chunk blob's data from the mirror's storage: the mirror answers 404 for it.
    Path blobs = mirror.storage().resolve("docker/registry/v2/blobs/sha256");
    Path victim;
    try (var dirs = Files.walk(blobs)) {
      victim =
          dirs.filter(p -> p.getFileName().toString().equals("data"))
              .filter(
                  p -> {
                    try {
                      return Files.size(p) > 10_000;
                    } catch (java.io.IOException e) {
                      return false;
                    }
                  })
              .findFirst()
              .orElseThrow();
    }
    Files.delete(victim);
    Path m = mountViaMirror("partial-mirror");
    assertTreeReads(m);
  }
}
