package dev.puzzlefs.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code puzzlefs serve [-f] [-i FIFO] [--dir DIR] | --stop | --status}. */
@Command(
    mixinStandardHelpOptions = true,
    name = "serve",
    description = {
      "Run the mount server: one resident JVM that serves every background mount and every run of"
          + " this user, so that 'puzzlefs mount' (through bin/puzzlefs) answers in milliseconds"
          + " instead of starting two JVMs, and every mount after the first runs compiled code.",
      "While a server runs on DIR, bin/puzzlefs sends it each background mount and run whose"
          + " environment matches the server's (PUZZLEFS_* but the log level, HOME, PATH, TMPDIR,"
          + " XDG and registry credential variables) and that sets no --log-level; anything else"
          + " runs as without a server, as does everything with PUZZLEFS_NO_SERVER=1 or after the"
          + " jar was rebuilt. For run, the launcher starts the container's command itself (your"
          + " terminal and standard streams) and passes SIGINT and SIGTERM on. Mounts log to their"
          + " usual log file (registry warnings other than retries go to the server's log);"
          + " 'puzzlefs umount' works as for any mount. Stopping the server"
          + " unmounts what it serves.",
      "Without -f it returns once the server listens; --stop ends it (SIGTERM) and waits."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs serve                 # returns once it listens",
      "  puzzlefs mount images/ v1 /mnt/v1   # now served by it",
      "  puzzlefs serve --status",
      "  puzzlefs serve --stop"
    })
final class ServerCommand implements Callable<Integer> {
  private static final Duration STOP_WAIT = Duration.ofSeconds(60);
  private static final long SERVER_HEAP = 1L << 30;

  @Option(names = "-f", description = "stay in the foreground (for a service manager)")
  boolean foreground;

  @Option(names = "-i", paramLabel = "FIFO", description = "write 's' (ready) or 'f' to FIFO")
  Path readyFifo;

  @Option(
      names = "--dir",
      paramLabel = "DIR",
      description =
          "the server's directory (default: $PUZZLEFS_SERVER_DIR, else /run/puzzlefs/server for"
              + " root, else $XDG_RUNTIME_DIR/puzzlefs-server or /tmp/puzzlefs-server-UID)")
  Path dir;

  @Option(
      names = "--log-file",
      paramLabel = "FILE",
      description =
          "the server's log file when there is no syslog (default: logs/server.log in the cache"
              + " directory for the default DIR, logs/server-DIR.log with DIR's slashes as '_' for"
              + " another)")
  Path logFile;

  @Option(names = "--stop", description = "stop the server on DIR, unmounting what it serves")
  boolean stop;

  @Option(
      names = "--status",
      description =
          "say whether a server runs on DIR (exit 0) or not (1), and whether it is stopped"
              + " (SIGSTOP) and answers nothing")
  boolean status;

  @Override
  public Integer call() throws Exception {
    Path where = (dir != null ? dir : Server.defaultDirectory(System.getenv())).toAbsolutePath();
    long pid = Server.runningPid(where);
    if (status) {
      if (pid < 0) {
        System.err.println("puzzlefs serve: no mount server runs on " + where);
        return 1;
      }
      System.out.println("mount server pid " + pid + " on " + where);
      String why = Server.notAnswering(pid);
      if (why != null) {
        System.err.println("puzzlefs serve: the mount server (pid " + pid + ") is " + why);
      }
      return 0;
    }
    if (stop) {
      return stop(where, pid);
    }
    if (foreground) {
      String syslog = System.getenv(LogDestination.CHILD_ENV);
      if (syslog != null && !syslog.isEmpty()) {
        SyslogAppender.install(Path.of(syslog));
      }
      return Server.run(where, readyFifo);
    }
    if (pid >= 0) {
      System.err.println(
          "puzzlefs serve: a mount server already runs on " + where + " (pid " + pid + ")");
      return 1;
    }
    Config config = Config.load(null);
    LogDestination dest =
        LogDestination.choose(
            logFile,
            config.cacheDirectory().resolve("logs").resolve(defaultLogName(where)),
            System.getenv());
    Files.createDirectories(dest.file().toAbsolutePath().getParent());
    Map<String, String> env = new HashMap<>();
    if (dest.syslog()) {
      env.put(LogDestination.CHILD_ENV, dest.syslogSocket().toString());
    }
    if (Logging.current() != null) {
      env.put(Logging.ENV, Logging.current());
    }
    MountSupport.sizeServer(SERVER_HEAP);
    int started =
        MountSupport.spawnBackground(
            List.of("serve", "--dir", where.toString()),
            dest.file(),
            Duration.ofSeconds(config.mount.readyTimeoutSeconds),
            env,
            child -> {
              String log = dest.describe(Server.runningPid(where));
              System.err.println(
                  "puzzlefs: mount server listening on "
                      + where
                      + " (pid "
                      + Server.runningPid(where)
                      + "); "
                      + log);
              // For the launcher's word when the server dies under a request.
              try {
                Files.writeString(where.resolve(Server.LOG_NOTE), log + "\n");
              } catch (java.io.IOException e) {
                // the message then just says that the server's log says why
              }
            });
    MountSupport.signalAndWait(readyFifo, started == 0 ? MountSupport.READY : MountSupport.FAILED);
    return started;
  }

  /** One log file per server directory: servers on two directories do not share a log. */
  static String defaultLogName(Path where) throws java.io.IOException {
    Map<String, String> env = new HashMap<>(System.getenv());
    env.remove("PUZZLEFS_SERVER_DIR");
    if (where.equals(Server.defaultDirectory(env))) {
      return "server.log";
    }
    String name = where.normalize().toString().replaceAll("^/+", "").replaceAll("[^\\w.-]+", "_");
    if (name.length() > 120) {
      name = name.substring(name.length() - 120); // its end tells directories apart best
    }
    return "server-" + name + ".log";
  }

  private static int stop(Path where, long pid) throws InterruptedException {
    if (pid < 0) {
      System.err.println("puzzlefs serve: no mount server runs on " + where);
      return 1;
    }
    Optional<ProcessHandle> server = ProcessHandle.of(pid);
    if (server.isEmpty()) {
      return 0;
    }
    server.get().destroy();
    if (Server.notAnswering(pid) != null) {
      // Stopped (SIGSTOP, Ctrl-Z): SIGTERM waits until it goes on, so let it, as systemd does.
      ContainerRuntime.kill(pid, "CONT");
    }
    try {
      server.get().onExit().get(STOP_WAIT.toSeconds(), TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      System.err.println(
          "puzzlefs serve: the mount server (pid "
              + pid
              + ") did not exit within "
              + STOP_WAIT.toSeconds()
              + " s of SIGTERM");
      return 1;
    }
    System.err.println("puzzlefs: stopped the mount server (pid " + pid + ") on " + where);
    return 0;
  }
}
