package dev.puzzlefs.cli;

import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.registry.ImagePusher;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.PushSummary;
import dev.puzzlefs.registry.RegistryClient;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code puzzlefs push OCI_DIR TAG docker://HOST:PORT/REPO:TAG}. */
@Command(
    mixinStandardHelpOptions = true,
    name = "push",
    description = "Upload an image to an OCI registry (blobs it already has are skipped).")
final class PushCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "OCI_DIR", description = "the OCI layout")
  Path ociDir;

  @Parameters(index = "1", paramLabel = "TAG", description = "the image's tag in the layout")
  String tag;

  @Parameters(
      index = "2",
      paramLabel = "REFERENCE",
      description = "where to push: docker://HOST[:PORT]/REPO[:TAG]")
  String reference;

  @Mixin RegistryOptions registry;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Override
  public Integer call() throws Exception {
    ImageReference ref = ImageReference.parse(reference);
    OciLayout layout = OciLayout.open(ociDir);
    layout.resolveTag(tag);
    Config config = Config.load(configFile);
    try (RegistryClient client = registry.client(ref, config)) {
      PushSummary summary =
          Futures.await(new ImagePusher(client).push(layout, tag, ref), "push to " + ref);
      System.err.println(summary);
    }
    return 0;
  }
}
