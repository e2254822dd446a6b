package dev.puzzlefs.cli;

import dev.puzzlefs.reader.Extractor;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import sun.misc.Signal;

/**
 * {@code puzzlefs extract [--digest HEX] (OCI_DIR TAG | docker://REF) DIR}.
 *
 * <p>A new DIR is written as a hidden sibling ({@code .DIR.extracting-*}) and renamed into place
 * only when complete, so an interrupted extraction never leaves a DIR that looks whole. An existing
 * empty DIR is written in place (a rename cannot fill a directory that already exists); if that
 * fails, or SIGINT or SIGTERM stops it, what was written is removed again (exit status 128 plus the
 * signal's number), but a process killed with SIGKILL leaves a partial tree in it.
 */
@Command(
    mixinStandardHelpOptions = true,
    name = "extract",
    description =
        "Write an image's tree into a new or empty directory, verifying every chunk. "
            + "Owners are restored when run as root. A new DIR is written beside it and renamed "
            + "into place when complete. Progress and the summary go to stderr.",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs extract images/ v1 /tmp/v1-tree",
      "  puzzlefs extract --plain-http docker://127.0.0.1:5000/app:v1 /tmp/v1-tree"
    })
final class ExtractCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(
      arity = "2..3",
      paramLabel = "IMAGE DIR",
      hideParamSyntax = true,
      description =
          "IMAGE DIR: IMAGE is OCI_DIR TAG or oci:OCI_DIR[:TAG] (a local layout), or"
              + " docker://HOST[:PORT]/REPO[:TAG] (straight from a registry); DIR is where to write"
              + " the tree")
  List<String> args;

  private Path target;

  /** A new DIR's path, resolved once by {@link #resolveNew}. */
  private Path newTarget;

  @Option(
      names = "--digest",
      paramLabel = "HEX",
      description = "the manifest's fs-verity digest: verify every blob's fs-verity digest too")
  String digest;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Mixin RegistryOptions registry;

  @Mixin OutputOptions output;

  @Override
  public Integer call() throws Exception {
    if (digest != null && !digest.matches("[0-9a-fA-F]{64}")) {
      throw new ParameterException(
          spec.commandLine(), "--digest takes 64 hex characters, got '" + digest + "'");
    }
    ImageArgs image = ImageArgs.parse(spec.commandLine(), args, 1, "DIR");
    target = Path.of(image.rest().get(0));
    Config config = Config.load(configFile);
    boolean inPlace = checkTarget(target);
    // No disk cache: every chunk is read once, into DIR; keeping a second copy would only cost
    // disk.
    OpenedImage.Settings settings =
        new OpenedImage.Settings(
            digest,
            Duration.ofSeconds(config.mount.readTimeoutSeconds),
            config.cache.memoryBytes,
            null,
            0);
    Extractor.Summary s;
    Progress progress = output.progress("extract", "files");
    signals = SignalStop.install(Thread.currentThread());
    try (SignalStop taken = signals;
        OpenedImage opened = open(image, config, settings);
        progress) {
      Extractor extractor =
          new Extractor(opened.image())
              .listener(
                  (files, bytes) -> {
                    signals.check();
                    progress.add(files, bytes);
                  });
      progress.total(regularFiles(opened.image()), opened.image().totalBytes());
      if (!extractor.restoresOwners() && !output.quiet) {
        System.err.println(
            "puzzlefs extract: not running as root, so the extracted files belong to you, not to"
                + " the owners the image records");
      }
      s = inPlace ? extractInPlace(extractor) : extractAndRename(extractor);
    } catch (IOException | RuntimeException | InterruptedException e) {
      Signal stop = signals.caught();
      if (stop == null) {
        throw e;
      }
      System.err.println(
          "puzzlefs extract: "
              + (e instanceof InterruptedException
                  ? "stopped by SIG" + stop.getName() + " before writing anything"
                  : e.getMessage()));
      return 128 + stop.getNumber();
    }
    progress.finish(
        String.format(
            java.util.Locale.ROOT,
            "extracted %s into %s: %d directories, %d files (%d bytes), %d symlinks,"
                + " %d special files, %d hard links%s, %.1fs",
            image.display(),
            target,
            s.directories(),
            s.files(),
            s.bytes(),
            s.symlinks(),
            s.specialFiles(),
            s.hardLinks(),
            s.skipped() > 0 ? ", " + s.skipped() + " entries skipped" : "",
            progress.seconds()));
    return 0;
  }

  /** SIGINT and SIGTERM, taken while the extraction runs. */
  private SignalStop signals;

  private OpenedImage open(ImageArgs image, Config config, OpenedImage.Settings settings)
      throws Exception {
    if (!image.remote()) {
      return OpenedImage.local(image.layout(), image.tag(), settings);
    }
    return OpenedImage.remote(
        image.reference(), registry.pullClients(image.reference(), config), settings);
  }

  /** The regular files an extraction writes (hard links count once). */
  private static long regularFiles(dev.puzzlefs.reader.Image image) {
    return image.fileCount();
  }

  /**
   * True when {@code dir} is an existing empty directory, false when it does not exist; a clear
   * error for anything else, before anything is written.
   */
  private boolean checkTarget(Path dir) throws IOException {
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      newTarget = resolveNew(dir);
      return false;
    }
    if (!Files.isDirectory(dir)) {
      throw new IOException(
          "cannot extract into " + dir + ": it exists and is not a directory; give a new DIR");
    }
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      Iterator<Path> it = entries.iterator();
      if (it.hasNext()) {
        throw new IOException(
            "cannot extract into "
                + dir
                + ": it is not empty (it holds "
                + it.next().getFileName()
                + "); give a new or empty directory");
      }
    }
    Extractor.requireTrusted(dir);
    return true;
  }

  /**
   * Where the new directory {@code dir} goes: the real path of the nearest directory above it that
   * exists (checked with {@link Extractor#requireTrusted}), then the names below it. Resolved once,
   * here: a symlink on the path as typed, re-pointed while the tree is written, cannot redirect the
   * walk, the rename or the clean-up.
   */
  static Path resolveNew(Path dir) throws IOException {
    Path above = dir.toAbsolutePath();
    java.util.ArrayDeque<String> below = new java.util.ArrayDeque<>();
    while (above.getParent() != null && !Files.exists(above)) {
      String name = above.getFileName().toString();
      if (name.equals("..")) {
        throw new IOException(
            "cannot extract into "
                + dir
                + ": it goes up ('..') from a directory that does not exist yet; give a path"
                + " without it");
      }
      if (!name.equals(".")) {
        below.push(name);
      }
      above = above.getParent();
    }
    Path real = above.toRealPath();
    Extractor.requireTrusted(real, dir);
    for (String name : below) {
      real = real.resolve(name);
    }
    return real;
  }

  private Extractor.Summary extractInPlace(Extractor extractor) throws IOException {
    Path dir = target.toRealPath();
    try {
      return extractor.extractInto(dir);
    } catch (IOException | RuntimeException e) {
      throw withCleanup(e, dir, false);
    }
  }

  private Extractor.Summary extractAndRename(Extractor extractor) throws IOException {
    Path dest = newTarget;
    Path parent = Files.createDirectories(dest.getParent());
    Path partial = Files.createTempDirectory(parent, "." + dest.getFileName() + ".extracting-");
    try {
      Extractor.Summary summary = extractor.extractInto(partial);
      Files.move(partial, dest);
      return summary;
    } catch (IOException | RuntimeException e) {
      throw withCleanup(e, partial, true);
    }
  }

  /** Removes a failed or stopped extraction and says so (or why not) in the error. */
  private IOException withCleanup(Exception e, Path dir, boolean removeDir) {
    String note;
    try {
      deleteTree(dir, removeDir);
      note = "removed the partly extracted tree";
    } catch (IOException cleanup) {
      note = "could not remove the partly extracted tree " + dir + ": " + cleanup;
    }
    Signal stop = signals.caught();
    String msg =
        stop != null
            ? "stopped by SIG" + stop.getName()
            : e.getMessage() == null ? e.toString() : e.getMessage();
    return new IOException(msg + " (" + note + ")", e);
  }

  /** Deletes everything under {@code dir}, and {@code dir} itself if {@code removeDir}. */
  private static void deleteTree(Path dir, boolean removeDir) throws IOException {
    Files.walkFileTree(
        dir,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a)
              throws IOException {
            // The walk may already have made a directory read-only; open it up to empty it. An
            // existing DIR the user gave us keeps its permissions.
            if (removeDir || !d.equals(dir)) {
              Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwx------"));
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
            Files.delete(f);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path d, IOException failure)
              throws IOException {
            if (failure != null) {
              throw failure;
            }
            if (removeDir || !d.equals(dir)) {
              Files.delete(d);
            }
            return FileVisitResult.CONTINUE;
          }
        });
  }
}
