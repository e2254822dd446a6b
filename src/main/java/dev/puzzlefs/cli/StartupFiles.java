package dev.puzzlefs.cli;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.reader.ElfLinks;
import dev.puzzlefs.reader.Image;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Files most programs read while they start, beyond their own program and what its headers name:
 * the GNU C library itself ({@link #cLibrary}), its data files ({@link #of}: the dynamic loader's
 * cache, the time zone, and when a locale is in effect its character-set table and the converters'
 * cache), and for Python the modules every start imports from its library ({@link #python}). With
 * no prefetch list, {@code run} fetches them (those the image has) beside the command's program, so
 * that the command does not wait on each in turn, nor on its program's headers before the C library
 * is asked for. Data files and modules of at most {@link #MAX_BYTES} each.
 */
final class StartupFiles {
  /** Larger files are left to be read on demand (a locale archive of many locales, say). */
  static final long MAX_BYTES = 1 << 20;

  /** Where the C library finds compiled locales and time zones (Debian's and everyone's). */
  private static final String LOCALES = "/usr/lib/locale/";

  private static final String ZONES = "/usr/share/zoneinfo/";

  private StartupFiles() {}

  /**
   * The dynamic loader and C library of the GNU C library for ELF machine {@code machine}, which
   * nearly every program of an image that has them loads: asked for with the program, not once its
   * headers have been read.
   */
  static List<String> cLibrary(int machine) {
    String triple = ElfLinks.multiarchTriple(machine);
    if (triple == null) {
      return List.of();
    }
    List<String> files = new ArrayList<>();
    switch (machine) {
      case 62 -> files.add("/lib64/ld-linux-x86-64.so.2");
      case 183 -> files.add("/lib/ld-linux-aarch64.so.1");
      default -> {}
    }
    files.add("/usr/lib/" + triple + "/libc.so.6");
    files.add("/lib/" + triple + "/libc.so.6");
    return files;
  }

  /** The most arguments of a command looked at as files it will read. */
  static final int MAX_ARGUMENTS = 16;

  /**
   * The files a command's arguments may name (those after the program, at most {@link
   * #MAX_ARGUMENTS}): {@code cat /etc/os-release} reads its argument, as {@code python3 app.py} or
   * {@code sh script} do. Relative ones are taken from {@code workdir}; options are skipped. Those
   * that are not files of the image are skipped when fetching.
   */
  static List<String> arguments(List<String> args, String workdir) {
    List<String> files = new ArrayList<>();
    for (String a : args.subList(1, Math.min(args.size(), MAX_ARGUMENTS + 1))) {
      if (a.isEmpty() || a.startsWith("-") || a.indexOf('\0') >= 0) {
        continue;
      }
      files.add(a.startsWith("/") ? a : (workdir.endsWith("/") ? workdir : workdir + "/") + a);
    }
    return files;
  }

  /** Where Python's library lies: {@code python3.N} under these (Debian's, and python.org's). */
  private static final List<String> PYTHON_HOMES = List.of("/usr/lib/", "/usr/local/lib/");

  private static final Pattern PYTHON_COMMAND = Pattern.compile("python(3(\\.[0-9]+)?)?");

  private static final Pattern PYTHON_DIR = Pattern.compile("python3\\.([0-9]{1,3})");

  /** The most Python versions of one image whose start-up modules are fetched. */
  static final int MAX_PYTHONS = 2;

  /** What every start of Python 3 imports from its library, 3.11 on (the rest is frozen in). */
  private static final List<String> PYTHON_MODULES =
      List.of("encodings/__init__", "encodings/aliases", "encodings/utf_8", "sitecustomize");

  /** What Python 3.10 and earlier also import at every start. */
  private static final List<String> OLDER_PYTHON_MODULES =
      List.of(
          "abc",
          "codecs",
          "io",
          "os",
          "stat",
          "_collections_abc",
          "posixpath",
          "genericpath",
          "site",
          "_sitebuiltins");

  /**
   * For a {@code command} that is Python ({@code python}, {@code python3}, {@code python3.N}): the
   * modules every start imports from its library directory, compiled and source (this format has no
   * timestamps, so Python finds the compiled ones stale and reads the sources too). Of the versions
   * in the image, the one {@code command} names, else the newest {@link #MAX_PYTHONS}.
   */
  static List<String> python(Image image, String command) {
    String name = command.substring(command.lastIndexOf('/') + 1);
    Matcher m = PYTHON_COMMAND.matcher(name);
    if (!m.matches()) {
      return List.of();
    }
    List<int[]> found = new ArrayList<>(); // {home, minor version}
    for (int h = 0; h < PYTHON_HOMES.size(); h++) {
      for (String dir : subdirectories(image, PYTHON_HOMES.get(h))) {
        Matcher d = PYTHON_DIR.matcher(dir);
        if (d.matches() && (m.group(2) == null || name.equals(dir))) {
          found.add(new int[] {h, Integer.parseInt(d.group(1))});
        }
      }
    }
    found.sort((a, b) -> Integer.compare(b[1], a[1]));
    List<String> files = new ArrayList<>();
    for (int[] f : found.subList(0, Math.min(MAX_PYTHONS, found.size()))) {
      String lib = PYTHON_HOMES.get(f[0]) + "python3." + f[1] + "/";
      String tag = ".cpython-3" + f[1] + ".pyc";
      List<String> modules = new ArrayList<>(PYTHON_MODULES);
      if (f[1] <= 10) {
        modules.addAll(OLDER_PYTHON_MODULES);
      }
      for (String module : modules) {
        int slash = module.lastIndexOf('/');
        String dir = lib + module.substring(0, slash + 1);
        files.add(dir + "__pycache__/" + module.substring(slash + 1) + tag);
        files.add(lib + module + ".py");
      }
    }
    return files;
  }

  /** The names of the directories in directory {@code path} of the image (links followed). */
  private static List<String> subdirectories(Image image, String path) {
    List<String> out = new ArrayList<>();
    try {
      Inode dir = image.resolveFollowingLinks(path.getBytes(StandardCharsets.UTF_8));
      if (dir.kind() != InodeKind.DIR) {
        return out;
      }
      for (DirEntry e : image.entries(dir.ino())) {
        if (image.inode(e.ino()).kind() == InodeKind.DIR) {
          out.add(new String(e.name(), StandardCharsets.UTF_8));
        }
      }
    } catch (IOException e) {
      // no such directory, so no Python there
    }
    return out;
  }

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
    String name = ContainerSpec.value(env, "LC_ALL");
    if (name == null || name.isEmpty()) {
      name = ContainerSpec.value(env, "LC_CTYPE");
    }
    if (name == null || name.isEmpty()) {
      name = ContainerSpec.value(env, "LANG");
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
    String tz = ContainerSpec.value(env, "TZ");
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
}
