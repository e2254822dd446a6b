package dev.puzzlefs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.fuse.Mount;
import dev.puzzlefs.fuse.MountTable;
import dev.puzzlefs.fuse.Mounter;
import dev.puzzlefs.reader.ElfLinks;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.reader.PrefetchList;
import dev.puzzlefs.reader.Prefetcher;
import dev.puzzlefs.reader.ReadRecorder;
import dev.puzzlefs.registry.ChunkPack;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code puzzlefs run [--persist DIR] [--env K=V]... [--workdir P] IMAGE [-- CMD [ARG]...]}.
 *
 * <p>The image is mounted in this JVM (no second JVM to start: the mount lives exactly as long as
 * the command), lazily when it comes from a registry, with a writable overlay on top; the command
 * runs in a container on that overlay ({@link ContainerRuntime}); then everything is taken down,
 * also when the command fails or this process gets SIGINT or SIGTERM (which are passed on to the
 * command first).
 */
@Command(
    mixinStandardHelpOptions = true,
    name = "run",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs run --plain-http docker://127.0.0.1:5000/debian cat /etc/os-release",
      "  puzzlefs run --persist /var/lib/work --env LANG=C.UTF-8 /srv/oci:v1 make -j2"
    },
    description = {
      "Run a command in a container on a writable view of an image, mounted (lazily from a"
          + " registry) for just as long as the command runs. IMAGE is "
          + ImageName.FORMS
          + ". Options of run come before IMAGE; everything after it is the command.",
      "",
      "The container has its own mount, PID, UTS and IPC namespaces (it shares the host's"
          + " network, and gets the host's /etc/resolv.conf and /etc/hosts read-only), /proc, a"
          + " minimal /dev and a read-only /sys. It runs with runc when runc is installed, else"
          + " with unshare and a chroot (--runtime or $PUZZLEFS_RUNTIME chooses). The command is"
          + " PID 1 of its namespace: SIGINT and SIGTERM are passed on to it, and if it has not"
          + " exited --stop-timeout seconds later it is killed. A signal that comes before the"
          + " command has started ends the run with 130 or 143.",
      "",
      "run exits with the command's status (128 + N when signal N killed it, 137 for SIGKILL);"
          + " as a shell does, with 127 when the command is not in"
          + " the image (looked up in the container's PATH, links followed inside the image) and"
          + " 126 when it is there but not executable."
    })
final class RunCommand implements Callable<Integer> {
  private static final Logger log = LoggerFactory.getLogger(RunCommand.class);

  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "IMAGE", description = ImageName.FORMS)
  String image;

  @Parameters(
      index = "1..*",
      paramLabel = "CMD",
      description = "the command and its arguments (default: /bin/sh; images carry no config)")
  List<String> command = new ArrayList<>();

  @Option(
      names = "--persist",
      paramLabel = "DIR",
      description =
          "keep what the command writes in DIR/upper (and DIR/work); a later run or mount"
              + " --writable with the same DIR sees it (default: thrown away)")
  Path persist;

  @Option(names = "--env", paramLabel = "K=V", description = "set an environment variable")
  List<String> env = new ArrayList<>();

  @Option(names = "--workdir", paramLabel = "P", description = "working directory in the image")
  String workdir = "/";

  @Option(
      names = "--runtime",
      paramLabel = "auto|runc|unshare",
      description = "auto: runc when installed, else unshare (default: $PUZZLEFS_RUNTIME, or auto)")
  String runtime;

  @Option(
      names = "--stop-timeout",
      paramLabel = "SECONDS",
      description = "after passing on SIGINT or SIGTERM, kill the command this much later")
  int stopTimeout = 10;

  @Option(
      names = "--stats",
      description = "print the mount's counters (fetchedBytes, imageBytes, ...) as JSON on stderr")
  boolean stats;

  @Option(names = "--cache-dir", paramLabel = "DIR", description = "disk cache of fetched chunks")
  Path cacheDir;

  @Option(
      names = "--prefetch-list",
      paramLabel = "FILE",
      description =
          "fetch what FILE lists (as --record-prefetch-list writes it, or one path per line) all"
              + " at once, as soon as the image is open, while the container starts (without"
              + " one, an image with a chunk pack has the command's program and the libraries it"
              + " links fetched whole)")
  Path prefetchList;

  @Mixin PublishedListOption publishedList;

  @Option(
      names = "--record-prefetch-list",
      paramLabel = "FILE",
      description =
          "when the command has exited, write to FILE which files (and which parts of them) it"
              + " read, in first-read order: the --prefetch-list for the next run (if it cannot be"
              + " written, run exits 1 where the command exited 0)")
  Path recordPrefetchList;

  @Option(
      names = "--read-timeout",
      paramLabel = "SECONDS",
      description = "how long a read waits for its chunks before failing with EIO")
  Integer readTimeout;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    ImageName name;
    List<String> environment;
    try {
      name = ImageName.parse(image);
      environment = ContainerSpec.environment(env, Caller.env("TERM"));
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), e.getMessage());
    }
    if (!workdir.startsWith("/")) {
      throw new ParameterException(spec.commandLine(), "--workdir must be absolute: " + workdir);
    }
    if (runtime != null && !List.of("auto", "runc", "unshare").contains(runtime)) {
      throw new ParameterException(
          spec.commandLine(), "--runtime takes auto, runc or unshare, got '" + runtime + "'");
    }
    if (stopTimeout < 0 || stopTimeout > Config.MAX_SECONDS) {
      throw new ParameterException(
          spec.commandLine(),
          "--stop-timeout must be between 0 and " + Config.MAX_SECONDS + ", got " + stopTimeout);
    }
    if (readTimeout != null && (readTimeout < 1 || readTimeout > Config.MAX_SECONDS)) {
      throw new ParameterException(
          spec.commandLine(),
          "--read-timeout must be between 1 and " + Config.MAX_SECONDS + ", got " + readTimeout);
    }
    String wanted = runtime != null ? runtime : System.getenv(ContainerRuntime.ENV);
    ContainerRuntime rt =
        ContainerRuntime.choose(wanted == null || wanted.isEmpty() ? "auto" : wanted);
    log.debug("container runtime: {}", rt.name());
    PrefetchList.Contents prefetch =
        prefetchList == null
            ? PrefetchList.Contents.EMPTY
            : PrefetchList.load(prefetchList, "--prefetch-list");
    PrefetchList.checkWritable(recordPrefetchList, "--record-prefetch-list");
    Config config = Config.load(configFile);
    // Parsing stops at IMAGE, so the "--" of "IMAGE -- CMD" arrives as the command's first word.
    List<String> cmd =
        !command.isEmpty() && command.get(0).equals("--")
            ? command.subList(1, command.size())
            : command;
    List<String> args = cmd.isEmpty() ? ContainerSpec.DEFAULT_COMMAND : cmd;

    // In the mount server the client starts the command and relays the signals it gets.
    ServerClient client = ServerClient.current();
    try (Stopper stopper =
        client == null ? Stopper.install(rt, stopTimeout) : Stopper.detached(rt, stopTimeout)) {
      if (client != null) {
        client.onSignal(stopper::deliver);
      }
      WritableMount.Layers layers = WritableMount.prepare(null, persist, "puzzlefs-run-");
      try {
        if (client != null) {
          client.leaveRemains(remains(layers, rt));
        }
        return mountAndRun(name, config, layers, rt, args, environment, stopper, prefetch);
      } finally {
        cleanUp(layers);
      }
    }
  }

  /**
   * What the client stops and takes down itself if the mount server dies during this run: the run's
   * directory, the overlay and the image mount in it, its state file, and how to stop the
   * container.
   */
  private Map<String, String> remains(WritableMount.Layers layers, ContainerRuntime rt) {
    Map<String, String> remains = new LinkedHashMap<>();
    remains.put("dir", layers.privateDir().toAbsolutePath().toString());
    remains.put("overlay", layers.mountpoint().toString());
    remains.put("image", layers.lower().toAbsolutePath().toString());
    remains.put("state", WritableMount.stateFile(layers.mountpoint()).toAbsolutePath().toString());
    remains.put("stop-timeout", Integer.toString(stopTimeout));
    remains.put("runtime", rt.name());
    remains.putAll(rt.stopHints());
    return remains;
  }

  /**
   * Starts fetching the files {@code contents} names, at once (the container's start-up is its head
   * start); null when there is nothing to fetch. Its chunks by digest are already under way.
   */
  private Prefetcher startPrefetch(
      OpenedImage opened, PrefetchList.Contents contents, List<String> args, List<String> env) {
    List<PrefetchList.Entry> list = contents.entries();
    if (list.isEmpty()) {
      if (contents.chunks().isEmpty()) {
        prefetchCommand(opened, args, env);
      }
      return null;
    }
    return Prefetcher.plan(
            opened.image(),
            list,
            "--prefetch-list " + prefetchList,
            false,
            Prefetcher.LIST_IN_FLIGHT)
        .start();
  }

  /** Files a runtime reads in the container before it starts the command (runc: the user's). */
  private static final List<String> READ_BY_THE_RUNTIME = List.of("/etc/passwd", "/etc/group");

  /**
   * With no prefetch list given or published, starts fetching what the command's start will surely
   * read: its program and the libraries it links, the files the runtime reads first, and the C
   * library's data files most programs read ({@link StartupFiles}), while the mount, the overlay
   * and the runtime start. A list says better what to fetch.
   */
  private void prefetchCommand(OpenedImage opened, List<String> args, List<String> env) {
    Image image = opened.image();
    List<String> candidates = CommandLookup.candidates(args.get(0), env, workdir);
    // Once the source knows whether it fetches runs cheaply (the pack search is short, and runs
    // beside the rootfs blob's fetch); off the thread that completes the search.
    opened
        .settled()
        .handleAsync(
            (found, failure) -> {
              if (publishedList.use()
                  && found instanceof ChunkPack pack
                  && !pack.prefetch().isEmpty()) {
                return null; // the list published with the image is being fetched
              }
              image.prefetchFiles(READ_BY_THE_RUNTIME);
              boolean started = image.prefetchProgram(candidates);
              int machine = ElfLinks.hostMachine();
              image.prefetchFiles(StartupFiles.cLibrary(machine));
              List<String> small = new ArrayList<>(StartupFiles.of(args.get(0), env, machine));
              small.addAll(StartupFiles.python(image, args.get(0)));
              small.addAll(StartupFiles.arguments(args, workdir));
              image.prefetchFiles(small, StartupFiles.MAX_BYTES);
              log.debug("fetching the program of {} ahead: {}", args.get(0), started);
              return null;
            });
  }

  /**
   * Writes what the command read to {@code --record-prefetch-list}; false, after saying why, when
   * it could not.
   */
  private boolean writeRecord(
      ReadRecorder recorder, OpenedImage opened, ImageName name, List<String> args) {
    String header =
        "prefetch list of "
            + name.text()
            + " for "
            + String.join(" ", args)
            + ", recorded by puzzlefs run on "
            + java.time.Instant.now();
    try {
      recorder.write(opened.image(), recordPrefetchList, header.replace('\n', ' '));
      log.debug("wrote the {} files read to {}", recorder.files(), recordPrefetchList);
      return true;
    } catch (java.io.IOException | RuntimeException e) {
      System.err.println(
          "puzzlefs run: cannot write --record-prefetch-list "
              + recordPrefetchList
              + ": "
              + Main.describe(e));
      return false;
    }
  }

  /** Removes the private directory; reports and takes down whatever is still mounted in it. */
  private static void cleanUp(WritableMount.Layers layers) throws java.io.IOException {
    if (!MountTable.mountsUnder(layers.privateDir()).isEmpty()) {
      WritableMount.takeDown(layers, System.err);
    } else {
      Overlay.deleteTree(layers.privateDir());
    }
    WritableMount.forgetState(layers);
  }

  private int mountAndRun(
      ImageName name,
      Config config,
      WritableMount.Layers layers,
      ContainerRuntime rt,
      List<String> args,
      List<String> environment,
      Stopper stopper,
      PrefetchList.Contents prefetch)
      throws Exception {
    Mounter.prepareInBackground();
    try (OpenedImage opened =
            name.open(
                config, registry, cacheDir, readTimeout, prefetch.chunks(), publishedList.use());
        Prefetcher prefetcher = startPrefetch(opened, prefetch, args, environment);
        Mount lower =
            Mounter.mount(
                opened.image(), layers.lower(), List.of(), Mounter.DEFAULT_READY_TIMEOUT)) {
      WritableMount.writeState(layers);
      // A signal before the command starts: reads of the image that wait (the command's lookup
      // reads its program's header) give up, rather than wait for a slow registry.
      stopper.onCancel(opened.image()::abandonWaits);
      ReadRecorder recorder = null;
      if (recordPrefetchList != null) {
        recorder = new ReadRecorder();
        opened.image().recordReads(recorder);
      }
      // The container's root, in a private directory (rwx------): its programs keep set-user-ID.
      Overlay.mount(
          layers.lower(),
          layers.upper(),
          layers.work(),
          layers.mountpoint(),
          /* containerRoot= */ true);
      log.debug(
          "{} mounted on {}, writable at {}", name.text(), lower.mountpoint(), layers.mountpoint());
      int status;
      try {
        ContainerSpec container =
            new ContainerSpec(
                layers.mountpoint(), args, environment, workdir, ContainerSpec.HOSTNAME);
        CommandLookup.Verdict verdict =
            CommandLookup.check(layers.mountpoint(), args.get(0), environment, workdir);
        if (stopper.cancelled()) {
          return stopper.cancelStatus(); // the lookup may have failed for that
        }
        if (!verdict.runs()) {
          System.err.println("puzzlefs run: " + verdict.message());
          return verdict.status();
        }
        ServerClient client = ServerClient.current();
        status =
            stopper.run(
                () ->
                    client == null
                        ? rt.start(container, layers.privateDir())
                        : client.exec(rt.command(container, layers.privateDir()), rt));
      } finally {
        // The image mount is busy until the overlay on it is gone.
        Overlay.unmount(layers.mountpoint());
      }
      if (recorder != null && !writeRecord(recorder, opened, name, args) && status == 0) {
        // The command did its work, but what was asked for besides is missing: a script must see
        // it.
        status = 1;
      }
      String counters = new ObjectMapper().writeValueAsString(opened.image().stats());
      log.debug("{} exited with {} (runtime {}); counters: {}", args, status, rt.name(), counters);
      if (stats) {
        System.err.println(counters);
      }
      return status;
    }
  }
}
