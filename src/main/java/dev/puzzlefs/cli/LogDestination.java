package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where a background mount logs: to syslog (which is the journal on a systemd machine) when a
 * datagram socket listens at {@code /dev/log}, else to a file; {@code --log-file} always means the
 * file. The child's own stdout and stderr (a JVM crash, the reason a mount failed) go to the file
 * in both cases, so {@code mount} can show its last lines when the mount fails.
 *
 * @param file the log file (always set)
 * @param syslogSocket the syslog socket log events are sent to, or null for the file only
 */
record LogDestination(Path file, Path syslogSocket) {
  /** Overrides where syslog listens (default {@code /dev/log}); an empty value turns it off. */
  static final String SOCKET_ENV = "PUZZLEFS_SYSLOG_SOCKET";

  /** Tells the background child which syslog socket to send its log events to. */
  static final String CHILD_ENV = "PUZZLEFS_LOG_SYSLOG";

  /** The standard syslog socket. */
  static final Path DEV_LOG = Path.of("/dev/log");

  private static final int S_IFMT = 0170000;
  private static final int S_IFSOCK = 0140000;

  /** The destination for a background mount, as the flag and the machine decide. */
  static LogDestination choose(Path explicitFile, Path defaultFile, Map<String, String> env) {
    if (explicitFile != null) {
      return new LogDestination(explicitFile, null);
    }
    Path socket = socketPath(env);
    if (socket != null && isSocket(socket)) {
      return new LogDestination(defaultFile, socket);
    }
    return new LogDestination(defaultFile, null);
  }

  /** The syslog socket path the environment names, {@code /dev/log}, or null when turned off. */
  static Path socketPath(Map<String, String> env) {
    String s = env.get(SOCKET_ENV);
    if (s == null) {
      return DEV_LOG;
    }
    return s.isEmpty() ? null : Path.of(s);
  }

  static boolean isSocket(Path p) {
    try {
      int mode = (Integer) Files.getAttribute(p, "unix:mode");
      return (mode & S_IFMT) == S_IFSOCK;
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
  }

  /** What {@code mount} tells the user about where the log went. */
  String describe(long pid) {
    if (syslogSocket == null) {
      return "log: " + file;
    }
    return "log: syslog via "
        + syslogSocket
        + " as puzzlefs["
        + pid
        + "] (journalctl -t puzzlefs); early output in "
        + file;
  }

  /** True when log events go to syslog. */
  boolean syslog() {
    return syslogSocket != null;
  }
}
