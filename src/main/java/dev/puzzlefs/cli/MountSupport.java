package dev.puzzlefs.cli;

import dev.puzzlefs.fuse.Mount;
import dev.puzzlefs.fuse.Mounter;
import dev.puzzlefs.reader.Image;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The two halves of {@code mount}: the foreground mount that serves until unmounted, and the
 * background mode that starts a second JVM running the foreground mount and waits for its word.
 *
 * <p>A JVM cannot fork itself, so {@code mount} without {@code -f} runs the same java binary with
 * the same class path in a new session ({@code setsid}), adds {@code -f -i FIFO} to its arguments,
 * and reads one byte from that private FIFO: {@code s} when the mount answers, {@code f} when it
 * failed. The child's output goes to a log file, so the user can find out later what happened.
 */
public final class MountSupport {
  /** The main class the background child runs. */
  public static final String MAIN_CLASS = "dev.puzzlefs.cli.Main";

  /** The byte written to the readiness FIFO once the mount answers. */
  public static final byte READY = 's';

  /** The byte written to the readiness FIFO when the mount failed. */
  public static final byte FAILED = 'f';

  private static final Logger log = LoggerFactory.getLogger(MountSupport.class);
  private static final Duration FIFO_WRITE_WAIT = Duration.ofSeconds(30);
  private static final Path SETSID = Path.of("/usr/bin/setsid");
  private static final int LOG_TAIL_LINES = 20;

  private MountSupport() {}

  /**
   * Mounts {@code image} on {@code mountpoint} and serves it until it is unmounted: by {@code
   * fusermount -u} from outside (returns 0), or by SIGTERM/SIGINT, which unmount through a shutdown
   * hook. When {@code readyFifo} is not null, writes {@code s} to it once the mount answers, or
   * {@code f} if mounting failed. The image is not closed.
   *
   * @return the exit status: 0 after a clean unmount, 1 if the mount failed
   */
  public static int runForeground(
      Image image, Path mountpoint, List<String> options, Path readyFifo) {
    Mount mount;
    try {
      mount = Mounter.mount(image, mountpoint, options, Mounter.DEFAULT_READY_TIMEOUT);
    } catch (IOException | RuntimeException e) {
      System.err.println("puzzlefs: " + e.getMessage());
      awaitSignal(signal(readyFifo, FAILED));
      return 1;
    }

    java.util.concurrent.atomic.AtomicBoolean statsLogged =
        new java.util.concurrent.atomic.AtomicBoolean();
    Thread unmountOnExit =
        new Thread(
            () -> {
              try {
                mount.close();
              } catch (IOException e) {
                System.err.println("puzzlefs: " + e.getMessage());
              }
              logFinalStats(image, mount.mountpoint(), statsLogged);
            },
            "puzzlefs-unmount");
    Runtime.getRuntime().addShutdownHook(unmountOnExit);
    signal(readyFifo, READY);
    log.info("mounted on {}", mount.mountpoint());

    try {
      mount.awaitUnmounted();
    } catch (IOException e) {
      System.err.println("puzzlefs: " + e.getMessage());
      return 1;
    } catch (InterruptedException e) {
      // In the mount server, the thread's stand-in for SIGTERM: take the mount down.
      try {
        mount.close();
      } catch (IOException again) {
        System.err.println("puzzlefs: " + again.getMessage());
      }
      removeHook(unmountOnExit);
      logFinalStats(image, mount.mountpoint(), statsLogged);
      Thread.currentThread().interrupt();
      return 1;
    }
    removeHook(unmountOnExit);
    log.info("unmounted {}", mount.mountpoint());
    logFinalStats(image, mount.mountpoint(), statsLogged);
    return 0;
  }

  private static void removeHook(Thread hook) {
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      // The JVM is already shutting down; the hook is running or has run.
    }
  }

  /**
   * Logs the mount's counters once, however it ended. Under a lock: on SIGTERM the main thread and
   * the shutdown hook both get here, and the JVM halts once the hook returns, so the hook must wait
   * until the line is written, whichever thread writes it.
   */
  private static void logFinalStats(
      Image image, Path mountpoint, java.util.concurrent.atomic.AtomicBoolean done) {
    synchronized (done) {
      if (done.compareAndSet(false, true)) {
        log.info("counters of the mount on {}: {}", mountpoint, image.stats());
      }
    }
  }

  /**
   * Writes {@code status} to {@code fifo} on a daemon thread, since opening a FIFO for writing
   * blocks until a reader opens it. Does nothing for a null FIFO.
   */
  static CompletableFuture<Void> signal(Path fifo, byte status) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    if (fifo == null) {
      done.complete(null);
      return done;
    }
    Thread writer =
        new Thread(
            () -> {
              try (OutputStream out = new FileOutputStream(fifo.toFile())) {
                out.write(status);
                done.complete(null);
              } catch (IOException e) {
                System.err.println("puzzlefs: could not write to " + fifo + ": " + e.getMessage());
                done.completeExceptionally(e);
              }
            },
            "puzzlefs-ready-signal");
    writer.setDaemon(true);
    writer.start();
    return done;
  }

  /** {@link #signal} and wait (bounded) until the byte is written, for callers about to exit. */
  static void signalAndWait(Path fifo, byte status) {
    awaitSignal(signal(fifo, status));
  }

  private static void awaitSignal(CompletableFuture<Void> signal) {
    try {
      signal.get(FIFO_WRITE_WAIT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // Already reported, or nobody is reading: the exit status still says it failed.
    }
  }

  /**
   * Starts {@code java ... dev.puzzlefs.cli.Main childArgs -f -i FIFO} in a new session with its
   * output appended to {@code logFile}, and waits at most {@code timeout} for it to report.
   *
   * @return 0 when the child reported the mount ready; 1 when it reported failure, closed the FIFO,
   *     exited, or did not report in time (the reason and the log's last lines go to stderr)
   */
  public static int spawnBackground(List<String> childArgs, Path logFile, Duration timeout) {
    return spawnBackground(MAIN_CLASS, childArgs, logFile, timeout, System.err, Map.of(), null);
  }

  /**
   * {@link #spawnBackground(List, Path, Duration)} with {@code env} added to the child's
   * environment; {@code onReady} is given the child's pid once it reported the mount ready.
   */
  static int spawnBackground(
      List<String> childArgs,
      Path logFile,
      Duration timeout,
      Map<String, String> env,
      java.util.function.LongConsumer onReady) {
    return spawnBackground(MAIN_CLASS, childArgs, logFile, timeout, System.err, env, onReady);
  }

  /** {@link #spawnBackground(List, Path, Duration)} with another main class (for tests). */
  static int spawnBackground(
      String mainClass, List<String> childArgs, Path logFile, Duration timeout, PrintStream err) {
    return spawnBackground(mainClass, childArgs, logFile, timeout, err, Map.of(), null);
  }

  private static int spawnBackground(
      String mainClass,
      List<String> childArgs,
      Path logFile,
      Duration timeout,
      PrintStream err,
      Map<String, String> env,
      java.util.function.LongConsumer onReady) {
    Path dir = null;
    Process child = null;
    try {
      dir = Files.createTempDirectory("puzzlefs-mount-");
      Path fifo = makeFifo(dir.resolve("ready"));
      CompletableFuture<Integer> word = readOneByte(fifo);
      // The first background mount on a machine makes the log directory (~/.cache/puzzlefs/logs).
      Path logDir = logFile.toAbsolutePath().getParent();
      if (logDir != null) {
        Files.createDirectories(logDir);
      }
      long logStart = Files.exists(logFile) ? Files.size(logFile) : 0;
      child = start(mainClass, childArgs, fifo, logFile, env);
      // Ctrl-C or SIGTERM before the child reported: take the half-started mount down with us.
      Process started = child;
      Path scratch = dir;
      Thread cancel =
          new Thread(
              () -> {
                started.destroy();
                deleteQuietly(scratch);
              },
              "puzzlefs-cancel-mount");
      Runtime.getRuntime().addShutdownHook(cancel);
      try {
        String what =
            !childArgs.isEmpty() && childArgs.get(0).equals("serve")
                ? "the mount server"
                : "the mount";
        int status = awaitWord(child, word, new LogView(logFile, logStart), timeout, err, what);
        if (status == 0 && onReady != null) {
          onReady.accept(child.pid());
        }
        return status;
      } finally {
        try {
          Runtime.getRuntime().removeShutdownHook(cancel);
        } catch (IllegalStateException shuttingDown) {
          // the hook is already running
        }
      }
    } catch (IOException e) {
      err.println("puzzlefs: could not start the background mount: " + e.getMessage());
      if (child != null) {
        child.destroy();
      }
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      if (child != null) {
        child.destroy();
      }
      return 1;
    } finally {
      deleteQuietly(dir);
    }
  }

  static Path makeFifo(Path fifo) throws IOException {
    Process mkfifo =
        new ProcessBuilder("mkfifo", "-m", "600", fifo.toString())
            .redirectErrorStream(true)
            .start();
    String output = new String(mkfifo.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int exit;
    try {
      exit = mkfifo.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      mkfifo.destroy();
      throw new IOException("interrupted while making " + fifo, e);
    }
    if (exit != 0) {
      throw new IOException("mkfifo " + fifo + " failed: " + output.strip());
    }
    return fifo;
  }

  /** Reads the child's one byte on a daemon thread: the byte, or -1 if it closed without one. */
  private static CompletableFuture<Integer> readOneByte(Path fifo) {
    CompletableFuture<Integer> word = new CompletableFuture<>();
    Thread reader =
        new Thread(
            () -> {
              try (InputStream in = new FileInputStream(fifo.toFile())) {
                word.complete(in.read());
              } catch (IOException e) {
                word.completeExceptionally(e);
              }
            },
            "puzzlefs-ready-reader");
    reader.setDaemon(true);
    reader.start();
    return word;
  }

  /** Starts a background mount's foreground half somewhere other than a new JVM. */
  interface InProcess {
    /**
     * Starts {@code args} (a {@code mount ... -f -i FIFO} command line) with its output appended to
     * {@code logFile}.
     */
    Process start(List<String> args, Path logFile) throws IOException;
  }

  private static volatile InProcess inProcess;

  /** From now on background mounts run through {@code starter}: the mount server's threads. */
  static void runInProcess(InProcess starter) {
    inProcess = starter;
  }

  /** True in the mount server, where background mounts are threads of this JVM. */
  static boolean inServer() {
    return inProcess != null;
  }

  private static Process start(
      String mainClass, List<String> childArgs, Path fifo, Path logFile, Map<String, String> env)
      throws IOException {
    InProcess here = inProcess;
    if (here != null && mainClass.equals(MAIN_CLASS)) {
      List<String> args = new ArrayList<>(childArgs);
      args.addAll(List.of("-f", "-i", fifo.toString()));
      return here.start(args, logFile);
    }
    List<String> command = new ArrayList<>();
    if (Files.isExecutable(SETSID)) {
      command.add(SETSID.toString());
      command.add("--wait");
    }
    command.add(javaBinary());
    command.add("--enable-native-access=ALL-UNNAMED");
    command.add("--add-opens");
    command.add("java.base/sun.nio.fs=ALL-UNNAMED");
    command.addAll(childJvmOptions());
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(mainClass);
    command.addAll(childArgs);
    command.addAll(List.of("-f", "-i", fifo.toString()));
    File log = logFile.toFile();
    ProcessBuilder builder = new ProcessBuilder(command);
    builder.environment().putAll(env);
    // glibc gives each thread that mallocs an arena of its own; the FUSE threads would make that
    // tens of megabytes of resident memory a mount does not need.
    builder.environment().putIfAbsent("MALLOC_ARENA_MAX", "2");
    return builder
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log))
        .redirectError(ProcessBuilder.Redirect.appendTo(log))
        .start();
  }

  /** Heap the mount child may use; set from the memory cache size before spawning. */
  private static volatile long childHeapBytes = 64L << 20;

  /**
   * Sizes the mount child's heap for a memory cache of {@code memoryCacheBytes}: the cache plus
   * room for reads in flight (more for a registry image), so a mount's footprint follows its
   * configuration rather than the JVM's default of a quarter of the machine's memory.
   */
  static void sizeChildFor(long memoryCacheBytes, boolean remote) {
    // A registry mount also holds HTTP buffers and fetches in flight.
    long headroom = remote ? 64L << 20 : 48L << 20;
    long cache = Math.min(Math.max(0, memoryCacheBytes), Config.MAX_MEMORY_BYTES);
    childHeapBytes = Math.max(64L << 20, cache + headroom);
  }

  /** Heap options of the child besides {@code -Xmx}: none for a mount, see {@link #sizeServer}. */
  private static volatile List<String> childHeapOptions = List.of();

  /** Back to a mount's child options (for tests that sized a server). */
  static void sizeChildAsAMount() {
    childHeapOptions = List.of();
    sizeChildFor(32L << 20, true);
  }

  /** Fails saying whether {@code mountpoint} is missing or not a directory; passes a directory. */
  static void requireDirectory(Path mountpoint) throws java.io.IOException {
    if (!java.nio.file.Files.isDirectory(mountpoint)) {
      throw new java.io.IOException(
          "mount point "
              + mountpoint
              + (java.nio.file.Files.exists(mountpoint)
                  ? " is not a directory"
                  : " does not exist; create the directory first"));
    }
  }

  /**
   * Sizes the mount server's heap: up to {@code maxBytes} for the mounts it will serve, starting
   * small and given back after a full collection (the server runs one when its last mount ends), so
   * that its footprint follows what it serves rather than the largest read it ever served.
   */
  static void sizeServer(long maxBytes) {
    childHeapBytes = maxBytes;
    // A fixed 32 MiB young generation: reads allocate a chunk's bytes each, and a young generation
    // that shrank with the heap made a 1 GiB read collect so often it took 1.6 times as long. The
    // old generation keeps 40% free after a collection: a run promotes the image's metadata and
    // the chunks in flight (10 to 20 MB that die when it ends), and with 10% free nearly every run
    // stopped every thread for a full collection or two (25 ms each; by hand, 10 full collections
    // in 8 runs of python3 against 5). The peak RSS reading every file locally stayed 133 MiB (134
    // with 10% and 30%); reading every file lazily, it grew from 262 to about 310 MB. The heap
    // shrinks to its target at once (not in steps over several full collections), so the idle
    // collection gives back what mounts grew: idle RSS after three lazy reads 175 to 200 MB,
    // against 235 to 245 with the old ratios and 275 to 295 with these in steps.
    List<String> options =
        new ArrayList<>(
            List.of(
                "-Xms48m",
                "-Xmn32m",
                "-XX:MinHeapFreeRatio=40",
                "-XX:MaxHeapFreeRatio=70",
                "-XX:-ShrinkHeapInSteps"));
    // glibc keeps freed native memory (zstd contexts, I/O buffers) in its arenas; trimming them
    // now and then took 10 MB off the idle server. The option exists from 17.0.10 on.
    if (Runtime.version().compareTo(Runtime.Version.parse("17.0.10")) >= 0) {
      options.addAll(
          List.of("-XX:+UnlockExperimentalVMOptions", "-XX:TrimNativeHeapInterval=2000"));
    }
    childHeapOptions = List.copyOf(options);
  }

  /** C2 inlining limits of the mount child; see {@link #childJvmOptions}. */
  static final List<String> INLINING =
      List.of(
          "-XX:MaxInlineLevel=6",
          "-XX:InlineSmallCode=500",
          "-XX:MaxInlineSize=20",
          "-XX:FreqInlineSize=100");

  /**
   * JVM options of the mount child: the serial collector (a mount's heap is small and its work is
   * I/O; a concurrent collector's threads and regions would only add footprint), a heap bounded by
   * {@link #sizeChildFor}, shallower C2 inlining ({@link #INLINING}), then anything in {@code
   * PUZZLEFS_MOUNT_JAVA_OPTS}, which wins.
   */
  static List<String> childJvmOptions() {
    return childJvmOptions(System.getenv("PUZZLEFS_MOUNT_JAVA_OPTS"));
  }

  /** As {@link #childJvmOptions()}, with {@code extra} for {@code PUZZLEFS_MOUNT_JAVA_OPTS}. */
  static List<String> childJvmOptions(String extra) {
    List<String> options = new ArrayList<>();
    options.add("-XX:+UseSerialGC");
    // A JVM out of memory answers FUSE requests wrongly (libfuse's path table loses nodes, and
    // files that exist come back ENOENT); a mount that died says so ("transport endpoint is not
    // connected") and umount cleans it up.
    options.add("-XX:+ExitOnOutOfMemoryError");
    options.add("-Xmx" + (childHeapBytes >> 20) + "m");
    List<String> extras =
        extra == null || extra.isBlank() ? List.of() : List.of(extra.trim().split("\\s+"));
    boolean ownRatios = extras.stream().anyMatch(o -> o.matches("-XX:M(in|ax)HeapFreeRatio=.*"));
    for (String o : childHeapOptions) {
      // The JVM refuses a minimum free ratio above the maximum: one given replaces both of ours.
      if (!(ownRatios && o.matches("-XX:M(in|ax)HeapFreeRatio=.*"))) {
        options.add(o);
      }
    }
    // Shallower inlining: C2 otherwise spends over a second of CPU, while a fresh mount serves its
    // first big read, inlining whole CompletableFuture and Caffeine chains into the per-chunk glue
    // (CachingChunkSource.fetch alone took 230 ms to compile). The per-byte work is intrinsics
    // (sha256, array copies) that inlining does not change: a first 1 GiB read took 13% less CPU
    // (median of 5, 3.55 s against 4.09 s), a second read of the same mount the same.
    options.addAll(INLINING);
    // The launcher's class-data sharing archive (bin/puzzlefs, StartupTraining): the daemon loads
    // the same classes, so it starts faster with it; a stale archive is dropped without a word.
    String archive = System.getProperty("puzzlefs.cds");
    if (archive != null && !archive.isBlank()) {
      options.add("-XX:SharedArchiveFile=" + archive);
      options.add("-Xlog:cds=off");
      options.add("-Xlog:cds+dynamic=off");
    }
    options.addAll(extras);
    return options;
  }

  private static String javaBinary() {
    return ProcessHandle.current()
        .info()
        .command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
  }

  /** The part of a log file this child wrote: from {@code start} on. */
  private record LogView(Path file, long start) {}

  private static int awaitWord(
      Process child,
      CompletableFuture<Integer> word,
      LogView logFile,
      Duration timeout,
      PrintStream err,
      String what)
      throws InterruptedException {
    try {
      CompletableFuture.anyOf(word, child.onExit()).get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (ExecutionException e) {
      // The reader failed; reported below.
    } catch (TimeoutException e) {
      child.destroy();
      fail(err, "no word from " + what + " within " + timeout.toSeconds() + " s", logFile);
      return 1;
    }
    Integer got = wordAfterExit(word);
    if (got != null && got == READY) {
      return 0;
    }
    String reason;
    if (got != null && got == FAILED) {
      reason = what + " failed";
      // Let the child finish writing why before its log is shown.
      child.onExit().completeOnTimeout(child, 5, TimeUnit.SECONDS).join();
    } else if (got != null && got >= 0) {
      reason = what + " process sent an unknown status byte " + got;
    } else if (!child.isAlive()) {
      reason = what + " process exited with status " + child.exitValue();
    } else {
      reason = what + " process closed its readiness pipe without a word";
      child.destroy();
    }
    fail(err, reason, logFile);
    return 1;
  }

  /** The byte read, allowing the reader a moment when the child wrote it just before exiting. */
  private static Integer wordAfterExit(CompletableFuture<Integer> word)
      throws InterruptedException {
    try {
      return word.get(1, TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      return null;
    }
  }

  private static void fail(PrintStream err, String reason, LogView logFile) {
    err.println("puzzlefs: " + reason + "; last lines of " + logFile.file() + ":");
    for (String line : tail(logFile)) {
      err.println("  " + line);
    }
  }

  private static Deque<String> tail(LogView log) {
    Deque<String> last = new ArrayDeque<>();
    try {
      byte[] all = Files.readAllBytes(log.file());
      int from = (int) Math.min(log.start(), all.length);
      String text = new String(all, from, all.length - from, StandardCharsets.UTF_8);
      for (String line : text.lines().toList()) {
        last.addLast(line);
        if (last.size() > LOG_TAIL_LINES) {
          last.removeFirst();
        }
      }
    } catch (IOException e) {
      last.add("(could not read the log: " + e.getMessage() + ")");
    }
    return last;
  }

  private static void deleteQuietly(Path dir) {
    if (dir == null) {
      return;
    }
    try {
      Files.deleteIfExists(dir.resolve("ready"));
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      log.debug("could not delete {}: {}", dir, e.getMessage());
    }
  }
}
