package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.TestRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the README's {@code sh} blocks, in order, as one bash script in a scratch directory with
 * {@code bin/puzzlefs} on PATH and a registry on 127.0.0.1 (its port substituted for 5000). Skipped
 * are the set-up blocks (they run {@code mvn}) and blocks whose first line says {@code not run by
 * ReadmeTest}; any command that fails fails the test, naming the line.
 */
class ReadmeTest {
  private static final Path README = Path.of("README.md");
  private static final Path LAUNCHER = Path.of("bin/puzzlefs");

  @TempDir Path tmp;

  @AfterEach
  void unmount() throws IOException {
    Cli.unmountQuietly(tmp.resolve("work/mnt"));
    // The README starts a mount server; one left running by a failed block is stopped here.
    Path pid = tmp.resolve("server/pid");
    if (Files.exists(pid)) {
      ProcessHandle.of(Long.parseLong(Files.readString(pid).strip()))
          .ifPresent(ProcessHandle::destroy);
    }
  }

  /** The {@code sh} blocks meant to run. */
  static List<String> runnableBlocks(String markdown) {
    List<String> blocks = new ArrayList<>();
    StringBuilder block = null;
    for (String line : markdown.split("\n", -1)) {
      if (block == null && line.equals("```sh")) {
        block = new StringBuilder();
      } else if (block != null && line.equals("```")) {
        String text = block.toString();
        String first = text.lines().findFirst().orElse("");
        if (!text.contains("mvn ") && !first.contains("not run by ReadmeTest")) {
          blocks.add(text);
        }
        block = null;
      } else if (block != null) {
        block.append(line).append('\n');
      }
    }
    return blocks;
  }

  @Test
  void readme_shellBlocks_runAsWritten() throws Exception {
    List<String> blocks = runnableBlocks(Files.readString(README));
    assertTrue(blocks.size() >= 9, "the README's runnable blocks: " + blocks.size());
    Path work = Files.createDirectories(tmp.resolve("work"));
    Path home = Files.createDirectories(tmp.resolve("home"));
    try (TestRegistry registry = TestRegistry.launch()) {
      StringBuilder script = new StringBuilder();
      script.append("set -euo pipefail\n");
      script.append(
          "trap 'echo \"README command failed (line $LINENO): $BASH_COMMAND\" >&2' ERR\n");
      for (String b : blocks) {
        script.append(b.replace("127.0.0.1:5000", registry.hostPort()));
      }
      Path file = Files.writeString(tmp.resolve("readme.sh"), script.toString());

      ProcessBuilder pb = new ProcessBuilder("bash", file.toString()).directory(work.toFile());
      pb.environment()
          .put("PATH", LAUNCHER.toAbsolutePath().getParent() + ":" + System.getenv("PATH"));
      pb.environment().put("PUZZLEFS_CLASSPATH", System.getProperty("java.class.path"));
      pb.environment().put("HOME", home.toString());
      pb.environment().put("PUZZLEFS_SERVER_DIR", tmp.resolve("server").toString());
      pb.environment().remove("XDG_CONFIG_HOME");
      pb.environment().remove("XDG_CACHE_HOME");
      pb.environment().remove("PUZZLEFS_CONFIG");
      pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
      pb.redirectErrorStream(true);
      pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
      Path log = tmp.resolve("readme.log");
      pb.redirectOutput(log.toFile());
      Process p = pb.start();
      assertTrue(p.waitFor(600, TimeUnit.SECONDS), "the README's commands finish");
      String output = Files.readString(log, StandardCharsets.UTF_8);
      assertEquals(0, p.exitValue(), "README script " + file + ":\n" + output);
      assertTrue(output.contains("mount says: s"), output);
      assertTrue(output.contains("served by the mount server"), output);
      assertTrue(output.contains("counters of the mount on"), output);
    }
  }
}
