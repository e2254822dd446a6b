package dev.puzzlefs.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.slf4j.LoggerFactory;

/**
 * Log levels from {@code --log-level} or the {@code PUZZLEFS_LOG} environment variable: a
 * comma-separated list of {@code LEVEL} (for all of puzzlefs) and {@code LOGGER=LEVEL} (for one
 * package or class), for example {@code info,dev.puzzlefs.registry=debug}. {@code
 * PUZZLEFS_LOG_LEVEL} (a single level) is still read when {@code PUZZLEFS_LOG} is not set.
 */
final class Logging {
  /** The environment variable with the level list. */
  static final String ENV = "PUZZLEFS_LOG";

  /** The older variable holding one level, read when {@link #ENV} is not set. */
  static final String LEGACY_ENV = "PUZZLEFS_LOG_LEVEL";

  /** The logger a bare level applies to. */
  static final String OURS = "dev.puzzlefs";

  /** The level list in force, passed on to a background mount; null for the defaults. */
  private static String current;

  private Logging() {}

  /** Applies the environment's levels; a bad value is reported and otherwise ignored. */
  static void fromEnvironment(Map<String, String> env) {
    String value = env.get(ENV);
    String name = ENV;
    if (value == null || value.isBlank()) {
      value = env.get(LEGACY_ENV);
      name = LEGACY_ENV;
    }
    if (value == null || value.isBlank()) {
      return;
    }
    try {
      apply(value);
    } catch (IllegalArgumentException e) {
      System.err.println("puzzlefs: ignoring " + name + ": " + e.getMessage());
    }
  }

  /**
   * Sets the levels {@code spec} lists.
   *
   * @throws IllegalArgumentException naming the item that is not {@code LEVEL} or {@code
   *     LOGGER=LEVEL} with a known level
   */
  static void apply(String spec) {
    Map<String, Level> levels = parse(spec);
    levels.forEach((logger, level) -> ((Logger) LoggerFactory.getLogger(logger)).setLevel(level));
    current = current == null ? spec : current + "," + spec;
  }

  /** The levels {@code spec} lists, by logger name, in order. */
  static Map<String, Level> parse(String spec) {
    Map<String, Level> out = new LinkedHashMap<>();
    for (String item : spec.split(",")) {
      String s = item.strip();
      if (s.isEmpty()) {
        continue;
      }
      int eq = s.indexOf('=');
      String logger = eq < 0 ? OURS : s.substring(0, eq).strip();
      String level = eq < 0 ? s : s.substring(eq + 1).strip();
      if (logger.isEmpty()) {
        throw new IllegalArgumentException("'" + s + "' names no logger before '='");
      }
      out.put(logger, level(level, s));
    }
    return out;
  }

  private static Level level(String name, String item) {
    switch (name.toLowerCase(Locale.ROOT)) {
      case "trace":
        return Level.TRACE;
      case "debug":
        return Level.DEBUG;
      case "info":
        return Level.INFO;
      case "warn":
      case "warning":
        return Level.WARN;
      case "error":
        return Level.ERROR;
      case "off":
        return Level.OFF;
      default:
        throw new IllegalArgumentException(
            "'"
                + item
                + "': '"
                + name
                + "' is not a level (trace, debug, info, warn, error, off);"
                + " write LEVEL or LOGGER=LEVEL, comma separated");
    }
  }

  /** The level list applied so far (environment, then flag), or null if none was. */
  static String current() {
    return current;
  }
}
