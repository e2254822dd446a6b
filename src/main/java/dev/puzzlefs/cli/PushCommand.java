package dev.puzzlefs.cli;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.reader.PrefetchList;
import dev.puzzlefs.registry.ImagePusher;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.PushSummary;
import dev.puzzlefs.registry.RegistryClient;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code puzzlefs push (OCI_DIR TAG | oci:DIR:TAG) docker://HOST:PORT/REPO:TAG}. */
@Command(
    mixinStandardHelpOptions = true,
    name = "push",
    description =
        "Upload an image from a local OCI layout to an OCI registry: the blobs the "
            + "registry lacks, then the manifest, byte for byte (so its digest is the same in "
            + "both places).",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs push --plain-http images/ v1 docker://127.0.0.1:5000/app:v1",
      "  puzzlefs push oci:images/:v1 docker://registry.example/team/app:v1",
      "  puzzlefs push --pack images/ v1 docker://registry.example/team/app:v1"
    })
final class PushCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(
      arity = "2..3",
      paramLabel = "IMAGE REFERENCE",
      hideParamSyntax = true,
      description =
          "IMAGE REFERENCE: IMAGE is OCI_DIR TAG or oci:OCI_DIR[:TAG] (a local layout), REFERENCE"
              + " is where to push: docker://HOST[:PORT]/REPO[:TAG]")
  List<String> args;

  @Mixin RegistryOptions registry;

  @Mixin OutputOptions output;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Option(
      names = "--pack",
      description =
          "also push a chunk pack: the image's chunks once more, joined in the order a walk of"
              + " the image reads them, so that lazy mounts fetch runs of chunks with one range"
              + " request instead of one request per chunk (much faster from a busy or distant"
              + " registry). Costs the registry the space of the chunks again; other readers"
              + " ignore it")
  boolean pack;

  @Option(
      names = "--prefetch-list",
      paramLabel = "FILE",
      description =
          "with --pack: publish FILE (as mount and run --record-prefetch-list write it, or one"
              + " path per line; directories are left out) with the image, so that a lazy mount or"
              + " run of it given no --prefetch-list fetches what FILE lists at once, as if it had"
              + " been given")
  Path prefetchList;

  @Override
  public Integer call() throws Exception {
    ImageArgs image =
        ImageArgs.parse(spec.commandLine(), args, 1, "REFERENCE")
            .requireLocal(spec.commandLine(), "push reads the image from a local layout");
    String reference = image.rest().get(0);
    ImageReference ref;
    try {
      ref = ImageReference.parse(reference);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), e.getMessage(), e, null, reference);
    }
    if (prefetchList != null && !pack) {
      throw new ParameterException(
          spec.commandLine(), "--prefetch-list is published with the chunk pack: add --pack");
    }
    OciLayout layout = OciLayout.open(image.layout());
    layout.resolveTag(image.tag());
    List<Digest> prefetch =
        prefetchList == null ? List.of() : listedChunks(image.layout(), image.tag());
    if (prefetchList != null && prefetch.isEmpty()) {
      System.err.println(
          "puzzlefs: --prefetch-list "
              + prefetchList
              + " names no chunk of the image: the pack is pushed without a list (and replaces any"
              + " list pushed before)");
    }
    Config config = Config.load(configFile);
    PushSummary summary;
    Progress progress = output.progress("push", "blobs");
    try (progress;
        RegistryClient client = registry.client(ref, config)) {
      ImagePusher pusher =
          new ImagePusher(client)
              .withPack(pack)
              .withPrefetch(prefetch)
              .listener(
                  new ImagePusher.Listener() {
                    @Override
                    public void planned(long blobs, long bytes) {
                      progress.total(blobs, bytes);
                    }

                    @Override
                    public void done(long blobs, long bytes) {
                      progress.add(blobs, bytes);
                    }
                  });
      summary =
          Futures.await(
              pusher.push(layout, image.tag(), ref), "push of " + image.display() + " to " + ref);
    }
    progress.finish(String.format(java.util.Locale.ROOT, "%s, %.1fs", summary, progress.seconds()));
    return 0;
  }

  /**
   * The chunks the prefetch list names: its recorded chunks, or, for a list of paths only, every
   * chunk of each file it names (a directory names too much to fetch first: left out).
   */
  private List<Digest> listedChunks(Path layoutDir, String tag) throws java.io.IOException {
    PrefetchList.Contents list = PrefetchList.load(prefetchList, "--prefetch-list");
    if (!list.chunks().isEmpty()) {
      return list.chunks();
    }
    List<Digest> out = new java.util.ArrayList<>();
    int missing = 0;
    int directories = 0;
    try (OpenedImage opened =
        OpenedImage.local(
            layoutDir,
            tag,
            new OpenedImage.Settings(null, java.time.Duration.ofSeconds(1), 0, null, 0))) {
      Image local = opened.image();
      for (PrefetchList.Entry entry : list.entries()) {
        try {
          Inode inode = local.resolveFollowingLinks(entry.path());
          if (inode.kind() == InodeKind.FILE) {
            for (FileChunk chunk : inode.chunks()) {
              out.add(chunk.blob());
            }
          } else if (inode.kind() == InodeKind.DIR) {
            directories++;
          }
        } catch (java.io.IOException e) {
          missing++;
        }
      }
    }
    String where = "puzzlefs: --prefetch-list " + prefetchList + ": ";
    if (directories > 0) {
      System.err.println(
          where
              + directories
              + " of "
              + list.entries().size()
              + " paths are directories: left out (a published list holds the chunks of files,"
              + " fetched first; a directory may be most of the image)");
    }
    if (missing > 0) {
      System.err.println(
          where + missing + " of " + list.entries().size() + " paths are not in the image");
    }
    return out;
  }
}
