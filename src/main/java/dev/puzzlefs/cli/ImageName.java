package dev.puzzlefs.cli;

import dev.puzzlefs.registry.ImageReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The IMAGE argument of {@code run} and {@code bundle}: a registry reference ({@code
 * docker://HOST[:PORT]/REPO[:TAG]}) or a tag of a local layout ({@code oci:OCI_DIR[:TAG]}, as the
 * other commands take it, or {@code OCI_DIR:TAG}).
 */
record ImageName(String text, Path layout, String tag, ImageReference reference) {
  /** How the argument is described in help texts and errors. */
  static final String FORMS = "docker://HOST[:PORT]/REPO[:TAG], oci:OCI_DIR[:TAG] or OCI_DIR:TAG";

  /**
   * Parses {@code text}.
   *
   * @throws IllegalArgumentException when it is neither form
   */
  static ImageName parse(String text) {
    if (text.startsWith(ImageReference.SCHEME)) {
      return new ImageName(text, null, null, ImageReference.parse(text));
    }
    if (text.startsWith(ImageArgs.OCI)) {
      ImageArgs local = ImageArgs.oci(text);
      ImageName inDirNamedOci = inDirNamedOci(text, local);
      return inDirNamedOci != null
          ? inDirNamedOci
          : new ImageName(text, local.layout(), local.tag(), null);
    }
    int colon = text.lastIndexOf(':');
    if (colon <= 0 || colon == text.length() - 1 || text.substring(colon).contains("/")) {
      throw new IllegalArgumentException("IMAGE is " + FORMS + ", got '" + text + "'");
    }
    return new ImageName(
        text, Caller.path(text.substring(0, colon)), text.substring(colon + 1), null);
  }

  /**
   * {@code oci:TAG} read the older way, as OCI_DIR:TAG of a layout directory named {@code oci}:
   * when there is such a directory and none named TAG (which the {@code oci:OCI_DIR} form would
   * mean); null otherwise.
   */
  private static ImageName inDirNamedOci(String text, ImageArgs asOciForm) {
    String tag = text.substring(ImageArgs.OCI.length());
    if (tag.isEmpty() || tag.contains(":") || tag.contains("/")) {
      return null;
    }
    Path dir = Caller.path("oci");
    if (!Files.isDirectory(dir) || Files.isDirectory(asOciForm.layout())) {
      return null;
    }
    return new ImageName(text, dir, tag, null);
  }

  /**
   * Parses the IMAGE words of {@code bundle}: one word as {@link #parse(String)} takes it, or two,
   * {@code OCI_DIR TAG}.
   *
   * @throws IllegalArgumentException when they are neither
   */
  static ImageName parse(List<String> words) {
    if (words.size() == 1) {
      return parse(words.get(0));
    }
    String dir = words.get(0);
    String tag = words.get(1);
    if (words.size() != 2
        || dir.isEmpty()
        || tag.isEmpty()
        || dir.startsWith(ImageReference.SCHEME)
        || dir.startsWith(ImageArgs.OCI)) {
      throw new IllegalArgumentException(
          "IMAGE is OCI_DIR TAG or " + FORMS + ", got '" + String.join(" ", words) + "'");
    }
    return new ImageName(dir + " " + tag, Caller.path(dir), tag, null);
  }

  boolean remote() {
    return reference != null;
  }

  /** The image arguments of {@code mount}: {@code OCI_DIR TAG}, or the reference. */
  List<String> mountArgs() {
    return remote() ? List.of(text) : List.of(layout.toString(), tag);
  }

  /**
   * Opens the image for an in-process mount, with the cache and registry settings given; a registry
   * image starts fetching {@code earlyChunks} as soon as its manifest is there (without them, and
   * with {@code publishedList}, the prefetch list published with its chunk pack).
   */
  OpenedImage open(
      Config config,
      RegistryOptions registry,
      Path cacheDir,
      Integer readTimeout,
      List<dev.puzzlefs.format.Digest> earlyChunks,
      boolean publishedList)
      throws Exception {
    OpenedImage.Settings settings =
        new OpenedImage.Settings(
            null,
            Duration.ofSeconds(readTimeout != null ? readTimeout : config.mount.readTimeoutSeconds),
            config.cache.memoryBytes,
            cacheDir != null ? cacheDir : config.cacheDirectory(),
            config.cache.diskBytes,
            earlyChunks,
            publishedList);
    if (!remote()) {
      return OpenedImage.local(layout, tag, settings);
    }
    try {
      return OpenedImage.remote(reference, registry.client(reference, config), settings);
    } catch (IOException e) {
      throw new IOException("could not open " + text + ": " + Main.describe(e), e);
    }
  }
}
