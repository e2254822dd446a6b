package dev.puzzlefs.cli;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.fuse.Mounter;
import dev.puzzlefs.reader.PrefetchList;
import dev.puzzlefs.reader.Prefetcher;
import dev.puzzlefs.reader.ReadRecorder;
import dev.puzzlefs.registry.ImageReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code puzzlefs mount [-f] [-i FIFO] [-o OPTS] (OCI_DIR TAG | docker://REF) MOUNTPOINT}.
 *
 * <p>Without {@code -f} the mount runs in a second JVM (a JVM cannot fork itself); this command
 * returns once that child reports the mount ready, or fails with the child's reason.
 */
@Command(
    mixinStandardHelpOptions = true,
    name = "mount",
    description =
        "Mount an image read-only with FUSE, from a local OCI layout (OCI_DIR TAG or "
            + "oci:OCI_DIR:TAG) or straight from a registry (docker://HOST[:PORT]/REPO[:TAG]) "
            + "before any pull. Without -f it returns once the mount answers, and the mount "
            + "logs to syslog when /dev/log exists, else to a file; it prints which. With -f it "
            + "logs to stderr and unmounts on Ctrl-C or SIGTERM.",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs mount images/ v1 /mnt/v1",
      "  puzzlefs mount --plain-http docker://127.0.0.1:5000/app:v1 /mnt/v1",
      "  puzzlefs mount -f --log-level debug oci:images/:v1 /mnt/v1"
    })
final class MountCommand implements Callable<Integer> {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(MountCommand.class);
  private static final int PREFETCH_IN_FLIGHT = 4;

  /**
   * A local image's memory cache: none. Its blobs are files the page cache keeps, the kernel keeps
   * what the mount served ({@code kernel_cache}), and the image's last few chunks are held for
   * adjacent reads anyway; a cache of verified chunks here only outlived young collections and
   * filled the old generation during a big read (a 1 GiB read ran 22 full collections, 0.45 s).
   */
  private static final long LOCAL_MEMORY_CACHE = 0;

  @Spec CommandSpec spec;

  @Parameters(
      arity = "2..3",
      paramLabel = "IMAGE MOUNTPOINT",
      hideParamSyntax = true,
      description =
          "IMAGE MOUNTPOINT: IMAGE is OCI_DIR TAG, oci:OCI_DIR[:TAG] or"
              + " docker://HOST[:PORT]/REPO[:TAG]")
  List<String> args;

  @Option(names = "-f", description = "stay in the foreground until unmounted")
  boolean foreground;

  @Option(names = "-i", paramLabel = "FIFO", description = "write 's' (ready) or 'f' to FIFO")
  Path readyFifo;

  @Option(
      names = "-o",
      split = ",",
      paramLabel = "OPTS",
      description = "extra FUSE mount options (comma separated)")
  List<String> options = new ArrayList<>();

  @Option(
      names = "--digest",
      paramLabel = "HEX",
      description = "the manifest's fs-verity digest: verify every blob's fs-verity digest too")
  String digest;

  @Option(names = "--cache-dir", paramLabel = "DIR", description = "disk cache of fetched chunks")
  Path cacheDir;

  @Option(names = "--cache-memory", paramLabel = "BYTES", description = "memory cache size")
  Long cacheMemory;

  @Option(names = "--cache-disk", paramLabel = "BYTES", description = "disk cache budget")
  Long cacheDisk;

  @Option(
      names = "--read-timeout",
      paramLabel = "SECONDS",
      description = "how long a read waits for its chunks before failing with EIO")
  Integer readTimeout;

  @Option(
      names = "--log-file",
      paramLabel = "FILE",
      description =
          "background mount's log (default: syslog when /dev/log exists, else"
              + " <cache dir>/logs/mount<MOUNTPOINT>.log)")
  Path logFile;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Option(
      names = "--prefetch",
      paramLabel = "none|all",
      defaultValue = "none",
      description =
          "all: fetch the whole image into the cache in the background once mounted, reads first;"
              + " none: only what reads and their readahead need")
  String prefetch = "none";

  @Option(
      names = "--prefetch-list",
      paramLabel = "FILE",
      description =
          "fetch the files listed in FILE first, all at once, in that order, then (behind reads)"
              + " everything under the directories it lists: one path per line from the image's"
              + " root, optionally a tab and the byte ranges wanted (START+LENGTH,...), as"
              + " --record-prefetch-list writes")
  Path prefetchList;

  @Mixin PublishedListOption publishedList;

  @Option(
      names = "--record-prefetch-list",
      paramLabel = "FILE",
      description =
          "write to FILE which files (and which parts of them) the mount served, in first-read"
              + " order, a list for --prefetch-list: kept up to date while mounted")
  Path recordPrefetchList;

  @Option(
      names = "--metrics",
      paramLabel = "HOST:PORT",
      description =
          "serve the mount's counters in the Prometheus text format at http://HOST:PORT/metrics")
  String metrics;

  @Option(
      names = "--writable",
      description =
          "mount a kernel overlay over the read-only image so MOUNTPOINT accepts writes; the"
              + " image and the cache are never written (background mounts only)")
  boolean writable;

  @Option(
      names = "--persist",
      paramLabel = "DIR",
      description =
          "with --writable: keep the written files in DIR/upper (and DIR/work) across mounts"
              + " (default: a private directory removed at unmount)")
  Path persist;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    ImageArgs image = ImageArgs.parse(spec.commandLine(), args, 1, "MOUNTPOINT");
    if (digest != null && !digest.matches("[0-9a-fA-F]{64}")) {
      throw new ParameterException(
          spec.commandLine(), "--digest takes 64 hex characters, got '" + digest + "'");
    }
    if (cacheMemory != null && (cacheMemory < 0 || cacheMemory > Config.MAX_MEMORY_BYTES)) {
      throw new ParameterException(
          spec.commandLine(),
          "--cache-memory must be between 0 and "
              + Config.MAX_MEMORY_BYTES
              + ", got "
              + cacheMemory);
    }
    if (cacheDisk != null && cacheDisk < 0) {
      throw new ParameterException(
          spec.commandLine(), "--cache-disk must not be negative, got " + cacheDisk);
    }
    if (readTimeout != null && (readTimeout < 1 || readTimeout > Config.MAX_SECONDS)) {
      throw new ParameterException(
          spec.commandLine(),
          "--read-timeout must be between 1 and " + Config.MAX_SECONDS + ", got " + readTimeout);
    }
    if (!prefetch.equals("none") && !prefetch.equals("all")) {
      throw new ParameterException(
          spec.commandLine(), "--prefetch takes none or all, got '" + prefetch + "'");
    }
    PrefetchList.Contents listed =
        prefetchList == null
            ? PrefetchList.Contents.EMPTY
            : PrefetchList.load(prefetchList, "--prefetch-list");
    List<PrefetchList.Entry> prefetchPaths = listed.entries();
    PrefetchList.checkWritable(recordPrefetchList, "--record-prefetch-list");
    if (metrics != null) {
      try {
        MetricsServer.parse(metrics);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(spec.commandLine(), e.getMessage());
      }
    }
    if (persist != null && !writable) {
      throw new ParameterException(spec.commandLine(), "--persist needs --writable");
    }
    if (writable && foreground) {
      throw new ParameterException(
          spec.commandLine(), "--writable mounts run in the background; leave out -f");
    }
    Config config = Config.load(configFile);
    if (writable) {
      Path mountpoint = Caller.path(args.get(args.size() - 1));
      MountSupport.sizeChildFor(memoryCache(image.remote(), config), image.remote());
      return WritableMount.mountInBackground(
          this::childArgs,
          mountpoint,
          persist,
          logFile != null ? logFile : defaultLog(cacheDirectory(config), mountpoint),
          Duration.ofSeconds(config.mount.readyTimeoutSeconds),
          /* containerRoot= */ false);
    }
    if (!foreground) {
      return background(config, image);
    }
    Mounter.prepareInBackground();
    Path mountpoint = Caller.path(image.rest().get(0));
    String syslog = System.getenv(LogDestination.CHILD_ENV);
    if (syslog != null && !syslog.isEmpty()) {
      SyslogAppender.install(Path.of(syslog));
    }
    OpenedImage opened;
    try {
      opened = open(image, config, listed.chunks());
    } catch (Exception e) {
      // Say why before the word, so a waiting parent finds the reason in the log.
      System.err.println("puzzlefs mount: " + Main.describe(e));
      System.err.flush();
      MountSupport.signalAndWait(readyFifo, MountSupport.FAILED);
      return 1;
    }
    MetricsServer metricsServer = null;
    if (metrics != null) {
      try {
        metricsServer =
            MetricsServer.start(metrics, opened.image(), mountpoint.toAbsolutePath().toString());
      } catch (java.io.IOException e) {
        System.err.println("puzzlefs mount: " + Main.describe(e));
        System.err.flush();
        opened.close();
        MountSupport.signalAndWait(readyFifo, MountSupport.FAILED);
        return 1;
      }
    }
    Prefetcher prefetcher = null;
    if (prefetch.equals("all") || !prefetchPaths.isEmpty()) {
      prefetcher =
          Prefetcher.plan(
                  opened.image(),
                  prefetchPaths,
                  "--prefetch-list " + prefetchList,
                  prefetch.equals("all"),
                  PREFETCH_IN_FLIGHT)
              .start();
    }
    ReadRecorder recorder = null;
    java.util.concurrent.ScheduledExecutorService recordWriter = null;
    if (recordPrefetchList != null) {
      recorder = new ReadRecorder();
      opened.image().recordReads(recorder);
      recordWriter = startRecordWriter(recorder, opened, image.display());
    }
    try (opened) {
      return MountSupport.runForeground(opened.image(), mountpoint, options, readyFifo);
    } finally {
      if (prefetcher != null) {
        prefetcher.close();
      }
      if (recorder != null) {
        recordWriter.shutdownNow();
        writeRecord(recorder, opened, image.display());
      }
      if (metricsServer != null) {
        metricsServer.close();
      }
    }
  }

  /**
   * Rewrites the list a moment after reads needed new chunks, so it is there while the mount runs:
   * a kernel unmount does not wait for the mount's last write (which comes when the mount ends).
   */
  private java.util.concurrent.ScheduledExecutorService startRecordWriter(
      ReadRecorder recorder, OpenedImage opened, String image) {
    java.util.concurrent.ScheduledExecutorService writer =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "puzzlefs-record-writer");
              t.setDaemon(true);
              return t;
            });
    long[] written = {0};
    writer.scheduleWithFixedDelay(
        () -> {
          long now = recorder.changes();
          if (now != written[0]) {
            written[0] = now;
            writeRecord(recorder, opened, image);
          }
        },
        RECORD_EVERY_MILLIS,
        RECORD_EVERY_MILLIS,
        java.util.concurrent.TimeUnit.MILLISECONDS);
    return writer;
  }

  private static final long RECORD_EVERY_MILLIS = 100;

  /** Writes what the mount read to {@code --record-prefetch-list}; says so, or why it could not. */
  private synchronized void writeRecord(ReadRecorder recorder, OpenedImage opened, String image) {
    try {
      recorder.write(
          opened.image(),
          recordPrefetchList,
          "prefetch list of "
              + image
              + ", recorded by puzzlefs mount on "
              + java.time.Instant.now());
      LOG.debug("wrote the {} files read to {}", recorder.files(), recordPrefetchList);
    } catch (java.io.IOException | RuntimeException e) {
      LOG.error("cannot write --record-prefetch-list {}: {}", recordPrefetchList, Main.describe(e));
    }
  }

  /**
   * The memory cache's size: as given, else the configured one for a registry image; a local image
   * gets {@link #LOCAL_MEMORY_CACHE} unless the flag asks for more.
   */
  private long memoryCache(boolean remote, Config config) {
    if (cacheMemory != null) {
      return cacheMemory;
    }
    return remote ? config.cache.memoryBytes : LOCAL_MEMORY_CACHE;
  }

  private OpenedImage open(ImageArgs image, Config config, List<Digest> earlyChunks)
      throws Exception {
    boolean remote = image.remote();
    OpenedImage.Settings settings =
        new OpenedImage.Settings(
            digest,
            Duration.ofSeconds(readTimeout != null ? readTimeout : config.mount.readTimeoutSeconds),
            memoryCache(remote, config),
            cacheDirectory(config),
            cacheDisk != null ? cacheDisk : config.cache.diskBytes,
            earlyChunks,
            publishedList.use());
    if (!image.remote()) {
      return OpenedImage.local(image.layout(), image.tag(), settings);
    }
    ImageReference ref = image.reference();
    return OpenedImage.remote(ref, registry.pullClients(ref, config), settings);
  }

  /** Runs this same command with {@code -f} in a child JVM and waits for its word. */
  private int background(Config config, ImageArgs image) throws Exception {
    Path mountpoint = Caller.path(image.rest().get(0));
    MountSupport.requireDirectory(mountpoint);
    List<String> child = childArgs(mountpoint);
    MountSupport.sizeChildFor(memoryCache(image.remote(), config), image.remote());
    LogDestination dest =
        LogDestination.choose(
            logFile, defaultLog(cacheDirectory(config), mountpoint), System.getenv());
    Path log = dest.file();
    Files.createDirectories(log.toAbsolutePath().getParent());
    java.util.Map<String, String> env = new java.util.HashMap<>();
    if (dest.syslog()) {
      env.put(LogDestination.CHILD_ENV, dest.syslogSocket().toString());
    }
    if (Logging.current() != null) {
      env.put(Logging.ENV, Logging.current());
    }
    int status =
        MountSupport.spawnBackground(
            child,
            log,
            Duration.ofSeconds(config.mount.readyTimeoutSeconds),
            env,
            pid ->
                System.err.println(
                    "puzzlefs: mounted "
                        + image.display()
                        + " on "
                        + mountpoint
                        + (MountSupport.inServer()
                            ? " (served by the mount server, pid "
                            : " (pid ")
                        + pid
                        + "); "
                        + dest.describe(pid)));
    MountSupport.signalAndWait(readyFifo, status == 0 ? MountSupport.READY : MountSupport.FAILED);
    return status;
  }

  /** The command line of the background child: this one, mounting on {@code target}. */
  private List<String> childArgs(Path target) {
    List<String> child = new ArrayList<>();
    child.add("mount");
    List<String> original = spec.commandLine().getParseResult().originalArgs();
    // The parse result holds the whole command line; the child repeats what follows "mount".
    int last = -1;
    for (int i = original.indexOf(spec.name()) + 1; i < original.size(); i++) {
      String a = original.get(i);
      if (a.equals("-i") || a.equals("--log-file") || a.equals("--persist")) {
        i++; // the parent answers the user's FIFO; the child gets a private one
      } else if (a.equals("--writable") || a.startsWith("--persist=")) {
        continue; // the parent puts the overlay on top
      } else if (!a.startsWith("-i") || a.startsWith("--")) {
        child.add(a);
        last = a.equals(args.get(args.size() - 1)) ? child.size() - 1 : last;
      }
    }
    child.set(last, target.toString());
    return child;
  }

  /** The cache directory: {@code --cache-dir}, else the configuration's. */
  private Path cacheDirectory(Config config) {
    return cacheDir != null ? cacheDir : config.cacheDirectory();
  }

  /** The log file of a background mount on {@code mountpoint} without syslog or --log-file. */
  static Path defaultLog(Path cacheDirectory, Path mountpoint) {
    String name = mountpoint.toAbsolutePath().normalize().toString().replace('/', '_');
    return cacheDirectory.resolve("logs").resolve("mount" + name + ".log");
  }
}
