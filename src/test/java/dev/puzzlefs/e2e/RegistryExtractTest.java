package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import dev.puzzlefs.testing.TreeSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code puzzlefs extract docker://...}: a layered image pushed to a real registry comes back from
 * it entry by entry, without a local copy of the image.
 */
class RegistryExtractTest {
  @TempDir Path tmp;
  private TestRegistry registry;

  @BeforeEach
  void start() throws Exception {
    registry = TestRegistry.launch();
  }

  @AfterEach
  void stop() throws Exception {
    registry.close();
  }

  @Test
  void extract_layeredImageFromRegistry_matchesTheNewTree() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("src"));
    byte[] data = new byte[700_000];
    new Random(5).nextBytes(data);
    Files.write(src.resolve("data"), data);
    Files.writeString(src.resolve("old"), "only in v1\n");
    Files.createDirectories(src.resolve("dir/sub"));
    Files.writeString(src.resolve("dir/sub/file"), "v1\n");
    Path oci = tmp.resolve("oci");
    Cli.ok("build", src.toString(), oci.toString(), "v1");

    Files.delete(src.resolve("old"));
    Files.writeString(src.resolve("dir/sub/file"), "v2, longer than before\n");
    Files.writeString(src.resolve("new"), "only in v2\n");
    String digest =
        Cli.ok("build", "--base-layer", "v1", src.toString(), oci.toString(), "v2")
            .out()
            .trim()
            .substring("puzzlefs image manifest digest: ".length());
    String ref = "docker://" + registry.hostPort() + "/extract/layered:v2";
    Cli.ok("push", "--plain-http", oci.toString(), "v2", ref);
    Processes.run(60, "rm", "-rf", oci.toString());

    Path out = tmp.resolve("out");
    Processes.Result r = Cli.ok("extract", "--plain-http", "--digest", digest, ref, out.toString());

    assertEquals("", TreeSnapshot.of(src).diff(TreeSnapshot.of(out), 20));
    assertTrue(r.stderr().contains("extracted " + ref + " into " + out), r.stderr());
  }

  @Test
  void extract_sigtermWhileWaitingForChunks_removesThePartialTreeAndExits143() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("src"));
    Random random = new Random(9);
    for (int i = 0; i < 3000; i++) {
      byte[] data = new byte[4096];
      random.nextBytes(data);
      Files.write(src.resolve("f" + i), data);
    }
    Path oci = tmp.resolve("oci");
    Cli.ok("build", src.toString(), oci.toString(), "v1");
    String ref = "docker://" + registry.hostPort() + "/extract/stopped:v1";
    Cli.ok("push", "--plain-http", oci.toString(), "v1", ref);
    Path out = tmp.resolve("out");

    Process extract =
        new ProcessBuilder(Cli.command("extract", "--plain-http", ref, out.toString()))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(tmp.resolve("err").toFile())
            .start();
    String pid = Long.toString(registry.pid());
    try {
      // Once the partial tree is there, the registry stops answering: the extraction waits.
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (partialTrees().isEmpty() && extract.isAlive() && System.nanoTime() < deadline) {
        Thread.sleep(2);
      }
      Processes.run(10, "kill", "-STOP", pid);
      assertEquals(1, partialTrees().size(), "extracting beside " + out);
      Thread.sleep(300);
      extract.destroy(); // SIGTERM
      assertTrue(extract.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "extract ends");
    } finally {
      Processes.run(10, "kill", "-CONT", pid);
    }

    String err = Files.readString(tmp.resolve("err"));
    assertEquals(128 + 15, extract.exitValue(), err);
    assertTrue(
        err.contains("puzzlefs extract: stopped by SIGTERM (removed the partly extracted tree)"),
        err);
    assertEquals(java.util.List.of(), partialTrees(), "nothing left beside " + out);
    assertTrue(Files.notExists(out));
  }

  private java.util.List<Path> partialTrees() throws java.io.IOException {
    try (var s = Files.list(tmp)) {
      return s.filter(p -> p.getFileName().toString().startsWith(".out.extracting-")).toList();
    }
  }

  @Test
  void extract_unknownTagInRegistry_failsNamingItAndWritesNothing() throws Exception {
    Path out = tmp.resolve("out");
    String ref = "docker://" + registry.hostPort() + "/extract/none:absent";
    Processes.Result r = Cli.run("extract", "--plain-http", ref, out.toString());

    assertNotEquals(0, r.exit());
    assertTrue(r.stderr().contains("extract/none"), r.stderr());
    assertTrue(Files.notExists(out), "nothing written");
    try (var s = Files.list(tmp)) {
      assertEquals(0, s.count(), "no partial tree beside it");
    }
  }
}
