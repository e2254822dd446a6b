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
 * the same port with the same storage, so clients can be tested across an outage. Tests fail, not
 * skip, when {@link #available()} is false.
 *
 * <p>{@link #launch(String)} adds an {@code auth:} section (htpasswd or token); such a registry
 * answers {@code GET /v2/} with 401, which counts as up.
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

  private TestRegistry(Path dir, int port, String auth) throws IOException {
    this.dir = dir;
    this.port = port;
    this.config = dir.resolve("config.yml");
    this.log = dir.resolve("registry.log");
    Files.createDirectories(storage());
    Files.writeString(config, configText(storage(), port) + auth, StandardCharsets.UTF_8);
    // A test run that dies early must not leave a registry behind.
    Runtime.getRuntime().addShutdownHook(new Thread(this::stop, "test-registry-stop"));
  }

  /** True when the registry binary is installed. */
  public static boolean available() {
    return Files.isExecutable(BINARY);
  }

  /** Creates storage and a config in a fresh temporary directory and starts the registry. */
  public static TestRegistry launch() throws IOException {
    return launch("");
  }

  /**
   * Like {@link #launch()}, with {@code auth} (YAML lines starting {@code auth:}) appended to the
   * registry's configuration.
   */
  public static TestRegistry launch(String auth) throws IOException {
    Path dir = Files.createTempDirectory("puzzlefs-test-registry");
    TestRegistry registry = new TestRegistry(dir, freePort(), auth);
    registry.start();
    return registry;
  }

  /**
   * An {@code auth:} section for HTTP basic authentication of {@code user} with {@code password},
   * hashed with bcrypt (the only hash the registry accepts) by {@code htpasswd} into a file in
   * {@code dir}.
   */
  public static String htpasswdAuth(Path dir, String user, String password)
      throws IOException, InterruptedException {
    Path htpasswd = Path.of("/usr/bin/htpasswd");
    if (!Files.isExecutable(htpasswd)) {
      throw new IllegalStateException(
          htpasswd + " is missing: install apache2-utils (.ci/setup-debian does)");
    }
    Path file = dir.resolve("htpasswd");
    Processes.Result r = Processes.run(30, htpasswd.toString(), "-Bbn", user, password);
    Files.writeString(file, r.out(), StandardCharsets.UTF_8);
    return String.join(
        "\n", "auth:", "  htpasswd:", "    realm: puzzlefs-test", "    path: " + file, "");
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
  /** The registry process's pid (to stop and continue it), or -1 when it does not run. */
  public synchronized long pid() {
    return process != null && process.isAlive() ? process.pid() : -1;
  }

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
        int status = c.getResponseCode();
        return status == 200 || status == 401;
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

  /** What the registry logged, for a failing assertion's message. */
  public String describe() {
    return "docker-registry on " + hostPort() + ", its log:\n" + logText();
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
