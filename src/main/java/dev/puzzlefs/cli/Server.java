package dev.puzzlefs.cli;

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.ParseResult;

/**
 * The mount server: one resident JVM that serves every background mount and every {@code run}, so
 * that {@code puzzlefs mount} costs a request instead of two JVM starts, and every mount after the
 * first runs on code the JIT has already compiled.
 *
 * <p>The protocol works from bash, so the launcher ({@code bin/puzzlefs}) is the client and no JVM
 * starts at all. The server directory (mode 700) holds {@code pid}, {@code jar} (the size and
 * modification time of the jar it runs, and that time as its own, which the launcher compares) and
 * the FIFO {@code requests}. A client makes a directory {@code req.XXXXXXXX} in it holding {@code
 * args} (NUL-terminated: {@value #PROTOCOL}, its working directory, its pid, its umask in octal,
 * then its arguments), {@code env} (its exported variables, {@code NAME=VALUE} each NUL-terminated)
 * and the FIFOs {@code status} and {@code events}, which it keeps open for reading and writing;
 * then it writes the directory's name and a newline to {@code requests}. The server answers on
 * {@code status}, a line each: {@code a} at once (acknowledged), for a {@code run} {@code x} when
 * the client is to start the command ({@link ServerClient}), and last the exit status, by which
 * time the command's output is in {@code out} and {@code err}; once the client has shown them it
 * writes {@code done} on {@code events}, and the server removes the directory. Status {@value
 * #DECLINED} means "run it yourself": the server runs a command only when it would do exactly what
 * the client would (same environment where it matters, umask and mount namespace), so that a mount
 * means the same either way.
 */
final class Server {
  /** The exit status of a request the server leaves to the client. */
  static final int DECLINED = 125;

  /** The FIFO requests arrive on. */
  static final String REQUESTS = "requests";

  /** Where the server's log goes, in words, for the launcher's message if the server dies. */
  static final String LOG_NOTE = "log";

  /** The file holding the server's pid. */
  static final String PID = "pid";

  /** The first word of every request: the protocol's version. */
  static final String PROTOCOL = "puzzlefs-server-1";

  /**
   * The file holding the size and modification time (seconds) of the jar the server runs, so the
   * launcher can tell a server that runs an older build of it.
   */
  static final String JAR_STAMP = "jar";

  private static final Logger log = LoggerFactory.getLogger(Server.class);
  private static final Pattern REQUEST_NAME = Pattern.compile("req\\.[A-Za-z0-9]{1,64}");
  private static final Set<String> SHARED_ENV =
      Set.of(
          "PATH",
          "HOME",
          "TMPDIR",
          "XDG_CONFIG_HOME",
          "XDG_CACHE_HOME",
          "DOCKER_CONFIG",
          "REGISTRY_AUTH_FILE");

  /** Variables only the launcher reads: they may differ between client and server. */
  private static final Set<String> LAUNCHER_ENV =
      Set.of(
          "PUZZLEFS_SERVER_DIR",
          "PUZZLEFS_NO_SERVER",
          "PUZZLEFS_JAVA_OPTS",
          "PUZZLEFS_CLASSPATH",
          "PUZZLEFS_JAR",
          "PUZZLEFS_NO_CDS",
          "PUZZLEFS_MOUNT_JAVA_OPTS",
          // Logging: mounts the server serves log as the server does.
          "PUZZLEFS_LOG",
          "PUZZLEFS_LOG_LEVEL",
          LogDestination.CHILD_ENV);

  private final Path dir;
  private final int uid;
  private final Map<String, String> env;
  private final AtomicInteger requests = new AtomicInteger();
  private final IdleCollection idle = new IdleCollection();
  private final Set<ServerClient> runs = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private final Set<Thread> working = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private volatile boolean stopping;

  /** The request FIFO, open from before the pid file is written: it tells this server's pid. */
  private FileChannel requestsChannel;

  private static final Set<Path> WRITABLE = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private static final java.time.Duration STOP_WAIT = java.time.Duration.ofSeconds(40);

  private Server(Path dir, int uid, Map<String, String> env) {
    this.dir = dir;
    this.uid = uid;
    this.env = env;
  }

  /** The default server directory for this user: {@code $PUZZLEFS_SERVER_DIR} if set. */
  static Path defaultDirectory(Map<String, String> env) throws IOException {
    String given = env.get("PUZZLEFS_SERVER_DIR");
    if (given != null && !given.isEmpty()) {
      return Path.of(given).toAbsolutePath();
    }
    int uid = currentUid();
    if (uid == 0) {
      return Path.of("/run/puzzlefs/server");
    }
    String runtime = env.get("XDG_RUNTIME_DIR");
    return runtime != null && !runtime.isEmpty()
        ? Path.of(runtime, "puzzlefs-server")
        : Path.of("/tmp", "puzzlefs-server-" + uid);
  }

  static int currentUid() throws IOException {
    return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
  }

  /** The pid of the server running on {@code dir}, or -1 when none runs there. */
  static long runningPid(Path dir) {
    try {
      long pid = Long.parseLong(Files.readString(dir.resolve(PID)).strip());
      // A pid file outlives a killed server, and its pid may be another process's by now, or
      // another server's (a directory copied with its files).
      return ProcessHandle.of(pid).filter(p -> isServer(p) && reads(p, dir)).isPresent() ? pid : -1;
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  /** Whether {@code p} holds {@code dir}'s request FIFO open, as the server on dir does. */
  private static boolean reads(ProcessHandle p, Path dir) {
    Path fifo = dir.resolve(REQUESTS);
    if (!Files.exists(fifo, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (var fds = Files.newDirectoryStream(Path.of("/proc", Long.toString(p.pid()), "fd"))) {
      for (Path fd : fds) {
        try {
          if (Files.isSameFile(fd, fifo)) {
            return true;
          }
        } catch (IOException e) {
          // closed meanwhile, or not a file
        }
      }
    } catch (IOException e) {
      return false; // gone, or another user's
    }
    return false;
  }

  /**
   * Why process {@code pid} answers nothing now, or null when it can: stopped by a signal (SIGSTOP,
   * SIGTSTP, Ctrl-Z) or by a debugger, as {@code /proc/PID/stat} says.
   */
  static String notAnswering(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      int close = stat.lastIndexOf(')'); // the command's name may hold spaces and parentheses
      char state = close >= 0 && close + 2 < stat.length() ? stat.charAt(close + 2) : '?';
      return switch (state) {
        case 'T' -> "stopped by a signal (SIGSTOP or SIGTSTP): requests wait until it gets SIGCONT";
        case 't' -> "stopped by a debugger: requests wait until the debugger lets it go on";
        default -> null;
      };
    } catch (IOException e) {
      return null;
    }
  }

  private static boolean isServer(ProcessHandle p) {
    // ProcessHandle.Info drops the arguments of a long command line: read them here.
    List<String> words;
    try {
      words = nulSeparated(Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline")));
    } catch (IOException e) {
      return false;
    }
    return p.isAlive()
        && words.contains("serve")
        && words.stream().anyMatch(w -> w.contains("puzzlefs"));
  }

  /**
   * Serves requests on {@code dir} until the JVM is stopped (SIGTERM unmounts what it serves).
   * Writes {@code s} to {@code readyFifo} once it listens, or {@code f} if it cannot start.
   */
  static int run(Path dir, Path readyFifo) {
    Server server;
    try {
      server = new Server(dir, currentUid(), System.getenv());
      server.listen();
    } catch (IOException e) {
      System.err.println("puzzlefs serve: " + Main.describe(e));
      System.err.flush();
      MountSupport.signalAndWait(readyFifo, MountSupport.FAILED);
      return 1;
    }
    MountSupport.signal(readyFifo, MountSupport.READY);
    log.info("mount server {} listening on {}", ProcessHandle.current().pid(), dir);
    return server.loop();
  }

  /** Makes the directory, the FIFO and the pid file; refuses a directory another server uses. */
  private void listen() throws IOException {
    Files.createDirectories(dir.getParent());
    try {
      Files.createDirectory(
          dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    } catch (java.nio.file.FileAlreadyExistsException e) {
      checkPrivate(dir);
    }
    long other = runningPid(dir);
    if (other >= 0 && other != ProcessHandle.current().pid()) {
      throw new IOException(
          "a mount server already runs on " + dir + " (pid " + other + "); stop it first");
    }
    // What a server that died without its hook (SIGKILL) left behind.
    try (var stale = Files.newDirectoryStream(dir, "req.*")) {
      for (Path p : stale) {
        deleteTree(p);
      }
    }
    Path fifo = dir.resolve(REQUESTS);
    Files.deleteIfExists(fifo);
    Files.deleteIfExists(dir.resolve(LOG_NOTE)); // an earlier server's; `serve` writes ours
    MountSupport.makeFifo(fifo);
    // Read and write: the FIFO then never reports end-of-file when the last client closes it.
    requestsChannel = FileChannel.open(fifo, StandardOpenOption.READ, StandardOpenOption.WRITE);
    writeJarStamp();
    Path tmp = dir.resolve(PID + ".tmp");
    Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
    Files.move(tmp, dir.resolve(PID), StandardCopyOption.ATOMIC_MOVE);
    ServerOutput.install();
    MountSupport.runInProcess(this::startMount);
    // What each mount would make for itself, made once (a Vert.x instance) or ahead (jnr-fuse's
    // callbacks): milliseconds off every mount and run.
    dev.puzzlefs.registry.RegistryClient.shareOneVertx();
    dev.puzzlefs.fuse.Mounter.keepSpare();
    Runtime.getRuntime().addShutdownHook(new Thread(this::stopAll, "puzzlefs-server-exit"));
  }

  private void writeJarStamp() throws IOException {
    Path stamp = dir.resolve(JAR_STAMP);
    String classPath = System.getProperty("java.class.path", "");
    Path jar = Path.of(classPath);
    if (classPath.contains(java.io.File.pathSeparator)
        || !classPath.endsWith(".jar")
        || !Files.isRegularFile(jar)) {
      Files.deleteIfExists(stamp);
      return;
    }
    java.nio.file.attribute.FileTime modified = Files.getLastModifiedTime(jar);
    Files.writeString(stamp, Files.size(jar) + " " + modified.to(TimeUnit.SECONDS) + "\n");
    // The launcher compares the jar's time with this file's, in bash, without starting stat.
    Files.setLastModifiedTime(stamp, modified);
  }

  private void checkPrivate(Path p) throws IOException {
    if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(p + " exists and is not a directory");
    }
    int owner = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    Set<PosixFilePermission> perms = Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS);
    if (owner != uid
        || perms.contains(PosixFilePermission.GROUP_WRITE)
        || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
      throw new IOException(
          p + " must be a directory of uid " + uid + " that no one else may write to");
    }
  }

  /**
   * On SIGTERM: no new requests; every run's command gets SIGTERM (passed on as for the client's
   * own), every writable mount served here is taken down (overlay, then image), and the requests
   * under way may finish, for a while. Plain mounts are unmounted by their own hooks meanwhile.
   */
  private void stopAll() {
    stopping = true;
    for (ServerClient c : runs) {
      c.serverStopping();
    }
    for (Path mountpoint : WRITABLE) {
      // The image mount under the overlay has its own unmount-on-exit, running at the same time:
      // a try that raced it leaves the state for the next.
      for (int attempt = 1; WritableMount.isWritable(mountpoint); attempt++) {
        try {
          WritableMount.unmount(mountpoint, System.err);
        } catch (IOException e) {
          if (attempt == 5) {
            log.warn(
                "could not take down the writable mount on {}: {}", mountpoint, e.getMessage());
            break;
          }
          sleepQuietly(200);
        }
      }
    }
    long deadline = System.nanoTime() + STOP_WAIT.toNanos();
    for (Thread t : working) {
      try {
        t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    removeFiles();
  }

  private static void sleepQuietly(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Remembers a writable mount made here: the server takes it down when it stops. */
  static void servedWritable(Path mountpoint) {
    WRITABLE.add(mountpoint);
  }

  private void removeFiles() {
    try {
      if (Files.readString(dir.resolve(PID))
          .strip()
          .equals(Long.toString(ProcessHandle.current().pid()))) {
        Files.deleteIfExists(dir.resolve(PID));
        Files.deleteIfExists(dir.resolve(REQUESTS));
        Files.deleteIfExists(dir.resolve(JAR_STAMP));
        Files.deleteIfExists(dir.resolve(LOG_NOTE));
      }
    } catch (IOException e) {
      // Exiting anyway; the next server cleans up.
    }
  }

  /** Reads request names from the FIFO, one per line, and answers each on its own thread. */
  private int loop() {
    try (FileChannel fifo = requestsChannel) {
      readLines(
          fifo,
          name -> {
            Thread t =
                new Thread(
                    () -> {
                      working.add(Thread.currentThread());
                      try {
                        answer(name);
                      } finally {
                        working.remove(Thread.currentThread());
                      }
                    },
                    "puzzlefs-request-" + requests.incrementAndGet());
            t.setDaemon(true);
            t.start();
          });
      return 0;
    } catch (IOException e) {
      log.error("mount server on {} stopped reading requests: {}", dir, e.getMessage());
      return 1;
    }
  }

  /**
   * Calls {@code each} with every line read from {@code channel} (up to 256 bytes of each kept),
   * until end of input: a FIFO opened for reading and writing has none, so until it is closed.
   */
  static void readLines(FileChannel channel, java.util.function.Consumer<String> each)
      throws IOException {
    InputStream in = java.nio.channels.Channels.newInputStream(channel);
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    while ((b = in.read()) >= 0) {
      if (b != '\n') {
        if (line.size() < 256) {
          line.write(b);
        }
        continue;
      }
      String text = line.toString(StandardCharsets.UTF_8);
      line.reset();
      each.accept(text);
    }
  }

  private void answer(String name) {
    if (!REQUEST_NAME.matcher(name).matches()) {
      log.warn("ignoring a malformed request name on {}: {}", dir, name);
      return;
    }
    Path req = dir.resolve(name);
    try {
      int owner = (Integer) Files.getAttribute(req, "unix:uid", LinkOption.NOFOLLOW_LINKS);
      if (owner != uid || !Files.isDirectory(req, LinkOption.NOFOLLOW_LINKS)) {
        log.warn("ignoring request {}: not a directory of uid {}", req, uid);
        return;
      }
    } catch (IOException e) {
      log.warn("ignoring request {}: {}", req, e.getMessage());
      return;
    }
    FileChannel events = null;
    // Read and write, so the open never blocks even if the client is already gone.
    try (FileChannel status =
        FileChannel.open(
            req.resolve("status"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      status.write(ByteBuffer.wrap("a\n".getBytes(StandardCharsets.US_ASCII)));
      int exit;
      // A run is a mount too, for the idle collection: it ends with the command.
      idle.mountStarted();
      try {
        exit = execute(req, status);
      } catch (IOException | RuntimeException | Error e) {
        // Whatever went wrong, the client gets an answer: it waits for one as long as we live.
        log.error("request {} failed", req, e);
        exit = 1;
        try {
          Files.writeString(
              req.resolve("err"),
              "puzzlefs: the mount server failed on this request: " + Main.describe(e) + "\n",
              StandardOpenOption.CREATE,
              StandardOpenOption.APPEND);
        } catch (IOException again) {
          e.addSuppressed(again);
        }
      } finally {
        idle.mountEnded();
      }
      // Open before the answer: a FIFO nobody holds open loses what the client writes to it.
      events = RequestDone.openEvents(req);
      status.write(ByteBuffer.wrap((exit + "\n").getBytes(StandardCharsets.US_ASCII)));
    } catch (IOException e) {
      log.warn("could not answer request {}: {}", req, e.getMessage());
    }
    // The client says "done" on events once it has shown out and err; a client killed while it
    // waited says nothing, and its request (its environment among it) must not stay behind either.
    if (events == null) {
      events = RequestDone.openEvents(req);
    }
    if (events != null) {
      RequestDone.await(events, pidOf(req));
    }
    try {
      deleteTree(req);
    } catch (IOException e) {
      log.debug("could not remove {}: {}", req, e.getMessage());
    }
  }

  /** The client pid a request names, or -1. */
  private static long pidOf(Path req) {
    try {
      List<String> words = nulSeparated(Files.readAllBytes(req.resolve("args")));
      return words.size() > 2 && words.get(2).matches("[0-9]{1,10}")
          ? Long.parseLong(words.get(2))
          : -1;
    } catch (IOException e) {
      return -1;
    }
  }

  /** Runs the request's command with its output in {@code out} and {@code err}. */
  private int execute(Path req, FileChannel status) throws IOException {
    List<String> words = nulSeparated(Files.readAllBytes(req.resolve("args")));
    Map<String, String> clientEnv = new HashMap<>();
    for (String kv : nulSeparated(Files.readAllBytes(req.resolve("env")))) {
      int eq = kv.indexOf('=');
      if (eq > 0) {
        clientEnv.put(kv.substring(0, eq), kv.substring(eq + 1));
      }
    }
    if (words.size() < 4
        || !words.get(0).equals(PROTOCOL)
        || !Path.of(words.get(1)).isAbsolute()
        || !words.get(2).matches("[0-9]{1,10}")
        || !words.get(3).matches("[0-7]{1,4}")) {
      log.warn(
          "declined request {}: not {} (version, directory, pid, umask, arguments)", req, PROTOCOL);
      return DECLINED;
    }
    String cwd = words.get(1);
    long clientPid = Long.parseLong(words.get(2));
    String[] args = words.subList(4, words.size()).toArray(String[]::new);
    String different = differentProcess(clientPid, Integer.parseInt(words.get(3), 8));
    if (different != null) {
      log.debug("declined request {}: {}", req.getFileName(), different);
      return DECLINED;
    }
    if (stopping) {
      return DECLINED;
    }
    ServerClient client = new ServerClient(req, status, clientPid, runs);
    client.listen();
    try (ServerOutput.Sink sink =
        ServerOutput.Sink.of(
            new FileOutputStream(req.resolve("out").toFile()),
            new FileOutputStream(req.resolve("err").toFile()))) {
      ServerOutput.attach(sink);
      Caller.set(Path.of(cwd), clientEnv);
      ServerClient.CURRENT.set(client);
      try {
        String why = declineReason(args, clientEnv);
        if (why != null) {
          log.debug("declined request {}: {}", req.getFileName(), why);
          return DECLINED;
        }
        log.debug("request {}: {} in {}", req.getFileName(), String.join(" ", args), cwd);
        CommandLine cli = Main.commandLine(args);
        PrintWriter out = new PrintWriter(sink.out(), true, StandardCharsets.UTF_8);
        PrintWriter err = new PrintWriter(sink.err(), true, StandardCharsets.UTF_8);
        cli.setOut(out);
        cli.setErr(err);
        int exit = cli.execute(args);
        String stopped = client.stoppedMessage();
        if (stopped != null) {
          err.println(stopped);
        }
        out.flush();
        err.flush();
        return exit;
      } finally {
        ServerOutput.detach();
        Caller.clear();
        ServerClient.CURRENT.remove();
        client.close();
      }
    }
  }

  /**
   * Why what a client makes would differ if the server made it, or null: a umask that differs from
   * the server's (every file a JVM creates gets the process's), or another mount namespace (a mount
   * made here would not be seen there).
   */
  private static String differentProcess(long clientPid, int clientUmask) throws IOException {
    Path mine = Files.readSymbolicLink(Path.of("/proc/self/ns/mnt"));
    Path theirs;
    try {
      theirs = Files.readSymbolicLink(Path.of("/proc", Long.toString(clientPid), "ns", "mnt"));
    } catch (IOException e) {
      return "cannot see the client's mount namespace: " + e.getMessage();
    }
    if (!mine.equals(theirs)) {
      return "the client is in another mount namespace";
    }
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("Umask:")) {
        int umask = Integer.parseInt(line.substring("Umask:".length()).strip(), 8);
        return umask == clientUmask ? null : "the client's umask differs from the server's";
      }
    }
    return null;
  }

  /** Why the client should run {@code args} itself, or null when the server runs them. */
  private String declineReason(String[] args, Map<String, String> clientEnv) {
    Set<String> keys = new TreeSet<>(clientEnv.keySet());
    keys.addAll(env.keySet());
    for (String key : keys) {
      boolean shared =
          SHARED_ENV.contains(key) || (key.startsWith("PUZZLEFS_") && !LAUNCHER_ENV.contains(key));
      if (shared && !java.util.Objects.equals(clientEnv.get(key), env.get(key))) {
        return "$" + key + " differs from the server's";
      }
    }
    ParseResult parsed;
    try {
      parsed = Main.commandLine(args).parseArgs(args);
    } catch (CommandLine.ParameterException e) {
      return null; // the usage error is the answer; the server prints it as the client would
    }
    if (parsed.hasMatchedOption("--log-level")) {
      return "--log-level applies to the whole JVM";
    }
    ParseResult sub = parsed.subcommand();
    if (sub == null
        || !(sub.commandSpec().name().equals("mount") || sub.commandSpec().name().equals("run"))) {
      return "the server runs background mounts and run only";
    }
    if (sub.hasMatchedOption("-f") || sub.hasMatchedOption("--log-level")) {
      return "a foreground mount or its own log level is the client's";
    }
    if (sub.hasMatchedOption("-o")) {
      return "libfuse reports a problem with -o options on standard error, which is the server's";
    }
    return null;
  }

  private static List<String> nulSeparated(byte[] bytes) {
    List<String> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < bytes.length; i++) {
      if (bytes[i] == 0) {
        out.add(new String(bytes, start, i - start, StandardCharsets.UTF_8));
        start = i + 1;
      }
    }
    return out;
  }

  /**
   * The server's stand-in for a mount child's JVM: the foreground mount {@code args} on a thread of
   * its own, its output appended to {@code logFile} as a child's would be.
   */
  private Process startMount(List<String> args, Path logFile) throws IOException {
    ServerOutput.Sink sink =
        ServerOutput.Sink.of(
            new FileOutputStream(logFile.toFile(), true),
            new FileOutputStream(logFile.toFile(), true));
    CompletableFuture<Integer> done = new CompletableFuture<>();
    String[] argv = args.toArray(String[]::new);
    Thread t =
        new Thread(
            () -> {
              ServerOutput.attach(sink);
              idle.mountStarted();
              int exit = 1;
              try {
                CommandLine cli = Main.commandLine(argv);
                cli.setOut(new PrintWriter(sink.out(), true, StandardCharsets.UTF_8));
                cli.setErr(new PrintWriter(sink.err(), true, StandardCharsets.UTF_8));
                exit = cli.execute(argv);
              } catch (RuntimeException | Error e) {
                log.error("mount thread failed", e);
              } finally {
                ServerOutput.detach();
                sink.close();
                done.complete(exit);
                idle.mountEnded();
              }
            },
            "puzzlefs-mount-" + requests.get());
    // As SIGTERM to a child JVM: the mount stops waiting and unmounts what it mounted.
    FutureProcess mount = new FutureProcess(ProcessHandle.current().pid(), done, t::interrupt);
    t.start();
    return mount;
  }

  static void deleteTree(Path p) throws IOException {
    if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
      try (var children = Files.list(p)) {
        for (Path c : (Iterable<Path>) children::iterator) {
          deleteTree(c);
        }
      }
    }
    Files.deleteIfExists(p);
  }
}
