package dev.puzzlefs.cli;

import dev.puzzlefs.reader.ElfLinks;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Data files that the GNU C library reads while most programs start, named from the container's
 * environment: the dynamic loader's cache, the time zone, the character-set table of the locale and
 * the converters' cache. With no prefetch list, {@code run} fetches them (those the image has)
 * beside the command's program, so that the command does not wait on each in turn. Small files:
 * {@link #MAX_BYTES} at most each.
 */
final class StartupFiles {
  /** Larger files are left to be read on demand (a locale archive of many locales, say). */
  static final long MAX_BYTES = 1 << 20;

  /** Where the C library finds compiled locales and time zones (Debian's and everyone's). */
  private static final String LOCALES = "/usr/lib/locale/";

  private static final String ZONES = "/usr/share/zoneinfo/";

  private StartupFiles() {}

  /**
   * The files {@code command} will likely read at its start, in the order it reads them; {@code
   * machine} is an ELF machine. The locale's files only when one is in effect: a locale other than
   * C in the environment, or Python, which switches from C to C.UTF-8 (PEP 538).
   */
  static List<String> of(String command, List<String> env, int machine) {
    List<String> files = new ArrayList<>();
    files.add("/etc/ld.so.cache");
    String locale = ctypeLocale(env);
    if (locale == null && command.substring(command.lastIndexOf('/') + 1).startsWith("python")) {
      locale = "C.UTF-8";
    }
    if (locale != null) {
      files.add(LOCALES + locale + "/LC_CTYPE");
      String normalized = normalized(locale);
      if (!normalized.equals(locale)) {
        files.add(LOCALES + normalized + "/LC_CTYPE");
      }
      String triple = ElfLinks.multiarchTriple(machine);
      if (triple != null) {
        files.add("/usr/lib/" + triple + "/gconv/gconv-modules.cache");
      }
      files.add("/usr/lib64/gconv/gconv-modules.cache");
    }
    files.add(timeZone(env));
    return files;
  }

  /**
   * The locale of the LC_CTYPE category: {@code LC_ALL}, else {@code LC_CTYPE}, else {@code LANG};
   * null for the C locale (which has no files) and for a name that is not a locale's.
   */
  static String ctypeLocale(List<String> env) {
    String name = value(env, "LC_ALL");
    if (name == null || name.isEmpty()) {
      name = value(env, "LC_CTYPE");
    }
    if (name == null || name.isEmpty()) {
      name = value(env, "LANG");
    }
    if (name == null
        || name.isEmpty()
        || name.equals("C")
        || name.equals("POSIX")
        || name.contains("/")
        || name.startsWith(".")) {
      return null;
    }
    return name;
  }

  /**
   * The locale's name with its code set as the C library normalises it to find the locale's
   * directory: lower case, letters and digits only ({@code en_US.UTF-8} is {@code en_US.utf8}).
   */
  static String normalized(String locale) {
    int dot = locale.indexOf('.');
    if (dot < 0) {
      return locale;
    }
    int at = locale.indexOf('@', dot);
    String codeset = locale.substring(dot + 1, at < 0 ? locale.length() : at);
    StringBuilder norm = new StringBuilder();
    boolean onlyDigits = true;
    for (char c : codeset.toCharArray()) {
      if (Character.isLetter(c) && c < 128) {
        norm.append(Character.toLowerCase(c));
        onlyDigits = false;
      } else if (c >= '0' && c <= '9') {
        norm.append(c);
      }
    }
    return locale.substring(0, dot + 1)
        + (onlyDigits ? "iso" : "")
        + norm.toString().toLowerCase(Locale.ROOT)
        + (at < 0 ? "" : locale.substring(at));
  }

  /** The time zone file: the one {@code TZ} names, else {@code /etc/localtime}. */
  static String timeZone(List<String> env) {
    String tz = value(env, "TZ");
    if (tz == null || tz.isEmpty()) {
      return "/etc/localtime";
    }
    if (tz.startsWith(":")) {
      tz = tz.substring(1);
    }
    if (tz.startsWith("/")) {
      return tz;
    }
    // A zone's name (the C library tries one for a rule such as EST5EDT too).
    return tz.matches("[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*") ? ZONES + tz : "/etc/localtime";
  }

  /** The value of {@code key} in {@code env} (the last one wins, as in a process's environment). */
  private static String value(List<String> env, String key) {
    String found = null;
    for (String e : env) {
      if (e.length() > key.length() && e.charAt(key.length()) == '=' && e.startsWith(key)) {
        found = e.substring(key.length() + 1);
      }
    }
    return found;
  }
}
