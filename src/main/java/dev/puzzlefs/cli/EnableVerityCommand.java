package dev.puzzlefs.cli;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FsVerity;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code puzzlefs enable-fs-verity OCI_DIR TAG MANIFEST_DIGEST_HEX}.
 *
 * <p>First every blob of the image is checked in user space: the manifest against the digest the
 * user gives, the rootfs blob against the manifest's annotation, each chunk blob against the rootfs
 * blob's table; a mismatch stops the command before the kernel is asked anything. Then fs-verity is
 * turned on for each blob in that order and the kernel's measurement is compared with the same
 * expected digest, which also catches a blob changed between the check and the enabling.
 */
@Command(
    mixinStandardHelpOptions = true,
    name = "enable-fs-verity",
    description =
        "Turn on the kernel's fs-verity for every blob of an image, after checking their "
            + "digests. Covers the manifest, the rootfs blob and every chunk blob; each "
            + "measurement is checked. The layout must be on a filesystem with fs-verity (ext4 "
            + "with the verity feature, f2fs, btrfs).",
    footerHeading = "%nExamples:%n",
    footer = {
      "  digest=$(puzzlefs build rootfs/ images/ v1 | sed 's/.*: //')",
      "  puzzlefs enable-fs-verity images/ v1 $digest",
      "  puzzlefs mount --digest $digest images/ v1 /mnt/v1"
    })
final class EnableVerityCommand implements Callable<Integer> {
  private static final HexFormat HEX = HexFormat.of();

  @Spec CommandSpec spec;

  @Parameters(
      arity = "2..3",
      paramLabel = "IMAGE MANIFEST_DIGEST_HEX",
      hideParamSyntax = true,
      description =
          "IMAGE MANIFEST_DIGEST_HEX: IMAGE is OCI_DIR TAG or oci:OCI_DIR[:TAG] (a local layout);"
              + " MANIFEST_DIGEST_HEX is the manifest's fs-verity digest, as build printed it")
  List<String> args;

  private Path ociDir;
  private String tag;
  private String manifestDigest;

  /** A blob and the fs-verity digest it must have. */
  private record Expected(String role, Digest blob, byte[] verity) {}

  @Override
  public Integer call() throws Exception {
    ImageArgs image =
        ImageArgs.parse(spec.commandLine(), args, 1, "MANIFEST_DIGEST_HEX")
            .requireLocal(spec.commandLine(), "fs-verity is turned on for files of a local layout");
    ociDir = image.layout();
    tag = image.tag();
    manifestDigest = image.rest().get(0);
    if (!manifestDigest.matches("[0-9a-fA-F]{64}")) {
      throw new ParameterException(
          spec.commandLine(),
          "MANIFEST_DIGEST_HEX takes 64 hex characters, got '" + manifestDigest + "'");
    }
    OciLayout layout = OciLayout.open(ociDir);
    List<Expected> blobs = checkInUserSpace(layout);
    int enabledNow = 0;
    for (Expected e : blobs) {
      Path path = layout.blobPath(e.blob());
      try {
        if (KernelVerity.enable(path)) {
          enabledNow++;
        }
      } catch (KernelVerity.UnsupportedException unsupported) {
        // The message names the cause; the failing blob's own message would only repeat it.
        throw new IOException(
            "the filesystem holding "
                + ociDir
                + " does not support fs-verity ("
                + unsupported.reason()
                + "); all "
                + blobs.size()
                + " blobs match their fs-verity digests in user space, but the kernel cannot"
                + " enforce them. Keep the layout on a filesystem with fs-verity (ext4 with the"
                + " verity feature, f2fs or btrfs, on a kernel with CONFIG_FS_VERITY), or verify"
                + " in user space with mount --digest or extract --digest");
      }
      byte[] measured = KernelVerity.measure(path);
      if (!Arrays.equals(measured, e.verity())) {
        throw new IOException(
            "the kernel measures the fs-verity digest of "
                + e.role()
                + " blob "
                + e.blob()
                + " ("
                + path
                + ") as "
                + HEX.formatHex(measured)
                + ", but the image expects "
                + HEX.formatHex(e.verity()));
      }
    }
    System.err.printf(
        "fs-verity is on for the %d blobs of %s:%s (%d enabled now, %d already had it);"
            + " every measurement matches%n",
        blobs.size(), ociDir, tag, enabledNow, blobs.size() - enabledNow);
    return 0;
  }

  /** Checks every blob's bytes against its expected digests; returns them, manifest first. */
  private List<Expected> checkInUserSpace(OciLayout layout) throws IOException {
    List<Expected> out = new ArrayList<>();
    Descriptor manifestDesc = layout.resolveTag(tag);
    byte[] manifestBytes = layout.readBlob(manifestDesc);
    byte[] manifestVerity = FsVerity.digest(manifestBytes);
    String given = manifestDigest.toLowerCase(Locale.ROOT);
    if (!HEX.formatHex(manifestVerity).equals(given)) {
      throw new IOException(
          "the manifest of tag "
              + tag
              + " in "
              + ociDir
              + " ("
              + manifestDesc.digest()
              + ") has fs-verity digest "
              + HEX.formatHex(manifestVerity)
              + ", not the given "
              + given
              + "; nothing was changed");
    }
    out.add(new Expected("manifest", manifestDesc.digestValue(), manifestVerity));

    ImageManifest manifest =
        ImageManifest.parse(
            manifestBytes,
            "manifest " + manifestDesc.digest() + " (tag " + tag + " of " + ociDir + ")");
    Descriptor rootfsDesc =
        OpenedImage.rootfsOf(
            manifest, manifestDesc.digest() + " (tag " + tag + " of " + ociDir + ")");
    String annotated = rootfsDesc.annotation(MediaTypes.VERITY_ROOT_HASH);
    if (annotated == null || !annotated.matches("[0-9a-f]{64}")) {
      throw new IOException(
          "manifest "
              + manifestDesc.digest()
              + " gives no valid fs-verity digest for its rootfs blob (annotation "
              + MediaTypes.VERITY_ROOT_HASH
              + " is "
              + (annotated == null ? "missing" : "'" + annotated + "'")
              + ")");
    }
    byte[] rootfsBytes = layout.readBlob(rootfsDesc);
    byte[] rootfsVerity = FsVerity.digest(rootfsBytes);
    if (!HEX.formatHex(rootfsVerity).equals(annotated)) {
      throw new IOException(
          "rootfs blob "
              + rootfsDesc.digest()
              + " ("
              + layout.blobPath(rootfsDesc.digestValue())
              + ") has fs-verity digest "
              + HEX.formatHex(rootfsVerity)
              + " but its manifest expects "
              + annotated
              + "; nothing was changed");
    }
    out.add(new Expected("rootfs", rootfsDesc.digestValue(), rootfsVerity));

    Rootfs rootfs = RootfsCodec.decode(rootfsBytes);
    requireVerityForEveryChunk(rootfs, rootfsDesc);
    for (VerityData v : rootfs.verity()) {
      checkChunk(layout, v);
      out.add(new Expected("chunk", v.blob(), v.verity()));
    }
    return out;
  }

  /** A chunk the image uses without an expected digest would stay unprotected: refuse. */
  private static void requireVerityForEveryChunk(Rootfs rootfs, Descriptor rootfsDesc)
      throws IOException {
    Set<Digest> recorded = new HashSet<>();
    for (VerityData v : rootfs.verity()) {
      recorded.add(v.blob());
    }
    for (Rootfs.ChunkUse use : rootfs.chunkUses()) {
      if (!recorded.contains(use.blob())) {
        throw new IOException(
            "rootfs blob "
                + rootfsDesc.digest()
                + " records no fs-verity digest for chunk blob "
                + use.blob()
                + ", which ino "
                + use.ino()
                + " uses; fs-verity cannot protect this image");
      }
    }
  }

  private static void checkChunk(OciLayout layout, VerityData expected) throws IOException {
    Path path = layout.blobPath(expected.blob());
    MessageDigest sha = Digest.newSha256();
    FsVerity.Hasher verity = new FsVerity.Hasher();
    try (InputStream in = layout.openBlob(expected.blob())) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        sha.update(buf, 0, n);
        verity.update(buf, 0, n);
      }
    }
    Digest actual = Digest.of(sha.digest());
    if (!actual.equals(expected.blob())) {
      throw new IOException(
          "chunk blob "
              + expected.blob()
              + " ("
              + path
              + ") is corrupt: its bytes hash to "
              + actual
              + "; nothing was changed");
    }
    byte[] measured = verity.finish();
    if (!Arrays.equals(measured, expected.verity())) {
      throw new IOException(
          "chunk blob "
              + expected.blob()
              + " ("
              + path
              + ") has fs-verity digest "
              + HEX.formatHex(measured)
              + " but the image expects "
              + HEX.formatHex(expected.verity())
              + "; nothing was changed");
    }
  }
}
