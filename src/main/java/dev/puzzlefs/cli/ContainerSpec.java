package dev.puzzlefs.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What to run in a container: the root filesystem, the command, its environment and working
 * directory, and the host name. Both runtimes read the same spec.
 */
record ContainerSpec(
    Path rootfs, List<String> args, List<String> env, String cwd, String hostname) {
  /** The command an image without a configuration runs: PuzzleFS images carry none. */
  static final List<String> DEFAULT_COMMAND = List.of("/bin/sh");

  /** The search path a container gets unless {@code --env PATH=...} says otherwise. */
  static final String DEFAULT_PATH =
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

  /** The host name a container gets. */
  static final String HOSTNAME = "puzzlefs";

  /**
   * The environment of a container: {@code PATH}, {@code HOME}, the host's {@code TERM} when it has
   * one, then {@code extra} ({@code K=V} each), a later entry replacing an earlier one.
   */
  static List<String> environment(List<String> extra, String hostTerm) {
    Map<String, String> env = new LinkedHashMap<>();
    put(env, DEFAULT_PATH);
    put(env, "HOME=/root");
    if (hostTerm != null && !hostTerm.isEmpty()) {
      put(env, "TERM=" + hostTerm);
    }
    for (String e : extra) {
      put(env, e);
    }
    List<String> out = new ArrayList<>();
    env.forEach((k, v) -> out.add(k + "=" + v));
    return out;
  }

  /**
   * The value {@code env} ({@code K=V} entries) gives {@code key}, or null: the last entry wins, as
   * in a process's environment.
   */
  static String value(List<String> env, String key) {
    String found = null;
    for (String e : env) {
      if (e.length() > key.length() && e.charAt(key.length()) == '=' && e.startsWith(key)) {
        found = e.substring(key.length() + 1);
      }
    }
    return found;
  }

  private static void put(Map<String, String> env, String entry) {
    int eq = entry.indexOf('=');
    if (eq <= 0) {
      throw new IllegalArgumentException("--env takes NAME=VALUE, got '" + entry + "'");
    }
    env.put(entry.substring(0, eq), entry.substring(eq + 1));
  }
}
