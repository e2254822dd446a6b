package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.Processes;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code puzzlefs enable-fs-verity}: every user-space digest is checked first, and a filesystem
 * without fs-verity gets an error that names the cause. Whether this machine's filesystem supports
 * fs-verity is asked of the {@code fsverity} tool, so each kernel runs the tests that apply to it.
 */
class EnableVerityTest {
  @TempDir Path tmp;
  private Path oci;
  private String manifestDigest;

  @BeforeEach
  void smallImage() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("src"));
    Files.writeString(src.resolve("hello"), "hello\n");
    byte[] data = new byte[300_000];
    new Random(5).nextBytes(data);
    Files.write(src.resolve("data"), data);
    oci = tmp.resolve("oci");
    String out = Cli.ok("build", src.toString(), oci.toString(), "v1").out();
    manifestDigest = out.substring(out.lastIndexOf(' ') + 1).trim();
  }

  /**
   * What {@code fsverity enable} says on a scratch file beside the layout: null when it worked,
   * else the reason the kernel gave.
   */
  private String verityRefusal() throws Exception {
    Path probe = Files.writeString(tmp.resolve("probe"), "probe\n");
    Processes.Result r = Processes.exec(30, null, "fsverity", "enable", probe.toString());
    Files.delete(probe);
    if (r.exit() == 0) {
      return null;
    }
    for (String reason : List.of("Operation not supported", "Inappropriate ioctl for device")) {
      if (r.stderr().contains(reason)) {
        return reason;
      }
    }
    throw new AssertionError("fsverity enable failed for another reason: " + r.stderr());
  }

  private ImageManifest manifest() throws Exception {
    return OciLayout.open(oci).manifest("v1");
  }

  private Descriptor layer(String mediaType) throws Exception {
    return manifest().layers().stream()
        .filter(d -> d.mediaType().equals(mediaType))
        .max(Comparator.comparingLong(Descriptor::size))
        .orElseThrow();
  }

  /** Every blob the command covers: the manifest, the rootfs blob, the chunk blobs. */
  private List<Path> blobPaths() throws Exception {
    OciLayout layout = OciLayout.open(oci);
    List<Path> out = new ArrayList<>();
    out.add(layout.blobPath(layout.resolveTag("v1").digestValue()));
    for (Descriptor d : manifest().layers()) {
      out.add(layout.blobPath(d.digestValue()));
    }
    return out;
  }

  /** Flips one bit in the middle of a blob, keeping its name. */
  private Path changeInPlace(Digest blob) throws Exception {
    Path path = OciLayout.open(oci).blobPath(blob);
    try (RandomAccessFile f = new RandomAccessFile(path.toFile(), "rw")) {
      long at = f.length() / 2;
      f.seek(at);
      int b = f.read();
      f.seek(at);
      f.write(b ^ 1);
    }
    return path;
  }

  private static String fail(String... args) throws Exception {
    Processes.Result r = Cli.run(args);
    assertEquals(1, r.exit(), "expected failure of " + String.join(" ", args) + ": " + r.stderr());
    return r.stderr();
  }

  /**
   * What the filesystem under the test's temp directory supports decides the outcome: where it
   * refuses fs-verity (as on kernels built without it), a clear error after every user-space check;
   * where it has fs-verity, every blob enabled and measured.
   */
  @Test
  void enableFsVerity_doesWhatTheFilesystemAllows_andSaysWhyWhenItCannot() throws Exception {
    String reason = verityRefusal();
    if (reason == null) {
      kernelMeasuresEveryBlobAsExpected();
      return;
    }

    String err = fail("enable-fs-verity", oci.toString(), "v1", manifestDigest);

    assertTrue(
        err.contains(
            "the filesystem holding " + oci + " does not support fs-verity (" + reason + ")"),
        err);
    assertTrue(
        err.contains(
            "all " + blobPaths().size() + " blobs match their fs-verity digests in user space"),
        err);
  }

  private void kernelMeasuresEveryBlobAsExpected() throws Exception {
    Cli.ok("enable-fs-verity", oci.toString(), "v1", manifestDigest);
    Cli.ok("enable-fs-verity", oci.toString(), "v1", manifestDigest); // already on: fine

    for (Path blob : blobPaths()) {
      String measured = Processes.run(30, "fsverity", "measure", blob.toString()).out();
      String computed = Processes.run(30, "fsverity", "digest", blob.toString()).out();
      assertEquals(computed, measured, blob.toString());
    }
    String manifestLine =
        Processes.run(30, "fsverity", "measure", blobPaths().get(0).toString()).out();
    assertTrue(manifestLine.startsWith("sha256:" + manifestDigest + " "), manifestLine);
  }

  @Test
  void enableFsVerity_wrongManifestDigest_failsNamingBothDigests() throws Exception {
    String wrong = (manifestDigest.charAt(0) == '0' ? "1" : "0") + manifestDigest.substring(1);

    String err = fail("enable-fs-verity", oci.toString(), "v1", wrong.toUpperCase());

    assertTrue(
        err.contains("has fs-verity digest " + manifestDigest + ", not the given " + wrong), err);
    assertTrue(err.contains("nothing was changed"), err);
  }

  @Test
  void enableFsVerity_chunkChangedInPlace_failsNamingTheBlob() throws Exception {
    Digest chunk = layer(MediaTypes.FILEDATA).digestValue();
    Path path = changeInPlace(chunk);

    String err = fail("enable-fs-verity", oci.toString(), "v1", manifestDigest);

    assertTrue(err.contains("chunk blob " + chunk + " (" + path + ") is corrupt"), err);
  }

  @Test
  void enableFsVerity_rootfsChangedInPlace_failsNamingTheBlob() throws Exception {
    Digest rootfs = layer(MediaTypes.ROOTFS).digestValue();
    changeInPlace(rootfs);

    String err = fail("enable-fs-verity", oci.toString(), "v1", manifestDigest);

    assertTrue(err.contains(rootfs.hex()), err);
    assertTrue(err.contains("corrupt"), err);
  }

  @Test
  void enableFsVerity_digestNotHex_failsAsUsageError() throws Exception {
    Processes.Result r = Cli.run("enable-fs-verity", oci.toString(), "v1", "not-hex");

    assertEquals(2, r.exit(), r.stderr());
    assertTrue(r.stderr().contains("MANIFEST_DIGEST_HEX takes 64 hex characters"), r.stderr());
  }
}
