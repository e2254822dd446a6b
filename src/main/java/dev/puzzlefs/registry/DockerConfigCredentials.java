package dev.puzzlefs.registry;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Credentials from a Docker client configuration ({@code config.json}, as {@code docker login}
 * writes it), read anew on every lookup.
 *
 * <p>For a registry, a helper named in {@code credHelpers} is asked first, else the {@code
 * credsStore} helper; both are {@code docker-credential-NAME} programs found on {@code PATH}. When
 * no helper is configured, or the helper has nothing for the registry, the {@code auths} entry is
 * used: {@code auth} (base64 of {@code user:password}), or {@code username} and {@code password},
 * or {@code identitytoken}. Entries match on the registry's {@code HOST[:PORT]}, whatever scheme or
 * path their key carries.
 */
public final class DockerConfigCredentials implements CredentialSource {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  /** Docker Hub's credentials live under this key, whichever of its host names is used. */
  private static final String DOCKER_HUB_KEY = "https://index.docker.io/v1/";

  private static final List<String> DOCKER_HUB_HOSTS =
      List.of("docker.io", "index.docker.io", "registry-1.docker.io");

  private static final Duration HELPER_TIMEOUT = Duration.ofSeconds(30);

  private final Path file;
  private final Map<String, String> environment;

  /**
   * Credentials from {@code file}; {@code environment} supplies the {@code PATH} that helpers are
   * looked up on.
   */
  public DockerConfigCredentials(Path file, Map<String, String> environment) {
    this.file = file;
    this.environment = Map.copyOf(environment);
  }

  /**
   * The file {@code authFile} when given, else {@code $DOCKER_CONFIG/config.json}, else {@code
   * ~/.docker/config.json}, with this process's environment.
   */
  public static DockerConfigCredentials fromEnvironment(Path authFile) {
    Map<String, String> env = System.getenv();
    return new DockerConfigCredentials(
        authFile != null ? authFile : defaultFile(env, home(env)), env);
  }

  /** {@code $HOME}, as docker reads it, else the JVM's idea of the home directory. */
  private static Path home(Map<String, String> env) {
    String home = env.get("HOME");
    return Path.of(home != null && !home.isEmpty() ? home : System.getProperty("user.home"));
  }

  /** Where Docker keeps its configuration given {@code env} and the home directory. */
  static Path defaultFile(Map<String, String> env, Path home) {
    String dir = env.get("DOCKER_CONFIG");
    if (dir != null && !dir.isEmpty()) {
      return Path.of(dir).resolve("config.json");
    }
    return home.resolve(".docker").resolve("config.json");
  }

  /** The configuration file this source reads. */
  public Path file() {
    return file;
  }

  @Override
  public String describe() {
    return "the Docker config " + file;
  }

  @Override
  public Credentials find(String registry) throws IOException {
    JsonNode config = read();
    if (config == null) {
      return null;
    }
    String helper = helperFor(config, registry);
    if (helper != null) {
      Credentials fromHelper =
          CredentialHelper.get(helper, serverUrl(registry), environment, HELPER_TIMEOUT);
      if (fromHelper != null) {
        return fromHelper;
      }
    }
    JsonNode entry = entryFor(config.path("auths"), registry);
    return entry == null ? null : parseEntry(entry, registry);
  }

  private JsonNode read() throws IOException {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      return null;
    }
    try {
      JsonNode node = MAPPER.readTree(bytes);
      if (node == null || !node.isObject()) {
        throw new IOException(describe() + " is not a JSON object");
      }
      return node;
    } catch (JsonProcessingException e) {
      // Jackson's message may quote the file's text, which holds secrets: give only the place.
      throw new IOException(
          describe()
              + " is not valid JSON (line "
              + e.getLocation().getLineNr()
              + ", column "
              + e.getLocation().getColumnNr()
              + ")");
    }
  }

  private static String helperFor(JsonNode config, String registry) {
    JsonNode helpers = config.path("credHelpers");
    if (helpers.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = helpers.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (matches(e.getKey(), registry) && !e.getValue().asText("").isEmpty()) {
          return e.getValue().asText();
        }
      }
    }
    String store = config.path("credsStore").asText("");
    return store.isEmpty() ? null : store;
  }

  private static JsonNode entryFor(JsonNode auths, String registry) {
    if (!auths.isObject()) {
      return null;
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = auths.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (matches(e.getKey(), registry) && e.getValue().isObject()) {
        return e.getValue();
      }
    }
    return null;
  }

  private Credentials parseEntry(JsonNode entry, String registry) throws IOException {
    String identityToken = entry.path("identitytoken").asText("");
    String auth = entry.path("auth").asText("");
    String username = entry.path("username").asText("");
    String password = entry.path("password").asText("");
    if (!auth.isEmpty()) {
      String pair;
      try {
        pair = new String(Base64.getDecoder().decode(auth.trim()), StandardCharsets.UTF_8);
      } catch (IllegalArgumentException e) {
        throw new IOException(
            "the 'auth' entry for " + registry + " in " + describe() + " is not base64");
      }
      int colon = pair.indexOf(':');
      if (colon < 0) {
        throw new IOException(
            "the 'auth' entry for "
                + registry
                + " in "
                + describe()
                + " is not base64 of user:password");
      }
      username = pair.substring(0, colon);
      password = pair.substring(colon + 1);
    }
    if (!identityToken.isEmpty()) {
      return Credentials.identityToken(username, identityToken);
    }
    if (username.isEmpty() && password.isEmpty()) {
      return null;
    }
    return Credentials.basic(username, password);
  }

  /** True when a config key (host, URL, or Docker Hub's legacy key) names {@code registry}. */
  static boolean matches(String key, String registry) {
    String host = registry.toLowerCase(Locale.ROOT);
    String normalized = hostOf(key);
    if (normalized.equals(host)) {
      return true;
    }
    return DOCKER_HUB_HOSTS.contains(host) && DOCKER_HUB_HOSTS.contains(normalized);
  }

  /** {@code https://host:port/v1/} to {@code host:port}, lower-cased. */
  private static String hostOf(String key) {
    String k = key.trim().toLowerCase(Locale.ROOT);
    int scheme = k.indexOf("://");
    if (scheme >= 0) {
      k = k.substring(scheme + 3);
    }
    int slash = k.indexOf('/');
    return slash >= 0 ? k.substring(0, slash) : k;
  }

  /** What a helper is asked for: the host, or Docker Hub's legacy key. */
  private static String serverUrl(String registry) {
    return DOCKER_HUB_HOSTS.contains(registry.toLowerCase(Locale.ROOT)) ? DOCKER_HUB_KEY : registry;
  }
}
