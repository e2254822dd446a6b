package dev.puzzlefs.cli;

import dev.puzzlefs.registry.ImageReference;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

/**
 * An image named on the command line in one of the forms users know from the reference tool and
 * from skopeo: {@code OCI_DIR TAG} (two words), {@code oci:DIR[:TAG]}, or {@code
 * docker://HOST[:PORT]/REPO[:TAG]}. Exactly one of {@link #layout} and {@link #reference} is set.
 */
record ImageArgs(Path layout, String tag, ImageReference reference, List<String> rest) {
  /** The transport prefix of an image in a local OCI layout. */
  static final String OCI = "oci:";

  /** The tag {@code oci:DIR} without one means, as with skopeo. */
  static final String DEFAULT_TAG = "latest";

  /** One line for help texts: the forms an IMAGE may take. */
  static final String FORMS = "OCI_DIR TAG, oci:OCI_DIR[:TAG] or docker://HOST[:PORT]/REPO[:TAG]";

  /**
   * Splits {@code args} into the image and the {@code trailing} words after it (a mount point, a
   * target directory, a digest); a usage error (exit 2) naming the forms when they do not fit.
   */
  static ImageArgs parse(CommandLine cmd, List<String> args, int trailing, String restLabel) {
    int imageWords = args.size() - trailing;
    String first = args.isEmpty() ? "" : args.get(0);
    boolean transport = first.startsWith(ImageReference.SCHEME) || first.startsWith(OCI);
    if (imageWords != (transport ? 1 : 2)) {
      throw new ParameterException(
          cmd,
          "expected IMAGE"
              + (restLabel.isEmpty() ? "" : " " + restLabel)
              + " where IMAGE is "
              + FORMS
              + "; got "
              + (args.isEmpty() ? "nothing" : String.join(" ", args)));
    }
    List<String> rest = List.copyOf(args.subList(imageWords, args.size()));
    if (first.startsWith(ImageReference.SCHEME)) {
      try {
        return new ImageArgs(null, null, ImageReference.parse(first), rest);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(cmd, e.getMessage(), e, null, first);
      }
    }
    if (transport) {
      try {
        ImageArgs local = oci(first);
        return new ImageArgs(local.layout(), local.tag(), null, rest);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(cmd, e.getMessage(), e, null, first);
      }
    }
    return new ImageArgs(Caller.path(first), args.get(1), null, rest);
  }

  /**
   * The layout and tag {@code oci:DIR[:TAG]} names, the tag {@link #DEFAULT_TAG} when it gives
   * none.
   *
   * @throws IllegalArgumentException when it names no directory or an empty tag
   */
  static ImageArgs oci(String text) {
    String spec = text.substring(OCI.length());
    int colon = spec.lastIndexOf(':');
    String dir = colon < 0 ? spec : spec.substring(0, colon);
    String tag = colon < 0 ? DEFAULT_TAG : spec.substring(colon + 1);
    if (dir.isEmpty() || tag.isEmpty()) {
      throw new IllegalArgumentException(
          "'" + text + "' names no " + (dir.isEmpty() ? "directory" : "tag"));
    }
    return new ImageArgs(Caller.path(dir), tag, null, List.of());
  }

  /** True for an image in a registry. */
  boolean remote() {
    return reference != null;
  }

  /** The image as a person reads it: {@code DIR:TAG} or the registry reference. */
  String display() {
    return remote() ? reference.toString() : layout + ":" + tag;
  }

  /** A local-only command's usage error for a registry reference. */
  ImageArgs requireLocal(CommandLine cmd, String why) {
    if (remote()) {
      throw new ParameterException(
          cmd,
          "'" + reference + "' is in a registry; " + why + " (give OCI_DIR TAG or oci:DIR:TAG)");
    }
    return this;
  }
}
