package dev.puzzlefs.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs a Docker credential helper: {@code docker-credential-NAME get} reads a server URL on stdin
 * and prints {@code {"Username": .., "Secret": ..}}; a user name of {@code <token>} marks the
 * secret as an identity token. Neither its output nor its error text goes into messages: both may
 * hold secrets.
 */
final class CredentialHelper {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final int MAX_OUTPUT = 64 << 10;

  private CredentialHelper() {}

  /** The helper's credentials for {@code serverUrl}, or null when it has none. */
  static Credentials get(
      String name, String serverUrl, Map<String, String> environment, Duration timeout)
      throws IOException {
    String program = "docker-credential-" + name;
    Path executable = find(program, environment.getOrDefault("PATH", ""));
    if (executable == null) {
      throw new IOException("credential helper " + program + " is not on the PATH");
    }
    ProcessBuilder builder = new ProcessBuilder(executable.toString(), "get");
    builder.environment().clear();
    builder.environment().putAll(environment);
    builder.redirectError(ProcessBuilder.Redirect.DISCARD);
    Process process = builder.start();
    // Read on another thread, so a helper that hangs with its output open still times out.
    CompletableFuture<byte[]> output =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return readBounded(process.getInputStream());
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
            });
    byte[] out;
    try {
      try (OutputStream in = process.getOutputStream()) {
        in.write(serverUrl.getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        // A helper that exits without reading stdin: its exit status tells.
      }
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IOException(program + " get did not finish within " + timeout.toSeconds() + " s");
      }
      out = output.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while running " + program, e);
    } catch (ExecutionException | TimeoutException e) {
      throw new IOException(program + " get: its output could not be read");
    } finally {
      process.destroyForcibly();
    }
    String text = new String(out, StandardCharsets.UTF_8);
    if (process.exitValue() != 0) {
      if (text.toLowerCase(Locale.ROOT).contains("credentials not found")) {
        return null;
      }
      throw new IOException(program + " get failed with exit status " + process.exitValue());
    }
    return parse(program, text);
  }

  private static Credentials parse(String program, String text) throws IOException {
    JsonNode node;
    try {
      node = MAPPER.readTree(text);
    } catch (IOException e) {
      throw new IOException(program + " get printed something other than JSON");
    }
    if (node == null || !node.isObject()) {
      throw new IOException(program + " get printed something other than a JSON object");
    }
    String username = node.path("Username").asText("");
    String secret = node.path("Secret").asText("");
    if (secret.isEmpty()) {
      return null;
    }
    if (username.equals("<token>")) {
      return Credentials.identityToken("", secret);
    }
    return Credentials.basic(username, secret);
  }

  private static byte[] readBounded(InputStream in) throws IOException {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    byte[] chunk = new byte[8192];
    int n;
    while ((n = in.read(chunk)) >= 0) {
      if (buf.size() + n > MAX_OUTPUT) {
        throw new IOException("credential helper printed more than " + MAX_OUTPUT + " bytes");
      }
      buf.write(chunk, 0, n);
    }
    return buf.toByteArray();
  }

  private static Path find(String program, String path) {
    for (String dir : path.split(File.pathSeparator)) {
      if (dir.isEmpty()) {
        continue;
      }
      Path candidate = Path.of(dir, program);
      if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
        return candidate;
      }
    }
    return null;
  }
}
