package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.Processes;
import dev.puzzlefs.testing.TestRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mount --writable}: writes land in the overlay's upper layer (a persist directory or a
 * private one), never in the image; {@code umount} takes down both layers, and cleans up a half
 * left behind.
 */
class WritableMountTest {
  @TempDir Path tmp;
  private Path src;
  private Path oci;
  private Path mnt;
  private Isolated cli;

  @BeforeEach
  void smallImage() throws Exception {
    src = Files.createDirectories(tmp.resolve("src/etc"));
    Files.writeString(src.resolve("motd"), "from the image\n");
    Files.write(src.resolve("data"), new byte[300_000]);
    oci = tmp.resolve("oci");
    Cli.ok("build", src.getParent().toString(), oci.toString(), "v1");
    mnt = Files.createDirectories(tmp.resolve("mnt"));
    cli = new Isolated(tmp);
  }

  @AfterEach
  void unmount() throws Exception {
    cli.run("umount", mnt.toString());
    Cli.unmountQuietly(mnt);
  }

  private String mountType() throws Exception {
    String abs = mnt.toAbsolutePath().toString();
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      String[] f = line.split(" ");
      if (f[4].equals(abs)) {
        return line.substring(line.indexOf(" - ") + 3).split(" ")[0];
      }
    }
    return null;
  }

  /**
   * The arguments of {@code mount --writable --persist PERSIST} of the test image on {@code on}.
   */
  private String[] mountWritable(Path persist, Path on) {
    return new String[] {
      "mount", "--writable", "--persist", persist.toString(), oci.toString(), "v1", on.toString()
    };
  }

  @Test
  void writableWithPersist_fileSurvivesRemountAndIsAbsentWithoutPersist() throws Exception {
    Path persist = tmp.resolve("persist");
    cli.ok(mountWritable(persist, mnt));
    assertEquals("overlay", mountType());
    Files.writeString(mnt.resolve("etc/note"), "written\n");
    Files.writeString(mnt.resolve("etc/motd"), "changed\n");
    assertEquals("written\n", Files.readString(mnt.resolve("etc/note")));
    assertEquals("written\n", Files.readString(persist.resolve("upper/etc/note")));
    cli.ok("umount", mnt.toString());
    assertEquals(null, mountType());
    cli.assertNothingLeft(mnt);

    cli.ok(mountWritable(persist, mnt));
    assertEquals("written\n", Files.readString(mnt.resolve("etc/note")));
    assertEquals("changed\n", Files.readString(mnt.resolve("etc/motd")));
    cli.ok("umount", mnt.toString());

    cli.ok("mount", "--writable", oci.toString(), "v1", mnt.toString());
    assertFalse(Files.exists(mnt.resolve("etc/note")), "a fresh mount has no earlier writes");
    assertEquals("from the image\n", Files.readString(mnt.resolve("etc/motd")));
    Files.writeString(mnt.resolve("etc/scratch"), "gone at unmount\n");
    cli.ok("umount", mnt.toString());
    cli.assertNothingLeft(mnt);

    Isolated.assertBlobsIntact(oci);
    assertEquals("from the image\n", Files.readString(src.resolve("motd")));
  }

  /**
   * An overlay has no "only the mounting user" rule, so a writable mount is {@code nosuid,nodev} as
   * the read-only FUSE mount is: a set-user-ID-root program of the image, run by another user
   * through it, runs as that user, and the image's device nodes cannot be opened.
   */
  @Test
  void writable_isNosuidNodev_anotherUserGetsNoRootFromTheImage() throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("suid/bin"));
    Path id = Files.copy(Path.of("/usr/bin/id"), tree.resolve("id"));
    Processes.run(10, "chmod", "4755", id.toString());
    Processes.run(10, "mknod", "-m", "666", tree.resolve("zero").toString(), "c", "1", "5");
    Path suidOci = tmp.resolve("suid-oci");
    Cli.ok("build", tree.getParent().toString(), suidOci.toString(), "v1");
    Files.setPosixFilePermissions(
        tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));

    cli.ok("mount", "--writable", suidOci.toString(), "v1", mnt.toString());

    String options = null;
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      String[] f = line.split(" ");
      if (f[4].equals(mnt.toAbsolutePath().toString())) {
        options = f[5];
      }
    }
    assertTrue(
        options != null && options.contains("nosuid") && options.contains("nodev"),
        "mount options: " + options);
    Processes.Result r =
        Processes.exec(
            30,
            null,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            mnt.resolve("bin/id").toString(),
            "-u");
    assertEquals(0, r.exit(), r.stderr());
    assertEquals("65534", r.out().strip(), "the set-user-ID bit gave its owner's id");
    Processes.Result dev =
        Processes.exec(30, null, "head", "-c", "1", mnt.resolve("bin/zero").toString());
    assertNotEquals(0, dev.exit(), "a device node of the image opened: " + dev.out());
  }

  @Test
  void persistInUseOrAFile_isRefusedAndLeavesNothingBehind() throws Exception {
    Path persist = tmp.resolve("persist");
    Path second = Files.createDirectories(tmp.resolve("mnt2"));
    cli.ok(mountWritable(persist, mnt));
    try {
      var r = cli.run(mountWritable(persist, second));
      assertTrue(r.exit() != 0, r.stderr());
      assertTrue(
          r.stderr().contains(persist + " is in use")
              && r.stderr().contains("writable mount on " + mnt),
          r.stderr());
      assertNull(
          dev.puzzlefs.fuse.MountTable.typeAt(second), "nothing mounted on the second point");
    } finally {
      cli.ok("umount", mnt.toString());
    }

    Path file = Files.writeString(tmp.resolve("afile"), "x");
    var r = cli.run(mountWritable(file, mnt));
    assertTrue(r.exit() != 0 && r.stderr().contains(file + " is not a directory"), r.stderr());
    cli.assertNothingLeft(mnt, second);
  }

  @Test
  void writableFromRegistry_writesGoToTheUpperLayerAndTheCacheStaysIntact() throws Exception {
    try (TestRegistry registry = TestRegistry.launch()) {
      String ref = "docker://" + registry.hostPort() + "/writable/test:v1";
      Cli.ok("push", "--plain-http", oci.toString(), "v1", ref);
      Path cache = tmp.resolve("cache");
      Path persist = tmp.resolve("persist");
      cli.ok(
          "mount",
          "--writable",
          "--persist",
          persist.toString(),
          "--plain-http",
          "--cache-dir",
          cache.toString(),
          ref,
          mnt.toString());

      assertEquals("from the image\n", Files.readString(mnt.resolve("etc/motd")));
      // Appending copies the image's file up into the upper layer, reading all of it.
      Files.write(mnt.resolve("etc/data"), new byte[] {1, 2, 3}, StandardOpenOption.APPEND);
      assertEquals(300_003, Files.size(persist.resolve("upper/etc/data")));
      assertEquals(300_003, Files.size(mnt.resolve("etc/data")));
      cli.ok("umount", mnt.toString());

      Isolated.assertBlobsIntact(oci);
      assertCacheEntriesIntact(cache);
      cli.assertNothingLeft(mnt, cache);
    }
  }

  /** Every cached chunk file named by a sha256 still hashes to its name. */
  private static void assertCacheEntriesIntact(Path cache) throws Exception {
    List<Path> files;
    try (var walk = Files.walk(cache)) {
      files =
          walk.filter(Files::isRegularFile)
              .filter(p -> p.getFileName().toString().matches("[0-9a-f]{64}"))
              .toList();
    }
    assertFalse(files.isEmpty(), "the mount cached chunks in " + cache);
    for (Path f : files) {
      String sum = Processes.run(30, "sha256sum", f.toString()).out().split(" ")[0];
      assertEquals(f.getFileName().toString(), sum, "cache entry " + f);
    }
  }

  @Test
  void umount_overlayAlreadyGone_reportsItAndTakesDownTheImageMount() throws Exception {
    cli.ok("mount", "--writable", oci.toString(), "v1", mnt.toString());
    Processes.run(30, "umount", mnt.toString()); // the overlay only

    Processes.Result r = cli.ok("umount", mnt.toString());

    assertTrue(r.stderr().contains("overlay on " + mnt + " was already gone"), r.stderr());
    cli.assertNothingLeft(mnt);
  }

  @Test
  void umount_imageMountUnderItGone_reportsItAndTakesDownTheOverlay() throws Exception {
    cli.ok("mount", "--writable", oci.toString(), "v1", mnt.toString());
    String lower = lowerDir();
    Processes.run(30, "fusermount", "-u", "-z", lower); // the image under the overlay only

    Processes.Result r = cli.ok("umount", mnt.toString());

    assertTrue(r.stderr().contains("image mount under " + mnt), r.stderr());
    assertTrue(r.stderr().contains("already gone") || r.stderr().contains("died"), r.stderr());
    cli.assertNothingLeft(mnt);
  }

  /**
   * {@code umount --lazy} of a writable mount in use detaches both layers at once; the process
   * using it still reads the image and its own write, and the private directory, which holds that
   * write, is named and kept. Without {@code --lazy} the busy mount is refused and stays.
   */
  @Test
  void umountLazy_writableMountInUse_detachesBothLayers_andKeepsThePrivateDirectory()
      throws Exception {
    cli.ok("mount", "--writable", oci.toString(), "v1", mnt.toString());
    String lower = lowerDir();
    Files.writeString(mnt.resolve("etc/note"), "written\n");
    Process user =
        new ProcessBuilder("sh", "-c", "read x; cat etc/motd etc/note")
            .directory(mnt.toFile())
            .start();
    try {
      Processes.Result busy = cli.run("umount", mnt.toString());
      assertNotEquals(0, busy.exit(), "busy, without --lazy");
      assertTrue(
          busy.stderr()
                  .contains(
                      "it is busy (EBUSY): used by sh (pid " + user.pid() + ", working directory)")
              && busy.stderr().contains("'puzzlefs umount --lazy " + mnt),
          busy.stderr());
      assertEquals("overlay", mountType());

      Processes.Result r = cli.ok("umount", "--lazy", mnt.toString());

      assertNull(mountType(), "the overlay left the tree");
      assertTrue(r.stderr().contains("detached"), r.stderr());
      java.util.regex.Matcher kept =
          java.util.regex.Pattern.compile("private directory (\\S+) stays").matcher(r.stderr());
      assertTrue(kept.find(), r.stderr());
      Path privateDir = Path.of(kept.group(1));
      assertTrue(Files.isDirectory(privateDir), privateDir.toString());
      assertFalse(
          Files.readString(Path.of("/proc/self/mountinfo")).contains(" " + lower + " "),
          "the image mount left the tree too");
      user.getOutputStream().write('\n');
      user.getOutputStream().close();
      assertEquals(
          "from the image\nwritten\n",
          new String(
              user.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8));
      assertEquals(0, user.waitFor());
      Processes.run(30, "rm", "-rf", privateDir.toString());
    } finally {
      user.destroyForcibly();
    }
  }

  private String lowerDir() throws Exception {
    String abs = mnt.toAbsolutePath().toString();
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      if (line.split(" ")[4].equals(abs)) {
        return line.replaceAll(".*lowerdir=([^,]*).*", "$1");
      }
    }
    throw new AssertionError("no overlay on " + mnt);
  }

  @Test
  void mount_persistWithoutWritable_isRefused() throws Exception {
    Processes.Result r =
        cli.run(
            "mount",
            "--persist",
            tmp.resolve("p").toString(),
            oci.toString(),
            "v1",
            mnt.toString());
    assertTrue(r.exit() != 0 && r.stderr().contains("--persist needs --writable"), r.stderr());
    assertEquals(null, mountType());
  }
}
