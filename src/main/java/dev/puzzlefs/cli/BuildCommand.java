package dev.puzzlefs.cli;

import dev.puzzlefs.builder.BuildResult;
import dev.puzzlefs.builder.Compression;
import dev.puzzlefs.builder.ImageBuilder;
import dev.puzzlefs.oci.OciLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.TypeConversionException;

/** {@code puzzlefs build ROOTFS OCI_DIR TAG}. */
@Command(
    mixinStandardHelpOptions = true,
    name = "build",
    description =
        "Build a PuzzleFS image from a directory tree into an OCI layout (created if "
            + "needed) and tag it. Prints 'puzzlefs image manifest digest: HEX' on stdout: the "
            + "manifest's fs-verity digest, which mount --digest and enable-fs-verity take. "
            + "Progress and the summary go to stderr.",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs build rootfs/ images/ v1",
      "  puzzlefs build --compression zstd rootfs/ images/ v1-zstd",
      "  puzzlefs build --base-layer v1 rootfs-v2/ images/ v2   # a delta on v1"
    })
final class BuildCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Parameters(index = "0", paramLabel = "ROOTFS", description = "the directory tree to build")
  Path rootfs;

  @Parameters(index = "1", paramLabel = "OCI_DIR", description = "OCI layout to add the image to")
  Path ociDir;

  @Parameters(index = "2", paramLabel = "TAG", description = "tag to give the image")
  String tag;

  @Option(
      names = "--threads",
      paramLabel = "N",
      showDefaultValue = picocli.CommandLine.Help.Visibility.NEVER,
      description = "threads hashing and writing chunks (default: the available processors)")
  int threads = Runtime.getRuntime().availableProcessors();

  @Option(
      names = "--compression",
      paramLabel = "none|zstd",
      converter = CompressionConverter.class,
      description =
          "none, or zstd: each chunk in the zstd seekable format, raw where that is not smaller",
      defaultValue = "none")
  Compression compression = Compression.NONE;

  @Option(
      names = "--base-layer",
      paramLabel = "BASE_TAG",
      description =
          "build a delta on the image tagged BASE_TAG in OCI_DIR: its layers are kept below a new"
              + " top layer, chunks it already has are not written again, kept paths keep their"
              + " inode numbers and removed paths are whited out")
  String baseTag;

  @picocli.CommandLine.Mixin OutputOptions output;

  /** Takes the lower-case names users type. */
  static final class CompressionConverter implements ITypeConverter<Compression> {
    @Override
    public Compression convert(String value) {
      switch (value.toLowerCase(Locale.ROOT)) {
        case "none":
          return Compression.NONE;
        case "zstd":
          return Compression.ZSTD;
        default:
          throw new TypeConversionException("expected none or zstd but got '" + value + "'");
      }
    }
  }

  /**
   * Refuses an OCI_DIR that would damage something: empty, inside the tree being built, or not a
   * directory. ({@link OciLayout#openOrCreate} refuses a non-empty directory that is no layout.)
   */
  private void checkOutput() throws java.io.IOException {
    if (ociDir.toString().isEmpty()) {
      throw new IllegalArgumentException("OCI_DIR must not be empty");
    }
    if (threads < 1) {
      throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
    }
    java.nio.file.Path realRoot = rootfs.toRealPath();
    java.nio.file.Path out = ociDir.toAbsolutePath().normalize();
    java.nio.file.Path existing = out;
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing != null
        && existing.toRealPath().resolve(existing.relativize(out)).startsWith(realRoot)) {
      throw new java.io.IOException(
          "OCI_DIR "
              + ociDir
              + " is inside the root filesystem "
              + rootfs
              + "; the image would contain itself: put the layout somewhere else");
    }
    if (Files.exists(ociDir) && !Files.isDirectory(ociDir)) {
      throw new java.io.IOException("OCI_DIR " + ociDir + " exists and is not a directory");
    }
  }

  /**
   * Why a delta shares no chunk with its base, when the reason is the base's compression: a chunk
   * is stored (and named) compressed or not, so only builds with the same {@code --compression}
   * share chunks. Null otherwise.
   */
  private String otherCompression(OciLayout layout, BuildResult r) {
    if (r.chunksReused() > 0 || r.chunks() == 0) {
      return null;
    }
    try {
      List<String> types =
          layout.manifest(baseTag).layers().stream()
              .map(dev.puzzlefs.oci.Descriptor::mediaType)
              .toList();
      boolean baseZstd = types.contains(dev.puzzlefs.oci.MediaTypes.FILEDATA_ZSTD);
      boolean baseRaw = types.contains(dev.puzzlefs.oci.MediaTypes.FILEDATA);
      boolean zstd = compression != Compression.NONE;
      if ((zstd && baseRaw && !baseZstd) || (!zstd && baseZstd && !baseRaw)) {
        return "note: no chunk was shared with "
            + baseTag
            + " because its chunks are "
            + (baseZstd ? "zstd-compressed" : "uncompressed")
            + " and this build's are "
            + (zstd ? "compressed" : "not")
            + "; build with the base's --compression to share chunks";
      }
    } catch (java.io.IOException | RuntimeException e) {
      // only a hint
    }
    return null;
  }

  @Override
  public Integer call() throws Exception {
    if (!Files.isDirectory(rootfs)) {
      throw new java.io.IOException(
          "root filesystem "
              + rootfs
              + (Files.exists(rootfs) ? " is not a directory" : " does not exist"));
    }
    try {
      Tags.check(tag);
      if (baseTag != null) {
        Tags.check(baseTag);
      }
    } catch (IllegalArgumentException e) {
      throw new picocli.CommandLine.ParameterException(spec.commandLine(), e.getMessage());
    }
    if (baseTag != null) {
      if (!Files.exists(ociDir.resolve("index.json"))) {
        throw new java.io.IOException(
            "--base-layer " + baseTag + ": " + ociDir + " is not an OCI layout (no index.json)");
      }
    }
    checkOutput();
    // Before the walk: a directory that is not a layout is refused at once, not after the build.
    OciLayout layout;
    try {
      layout = OciLayout.openOrCreate(ociDir);
    } catch (dev.puzzlefs.oci.OciException e) {
      throw new java.io.IOException("OCI_DIR " + e.getMessage(), e);
    }
    BuildResult r;
    Progress progress = output.progress("build", "files");
    // SIGINT and SIGTERM stop the build at its next read, and its chunk writes end (each removing
    // its temporary file) before it says so and exits.
    SignalStop signals = SignalStop.install(Thread.currentThread());
    try (signals;
        progress) {
      r =
          new ImageBuilder(threads, compression)
              .listener(
                  new ImageBuilder.Listener() {
                    @Override
                    public void planned(long files, long bytes) {
                      signals.check();
                      progress.total(files, bytes);
                    }

                    @Override
                    public void read(long files, long bytes) {
                      signals.check();
                      progress.add(files, bytes);
                    }
                  })
              .build(rootfs, layout, tag, baseTag);
    } catch (java.io.IOException | RuntimeException e) {
      sun.misc.Signal stop = signals.caught();
      if (stop == null) {
        throw e;
      }
      System.err.println(
          "puzzlefs build: stopped by SIG"
              + stop.getName()
              + "; "
              + tag
              + " was not tagged (the chunks stored so far stay in "
              + ociDir
              + ", and the next build reuses them)");
      return 128 + stop.getNumber();
    }
    progress.finish(
        String.format(
            java.util.Locale.ROOT,
            "built %s:%s from %s: %d files (%d inodes), %d bytes in %d chunks (%d new), stored in"
                + " %d bytes, %d bytes reused, manifest %s, %.1fs",
            ociDir,
            tag,
            rootfs,
            r.files(),
            r.inodes(),
            r.bytes(),
            r.chunks(),
            r.chunksWritten(),
            r.storedBytes(),
            r.bytesReused(),
            r.manifest(),
            progress.seconds()));
    if (baseTag != null && !output.quiet) {
      System.err.printf(
          "delta on %s: %d of %d chunks (%d bytes) reused from it, %d paths whited out, %d"
              + " layers%n",
          baseTag, r.chunksReused(), r.chunks(), r.bytesReused(), r.whiteouts(), r.layers());
      String hint = otherCompression(layout, r);
      if (hint != null) {
        System.err.println(hint);
      }
    }
    if (r.replaced() != null && !output.quiet) {
      System.err.println(
          "note: tag " + tag + " named " + r.replaced() + " before; it names the new image now");
    }
    System.out.println("puzzlefs image manifest digest: " + r.manifestVerityHex());
    return 0;
  }
}
