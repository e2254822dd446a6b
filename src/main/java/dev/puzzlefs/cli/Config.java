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

  /** The largest memory cache: far more than a lazy mount can use, small enough to be a heap. */
  static final long MAX_MEMORY_BYTES = 64L << 30;

  /** The longest timeout, in seconds: a day. */
  static final int MAX_SECONDS = 86_400;

  /** Reads {@code file}; a clear error names the file and the bad key. */
  public static Config read(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    Config c;
    try {
      if (new String(bytes, java.nio.charset.StandardCharsets.UTF_8).isBlank()) {
        throw new IOException("configuration " + file + " is empty; write {} for the defaults");
      }
      c = MAPPER.readValue(bytes, Config.class);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      // Without the cause: Jackson's own text names Java classes and repeats what we say.
      throw new IOException("configuration " + file + " is invalid: " + describe(e));
    }
    if (c == null) {
      throw new IOException("configuration " + file + " is invalid: it is null, not an object");
    }
    String problem = c.problem();
    if (problem != null) {
      throw new IOException("configuration " + file + " is invalid: " + problem);
    }
    return c;
  }

  /** What is wrong with a value, or null when every value is in its range. */
  String problem() {
    List<String> out = new ArrayList<>();
    range(out, "cache.memoryBytes", cache.memoryBytes, 0, MAX_MEMORY_BYTES);
    range(out, "cache.diskBytes", cache.diskBytes, 0, Long.MAX_VALUE);
    range(out, "registry.connectTimeoutSeconds", registry.connectTimeoutSeconds, 1, MAX_SECONDS);
    range(out, "registry.requestTimeoutSeconds", registry.requestTimeoutSeconds, 1, MAX_SECONDS);
    range(out, "registry.retries", registry.retries, 0, 100);
    range(out, "registry.maxConnections", registry.maxConnections, 1, 1024);
    range(out, "registry.retryTimeSeconds", registry.retryTimeSeconds, 1, MAX_SECONDS);
    range(out, "mount.readTimeoutSeconds", mount.readTimeoutSeconds, 1, MAX_SECONDS);
    range(out, "mount.readyTimeoutSeconds", mount.readyTimeoutSeconds, 1, MAX_SECONDS);
    if (registry.insecure == null || registry.insecure.contains(null)) {
      out.add("registry.insecure must be a list of HOST[:PORT] strings");
    }
    if (registry.mirrors == null) {
      out.add("registry.mirrors must be an object of HOST[:PORT] to lists of mirrors");
    }
    return out.isEmpty() ? null : String.join("; ", out);
  }

  private static void range(List<String> out, String key, long value, long min, long max) {
    if (value < min || value > max) {
      out.add(
          key
              + " must be "
              + (max == Long.MAX_VALUE ? "at least " + min : "between " + min + " and " + max)
              + ", got "
              + value);
    }
  }

  /** A Jackson failure as a person reads it: the key, and what was wrong with it. */
  private static String describe(com.fasterxml.jackson.core.JsonProcessingException e) {
    String key = "";
    if (e instanceof com.fasterxml.jackson.databind.JsonMappingException m) {
      StringBuilder path = new StringBuilder();
      for (var ref : m.getPath()) {
        if (ref.getFieldName() != null) {
          path.append(path.length() == 0 ? "" : ".").append(ref.getFieldName());
        } else if (ref.getIndex() >= 0) {
          path.append('[').append(ref.getIndex()).append(']');
        }
      }
      key = path.toString();
    }
    String where =
        e.getLocation() == null
            ? ""
            : " (line "
                + e.getLocation().getLineNr()
                + ", column "
                + e.getLocation().getColumnNr()
                + ")";
    if (e instanceof com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException u) {
      List<String> known = new ArrayList<>();
      if (u.getKnownPropertyIds() != null) {
        u.getKnownPropertyIds().forEach(k -> known.add(String.valueOf(k)));
      }
      java.util.Collections.sort(known);
      return "unknown key " + key + where + "; the keys there are " + String.join(", ", known);
    }
    if (e instanceof com.fasterxml.jackson.databind.exc.MismatchedInputException m) {
      Class<?> type = m.getTargetType();
      String wanted =
          type == null
              ? "another kind of value"
              : type == int.class
                      || type == Integer.class
                      || type == long.class
                      || type == Long.class
                  ? "a whole number"
                      + (e.getOriginalMessage().contains("out of range") ? " in range" : "")
                  : type == String.class
                      ? "a string"
                      : List.class.isAssignableFrom(type) ? "a list" : "an object";
      return (key.isEmpty() ? "the file" : key) + " must be " + wanted + where;
    }
    if (e instanceof com.fasterxml.jackson.core.exc.InputCoercionException) {
      return (key.isEmpty() ? "a number" : key) + " is out of range" + where;
    }
    String message = e.getOriginalMessage();
    int cut = message.indexOf('\n');
    return "not valid JSON" + where + ": " + (cut < 0 ? message : message.substring(0, cut));
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
