package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CommandLookupTest {
  private static final List<String> ENV = List.of("PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/");

  @TempDir Path root;

  @BeforeEach
  void makeRoot() throws IOException {
    Files.createDirectories(root.resolve("usr/bin"));
    Files.createDirectories(root.resolve("usr/local/bin"));
    Files.createDirectories(root.resolve("etc"));
    Files.createDirectories(root.resolve("work/tools"));
    Files.createSymbolicLink(root.resolve("bin"), Paths.get("usr/bin"));
    executable(root.resolve("usr/bin/real"));
    executable(root.resolve("work/tools/build"));
    Files.writeString(root.resolve("etc/os-release"), "ID=test\n");
    Files.writeString(root.resolve("usr/local/bin/plain"), "not executable\n");
    executable(root.resolve("usr/bin/plain"));
  }

  private static void executable(Path p) throws IOException {
    Files.writeString(p, "#!/bin/sh\n");
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("r-x------"));
  }

  private CommandLookup.Verdict check(String command) {
    return CommandLookup.check(root, command, ENV, "/work");
  }

  @Test
  void check_nameOnThePath_runs() {
    assertTrue(check("real").runs());
    assertTrue(check("/usr/bin/real").runs());
  }

  @Test
  void check_missingName_is127AndNamesThePath() {
    CommandLookup.Verdict v = check("nosuch");

    assertEquals(127, v.status());
    assertEquals("nosuch: not found in the image (PATH=/usr/local/bin:/usr/bin:/bin)", v.message());
  }

  @Test
  void check_missingPath_is127() {
    assertEquals(127, check("/usr/bin/nosuch").status());
    assertEquals(127, check("/nodir/real").status());
    // A file where a directory should be: ENOTDIR, which exec reports as missing too.
    assertEquals(127, check("/etc/os-release/real").status());
  }

  @Test
  void check_fileWithoutExecuteBitOrDirectory_is126() {
    assertEquals(126, check("/etc/os-release").status());
    assertEquals(126, check("/usr/bin").status());
    assertTrue(check("/etc/os-release").message().contains("permission denied"));
  }

  @Test
  void check_notExecutableEarlyOnThePathButExecutableLater_runs() {
    // /usr/local/bin/plain has no execute bit, /usr/bin/plain has: execvp goes on to the second.
    assertTrue(check("plain").runs());
  }

  @Test
  void check_nameFoundOnlyWithoutExecuteBit_is126() {
    List<String> env = List.of("PATH=/usr/local/bin");
    assertEquals(126, CommandLookup.check(root, "plain", env, "/").status());
  }

  @Test
  void check_relativeLinkThroughBin_isFollowedInsideTheImage() {
    assertTrue(check("/bin/real").runs());
    assertEquals(127, check("/bin/nosuch").status());
  }

  @Test
  void check_absoluteLink_startsAgainAtTheImagesRootNotTheHosts() throws IOException {
    Files.createSymbolicLink(root.resolve("usr/local/bin/alias"), Paths.get("/usr/bin/real"));
    // The host has /bin/sh; the image does not: the link must not reach the host's.
    Files.createSymbolicLink(root.resolve("usr/local/bin/hostsh"), Paths.get("/bin/sh"));
    assertTrue(Files.isExecutable(Paths.get("/bin/sh")), "the host needs /bin/sh for this test");

    assertTrue(check("alias").runs());
    assertEquals(127, check("hostsh").status());
  }

  @Test
  void check_dotDotAboveTheRoot_staysAtTheRoot() throws IOException {
    Files.createSymbolicLink(
        root.resolve("usr/local/bin/up"), Paths.get("../../../../../../usr/bin/real"));

    assertTrue(check("up").runs());
    assertTrue(check("/../../usr/bin/real").runs());
  }

  @Test
  void check_relativeCommandWithSlash_startsAtTheWorkingDirectory() {
    assertTrue(check("tools/build").runs());
    assertTrue(check("./tools/build").runs());
    assertEquals(127, CommandLookup.check(root, "tools/build", ENV, "/").status());
  }

  @Test
  void check_pathFromTheEnvironment_lastEntryWins() {
    List<String> env = List.of("PATH=/usr/bin", "PATH=/work/tools");
    assertTrue(CommandLookup.check(root, "build", env, "/").runs());
    assertEquals(127, CommandLookup.check(root, "real", env, "/").status());
  }

  @Test
  void check_emptyPathEntry_isTheWorkingDirectory() {
    List<String> env = List.of("PATH=/usr/bin:");
    assertTrue(CommandLookup.check(root, "build", env, "/work/tools").runs());
  }

  @Test
  void check_linkLoop_onThePathIsNotFound127_atAPathIs126() throws IOException {
    Files.createSymbolicLink(root.resolve("usr/bin/a"), Paths.get("b"));
    Files.createSymbolicLink(root.resolve("usr/bin/b"), Paths.get("a"));
    Files.createSymbolicLink(root.resolve("usr/bin/self"), Paths.get("self"));

    assertEquals(CommandLookup.NOT_FOUND, check("a").status());
    assertEquals(CommandLookup.NOT_FOUND, check("self").status());
    CommandLookup.Verdict atPath = check("/usr/bin/self");
    assertEquals(CommandLookup.NOT_EXECUTABLE, atPath.status());
    assertTrue(atPath.message().contains("too many levels of symbolic links"), atPath.message());
  }

  /**
   * An executable file the kernel cannot execute by itself (empty, text without {@code #!}, the ELF
   * magic and nothing more, a program for another machine) is 126 with "exec format error", as a
   * shell reports it; a program for this machine and a script run. Unless the kernel has
   * binfmt_misc handlers, which may execute it.
   */
  @Test
  void check_executableThatIsNeitherElfNorScript_is126() throws IOException {
    Path empty = root.resolve("usr/bin/empty");
    Files.write(empty, new byte[0]);
    Path text = root.resolve("usr/bin/text");
    Files.writeString(text, "echo no shebang\n");
    Path magicOnly = root.resolve("usr/bin/magic");
    Files.write(magicOnly, new byte[] {0x7f, 'E', 'L', 'F'});
    Path elf = root.resolve("usr/bin/elf");
    Files.copy(Paths.get("/bin/true").toRealPath(), elf);
    // A real program with its machine changed (to 21, PowerPC 64): not for this machine.
    Path foreign = root.resolve("usr/bin/foreign");
    byte[] other = Files.readAllBytes(elf);
    other[18] = 21;
    other[19] = 0;
    Files.write(foreign, other);
    for (Path p : List.of(empty, text, magicOnly, elf, foreign)) {
      Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("r-x------"));
    }
    boolean handlers;
    try (var entries = Files.list(Paths.get("/proc/sys/fs/binfmt_misc"))) {
      handlers =
          entries.anyMatch(
              e -> !List.of("register", "status").contains(e.getFileName().toString()));
    } catch (IOException e) {
      handlers = false;
    }
    for (String command :
        List.of("empty", "/usr/bin/empty", "text", "/usr/bin/text", "magic", "foreign")) {
      CommandLookup.Verdict v = check(command);
      if (handlers) {
        assertTrue(v.runs(), command);
      } else {
        assertEquals(CommandLookup.NOT_EXECUTABLE, v.status(), command);
        assertTrue(v.message().contains("exec format error"), v.message());
      }
    }
    assertTrue(check("elf").runs());
    assertTrue(check("real").runs(), "a script");
  }

  @Test
  void check_emptyCommand_is127() {
    assertEquals(127, check("").status());
  }
}
