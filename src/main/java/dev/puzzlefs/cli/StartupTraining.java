package dev.puzzlefs.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * The start-up training run behind {@code target/puzzlefs.jsa}, the class-data sharing archive that
 * {@code bin/puzzlefs} hands to every JVM it starts (and to a background mount's daemon).
 *
 * <p>A JVM spends most of a short command loading and linking classes: about 0.4 s of the 1.2 s a
 * mount takes to answer. The build runs this class once with {@code -XX:ArchiveClassesAtExit}: it
 * does what users do (build, inspect, extract, mount a local image and a registry image, read
 * through the mounts, show help, unmount), so the archive holds the classes those paths load. The
 * archive only applies to the jar and the Java that made it: {@code target/puzzlefs.jsa.java} names
 * that Java, and the launcher uses the archive only with it (the JVM itself rejects an archive
 * whose jars changed, silently under the launcher's flags).
 *
 * <p>Mounting needs FUSE; where the build has none, those steps are skipped and the archive holds
 * the rest. A failing step is reported on stderr and leaves no archive, so the launcher then runs
 * without one: the build never fails because of this run.
 */
public final class StartupTraining {
  private static final PrintStream NULL = new PrintStream(OutputStream.nullOutputStream());
  private static final java.nio.charset.Charset UTF8 = StandardCharsets.UTF_8;

  private StartupTraining() {}

  /** The training run's flag: run in the JVM that dumps the archive when it exits. */
  private static final String TRAIN = "--train";

  /**
   * {@code StartupTraining ARCHIVE}: runs the training in a new JVM that writes the archive as it
   * exits; only when that run succeeded and wrote one is it renamed to {@code ARCHIVE} and {@code
   * ARCHIVE.java} written: this Java's home and the archive's size on two lines, which the launcher
   * checks (a JVM mapping a truncated archive dies of SIGBUS instead of ignoring it).
   */
  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals(TRAIN)) {
      System.exit(trainHere() ? 0 : 1);
    }
    if (args.length != 1) {
      throw new IllegalArgumentException("usage: StartupTraining ARCHIVE");
    }
    Path archive = Path.of(args[0]).toAbsolutePath();
    Path marker = Path.of(archive + ".java");
    Path partial = Path.of(archive + ".partial");
    Files.deleteIfExists(marker);
    Files.deleteIfExists(archive);
    Files.deleteIfExists(partial);
    Path javaHome = Path.of(System.getProperty("java.home")).toRealPath();
    Process training =
        new ProcessBuilder(
                javaHome.resolve("bin/java").toString(),
                "-XX:ArchiveClassesAtExit=" + partial,
                "-Xlog:cds=off",
                "-Xlog:cds+dynamic=off",
                "--enable-native-access=ALL-UNNAMED",
                "--add-opens",
                "java.base/sun.nio.fs=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                StartupTraining.class.getName(),
                TRAIN)
            .inheritIO()
            .start();
    if (!training.waitFor(5, TimeUnit.MINUTES)) {
      training.destroyForcibly();
      System.err.println("puzzlefs: start-up training took over 5 minutes, so no archive");
    } else if (training.exitValue() != 0) {
      System.err.println("puzzlefs: start-up training failed, so no archive");
    } else if (!Files.isRegularFile(partial) || Files.size(partial) == 0) {
      System.err.println("puzzlefs: start-up training wrote no archive (" + partial + ")");
    } else {
      Files.move(partial, archive, StandardCopyOption.ATOMIC_MOVE);
      Files.writeString(marker, javaHome + "\n" + Files.size(archive) + "\n", UTF8);
      System.out.println("puzzlefs: start-up archive written: " + archive);
    }
    Files.deleteIfExists(partial);
  }

  /** The training itself, in the dumping JVM: true when every step ran. */
  private static boolean trainHere() throws IOException {
    Path work = Files.createTempDirectory("puzzlefs-training");
    PrintStream out = System.out;
    PrintStream err = System.err;
    try {
      // The commands' own output and progress are not this run's: only its outcome is.
      System.setOut(NULL);
      System.setErr(NULL);
      train(work);
      SKIPPED.forEach(skip -> out.println("puzzlefs: left out of the training: " + skip));
      return true;
    } catch (Exception | Error e) {
      err.println("puzzlefs: start-up training failed: " + e);
      return false;
    } finally {
      System.setOut(out);
      System.setErr(err);
      deleteTree(work);
    }
  }

  private static void train(Path work) throws Exception {
    Path tree = makeTree(work.resolve("tree"));
    Path oci = work.resolve("oci");
    run("build", "-q", tree.toString(), oci.toString(), "t");
    run("build", "-q", "--compression", "zstd", tree.toString(), oci.toString(), "z");
    run("build", "-q", "--base-layer", "t", tree.toString(), oci.toString(), "t2");
    run("inspect", "--files", oci.toString(), "z");
    run("inspect", "--json", oci.toString(), "t");
    run("extract", oci.toString(), "z", work.resolve("extracted").toString());
    for (String command :
        List.of("build", "mount", "umount", "extract", "inspect", "push", "run", "stats")) {
      run(command, "--help");
    }
    Main.run("mount", "--no-such-option");

    boolean fuse = Files.exists(Path.of("/dev/fuse"));
    Path mnt = Files.createDirectories(work.resolve("mnt"));
    if (fuse) {
      mountQuietly(mnt, oci.toString(), "z");
    }
    HttpServer registry = serve(OciLayout.open(oci), "train");
    try {
      String ref = "docker://127.0.0.1:" + registry.getAddress().getPort() + "/train:z";
      run("inspect", "--plain-http", ref);
      run("extract", "--plain-http", ref, work.resolve("pulled").toString());
      if (fuse) {
        mountAndRead(mnt, "--plain-http", "--cache-dir", work.resolve("cache").toString(), ref);
      }
    } finally {
      registry.stop(0);
    }
  }

  /** What was left out of the training; printed with its outcome. */
  private static final List<String> SKIPPED = new ArrayList<>();

  /** Mounting may be refused where the build runs (no privilege): the rest still trains. */
  private static void mountQuietly(Path mnt, String... image) throws Exception {
    try {
      mountAndRead(mnt, image);
    } catch (IOException e) {
      SKIPPED.add(e.getMessage());
    }
  }

  /** A foreground mount on its own thread, read through, then unmounted by {@code umount}. */
  private static void mountAndRead(Path mnt, String... image) throws Exception {
    Path fifo = mnt.resolveSibling("ready-" + System.nanoTime());
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    if (mkfifo.waitFor() != 0) {
      throw new IOException("mkfifo " + fifo + " failed");
    }
    List<String> args = new ArrayList<>(List.of("mount", "-f", "-i", fifo.toString()));
    args.addAll(List.of(image));
    args.add(mnt.toString());
    AtomicInteger status = new AtomicInteger(-1);
    Thread mount = new Thread(() -> status.set(Main.run(args.toArray(String[]::new))));
    mount.start();
    int word = -1;
    // "rw" opens a FIFO without waiting for a writer; the loop gives up if the mount ends first.
    try (InputStream in = new java.io.FileInputStream(openReadWrite(fifo))) {
      while (word < 0 && mount.isAlive()) {
        if (in.available() > 0) {
          word = in.read();
        } else {
          Thread.sleep(10);
        }
      }
    }
    if (word != MountSupport.READY) {
      mount.join(TimeUnit.SECONDS.toMillis(30));
      throw new IOException("training mount of " + String.join(" ", image) + " failed");
    }
    try {
      readAll(mnt);
    } finally {
      run("umount", mnt.toString());
      mount.join(TimeUnit.SECONDS.toMillis(30));
    }
  }

  private static java.io.FileDescriptor openReadWrite(Path fifo) throws IOException {
    return new java.io.RandomAccessFile(fifo.toFile(), "rw").getFD();
  }

  private static void readAll(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        Files.readAttributes(p, "unix:*", LinkOption.NOFOLLOW_LINKS);
        if (Files.isSymbolicLink(p)) {
          Files.readSymbolicLink(p);
        } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
          try (InputStream in = Files.newInputStream(p)) {
            in.transferTo(OutputStream.nullOutputStream());
          }
        }
      }
    }
  }

  /** A small tree with the kinds of entry a root filesystem has, and a few chunks of data. */
  private static Path makeTree(Path tree) throws IOException {
    Files.createDirectories(tree.resolve("etc/apt"));
    Files.createDirectories(tree.resolve("usr/bin"));
    Files.writeString(tree.resolve("etc/os-release"), "NAME=training\n", UTF8);
    Files.writeString(tree.resolve("etc/apt/sources.list"), "deb http://example/ x y\n", UTF8);
    byte[] data = new byte[3 << 20];
    new java.util.Random(7).nextBytes(data);
    Files.write(tree.resolve("usr/bin/tool"), data);
    Files.createSymbolicLink(tree.resolve("usr/bin/alias"), Path.of("tool"));
    Files.createLink(tree.resolve("usr/bin/hardlink"), tree.resolve("usr/bin/tool"));
    return tree;
  }

  private static void run(String... args) throws IOException {
    int status = Main.run(args);
    if (status != 0) {
      throw new IOException("puzzlefs " + String.join(" ", args) + " exited " + status);
    }
  }

  /** The least of a registry that the pull path needs: manifests and blobs by GET and HEAD. */
  private static HttpServer serve(OciLayout layout, String repo) throws IOException {
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
    server.createContext(
        "/v2/",
        exchange -> {
          try (exchange) {
            answer(exchange, layout, "/v2/" + repo + "/");
          }
        });
    server.start();
    return server;
  }

  private static void answer(HttpExchange exchange, OciLayout layout, String prefix)
      throws IOException {
    String path = exchange.getRequestURI().getPath();
    byte[] body;
    String type = "application/octet-stream";
    try {
      if (path.equals("/v2/")) {
        body = "{}".getBytes(UTF8);
        type = "application/json";
      } else if (path.startsWith(prefix + "manifests/")) {
        Descriptor desc = layout.resolveTag(path.substring((prefix + "manifests/").length()));
        body = layout.readBlob(desc);
        type = desc.mediaType();
        exchange.getResponseHeaders().set("Docker-Content-Digest", desc.digest());
      } else if (path.startsWith(prefix + "blobs/")) {
        String digest = path.substring((prefix + "blobs/").length());
        body = layout.readBlob(dev.puzzlefs.format.Digest.parse(digest));
        exchange.getResponseHeaders().set("Docker-Content-Digest", digest);
      } else {
        body = null;
      }
    } catch (IOException | RuntimeException e) {
      body = null;
    }
    if (body == null) {
      exchange.sendResponseHeaders(404, -1);
      return;
    }
    exchange.getResponseHeaders().set("Content-Type", type);
    boolean head = exchange.getRequestMethod().equals("HEAD");
    exchange.sendResponseHeaders(200, head ? -1 : body.length);
    if (!head) {
      exchange.getResponseBody().write(body);
    }
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // a temporary directory; nothing depends on it
    }
  }
}
