package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.puzzlefs.format.CapnpTool;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciLayout;
import dev.puzzlefs.testing.DebianRootfs;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import dev.puzzlefs.testing.TreeSnapshot;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The whole path on real input: a Debian root filesystem is built, mounted from the local layout,
 * pushed to a real registry process and mounted from there, and every mount is compared with the
 * source entry by entry.
 */
@Tag("e2e")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DebianImageTest {
  private static final String TAG = "bookworm";

  private Path work;
  private Path rootfs;
  private Path oci;
  private String manifestVerity;
  private TreeSnapshot source;
  private TestRegistry registry;
  private Path mnt;

  @BeforeAll
  void buildOnce() throws Exception {
    rootfs = DebianRootfs.get();
    work = Files.createTempDirectory("puzzlefs-e2e-");
    oci = work.resolve("oci");
    String out = Cli.ok("build", rootfs.toString(), oci.toString(), TAG).out();
    assertTrue(out.startsWith("puzzlefs image manifest digest: "), out);
    manifestVerity = out.trim().substring("puzzlefs image manifest digest: ".length());
    source = TreeSnapshot.of(rootfs);
    registry = TestRegistry.launch();
  }

  @AfterAll
  void cleanUp() throws Exception {
    if (registry != null) {
      registry.close();
    }
    Processes.exec(120, null, "rm", "-rf", work.toString());
  }

  @AfterEach
  void unmount() {
    if (mnt != null) {
      Cli.unmountQuietly(mnt);
    }
  }

  private Path mountpoint(String name) throws IOException {
    mnt = Files.createDirectories(work.resolve(name));
    return mnt;
  }

  private void assertSameAsSource(Path root) throws Exception {
    TreeSnapshot mounted = TreeSnapshot.of(root);
    assertTrue(source.entries().size() > 6000, "a real Debian tree has thousands of entries");
    String diff = source.diff(mounted, 20);
    assertEquals("", diff, "mount differs from the source tree");
  }

  private String push(String repo) throws Exception {
    String ref = "docker://" + registry.hostPort() + "/" + repo + ":" + TAG;
    Cli.ok("push", "--plain-http", oci.toString(), TAG, ref);
    return ref;
  }

  private static JsonNode stats(Path mnt) throws Exception {
    Processes.Result r =
        Processes.run(30, "getfattr", "--only-values", "-n", "user.puzzlefs.stats", mnt.toString());
    return new ObjectMapper().readTree(r.stdout());
  }

  @Test
  void localMount_matchesSourceEntryByEntry() throws Exception {
    Path m = mountpoint("local");
    Cli.ok("mount", "--digest", manifestVerity, oci.toString(), TAG, m.toString());
    assertSameAsSource(m);
    Cli.ok("umount", m.toString());
    assertEquals(
        Files.getAttribute(work, "unix:dev"), Files.getAttribute(m, "unix:dev"), "unmounted");
  }

  @Test
  void registryMount_withEmptyCache_matchesSourceEntryByEntry() throws Exception {
    String ref = push("e2e/full");
    Path m = mountpoint("remote");
    Cli.ok(
        "mount",
        "--plain-http",
        "--cache-dir",
        work.resolve("cache-full").toString(),
        ref,
        m.toString());
    assertSameAsSource(m);
  }

  @Test
  void registryMount_readingOneSmallFile_fetchesUnderFivePercent() throws Exception {
    String ref = push("e2e/lazy");
    Path m = mountpoint("lazy");
    Cli.ok(
        "mount",
        "--plain-http",
        "--cache-dir",
        work.resolve("cache-lazy").toString(),
        ref,
        m.toString());
    assertEquals(
        Files.readString(rootfs.resolve("etc/os-release")),
        Files.readString(m.resolve("etc/os-release")));

    JsonNode stats = stats(m);
    long fetched = stats.get("fetchedBytes").asLong();
    long image = stats.get("imageBytes").asLong();
    assertTrue(fetched > 0, "reading a file fetched something: " + stats);
    assertTrue(image > 100_000_000, "image bytes are the chunk total: " + stats);
    assertTrue(fetched < image / 20, "fetched " + fetched + " of " + image);
  }

  @Test
  void registryKilledWhileMounted_uncachedReadFailsWithEioThenRecovers() throws Exception {
    String ref = push("e2e/faults");
    Path m = mountpoint("faults");
    Cli.ok(
        "mount",
        "--plain-http",
        "--cache-dir",
        work.resolve("cache-faults").toString(),
        "--read-timeout",
        "8",
        "--request-timeout",
        "2",
        "--retries",
        "2",
        ref,
        m.toString());
    String cached = Files.readString(m.resolve("etc/os-release"));
    Path uncached = m.resolve("usr/bin/bash");

    registry.stop();
    long start = System.nanoTime();
    Processes.Result cat = Processes.exec(60, null, "cat", uncached.toString());
    double secs = (System.nanoTime() - start) / 1e9;
    assertNotEquals(0, cat.exit());
    assertTrue(cat.stderr().contains("Input/output error"), cat.stderr());
    assertTrue(secs < 8 + 5, "EIO within the read timeout, took " + secs + "s");
    assertEquals(cached, Files.readString(m.resolve("etc/os-release")), "cached file still reads");
    assertTrue(Files.isDirectory(m.resolve("usr/bin")), "the mount stays up");
    JsonNode s = stats(m);
    assertTrue(s.get("fetchErrors").asLong() > 0, "the failed fetch is counted: " + s);
    assertTrue(s.get("registryRetries").asLong() > 0, "and its retries: " + s);
    assertTrue(s.get("registryFailures").asLong() > 0, s.toString());

    registry.start();
    assertEquals(Files.size(rootfs.resolve("usr/bin/bash")), Files.readAllBytes(uncached).length);
    assertEquals(
        -1L, Files.mismatch(rootfs.resolve("usr/bin/bash"), uncached), "bytes after recovery");
  }

  @Test
  void rootfsBlob_decodesWithDebianCapnpToolAsTheBuilderMeantIt() throws Exception {
    OciLayout layout = OciLayout.open(oci);
    var rootfsDesc =
        layout.manifest(TAG).layers().stream()
            .filter(d -> d.mediaType().equals(MediaTypes.ROOTFS))
            .findFirst()
            .orElseThrow();
    byte[] blob = layout.readBlob(rootfsDesc.digestValue());
    Rootfs model = RootfsCodec.decode(blob);
    JsonNode json = CapnpTool.toJson(blob);

    assertEquals("3", json.get("manifestVersion").asText());
    JsonNode inodes = json.get("metadatas").get(0).get("inodes");
    assertEquals(model.layers().get(0).size(), inodes.size());
    Iterator<JsonNode> it = inodes.elements();
    for (Inode inode : model.layers().get(0)) {
      JsonNode j = it.next();
      assertEquals(Long.toUnsignedString(inode.ino()), j.get("ino").asText());
      assertEquals(Integer.toUnsignedLong(inode.uid()), j.get("uid").asLong());
      assertEquals(Integer.toUnsignedLong(inode.gid()), j.get("gid").asLong());
      assertEquals(inode.permissions(), j.get("permissions").asInt());
      String member = j.get("mode").fieldNames().next();
      assertEquals(inode.kind().name().toLowerCase(java.util.Locale.ROOT), member);
      if (member.equals("file")) {
        assertEquals(inode.chunks().size(), j.get("mode").get("file").size());
      } else if (member.equals("dir")) {
        assertEquals(inode.entries().size(), j.get("mode").get("dir").get("entries").size());
      }
    }
    assertEquals(model.verity().size(), json.get("fsVerityData").size());
  }

  @Test
  void sameTreeFromAnotherPath_givesTheSameManifestDigest() throws Exception {
    Path copy = work.resolve("copy/elsewhere");
    Files.createDirectories(copy.getParent());
    Processes.run(600, "cp", "-a", rootfs.toString(), copy.toString());
    String out = Cli.ok("build", copy.toString(), work.resolve("oci2").toString(), TAG).out();
    assertEquals("puzzlefs image manifest digest: " + manifestVerity, out.trim());
    Processes.run(120, "rm", "-rf", copy.toString());
  }
}
