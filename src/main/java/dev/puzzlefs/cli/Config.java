package dev.puzzlefs.cli;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The configuration file ({@code conf/puzzlefs.json} documents it). Fields left out keep the
 * defaults below, which equal that file.
 */
@JsonIgnoreProperties(ignoreUnknown = false)
public final class Config {
  /** Chunk cache settings. */
  public static final class Cache {
    public String directory;
    public long memoryBytes = 32L << 20;
    public long diskBytes = 10L << 30;
  }

  /** Registry client settings. */
  public static final class Registry {
    public List<String> insecure = new ArrayList<>();
    public int connectTimeoutSeconds = 5;
    public int requestTimeoutSeconds = 30;
    public int retries = 3;
    public int maxConnections = 8;
    public int retryTimeSeconds = 120;
    public String authFile;

    /** Per registry ({@code host:port}), mirrors tried in order before it when pulling. */
    public java.util.Map<String, List<String>> mirrors = new java.util.LinkedHashMap<>();
  }

  /** Mount settings. */
  public static final class Mount {
    public int readTimeoutSeconds = 60;
    public int readyTimeoutSeconds = 120;
  }

  public Cache cache = new Cache();
  public Registry registry = new Registry();
  public Mount mount = new Mount();

  private static final ObjectMapper MAPPER =
      JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).build();

  /** Reads {@code file}; a clear error names the file and the bad key. */
  public static Config read(Path file) throws IOException {
    try {
      Config c = MAPPER.readValue(Files.readAllBytes(file), Config.class);
      return c == null ? new Config() : c;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException("configuration " + file + " is invalid: " + e.getOriginalMessage(), e);
    }
  }

  /** The file named by the flag, else the first standard location that exists, else defaults. */
  public static Config load(Path explicit) throws IOException {
    if (explicit != null) {
      if (!Files.isRegularFile(explicit)) {
        throw new IOException("configuration file " + explicit + " does not exist");
      }
      return read(explicit);
    }
    for (Path p : standardLocations()) {
      if (Files.isRegularFile(p)) {
        return read(p);
      }
    }
    return new Config();
  }

  private static List<Path> standardLocations() {
    List<Path> out = new ArrayList<>();
    String env = System.getenv("PUZZLEFS_CONFIG");
    if (env != null && !env.isEmpty()) {
      out.add(Path.of(env));
    }
    String xdg = System.getenv("XDG_CONFIG_HOME");
    Path base = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : home().resolve(".config");
    out.add(base.resolve("puzzlefs").resolve("config.json"));
    out.add(Path.of("/etc/puzzlefs/config.json"));
    return out;
  }

  /** The disk cache directory: configured, else the user's cache directory. */
  public Path cacheDirectory() {
    if (cache.directory != null && !cache.directory.isEmpty()) {
      return Path.of(cache.directory);
    }
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : home().resolve(".cache");
    return base.resolve("puzzlefs");
  }

  /** {@code $HOME} as the shell has it (the JVM's user.home comes from the password file). */
  private static Path home() {
    String env = System.getenv("HOME");
    return Path.of(env != null && !env.isEmpty() ? env : System.getProperty("user.home"));
  }
}
