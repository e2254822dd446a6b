package dev.puzzlefs.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs Debian's {@code capnp convert} (Cap'n Proto 0.9) on rootfs blobs, an implementation of the
 * wire format that shares no code with ours.
 *
 * <p>The JSON it prints: UInt64 fields as decimal strings ({@code "ino": "1"}), UInt32/UInt16 as
 * numbers, Data as an array of unsigned byte values ({@code [97, 255]}), a union as an object with
 * the one member set ({@code "mode": {"dir": {...}}}, Void members as {@code null}), and null
 * pointer fields left out.
 */
public final class CapnpTool {
  /** The Debian tool. */
  public static final String CAPNP = "/usr/bin/capnp";

  private static final long TIMEOUT_SECONDS = 120;
  private static final ObjectMapper JSON = new ObjectMapper();

  private CapnpTool() {}

  /** The project base directory (Maven runs tests with {@code user.dir} there). */
  public static Path projectDir() {
    return Paths.get(System.getProperty("user.dir")).toAbsolutePath();
  }

  /** The rootfs schema, {@code src/main/capnp/schema/metadata.capnp}. */
  public static Path schema() {
    return projectDir().resolve("src/main/capnp/schema/metadata.capnp");
  }

  /** The directory holding {@code java.capnp}, which the schema imports; the build fills it. */
  public static Path importDir() {
    return projectDir().resolve("target/capnp-work");
  }

  /** True when the tool, the schema and its import directory are all present. */
  public static boolean available() {
    return Files.isExecutable(Paths.get(CAPNP))
        && Files.isRegularFile(schema())
        && Files.isRegularFile(importDir().resolve("java.capnp"));
  }

  /**
   * Converts one message with {@code capnp convert FROM:TO} against the rootfs schema, root type
   * {@code Rootfs}; {@code from} and {@code to} are the tool's format names (binary, json, text..).
   */
  public static byte[] convert(String from, String to, byte[] input) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(CAPNP);
    cmd.add("convert");
    cmd.add("--short");
    cmd.add(from + ":" + to);
    cmd.add("-I" + importDir());
    cmd.add(schema().toString());
    cmd.add("Rootfs");
    return run(cmd, input);
  }

  /** The rootfs blob as the tool's JSON, parsed. */
  public static JsonNode toJson(byte[] blob) throws IOException {
    return JSON.readTree(convert("binary", "json", blob));
  }

  /** A rootfs blob re-encoded by the tool's own C++ library from its JSON rendering. */
  public static byte[] reencode(byte[] blob) throws IOException {
    return convert("json", "binary", convert("binary", "json", blob));
  }

  private static byte[] run(List<String> cmd, byte[] input) throws IOException {
    Process p = new ProcessBuilder(cmd).start();
    CompletableFuture<byte[]> out = drain(p.getInputStream());
    CompletableFuture<byte[]> err = drain(p.getErrorStream());
    try (OutputStream stdin = p.getOutputStream()) {
      stdin.write(input);
    }
    try {
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(
            String.join(" ", cmd) + " did not finish in " + TIMEOUT_SECONDS + "s");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new IOException("interrupted while running " + String.join(" ", cmd), e);
    }
    if (p.exitValue() != 0) {
      throw new IOException(
          String.join(" ", cmd)
              + " exited "
              + p.exitValue()
              + ": "
              + new String(err.join(), StandardCharsets.UTF_8));
    }
    return out.join();
  }

  /** Reads a stream to its end on a thread of its own (the common pool may have one thread). */
  private static CompletableFuture<byte[]> drain(InputStream in) {
    CompletableFuture<byte[]> result = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try (in) {
                ByteArrayOutputStream buf = new ByteArrayOutputStream();
                in.transferTo(buf);
                result.complete(buf.toByteArray());
              } catch (IOException e) {
                result.completeExceptionally(new UncheckedIOException(e));
              }
            },
            "capnp-drain");
    t.setDaemon(true);
    t.start();
    return result;
  }
}
