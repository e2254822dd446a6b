package dev.puzzlefs.cli;

import dev.puzzlefs.registry.DockerConfigCredentials;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.RegistryClient;
import dev.puzzlefs.registry.RegistryClientOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** Registry flags shared by {@code push} and {@code mount}; they override the configuration. */
final class RegistryOptions {
  @Option(
      names = "--plain-http",
      description = "speak plain HTTP to the registry (default: HTTPS with verification)")
  boolean plainHttp;

  /** The command this mixin is part of, for usage errors naming it. */
  @Spec(Spec.Target.MIXEE)
  CommandSpec mixee;

  Integer connectTimeout;
  Integer requestTimeout;
  Integer retries;
  Integer retryTime;

  @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "TCP connect timeout")
  void connectTimeout(Integer seconds) {
    connectTimeout = inRange("--connect-timeout", seconds, 1, Config.MAX_SECONDS);
  }

  @Option(
      names = "--request-timeout",
      paramLabel = "SECONDS",
      description = "timeout of one registry request")
  void requestTimeout(Integer seconds) {
    requestTimeout = inRange("--request-timeout", seconds, 1, Config.MAX_SECONDS);
  }

  @Option(
      names = "--retries",
      paramLabel = "N",
      description = "attempts for a request failing on connection, 5xx or 429")
  void retries(Integer n) {
    retries = inRange("--retries", n, 0, 100);
  }

  @Option(
      names = "--retry-time",
      paramLabel = "SECONDS",
      description = "how long one registry operation may take with all its retries")
  void retryTime(Integer seconds) {
    retryTime = inRange("--retry-time", seconds, 1, Config.MAX_SECONDS);
  }

  /** {@code value} when it is in [min, max] (or absent), else a usage error naming the option. */
  private Integer inRange(String option, Integer value, long min, long max) {
    if (value != null && (value < min || value > max)) {
      throw new ParameterException(
          mixee.commandLine(),
          option + " must be between " + min + " and " + max + ", got " + value);
    }
    return value;
  }

  @Option(
      names = "--authfile",
      paramLabel = "FILE",
      description =
          "Docker config.json with registry credentials"
              + " (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)")
  Path authFile;

  @Option(
      names = "--mirror",
      paramLabel = "HOST[:PORT]",
      description =
          "a mirror of the image's registry, tried before it (repeatable; in order; adds to"
              + " registry.mirrors of the configuration)")
  java.util.List<String> mirrors = new java.util.ArrayList<>();

  /**
   * Clients for pulling {@code ref}: one per mirror of its registry (the flags' first, then the
   * configuration's), in order, and the registry itself last.
   */
  java.util.List<RegistryClient> pullClients(ImageReference ref, Config config) throws IOException {
    java.util.List<String> hosts = new java.util.ArrayList<>(mirrors);
    hosts.addAll(config.registry.mirrors.getOrDefault(ref.registry(), java.util.List.of()));
    java.util.List<RegistryClient> clients = new java.util.ArrayList<>();
    try {
      for (String host : hosts) {
        // A mirror that is down is passed over at once: the origin behind it has the blobs.
        clients.add(client(host, config, false));
      }
      clients.add(client(ref, config));
    } catch (IOException | RuntimeException e) {
      clients.forEach(RegistryClient::close);
      throw e;
    }
    return clients;
  }

  /**
   * A client for the registry of {@code ref}, configured from {@code config} and the flags, with
   * credentials from the Docker configuration (read when the registry asks for them).
   *
   * @throws IOException when an auth file named by the flag or the configuration does not exist
   */
  RegistryClient client(ImageReference ref, Config config) throws IOException {
    return client(ref.registry(), config);
  }

  private RegistryClient client(String registry, Config config) throws IOException {
    return client(registry, config, true);
  }

  private RegistryClient client(String registry, Config config, boolean patientWhenRefused)
      throws IOException {
    Config.Registry c = config.registry;
    boolean insecure = plainHttp || c.insecure.contains(registry);
    Path auth = authFile;
    if (auth == null && c.authFile != null && !c.authFile.isEmpty()) {
      auth = Path.of(c.authFile);
    }
    if (auth != null && !Files.isRegularFile(auth)) {
      throw new IOException("auth file " + auth + " does not exist");
    }
    RegistryClientOptions options =
        new RegistryClientOptions()
            .plainHttp(insecure)
            .connectTimeout(Duration.ofSeconds(orDefault(connectTimeout, c.connectTimeoutSeconds)))
            .requestTimeout(Duration.ofSeconds(orDefault(requestTimeout, c.requestTimeoutSeconds)))
            .maxAttempts(Math.max(1, orDefault(retries, c.retries)))
            .maxRetryTime(Duration.ofSeconds(Math.max(1, orDefault(retryTime, c.retryTimeSeconds))))
            .maxConcurrentRequests(c.maxConnections)
            .credentials(DockerConfigCredentials.fromEnvironment(auth))
            .warnings(ServerOutput.toCallerOfThisThread());
    if (!patientWhenRefused) {
      options.refusedPatience(Duration.ZERO);
    }
    return RegistryClient.create(registry, options);
  }

  private static int orDefault(Integer flag, int configured) {
    return flag != null ? flag : configured;
  }
}
