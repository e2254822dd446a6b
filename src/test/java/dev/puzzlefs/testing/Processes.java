package dev.puzzlefs.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Runs external commands for tests, with a time limit and the output kept for messages. */
public final class Processes {
  /** A finished command. */
  public record Result(int exit, byte[] stdout, String stderr) {
    /** Standard output as UTF-8 text. */
    public String out() {
      return new String(stdout, StandardCharsets.UTF_8);
    }
  }

  private Processes() {}

  /** Runs {@code cmd}; fails unless it exits 0 within {@code seconds}. */
  public static Result run(long seconds, String... cmd) throws IOException, InterruptedException {
    Result r = exec(seconds, null, cmd);
    if (r.exit() != 0) {
      throw new IOException(
          String.join(" ", cmd) + " exited " + r.exit() + ": " + r.stderr() + r.out());
    }
    return r;
  }

  /** Runs {@code cmd} with {@code stdin} as input and returns whatever it did. */
  public static Result exec(long seconds, byte[] stdin, String... cmd)
      throws IOException, InterruptedException {
    return exec(null, seconds, stdin, cmd);
  }

  /** Runs {@code cmd} in directory {@code dir} and returns whatever it did. */
  public static Result execIn(java.nio.file.Path dir, long seconds, String... cmd)
      throws IOException, InterruptedException {
    return exec(dir, seconds, null, cmd);
  }

  /** Runs {@code cmd} with {@code env} added to its environment and returns whatever it did. */
  public static Result execWithEnv(long seconds, java.util.Map<String, String> env, String... cmd)
      throws IOException, InterruptedException {
    return exec(null, seconds, null, env, cmd);
  }

  /** Runs {@code cmd} in {@code dir} with {@code env} added (null values removed). */
  public static Result execInWithEnv(
      java.nio.file.Path dir, long seconds, java.util.Map<String, String> env, String... cmd)
      throws IOException, InterruptedException {
    return exec(dir, seconds, null, env, cmd);
  }

  private static Result exec(java.nio.file.Path dir, long seconds, byte[] stdin, String... cmd)
      throws IOException, InterruptedException {
    return exec(dir, seconds, stdin, java.util.Map.of(), cmd);
  }

  private static Result exec(
      java.nio.file.Path dir,
      long seconds,
      byte[] stdin,
      java.util.Map<String, String> env,
      String... cmd)
      throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(List.of(cmd));
    env.forEach(
        (name, value) -> {
          if (value == null) {
            pb.environment().remove(name);
          } else {
            pb.environment().put(name, value);
          }
        });
    if (dir != null) {
      pb.directory(dir.toFile());
    }
    if (stdin == null) {
      pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    }
    Process p = pb.start();
    CompletableFuture<byte[]> out = drain(p.getInputStream());
    CompletableFuture<byte[]> err = drain(p.getErrorStream());
    if (stdin != null) {
      try (var in = p.getOutputStream()) {
        in.write(stdin);
      }
    }
    if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException(String.join(" ", cmd) + " did not finish within " + seconds + "s");
    }
    return new Result(p.exitValue(), out.join(), new String(err.join(), StandardCharsets.UTF_8));
  }

  private static CompletableFuture<byte[]> drain(InputStream in) {
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
}
