package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import dev.puzzlefs.testing.TextBytes;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The commands as a user runs them: exit codes, messages, readiness, and bad input. */
class CliTest {
  @TempDir Path tmp;
  private Path src;
  private Path oci;
  private Path mnt;

  @BeforeEach
  void smallImage() throws Exception {
    src = Files.createDirectories(tmp.resolve("src"));
    Files.writeString(src.resolve("hello"), "hello\n");
    Files.createDirectories(src.resolve("dir"));
    Files.write(src.resolve("dir/data"), new byte[200_000]);
    oci = tmp.resolve("oci");
    Cli.ok("build", src.toString(), oci.toString(), "v1");
    mnt = Files.createDirectories(tmp.resolve("mnt"));
  }

  @AfterEach
  void unmount() {
    Cli.unmountQuietly(mnt);
  }

  private boolean mounted() throws Exception {
    return !Files.getAttribute(tmp, "unix:dev").equals(Files.getAttribute(mnt, "unix:dev"));
  }

  private static String fail(String... args) throws Exception {
    Processes.Result r = Cli.run(args);
    assertNotEquals(0, r.exit(), "expected failure of " + String.join(" ", args));
    return r.stderr();
  }

  /**
   * SIGTERM stops a build into an existing layout: its chunk writes end and remove their temporary
   * files, it says that the tag was not made, and exits 143; no tag names a partial image, and the
   * layout's other tags stay.
   */
  @Test
  void build_stoppedBySigterm_saysSoLeavesNoTemporaryFileAndNoTag() throws Exception {
    Path big = Files.createDirectories(tmp.resolve("big"));
    byte[] random = new byte[24 << 20];
    new java.util.Random(5).nextBytes(random);
    Files.write(big.resolve("a-random"), random);
    try (java.io.RandomAccessFile f =
        new java.io.RandomAccessFile(big.resolve("b-sparse").toFile(), "rw")) {
      f.setLength(64L << 30); // read for many seconds: the signal comes while it is
    }
    Path blobs = oci.resolve("blobs/sha256");
    Process build =
        new ProcessBuilder(Cli.command("build", big.toString(), oci.toString(), "v2"))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(tmp.resolve("err").toFile())
            .start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (count(blobs) < 100 && build.isAlive() && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertTrue(build.isAlive(), "still building");
      build.destroy(); // SIGTERM
      assertTrue(build.waitFor(60, TimeUnit.SECONDS), "build ends");
    } finally {
      build.destroyForcibly();
    }

    String err = Files.readString(tmp.resolve("err"));
    assertEquals(128 + 15, build.exitValue(), err);
    assertTrue(err.contains("puzzlefs build: stopped by SIGTERM; v2 was not tagged"), err);
    try (var files = Files.list(blobs)) {
      assertEquals(
          List.of(),
          files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList());
    }
    assertTrue(
        OciLayout.open(oci).findTag("v2").isEmpty(),
        "no tag: " + Files.readString(oci.resolve("index.json")));
    assertTrue(OciLayout.open(oci).findTag("v1").isPresent(), "the layout's other tags stay");
  }

  private static long count(Path dir) throws java.io.IOException {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (var files = Files.list(dir)) {
      return files.count();
    }
  }

  @Test
  void mount_background_returnsOnlyWhenReady() throws Exception {
    Cli.ok("mount", oci.toString(), "v1", mnt.toString());
    assertTrue(mounted());
    assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
    Cli.ok("umount", mnt.toString());
    assertFalse(mounted());
  }

  @Test
  void mount_foregroundWithFifo_writesSThenExitsZeroOnUnmount() throws Exception {
    Path fifo = tmp.resolve("ready");
    Processes.run(10, "mkfifo", fifo.toString());
    Process p = foreground(fifo, oci.toString(), "v1", mnt.toString());
    try (InputStream in = Files.newInputStream(fifo)) {
      assertEquals('s', in.read());
    }
    assertTrue(mounted());
    Cli.ok("umount", mnt.toString());
    assertTrue(p.waitFor(30, TimeUnit.SECONDS), "foreground mount exits after unmount");
    assertEquals(0, p.exitValue());
  }

  @Test
  void mount_foregroundWithFifo_writesFOnFailure() throws Exception {
    Path fifo = tmp.resolve("ready");
    Processes.run(10, "mkfifo", fifo.toString());
    Process p = foreground(fifo, oci.toString(), "no-such-tag", mnt.toString());
    try (InputStream in = Files.newInputStream(fifo)) {
      assertEquals('f', in.read());
    }
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    assertNotEquals(0, p.exitValue());
    assertFalse(mounted());
  }

  private static Process foreground(Path fifo, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("mount", "-f", "-i", fifo.toString()));
    cmd.addAll(List.of(args));
    return new ProcessBuilder(Cli.command(cmd.toArray(String[]::new)))
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .redirectError(ProcessBuilder.Redirect.DISCARD)
        .start();
  }

  @Test
  void build_missingRootfs_namesItAndCreatesNothing() throws Exception {
    Path out = tmp.resolve("never");
    String err = fail("build", tmp.resolve("absent").toString(), out.toString(), "t");
    assertTrue(err.contains("absent") && err.contains("does not exist"), err);
    assertFalse(Files.exists(out));
  }

  @Test
  void build_treeDeeperThanAPathCanBe_failsWithAShortMessageNamingTheDeepPath() throws Exception {
    // 20 levels of 250-byte names: the deepest path is longer than PATH_MAX (4096 bytes).
    Path deep = Files.createDirectories(tmp.resolve("deep"));
    Processes.run(
        30,
        "bash",
        "-c",
        "cd '" + deep + "' && for i in $(seq 20); do mkdir " + "d".repeat(250) + " && cd d*; done");
    try {
      Processes.Result r =
          Cli.run("build", deep.toString(), tmp.resolve("deep-oci").toString(), "t");

      assertNotEquals(0, r.exit());
      String err = r.stderr().strip();
      assertTrue(err.length() < 600, err.length() + " characters: " + err);
      assertTrue(err.contains(deep.toString()) && err.contains("File name too long"), err);
      assertTrue(err.contains("bytes"), "says how long the path is: " + err);
    } finally {
      // JUnit's cleanup cannot delete paths that long.
      Processes.run(30, "rm", "-rf", deep.toString());
    }
  }

  @Test
  void build_compressionZstd_mountsWithDigestAndReadsTheSameBytes() throws Exception {
    Files.write(src.resolve("dir/text"), TextBytes.of(300_000, 1));
    Path zoci = tmp.resolve("zoci");
    Processes.Result built =
        Cli.ok("build", "--compression", "zstd", src.toString(), zoci.toString(), "z");
    assertTrue(built.stderr().contains("stored in"), built.stderr());
    var layers = OciLayout.open(zoci).manifest("z").layers();
    for (var layer : layers.subList(1, layers.size())) {
      assertEquals(MediaTypes.FILEDATA_ZSTD, layer.mediaType());
    }
    String digest = built.out().trim().replace("puzzlefs image manifest digest: ", "");

    Cli.ok("mount", "--digest", digest, zoci.toString(), "z", mnt.toString());

    for (String f : List.of("hello", "dir/data", "dir/text")) {
      assertEquals(-1L, Files.mismatch(src.resolve(f), mnt.resolve(f)), f);
    }
  }

  @Test
  void build_compressionZstd_skopeoCopiesItToTheRegistryAndItMountsFromThere() throws Exception {
    Files.write(src.resolve("dir/text"), TextBytes.of(300_000, 2));
    Path zoci = tmp.resolve("zoci");
    Cli.ok("build", "--compression", "zstd", src.toString(), zoci.toString(), "z");
    try (TestRegistry registry = TestRegistry.launch()) {
      skopeoToRegistryAndMount(zoci, "z", registry, "cli/zstd");
      for (String f : List.of("hello", "dir/data", "dir/text")) {
        assertEquals(-1L, Files.mismatch(src.resolve(f), mnt.resolve(f)), f);
      }
    }
  }

  @Test
  void build_unknownCompression_failsNamingTheChoices() throws Exception {
    Path out = tmp.resolve("never");
    String err = fail("build", "--compression", "lz4", src.toString(), out.toString(), "t");
    assertTrue(err.contains("none or zstd") && err.contains("lz4"), err);
    assertFalse(Files.exists(out));
  }

  @Test
  void mount_tagThatDoesNotExist_listsTheTagsAndDoesNotMount() throws Exception {
    String err = fail("mount", oci.toString(), "v2", mnt.toString());
    assertTrue(err.contains("'v2' does not exist") && err.contains("v1"), err);
    assertFalse(mounted());
  }

  @Test
  void corruptIndexJson_mountAndBuildFailNamingTheFile_andLoseNothing() throws Exception {
    Path index = oci.resolve("index.json");
    Files.writeString(index, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":");
    String err = fail("mount", oci.toString(), "v1", mnt.toString());
    assertTrue(err.contains(index.toString()), err);
    assertFalse(mounted());

    String buildErr = fail("build", src.toString(), oci.toString(), "v2");
    assertTrue(buildErr.contains(index.toString()), buildErr);
    assertEquals(
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":",
        Files.readString(index),
        "the corrupt index is left for the user, not overwritten");
  }

  @Test
  void inspectAndMount_manifestWithASecondRootfsLayer_failNamingTheManifest() throws Exception {
    OciLayout layout = OciLayout.open(oci);
    ImageManifest manifest = layout.manifest("v1");
    List<Descriptor> layers = new ArrayList<>(manifest.layers());
    layers.add(layers.get(0));
    Digest digest = tagWithLayers(layout, "two", manifest, layers);

    for (List<String> args :
        List.of(
            List.of("inspect", oci.toString(), "two"),
            List.of("mount", oci.toString(), "two", mnt.toString()))) {
      String err = fail(args.toArray(String[]::new));
      assertTrue(err.contains("manifest " + digest), err);
      assertTrue(err.contains("2 rootfs layers"), err);
    }
    assertFalse(mounted());
  }

  @Test
  void truncatedRootfsBlob_mountFailsNamingTheBlob() throws Exception {
    var layout = OciLayout.open(oci);
    var rootfs = layout.manifest("v1").layers().get(0);
    Path blob = layout.blobPath(rootfs.digestValue());
    byte[] bytes = Files.readAllBytes(blob);
    Files.write(blob, java.util.Arrays.copyOf(bytes, bytes.length / 2));
    String err = fail("mount", oci.toString(), "v1", mnt.toString());
    assertTrue(err.contains(rootfs.digestValue().hex()), err);
    assertFalse(mounted());
  }

  @Test
  void mount_wrongDigest_refusesNamingTheManifestBlobExpectedAndActualDigest() throws Exception {
    var layout = OciLayout.open(oci);
    var manifest = layout.resolveTag("v1");
    String actual =
        java.util.HexFormat.of()
            .formatHex(
                dev.puzzlefs.format.FsVerity.digest(layout.readBlob(manifest.digestValue())));
    String wrong = "00".repeat(32);

    String err = fail("mount", "--digest", wrong, oci.toString(), "v1", mnt.toString());

    assertTrue(err.contains("manifest " + manifest.digest()), err);
    assertTrue(err.contains("has fs-verity digest " + actual), err);
    assertTrue(err.contains("not the expected --digest " + wrong), err);
    assertFalse(mounted());
  }

  @Test
  void registryReferences_thatDoNotResolve_failWithClearErrors() throws Exception {
    try (TestRegistry registry = TestRegistry.launch()) {
      String missing = "docker://" + registry.hostPort() + "/nothing/here:v1";
      String err = fail("mount", "--plain-http", missing, mnt.toString());
      assertTrue(err.contains("nothing/here") && err.contains("v1"), err);
      assertFalse(mounted());

      int closedPort;
      try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
        closedPort = s.getLocalPort();
      }
      String unreachable = "docker://127.0.0.1:" + closedPort + "/x/y:v1";
      String err2 = fail("mount", "--plain-http", "--retries", "1", unreachable, mnt.toString());
      assertTrue(err2.contains("127.0.0.1:" + closedPort), err2);

      String bad = fail("mount", "docker://", mnt.toString());
      assertTrue(bad.contains("docker://"), bad);
    }
  }

  @Test
  void push_twice_skipsEveryBlobTheSecondTime() throws Exception {
    try (TestRegistry registry = TestRegistry.launch()) {
      String ref = "docker://" + registry.hostPort() + "/cli/push:v1";
      String first = Cli.ok("push", "--plain-http", oci.toString(), "v1", ref).stderr();
      String second = Cli.ok("push", "--plain-http", oci.toString(), "v1", ref).stderr();
      assertTrue(first.contains("uploaded"), first);
      assertTrue(second.contains(": 0 blobs uploaded"), second);
    }
  }

  @Test
  void push_toRegistryListedInsecureInConfig_usesPlainHttp() throws Exception {
    try (TestRegistry registry = TestRegistry.launch()) {
      Path config =
          Files.writeString(
              tmp.resolve("config.json"),
              "{\"registry\":{\"insecure\":[\"" + registry.hostPort() + "\"]}}");
      String ref = "docker://" + registry.hostPort() + "/cli/insecure:v1";
      Cli.ok("push", "--config", config.toString(), oci.toString(), "v1", ref);
      Cli.ok(
          "mount",
          "--config",
          config.toString(),
          "--cache-dir",
          tmp.resolve("cache").toString(),
          ref,
          mnt.toString());
      assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
    }
  }

  @Test
  void pushAndMount_registryWithBasicAuth_takeCredentialsFromAuthfile() throws Exception {
    String password = "Cli-Password-4711";
    try (TestRegistry registry =
        TestRegistry.launch(TestRegistry.htpasswdAuth(tmp, "cli-user", password))) {
      String ref = "docker://" + registry.hostPort() + "/cli/auth:v1";
      String auth =
          java.util.Base64.getEncoder()
              .encodeToString(("cli-user:" + password).getBytes(StandardCharsets.UTF_8));
      Path authfile =
          Files.writeString(
              tmp.resolve("auth.json"),
              "{\"auths\":{\"" + registry.hostPort() + "\":{\"auth\":\"" + auth + "\"}}}");
      Path empty = Files.writeString(tmp.resolve("empty.json"), "{\"auths\":{}}");

      String err =
          fail("push", "--plain-http", "--authfile", empty.toString(), oci.toString(), "v1", ref);
      assertTrue(err.contains("HTTP 401"), err);
      assertTrue(err.contains("no credentials for " + registry.hostPort()), err);
      assertTrue(err.contains(empty.toString()), err);
      String missing =
          fail(
              "push",
              "--plain-http",
              "--authfile",
              tmp.resolve("nope.json").toString(),
              oci.toString(),
              "v1",
              ref);
      assertTrue(
          missing.contains("auth file " + tmp.resolve("nope.json") + " does not exist"), missing);

      Cli.ok("push", "--plain-http", "--authfile", authfile.toString(), oci.toString(), "v1", ref);
      Cli.ok(
          "mount",
          "--plain-http",
          "--authfile",
          authfile.toString(),
          "--cache-dir",
          tmp.resolve("cache").toString(),
          ref,
          mnt.toString());
      assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
      assertEquals(-1L, Files.mismatch(src.resolve("dir/data"), mnt.resolve("dir/data")));
    }
  }

  @Test
  void push_withoutPlainHttp_usesHttpsAndFailsAgainstAPlainRegistry() throws Exception {
    try (TestRegistry registry = TestRegistry.launch()) {
      String ref = "docker://" + registry.hostPort() + "/cli/tls:v1";
      String err = fail("push", "--retries", "1", oci.toString(), "v1", ref);
      assertTrue(err.contains(registry.hostPort()), err);
    }
  }

  @Test
  void push_rootfsUsingAChunkTheManifestDoesNotList_failsBeforeSendingAnything() throws Exception {
    OciLayout layout = OciLayout.open(oci);
    ImageManifest manifest = layout.manifest("v1");
    List<Descriptor> layers = new ArrayList<>(manifest.layers());
    Descriptor dropped = layers.remove(layers.size() - 1);
    assertEquals(MediaTypes.FILEDATA, dropped.mediaType());
    tagWithLayers(layout, "v1", manifest, layers);
    WireMockServer registry =
        new WireMockServer(WireMockConfiguration.options().bindAddress("127.0.0.1").dynamicPort());
    registry.start();
    try {
      String ref = "docker://127.0.0.1:" + registry.port() + "/cli/incomplete:v1";
      Processes.Result r = Cli.run("push", "--plain-http", oci.toString(), "v1", ref);

      assertEquals(1, r.exit(), r.stderr());
      assertTrue(r.stderr().contains("uses chunk " + dropped.digest()), r.stderr());
      assertTrue(r.stderr().contains("(1 chunk missing in all)"), r.stderr());
      assertEquals(List.of(), registry.getAllServeEvents(), "nothing sent to the registry");
    } finally {
      registry.stop();
    }
  }

  @Test
  void bundle_imageGivenInEachLocalForm_writesConfigAndMountsTheImage() throws Exception {
    OciLayout.open(oci).tag("latest", OciLayout.open(oci).resolveTag("v1"));
    List<List<String>> forms =
        List.of(
            List.of(oci.toString(), "v1"),
            List.of(oci + ":v1"),
            List.of("oci:" + oci + ":v1"),
            List.of("oci:" + oci));
    for (List<String> image : forms) {
      Path bundle = tmp.resolve("bundle-" + forms.indexOf(image));
      List<String> args = new ArrayList<>(List.of("bundle"));
      args.addAll(image);
      args.add(bundle.toString());
      Cli.ok(args.toArray(String[]::new));
      try {
        assertTrue(Files.isRegularFile(bundle.resolve("config.json")));
        assertEquals("hello\n", Files.readString(bundle.resolve("rootfs/hello")));
      } finally {
        Cli.ok("umount", bundle.resolve("rootfs").toString());
      }
    }
    Processes.Result noTag = Cli.run("bundle", "oci:" + oci + ":", tmp.resolve("b").toString());
    assertEquals(2, noTag.exit(), noTag.stderr());
    assertTrue(noTag.stderr().contains("names no tag"), noTag.stderr());
  }

  @Test
  void skopeoCopy_toAnotherLayout_thenMounts() throws Exception {
    Path copy = tmp.resolve("copy");
    Processes.run(120, "skopeo", "copy", "-q", "oci:" + oci + ":v1", "oci:" + copy + ":v1");
    Cli.ok("mount", copy.toString(), "v1", mnt.toString());
    assertEquals(-1L, Files.mismatch(src.resolve("dir/data"), mnt.resolve("dir/data")));
  }

  @Test
  void skopeoCopy_toTheRegistry_thenMountsFromThere() throws Exception {
    try (TestRegistry registry = TestRegistry.launch()) {
      skopeoToRegistryAndMount(oci, "v1", registry, "cli/skopeo");
      assertEquals("hello\n", Files.readString(mnt.resolve("hello")));
      assertEquals(-1L, Files.mismatch(src.resolve("dir/data"), mnt.resolve("dir/data")));
    }
  }

  @Test
  void umount_ofAFilesystemThatIsNotPuzzlefs_refusesAndLeavesItMounted() throws Exception {
    Processes.run(10, "mount", "-t", "tmpfs", "qa", mnt.toString());
    try {
      String err = fail("umount", mnt.toString());
      assertTrue(err.contains("is not a puzzlefs mount"), err);
      assertTrue(mounted());
    } finally {
      Processes.exec(10, null, "umount", mnt.toString());
    }
  }

  @Test
  void build_severalAtOnceIntoANewLayout_everyTagLands() throws Exception {
    Path layout = tmp.resolve("shared-new-layout");
    List<Process> builds = new java.util.ArrayList<>();
    for (int i = 0; i < 6; i++) {
      Path tree = Files.createDirectories(tmp.resolve("parallel-src-" + i));
      Files.writeString(tree.resolve("f"), "tree " + i);
      builds.add(
          new ProcessBuilder(
                  Cli.command("build", "-q", tree.toString(), layout.toString(), "t" + i))
              .redirectErrorStream(true)
              .start());
    }
    for (Process p : builds) {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "build ends");
      assertEquals(0, p.exitValue(), out);
    }

    String index = Files.readString(layout.resolve("index.json"));
    for (int i = 0; i < 6; i++) {
      assertTrue(index.contains("\"t" + i + "\""), "tag t" + i + " in " + index);
    }
  }

  @Test
  void build_onAFullDisk_namesTheBlobAndPlace_andLeavesNoTagNorTemporaryFile() throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("big-src"));
    byte[] data = new byte[2_000_000];
    new java.util.Random(3).nextBytes(data);
    Files.write(tree.resolve("random"), data);
    Path small = Files.createDirectories(tmp.resolve("small-disk"));
    Processes.Result m =
        Processes.run(10, "mount", "-t", "tmpfs", "-o", "size=512k", "qa", small.toString());
    assertEquals(0, m.exit(), m.stderr());
    try {
      Path layout = small.resolve("oci");
      String err = fail("build", tree.toString(), layout.toString(), "t");

      assertTrue(err.contains("cannot store blob sha256:"), err);
      assertTrue(err.contains(" in " + layout.resolve("blobs/sha256")), err);
      assertTrue(err.contains("No space left on device"), err);
      try (var blobs = Files.list(layout.resolve("blobs/sha256"))) {
        assertEquals(
            List.of(),
            blobs.filter(p -> p.getFileName().toString().startsWith(".tmp-")).toList(),
            "no half-written blob");
      }
      assertFalse(Files.readString(layout.resolve("index.json")).contains("\"t\""), "no tag");
    } finally {
      Processes.exec(10, null, "umount", small.toString());
    }
  }

  @Test
  void build_deltaWithOtherCompressionThanItsBase_saysWhyNothingWasShared() throws Exception {
    Path layout = tmp.resolve("mixed");
    Cli.ok("build", "--compression", "zstd", src.toString(), layout.toString(), "base");

    Processes.Result plain =
        Cli.ok("build", "--base-layer", "base", src.toString(), layout.toString(), "plain");
    Processes.Result same =
        Cli.ok(
            "build",
            "--compression",
            "zstd",
            "--base-layer",
            "base",
            src.toString(),
            layout.toString(),
            "same");

    assertTrue(
        plain
            .stderr()
            .contains(
                "note: no chunk was shared with base because its chunks are"
                    + " zstd-compressed and this build's are not"),
        plain.stderr());
    assertFalse(same.stderr().contains("note:"), same.stderr());
  }

  @Test
  void build_ontoAnExistingTag_saysWhichImageItNamedBefore() throws Exception {
    Path layout = tmp.resolve("retag");
    Path tree = Files.createDirectories(tmp.resolve("retag-src"));
    Files.writeString(tree.resolve("f"), "one\n");
    Cli.ok("build", tree.toString(), layout.toString(), "t");
    String before = OciLayout.open(layout).resolveTag("t").digest();

    Processes.Result same = Cli.ok("build", tree.toString(), layout.toString(), "t");
    Files.writeString(tree.resolve("f"), "two\n");
    Processes.Result other = Cli.ok("build", tree.toString(), layout.toString(), "t");

    assertFalse(same.stderr().contains("note: tag"), "the same image again: " + same.stderr());
    assertTrue(
        other.stderr().contains("note: tag t named " + before + " before; it names the new image"),
        other.stderr());
  }

  @Test
  void build_invalidTag_isAUsageError() throws Exception {
    Processes.Result r =
        Cli.run("build", src.toString(), tmp.resolve("fresh-layout").toString(), "bad/tag");

    assertEquals(2, r.exit(), r.stderr());
    assertTrue(r.stderr().contains("'bad/tag' is not a valid tag"), r.stderr());
    assertTrue(Files.notExists(tmp.resolve("fresh-layout")), "nothing made");
  }

  @Test
  void build_intoAPlaceThatWouldBeDamaged_refuses() throws Exception {
    Path plain = Files.createDirectories(tmp.resolve("plain"));
    Files.writeString(plain.resolve("notes.txt"), "mine");
    String err = fail("build", src.toString(), plain.toString(), "t");
    assertTrue(err.contains("not an OCI layout"), err);
    assertEquals(List.of(plain.resolve("notes.txt")), Files.list(plain).toList());

    String inside = fail("build", src.toString(), src.resolve("oci").toString(), "t");
    assertTrue(inside.contains("inside the root filesystem"), inside);
    assertFalse(Files.exists(src.resolve("oci")));

    String empty = fail("build", src.toString(), "", "t");
    assertTrue(empty.contains("(OCI_DIR): an empty path"), empty);
  }

  @Test
  void subcommandHelp_exitsZeroWithUsage() throws Exception {
    for (String c : List.of("build", "mount", "umount", "push", "extract", "enable-fs-verity")) {
      assertTrue(Cli.ok(c, "--help").out().contains("Usage: puzzlefs " + c), c);
    }
  }

  /** Copies a layout's tag to the registry with skopeo, then mounts it from there lazily. */
  private void skopeoToRegistryAndMount(Path layout, String tag, TestRegistry registry, String repo)
      throws Exception {
    String ref = "docker://" + registry.hostPort() + "/" + repo + ":v1";
    Processes.run(
        300, "skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:" + layout + ":" + tag, ref);
    Cli.ok(
        "mount",
        "--plain-http",
        "--cache-dir",
        tmp.resolve("cache").toString(),
        ref,
        mnt.toString());
  }

  @Test
  void help_listsEveryCommand() throws Exception {
    String out = Cli.ok("--help").out();
    for (String c : List.of("build", "mount", "umount", "push")) {
      assertTrue(out.contains(c), out);
    }
    assertTrue(
        new String(out.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8).length() > 0);
  }

  /**
   * Tags {@code tag} with a copy of {@code manifest} whose layers are {@code layers}; the copy's
   * digest.
   */
  private static Digest tagWithLayers(
      OciLayout layout, String tag, ImageManifest manifest, List<Descriptor> layers)
      throws java.io.IOException {
    byte[] bytes =
        Json.write(
            new ImageManifest(
                manifest.schemaVersion(),
                manifest.mediaType(),
                manifest.config(),
                layers,
                manifest.annotations()));
    Digest digest = layout.putBlob(bytes);
    layout.tag(tag, Descriptor.of(MediaTypes.MANIFEST, digest, bytes.length));
    return digest;
  }
}
