package dev.puzzlefs.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Helpers for tests that make real FUSE mounts and look at them with ordinary tools. */
public final class FuseTesting {
  private FuseTesting() {}

  /** Fails the calling test unless this process may mount FUSE filesystems (CI runs as root). */
  public static void assumeFuse() {
    assertTrue(Files.exists(Path.of("/dev/fuse")), "/dev/fuse is absent");
    assertTrue("root".equals(System.getProperty("user.name")), "FUSE mounts here need root");
  }

  /** What a finished command printed and returned. */
  public record Result(int status, byte[] stdout, String stderr) {
    public String out() {
      return new String(stdout, StandardCharsets.UTF_8);
    }

    public List<String> lines() {
      return out().lines().toList();
    }
  }

  /** Runs {@code command} with no input, waiting at most 60 s. */
  public static Result run(String... command) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(command).start();
    process.getOutputStream().close();
    CompletableFuture<byte[]> err =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return process.getErrorStream().readAllBytes();
              } catch (IOException e) {
                return new byte[0];
              }
            });
    byte[] out = process.getInputStream().readAllBytes();
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new IOException("timed out: " + String.join(" ", command));
    }
    return new Result(process.exitValue(), out, new String(err.join(), StandardCharsets.UTF_8));
  }

  /** Runs a bash script (so tests can spell raw bytes as $'\xff'). */
  public static Result bash(String script) throws IOException, InterruptedException {
    return run("bash", "-c", script);
  }

  /** Lazily unmounts {@code dir} if anything is still mounted there; never throws. */
  public static void forceUnmount(Path dir) {
    try {
      String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
      String absolute = dir.toAbsolutePath().normalize().toString();
      if (mountinfo.contains(" " + absolute + " ")) {
        run("fusermount", "-u", "-z", absolute);
      }
    } catch (IOException e) {
      // best effort: nothing more to do
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
