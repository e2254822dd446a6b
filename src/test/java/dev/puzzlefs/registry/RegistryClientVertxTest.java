package dev.puzzlefs.registry;

import static dev.puzzlefs.testing.Futures.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The Vert.x instance our clients make leaves nothing in the temporary directory. */
class RegistryClientVertxTest {
  private static Set<Path> vertxCaches() throws IOException {
    Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
    try (var files = Files.list(tmp)) {
      return files
          .filter(p -> p.getFileName().toString().startsWith("vertx-cache"))
          .collect(Collectors.toSet());
    }
  }

  @Test
  void newVertx_makesNoFileCacheDirectory() throws Exception {
    Set<Path> before = vertxCaches();
    Vertx vertx = RegistryClient.newVertx();
    try {
      Set<Path> during = vertxCaches();
      during.removeAll(before);
      assertEquals(Set.of(), during, "a directory a killed JVM would leave behind");
    } finally {
      await(vertx.close());
    }
  }
}
