package dev.puzzlefs.builder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same tree gives the same image bytes on every run, from any path, with any thread count and
 * on either JDK: the expected manifest digests below are constants, and CI runs this class on Java
 * 17 and on Java 25. A change to them is a change of the format's output and must be deliberate.
 */
class ReproducibleBuildTest {
  /** Manifest sha256 of {@link #tree} built uncompressed. */
  static final String PLAIN =
      "sha256:034c2e630ff568a477e2c759323d09ee3aca221ba6626d596652ae3a58d1cf00";

  /** Manifest sha256 of {@link #tree} built with zstd (ties the digests to zstd-jni's output). */
  static final String ZSTD =
      "sha256:218175728b3af253d5686cbdf8423f845b42513b581f59fd7f7667b036400033";

  @TempDir Path tmp;

  /** A tree whose every recorded property is set explicitly (no umask, owner or time leaks). */
  static void tree(Path root) throws IOException {
    Random random = new Random(2026);
    Files.createDirectories(root);
    for (int d = 0; d < 4; d++) {
      Path dir = Files.createDirectories(root.resolve("dir-" + d + "/nested"));
      for (int f = 0; f < 6; f++) {
        byte[] data = new byte[random.nextInt(200_000)];
        random.nextBytes(data);
        // Half the files compress well, so a zstd build mixes raw and compressed chunks.
        if (f % 2 == 0) {
          java.util.Arrays.fill(data, 0, data.length / 2, (byte) 'z');
        }
        Files.write((f % 3 == 0 ? dir : dir.getParent()).resolve("file-" + f), data);
      }
    }
    Files.writeString(root.resolve("text"), "the same bytes every time\n");
    Files.createSymbolicLink(root.resolve("link"), Path.of("dir-0/nested/file-0"));
    Files.createLink(root.resolve("hard"), root.resolve("text"));
    UserDefinedFileAttributeView x =
        Files.getFileAttributeView(root.resolve("text"), UserDefinedFileAttributeView.class);
    x.write("b", StandardCharsets.UTF_8.encode("second"));
    x.write("a", StandardCharsets.UTF_8.encode("first"));
    try (Stream<Path> all = Files.walk(root)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        Files.setAttribute(p, "unix:uid", 1000, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(p, "unix:gid", 1000, LinkOption.NOFOLLOW_LINKS);
        if (!Files.isSymbolicLink(p)) {
          Files.setAttribute(p, "unix:mode", Files.isDirectory(p) ? 0755 : 0644);
        }
      }
    }
  }

  private String manifest(Path src, String layout, int threads, Compression c) throws IOException {
    BuildResult r =
        new ImageBuilder(threads, c).build(src, OciLayout.openOrCreate(tmp.resolve(layout)), "t");
    return r.manifest().toString();
  }

  @Test
  void plainBuild_hasTheKnownManifestDigest_fromAnyPathAndThreadCount() throws Exception {
    tree(tmp.resolve("a"));
    tree(tmp.resolve("b/elsewhere"));
    assertEquals(PLAIN, manifest(tmp.resolve("a"), "o1", 1, Compression.NONE));
    assertEquals(PLAIN, manifest(tmp.resolve("b/elsewhere"), "o2", 3, Compression.NONE));
  }

  @Test
  void zstdBuild_hasTheKnownManifestDigest() throws Exception {
    tree(tmp.resolve("a"));
    assertEquals(ZSTD, manifest(tmp.resolve("a"), "o1", 2, Compression.ZSTD));
    assertEquals(ZSTD, manifest(tmp.resolve("a"), "o2", 1, Compression.ZSTD));
  }

  @Test
  void indexJson_isByteIdenticalAcrossLayouts() throws Exception {
    tree(tmp.resolve("a"));
    manifest(tmp.resolve("a"), "o1", 1, Compression.NONE);
    manifest(tmp.resolve("a"), "o2", 2, Compression.NONE);
    assertArrayEquals(
        Files.readAllBytes(tmp.resolve("o1/index.json")),
        Files.readAllBytes(tmp.resolve("o2/index.json")));
  }
}
