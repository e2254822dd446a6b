package dev.puzzlefs.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real registry for tests: Debian's {@code docker-registry} (the CNCF distribution registry)
 * serving plain HTTP on 127.0.0.1 with filesystem storage in a temporary directory.
 *
 * <p>{@link #stop()} kills the process the way a crash would; {@link #start()} brings it back on
 * the same port with the same storage, so clients can be tested across an outage. Tests should
 * skip, not fail, when {@link #available()} is false.
 */
public final class TestRegistry implements AutoCloseable {
  /** Where Debian installs the registry. */
  public static final Path BINARY = Path.of("/usr/bin/docker-registry");

  private static final long START_TIMEOUT_MILLIS = 30_000;

  private final Path dir;
  private final Path config;
  private final Path log;
  private final int port;
  private Process process;

  private TestRegistry(Path dir, int port) throws IOException {
    this.dir = dir;
    this.port = port;
    this.config = dir.resolve("config.yml");
    this.log = dir.resolve("registry.log");
    Files.createDirectories(storage());
    Files.writeString(config, configText(storage(), port), StandardCharsets.UTF_8);
    // A test run that dies early must not leave a registry behind.
    Runtime.getRuntime().addShutdownHook(new Thread(this::stop, "test-registry-stop"));
  }

  /** True when the registry binary is installed. */
  public static boolean available() {
    return Files.isExecutable(BINARY);
  }

  /** Creates storage and a config in a fresh temporary directory and starts the registry. */
  public static TestRegistry launch() throws IOException {
    Path dir = Files.createTempDirectory("puzzlefs-test-registry");
    TestRegistry registry = new TestRegistry(dir, freePort());
    registry.start();
    return registry;
  }

  /** Starts the registry (again) and waits until {@code GET /v2/} answers 200. */
  public synchronized void start() throws IOException {
    if (process != null && process.isAlive()) {
      return;
    }
    process =
        new ProcessBuilder(BINARY.toString(), "serve", config.toString())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(START_TIMEOUT_MILLIS);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IOException(
            "docker-registry exited with " + process.exitValue() + "; its log:\n" + logText());
      }
      if (answers()) {
        return;
      }
      sleep(50);
    }
    stop();
    throw new IOException(
        "docker-registry did not answer on " + url() + " within 30 s; its log:\n" + logText());
  }

  /** Kills the registry (SIGKILL, like a crash) and waits for it to exit. */
  public synchronized void stop() {
    if (process == null) {
      return;
    }
    process.destroyForcibly();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException("docker-registry pid " + process.pid() + " did not die");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    process = null;
  }

  /** True while the process runs. */
  public synchronized boolean running() {
    return process != null && process.isAlive();
  }

  /** {@code http://127.0.0.1:PORT}. */
  public String url() {
    return "http://" + hostPort();
  }

  /** {@code 127.0.0.1:PORT}, the registry part of an image reference. */
  public String hostPort() {
    return "127.0.0.1:" + port;
  }

  /** Where the registry keeps its blobs and manifests. */
  public Path storage() {
    return dir.resolve("storage");
  }

  /** What the registry has logged so far. */
  public String logText() {
    try {
      return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Kills the registry and deletes its directory. */
  @Override
  public void close() throws IOException {
    stop();
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private boolean answers() {
    try {
      HttpURLConnection c = (HttpURLConnection) URI.create(url() + "/v2/").toURL().openConnection();
      c.setConnectTimeout(500);
      c.setReadTimeout(1000);
      try {
        return c.getResponseCode() == 200;
      } finally {
        c.disconnect();
      }
    } catch (IOException e) {
      return false;
    }
  }

  private static String configText(Path storage, int port) {
    return String.join(
        "\n",
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        "    rootdirectory: " + storage,
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        "  addr: 127.0.0.1:" + port,
        // A fixed secret keeps upload state valid across a restart.
        "  secret: puzzlefs-test-registry",
        "");
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      socket.setReuseAddress(true);
      return socket.getLocalPort();
    }
  }

  private static void sleep(long millis) throws IOException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while waiting for docker-registry", e);
    }
  }
}
