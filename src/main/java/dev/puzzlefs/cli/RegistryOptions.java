package dev.puzzlefs.cli;

import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.RegistryClient;
import dev.puzzlefs.registry.RegistryClientOptions;
import java.time.Duration;
import picocli.CommandLine.Option;

/** Registry flags shared by {@code push} and {@code mount}; they override the configuration. */
final class RegistryOptions {
  @Option(
      names = "--plain-http",
      description = "speak plain HTTP to the registry (default: HTTPS with verification)")
  boolean plainHttp;

  @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "TCP connect timeout")
  Integer connectTimeout;

  @Option(
      names = "--request-timeout",
      paramLabel = "SECONDS",
      description = "timeout of one registry request")
  Integer requestTimeout;

  @Option(
      names = "--retries",
      paramLabel = "N",
      description = "attempts for a request failing on connection, 5xx or 429")
  Integer retries;

  /** A client for the registry of {@code ref}, configured from {@code config} and the flags. */
  RegistryClient client(ImageReference ref, Config config) {
    Config.Registry c = config.registry;
    boolean insecure = plainHttp || c.insecure.contains(ref.registry());
    RegistryClientOptions options =
        new RegistryClientOptions()
            .plainHttp(insecure)
            .connectTimeout(Duration.ofSeconds(orDefault(connectTimeout, c.connectTimeoutSeconds)))
            .requestTimeout(Duration.ofSeconds(orDefault(requestTimeout, c.requestTimeoutSeconds)))
            .maxAttempts(Math.max(1, orDefault(retries, c.retries)))
            .maxConcurrentRequests(c.maxConnections);
    return RegistryClient.create(ref.registry(), options);
  }

  private static int orDefault(Integer flag, int configured) {
    return flag != null ? flag : configured;
  }
}
