package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.Processes;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs {@code puzzlefs} like {@link Cli}, with its temporary directory and its state directory
 * ({@code $PUZZLEFS_STATE_DIR}) inside {@code root}, so a test can tell that a command left no
 * directory, state file or mount behind.
 */
final class Isolated {
  private final Path tmp;
  private final Path state;

  Isolated(Path root) throws IOException {
    this.tmp = Files.createDirectories(root.resolve("jvm-tmp"));
    this.state = Files.createDirectories(root.resolve("state"));
  }

  /** Where the commands make their private directories. */
  Path tmp() {
    return tmp;
  }

  /** A started {@code puzzlefs args}, output collected. */
  Process start(String... args) throws IOException {
    List<String> cmd = new ArrayList<>(Cli.command(args));
    cmd.add(1, "-Djava.io.tmpdir=" + tmp);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("PUZZLEFS_STATE_DIR", state.toString());
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    return pb.start();
  }

  /** Runs {@code puzzlefs args} to the end (at most 300 s). */
  Processes.Result run(String... args) throws IOException, InterruptedException {
    Process p = start(args);
    CompletableFuture<byte[]> out = drain(p.getInputStream());
    CompletableFuture<byte[]> err = drain(p.getErrorStream());
    if (!p.waitFor(300, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("puzzlefs " + String.join(" ", args) + " did not finish");
    }
    return new Processes.Result(
        p.exitValue(), out.join(), new String(err.join(), StandardCharsets.UTF_8));
  }

  /** Runs and fails with the command's output unless it exits 0. */
  Processes.Result ok(String... args) throws IOException, InterruptedException {
    Processes.Result r = run(args);
    assertEquals(
        0, r.exit(), () -> "puzzlefs " + String.join(" ", args) + ":\n" + r.stderr() + r.out());
    return r;
  }

  static CompletableFuture<byte[]> drain(InputStream in) {
    return CompletableFuture.supplyAsync(
        () -> {
          try (in) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            in.transferTo(buf);
            return buf.toByteArray();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
  }

  /** Fails unless nothing is mounted under {@code roots}, and the temp and state dirs are empty. */
  void assertNothingLeft(Path... roots) throws IOException {
    List<String> mounted = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      // The mount point, and the options, which name an overlay's lower, upper and work dirs.
      boolean ours = line.contains(tmp.toString());
      for (Path root : roots) {
        ours |= line.contains(root.toString());
      }
      if (ours) {
        mounted.add(line);
      }
    }
    assertEquals(List.of(), mounted, "mounts left behind");
    assertEquals(List.of(), list(tmp), "temporary directories left behind");
    assertEquals(List.of(), list(state), "state files left behind");
  }

  private static List<String> list(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString())
          .filter(n -> !n.startsWith("hsperfdata"))
          .toList();
    }
  }

  /** Fails unless every blob file of the layout in {@code oci} hashes to its name. */
  static void assertBlobsIntact(Path oci) throws Exception {
    int checked = 0;
    try (Stream<Path> blobs = Files.list(oci.resolve("blobs/sha256"))) {
      for (Path b : (Iterable<Path>) blobs::iterator) {
        java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(b)) {
          byte[] buf = new byte[1 << 16];
          for (int n; (n = in.read(buf)) > 0; ) {
            md.update(buf, 0, n);
          }
        }
        assertEquals(
            b.getFileName().toString(),
            java.util.HexFormat.of().formatHex(md.digest()),
            "blob " + b);
        checked++;
      }
    }
    assertTrue(checked > 1, "checked the blobs of " + oci);
  }
}
