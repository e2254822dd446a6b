package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.DebianRootfs;
import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TreeSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A delta build on real input: Debian minbase, then minbase plus python3 and curl built with {@code
 * --base-layer} on it. The delta must reuse most of the base's chunks, and mounting or extracting
 * it must show exactly the larger tree.
 */
@Tag("e2e")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LayeredImageTest {
  private static final Pattern BUILT =
      Pattern.compile("built .* in (\\d+) chunks \\((\\d+) new\\)");
  private static final Pattern DELTA =
      Pattern.compile(
          "delta on (\\S+): (\\d+) of (\\d+) chunks \\((\\d+) bytes\\) reused from it,"
              + " (\\d+) paths whited out, (\\d+) layers");

  private Path work;
  private Path minbase;
  private Path plus;
  private Path oci;
  private String deltaVerity;
  private TreeSnapshot plusSource;
  private Path mnt;

  @BeforeAll
  void buildBoth() throws Exception {
    minbase = DebianRootfs.get();
    plus = DebianRootfs.withPackages();
    work = Files.createTempDirectory("puzzlefs-layered-");
    oci = work.resolve("oci");

    Processes.Result base = Cli.ok("build", minbase.toString(), oci.toString(), "minbase");
    Matcher b = BUILT.matcher(base.stderr());
    assertTrue(b.find(), base.stderr());
    long baseChunks = Long.parseLong(b.group(1));

    Processes.Result delta =
        Cli.ok("build", "--base-layer", "minbase", plus.toString(), oci.toString(), "plus");
    deltaVerity = delta.out().trim().substring("puzzlefs image manifest digest: ".length());
    Matcher d = DELTA.matcher(delta.stderr());
    assertTrue(d.find(), "the delta build reports its reuse: " + delta.stderr());
    assertEquals("minbase", d.group(1));
    assertEquals("2", d.group(6));
    long reused = Long.parseLong(d.group(2));
    long chunks = Long.parseLong(d.group(3));
    System.out.printf(
        "delta of minbase+%s on minbase: %d of its %d chunks reused (%.0f%% of the delta's"
            + " chunks, %.0f%% of the base's %d), %s bytes%n",
        DebianRootfs.EXTRA_PACKAGES,
        reused,
        chunks,
        100.0 * reused / chunks,
        100.0 * reused / baseChunks,
        baseChunks,
        d.group(4));
    assertTrue(
        reused * 2 > baseChunks,
        "most of the base's chunks are reused: " + reused + " of " + baseChunks);
    plusSource = TreeSnapshot.of(plus);
  }

  @AfterAll
  void cleanUp() throws Exception {
    Processes.exec(120, null, "rm", "-rf", work.toString());
  }

  @AfterEach
  void unmount() {
    if (mnt != null) {
      Cli.unmountQuietly(mnt);
    }
  }

  @Test
  void mountOfTheDelta_matchesTheLargerTreeEntryByEntry() throws Exception {
    mnt = Files.createDirectories(work.resolve("mnt"));
    Cli.ok("mount", "--digest", deltaVerity, oci.toString(), "plus", mnt.toString());
    assertTrue(Files.isExecutable(mnt.resolve("usr/bin/python3")), "the added package is there");
    assertEquals("", plusSource.diff(TreeSnapshot.of(mnt), 20), "mount differs from the source");
    Cli.ok("umount", mnt.toString());
  }

  @Test
  void extractOfTheDelta_matchesTheLargerTreeEntryByEntry() throws Exception {
    Path out = work.resolve("extracted");
    Cli.ok("extract", "--digest", deltaVerity, oci.toString(), "plus", out.toString());
    assertEquals("", plusSource.diff(TreeSnapshot.of(out), 20), "extract differs from the source");
    Processes.run(300, "rm", "-rf", out.toString());
  }

  @Test
  void deltaThatRemovesPackages_whitesThemOutAndShowsTheSmallerTree() throws Exception {
    Processes.Result back =
        Cli.ok("build", "--base-layer", "plus", minbase.toString(), oci.toString(), "back");
    Matcher d = DELTA.matcher(back.stderr());
    assertTrue(d.find(), back.stderr());
    assertEquals("3", d.group(6), "minbase, the delta, and this one");
    assertEquals(d.group(2), d.group(3), "every chunk of minbase is already stored");
    assertTrue(Long.parseLong(d.group(5)) > 500, "python3's files are whited out: " + d.group(5));

    mnt = Files.createDirectories(work.resolve("mnt-back"));
    Cli.ok("mount", oci.toString(), "back", mnt.toString());
    assertTrue(Files.notExists(mnt.resolve("usr/bin/python3")), "removed package is gone");
    assertEquals("", TreeSnapshot.of(minbase).diff(TreeSnapshot.of(mnt), 20));
  }
}
