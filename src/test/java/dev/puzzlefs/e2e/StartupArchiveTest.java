package dev.puzzlefs.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.testing.Processes;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The start-up archive (StartupTraining, bin/puzzlefs): trained on a jar laid out like {@code
 * target/}, it is used by the launcher and by a background mount's daemon, and ignored without a
 * word by another Java or after the jar changed.
 */
class StartupArchiveTest {
  private static final String SHARED = "source: shared objects file (top)";

  @TempDir static Path dir;
  private static Path jar;
  private static Path jsa;
  private static Path oci;
  private static String training;

  @BeforeAll
  static void train() throws Exception {
    jar = packageLikeMaven(dir.resolve("target"));
    jsa = dir.resolve("target/puzzlefs.jsa");
    Processes.Result r =
        Processes.exec(
            360,
            null,
            java(),
            "-cp",
            jar.toString(),
            "dev.puzzlefs.cli.StartupTraining",
            jsa.toString());
    training = r.stderr() + r.out();
    assertEquals(0, r.exit(), training);
    Path tree = Files.createDirectories(dir.resolve("tree/etc"));
    Files.writeString(tree.resolve("os-release"), "NAME=test\n");
    oci = dir.resolve("oci");
    Processes.Result build =
        launcher(Map.of(), "build", "-q", dir.resolve("tree").toString(), oci.toString(), "t");
    assertEquals(0, build.exit(), build.stderr());
  }

  @AfterAll
  static void unmount() {
    Cli.unmountQuietly(dir.resolve("mnt"));
  }

  @Test
  void training_writesTheArchiveAndNamesItsJava() throws IOException {
    assertTrue(training.contains("start-up archive written"), training);
    assertFalse(
        training.contains("left out"), "every step trained here (FUSE works):\n" + training);
    assertTrue(Files.size(jsa) > 1 << 20, "archive size " + Files.size(jsa));
    assertFalse(Files.exists(Path.of(jsa + ".partial")));
    assertEquals(
        Path.of(System.getProperty("java.home")).toRealPath() + "\n" + Files.size(jsa) + "\n",
        Files.readString(Path.of(jsa + ".java")));
  }

  @Test
  void truncatedArchive_isNotHandedToTheJvm() throws Exception {
    // A JVM that maps a truncated archive dies of SIGBUS; the launcher checks the size first.
    Path whole = dir.resolve("whole.jsa");
    Files.copy(jsa, whole);
    try {
      jsa.toFile().setWritable(true);
      try (var channel = java.nio.channels.FileChannel.open(jsa, StandardOpenOption.WRITE)) {
        channel.truncate(1_000_000);
      }
      inspectRunsWithoutTheArchive("classes-truncated.log", "the truncated archive was used");
    } finally {
      Files.copy(whole, jsa, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  @Test
  void launcher_loadsOurClassesFromTheArchive() throws Exception {
    Path log = dir.resolve("classes-launcher.log");
    Processes.Result r = launcher(classLog(log), "inspect", oci.toString(), "t");
    assertEquals(0, r.exit(), r.stderr());
    assertEquals("", r.stderr());
    String classes = Files.readString(log);
    assertTrue(
        classes.contains("dev.puzzlefs.cli.InspectCommand " + SHARED),
        "InspectCommand not from the archive");
    assertTrue(classes.contains("com.fasterxml.jackson.databind.ObjectMapper " + SHARED));
  }

  @Test
  void backgroundMount_daemonStartsFromTheArchiveToo() throws Exception {
    Path mnt = Files.createDirectories(dir.resolve("mnt"));
    Path log = dir.resolve("classes-daemon.log");
    Path mountLog = dir.resolve("mount.log");
    Processes.Result r =
        launcher(
            Map.of("PUZZLEFS_MOUNT_JAVA_OPTS", "-Xlog:class+load:file=" + log),
            "mount",
            "--log-file",
            mountLog.toString(),
            oci.toString(),
            "t",
            mnt.toString());
    try {
      assertEquals(0, r.exit(), r.stderr());
      assertEquals("NAME=test\n", Files.readString(mnt.resolve("etc/os-release")));
    } finally {
      launcher(Map.of(), "umount", mnt.toString());
    }
    String classes = Files.readString(log);
    assertTrue(
        classes.contains("dev.puzzlefs.fuse.PuzzleFs " + SHARED), "PuzzleFs not from the archive");
    // The jar's own logging set-up (LogConfigurator; no logback-test.xml in it).
    String lines = Files.readString(mountLog);
    assertTrue(
        lines.matches(
            "(?s)(.*\\n)?\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  MountSupport - mounted on .*"),
        lines);
  }

  @Test
  void anotherJava_runsWithoutTheArchive() throws Exception {
    Path marker = Path.of(jsa + ".java");
    String made = Files.readString(marker);
    Files.writeString(marker, "/usr/lib/jvm/some-other-java\n" + Files.size(jsa) + "\n");
    try {
      inspectRunsWithoutTheArchive("classes-other-java.log", "the archive was used");
    } finally {
      Files.writeString(marker, made);
    }
  }

  @Test
  void changedJar_archiveIsDroppedQuietly() throws Exception {
    FileTime made = Files.getLastModifiedTime(jar);
    Files.setLastModifiedTime(jar, FileTime.fromMillis(made.toMillis() + 60_000));
    try {
      Processes.Result r =
          inspectRunsWithoutTheArchive("classes-changed-jar.log", "a stale archive was used");
      assertTrue(r.out().contains("rootfs blob"), r.out());
    } finally {
      Files.setLastModifiedTime(jar, made);
    }
  }

  /**
   * A mount server runs the jar it started from: once the jar changes, the launcher mounts without
   * it and says why, rather than hand the mount to old code.
   */
  @Test
  void mountServer_isBypassed_onceTheJarChanged() throws Exception {
    Map<String, String> env = Map.of("PUZZLEFS_SERVER_DIR", dir.resolve("server").toString());
    Path mnt = Files.createDirectories(dir.resolve("mnt-served"));
    Processes.Result started = launcher(env, "serve");
    assertEquals(0, started.exit(), started.stderr());
    FileTime made = Files.getLastModifiedTime(jar);
    try {
      Processes.Result served = launcher(env, "mount", oci.toString(), "t", mnt.toString());
      assertEquals(0, served.exit(), served.stderr());
      assertTrue(served.stderr().contains("served by the mount server"), served.stderr());
      assertEquals(0, launcher(env, "umount", mnt.toString()).exit());

      Files.setLastModifiedTime(jar, FileTime.fromMillis(made.toMillis() + 60_000));
      Processes.Result alone = launcher(env, "mount", oci.toString(), "t", mnt.toString());

      assertEquals(0, alone.exit(), alone.stderr());
      assertTrue(alone.stderr().contains("runs another build of " + jar), alone.stderr());
      assertFalse(alone.stderr().contains("served by the mount server"), alone.stderr());
      assertEquals("NAME=test\n", Files.readString(mnt.resolve("etc/os-release")));
      assertEquals(0, launcher(env, "umount", mnt.toString()).exit());
    } finally {
      Files.setLastModifiedTime(jar, made);
      Cli.unmountQuietly(mnt);
      launcher(env, "serve", "--stop");
    }
  }

  /** Runs inspect through the launcher: it works, prints no warning, and loads nothing shared. */
  private static Processes.Result inspectRunsWithoutTheArchive(String logName, String used)
      throws IOException, InterruptedException {
    Path log = dir.resolve(logName);
    Processes.Result r = launcher(classLog(log), "inspect", oci.toString(), "t");
    assertEquals(0, r.exit(), r.stderr());
    assertEquals("", r.stderr(), "no warning when the archive does not fit");
    assertFalse(Files.readString(log).contains(SHARED), used);
    return r;
  }

  private static Map<String, String> classLog(Path log) {
    return Map.of("PUZZLEFS_JAVA_OPTS", "-Xlog:class+load:file=" + log);
  }

  /** Runs bin/puzzlefs on the test jar with this Java. */
  private static Processes.Result launcher(Map<String, String> env, String... args)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of("bin/puzzlefs"));
    cmd.addAll(List.of(args));
    Map<String, String> all = new java.util.HashMap<>(env);
    all.put("PUZZLEFS_CLASSPATH", null);
    all.put("PUZZLEFS_JAR", jar.toString());
    all.put("JAVA_HOME", System.getProperty("java.home"));
    return Processes.execWithEnv(120, all, cmd.toArray(String[]::new));
  }

  private static String java() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  /**
   * A jar of the compiled classes with its runtime jars in lib/ on its manifest's Class-Path, as
   * {@code mvn package} lays out target/ (the archive needs jars: it refuses class directories).
   */
  private static Path packageLikeMaven(Path target) throws IOException {
    Path lib = Files.createDirectories(target.resolve("lib"));
    Path classes = null;
    StringBuilder classPath = new StringBuilder();
    for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Path p = Path.of(entry);
      if (Files.isDirectory(p) && Files.exists(p.resolve("dev/puzzlefs/cli/Main.class"))) {
        classes = p;
      } else if (entry.endsWith(".jar") && Files.isRegularFile(p)) {
        Files.copy(p, lib.resolve(p.getFileName()));
        classPath.append(classPath.length() == 0 ? "" : " ").append("lib/").append(p.getFileName());
      }
    }
    if (classes == null) {
      throw new IOException("target/classes is not on the test class path");
    }
    Manifest manifest = new Manifest();
    Attributes main = manifest.getMainAttributes();
    main.put(Attributes.Name.MANIFEST_VERSION, "1.0");
    main.put(Attributes.Name.MAIN_CLASS, "dev.puzzlefs.cli.Main");
    main.put(Attributes.Name.CLASS_PATH, classPath.toString());
    main.putValue("Add-Opens", "java.base/sun.nio.fs");
    main.putValue("Enable-Native-Access", "ALL-UNNAMED");
    Path jarFile = target.resolve("puzzlefs.jar");
    Path root = classes;
    try (OutputStream file = Files.newOutputStream(jarFile);
        JarOutputStream out = new JarOutputStream(file, manifest);
        Stream<Path> files = Files.walk(root)) {
      for (Path p : (Iterable<Path>) files::iterator) {
        if (Files.isRegularFile(p)) {
          out.putNextEntry(new JarEntry(root.relativize(p).toString()));
          Files.copy(p, out);
          out.closeEntry();
        }
      }
    }
    return jarFile;
  }
}
