package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import dev.puzzlefs.testing.Processes;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Help, usage errors, version, man page and completion, run in process (no FUSE, no mounts). */
class CliHelpTest {
  @TempDir Path tmp;

  /** What one in-process run printed and returned. */
  private record Run(int exit, String out, String err) {}

  private static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cli = Main.commandLine();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int exit = cli.execute(args);
    return new Run(exit, out.toString(), err.toString());
  }

  private static List<String> commands() {
    return List.copyOf(Main.commandLine().getSubcommands().keySet());
  }

  @Test
  void helpCommand_showsTheNamedCommandsHelp_orTheTopLevelOne() {
    Run mount = run("help", "mount");
    assertEquals(0, mount.exit(), mount.err());
    assertTrue(mount.out().contains("Usage: puzzlefs mount"), mount.out());
    Run top = run("help");
    assertEquals(0, top.exit(), top.err());
    assertTrue(top.out().contains("Usage: puzzlefs "), top.out());
    assertTrue(top.out().contains("Commands:"), top.out());
    Run unknown = run("help", "mout");
    assertEquals(Main.USAGE_ERROR, unknown.exit());
    assertTrue(unknown.err().contains("Unknown subcommand 'mout'"), unknown.err());
  }

  @Test
  void help_everyCommand_showsUsageExamplesAndExitStatus() {
    List<String> names = commands();
    assertTrue(
        names.containsAll(List.of("build", "mount", "umount", "push", "extract")),
        names.toString());
    assertTrue(
        names.containsAll(List.of("inspect", "enable-fs-verity", "stats")), names.toString());
    for (String c : names) {
      Run r = run(c, "--help");
      assertEquals(0, r.exit(), c);
      assertTrue(r.out().contains("Usage: puzzlefs " + c), c + ":\n" + r.out());
      assertTrue(r.out().contains("Examples:\n  "), c + ":\n" + r.out());
      assertTrue(r.out().contains("Exit status:"), c);
      assertTrue(r.out().contains("  2   usage error"), c);
      assertTrue(r.out().contains("--log-level"), c);
    }
    Run top = run("--help");
    assertEquals(0, top.exit());
    for (String c : names) {
      assertTrue(top.out().contains("  " + c), c);
    }
  }

  /**
   * Help text is either whole paragraphs, which picocli wraps, or lines wrapped by hand to fit: a
   * hand-wrapped line wider than the help is wrapped again by picocli and leaves a stub of a line
   * after it. Indented lines (examples) must fit as they are.
   */
  @Test
  void help_linesAreWholeParagraphsOrFitTheWidth() {
    CommandLine top = Main.commandLine();
    List<CommandLine> all = new java.util.ArrayList<>(top.getSubcommands().values());
    all.add(top);
    List<String> bad = new java.util.ArrayList<>();
    for (CommandLine c : all) {
      int width = c.getUsageHelpWidth();
      var usage = c.getCommandSpec().usageMessage();
      for (String[] lines : List.of(usage.description(), usage.footer(), usage.header())) {
        String before = "";
        for (String line : lines) {
          String shown = String.format(line.replace("%n", "")).stripTrailing();
          boolean paragraph =
              !shown.startsWith(" ")
                  && (before.isEmpty() || before.matches(".*[.:!?]"))
                  && shown.matches(".*[.:!?)]");
          if (shown.length() > width && !paragraph) {
            bad.add(c.getCommandName() + ": " + shown);
          }
          before = shown;
        }
      }
    }
    assertEquals(List.of(), bad, "lines picocli would wrap again, leaving a stub of a line");
  }

  @Test
  void help_showsDefaultValues() {
    assertTrue(run("build", "--help").out().contains("Default: none"));
    assertTrue(run("mount", "--help").out().contains("Default: none"));
    assertTrue(run("mount", "--help").out().contains("syslog when /dev/log exists"));
  }

  @Test
  void version_printsToolAndFormatVersion() {
    Run r = run("--version");
    assertEquals(0, r.exit());
    assertTrue(r.out().matches("(?s)puzzlefs \\d+\\.\\d+\\.\\d+.*"), r.out());
    assertTrue(r.out().contains("PuzzleFS format: manifest version 3"), r.out());
  }

  @Test
  void usageErrors_exitTwoWithTheProblemAndAPointerToHelp() {
    List<List<String>> bad =
        List.of(
            List.of("no-such-command"),
            List.of("build", "--no-such-option", "a", "b", "c"),
            List.of("build", "only-one"),
            List.of("build", "--compression", "lz4", "a", "b", "c"),
            List.of("mount", "dir-without-tag", "mnt"),
            List.of("mount", "a", "b", "c", "d"),
            List.of("mount", "--digest", "xyz", "a", "b", "c"),
            List.of("mount", "--prefetch", "some", "a", "b", "c"),
            List.of("mount", "docker://", "mnt"),
            List.of("umount"),
            List.of("push", "oci", "v1"),
            List.of("push", "oci", "v1", "not-a-reference"),
            List.of("push", "docker://h:1/a:b", "docker://h:1/c:d"),
            List.of("extract", "oci", "out"),
            List.of("inspect", "a", "b", "c"),
            List.of("enable-fs-verity", "oci", "v1", "nothex"),
            List.of("enable-fs-verity", "docker://h:1/a:b", "00"),
            List.of("stats"),
            List.of("run", "--read-timeout", "0", "oci:v1", "true"),
            List.of("run", "--runtime", "docker", "oci:v1", "true"),
            List.of("run", "--stop-timeout", "-5", "oci:v1", "true"),
            List.of("run", "--retries", "-1", "oci:v1", "true"),
            List.of("run", "--prefetch-list=", "oci:v1", "true"),
            List.of("mount", "--read-timeout", "0", "a", "b", "c"),
            List.of("push", "--retries", "101", "oci", "v1", "docker://h:1/a:b"),
            List.of("extract", "--connect-timeout", "0", "oci:v1", "out"),
            List.of("--log-level", "loud", "stats", "x"));
    for (List<String> args : bad) {
      Run r = run(args.toArray(String[]::new));
      assertEquals(Main.USAGE_ERROR, r.exit(), args + ":\n" + r.err());
      assertTrue(r.err().contains("--help' for more information"), args + ":\n" + r.err());
      assertFalse(r.err().contains("Exit status:"), "a usage error shows no full help: " + args);
    }
    assertTrue(run("inspect", "a", "b", "c").err().contains("oci:OCI_DIR[:TAG]"));
  }

  @Test
  void imageArgs_acceptTheThreeForms() {
    CommandLine cmd = Main.commandLine();
    ImageArgs plain = ImageArgs.parse(cmd, List.of("dir", "v1", "mnt"), 1, "M");
    assertEquals(Path.of("dir"), plain.layout());
    assertEquals("v1", plain.tag());
    assertEquals(List.of("mnt"), plain.rest());
    ImageArgs oci = ImageArgs.parse(cmd, List.of("oci:/a/b:v2", "mnt"), 1, "M");
    assertEquals(Path.of("/a/b"), oci.layout());
    assertEquals("v2", oci.tag());
    assertEquals("latest", ImageArgs.parse(cmd, List.of("oci:/a/b"), 0, "").tag());
    ImageArgs remote = ImageArgs.parse(cmd, List.of("docker://127.0.0.1:5000/x/y:t", "m"), 1, "M");
    assertTrue(remote.remote());
    assertEquals("x/y", remote.reference().repository());
    assertThrows(
        CommandLine.ParameterException.class,
        () -> ImageArgs.parse(cmd, List.of("oci:/a:v1", "extra", "m"), 1, "M"));
    assertThrows(
        CommandLine.ParameterException.class,
        () -> ImageArgs.parse(cmd, List.of("oci:", "m"), 1, "M"));
  }

  @Test
  void logLevels_parsePerPackageAndRefuseUnknownLevels() {
    Map<String, Level> levels = Logging.parse("info, dev.puzzlefs.registry=DEBUG,io.netty=warn");
    assertEquals(Level.INFO, levels.get("dev.puzzlefs"));
    assertEquals(Level.DEBUG, levels.get("dev.puzzlefs.registry"));
    assertEquals(Level.WARN, levels.get("io.netty"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Logging.parse("dev.puzzlefs=chatty"));
    assertTrue(e.getMessage().contains("'chatty' is not a level"), e.getMessage());
  }

  @Test
  void logDestination_syslogOnlyWhenASocketListens_elseTheFile() throws Exception {
    Path file = tmp.resolve("mount.log");
    Path explicit = tmp.resolve("explicit.log");
    Path socket = tmp.resolve("log.sock");
    Path plain = Files.writeString(tmp.resolve("not-a-socket"), "");
    Map<String, String> none = Map.of(LogDestination.SOCKET_ENV, tmp.resolve("absent").toString());
    assertNull(LogDestination.choose(null, file, none).syslogSocket());
    assertEquals(file, LogDestination.choose(null, file, none).file());
    Map<String, String> notSocket = Map.of(LogDestination.SOCKET_ENV, plain.toString());
    assertNull(LogDestination.choose(null, file, notSocket).syslogSocket());
    assertNull(
        LogDestination.choose(null, file, Map.of(LogDestination.SOCKET_ENV, "")).syslogSocket());
    try (ServerSocketChannel listening =
        ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
      listening.bind(java.net.UnixDomainSocketAddress.of(socket));
      Map<String, String> env = Map.of(LogDestination.SOCKET_ENV, socket.toString());
      LogDestination d = LogDestination.choose(null, file, env);
      assertEquals(socket, d.syslogSocket());
      assertTrue(d.describe(42).contains("syslog via " + socket + " as puzzlefs[42]"));
      assertEquals(explicit, LogDestination.choose(explicit, file, env).file());
      assertNull(LogDestination.choose(explicit, file, env).syslogSocket(), "--log-file wins");
    }
    assertEquals(LogDestination.DEV_LOG, LogDestination.socketPath(Map.of()));
  }

  @Test
  void docs_manPageRendersCleanly_andCompletionCoversEveryCommand() throws Exception {
    Docs.main(new String[] {tmp.toString()});
    String completion = Files.readString(tmp.resolve("puzzlefs_completion"));
    for (String c : commands()) {
      assertTrue(completion.contains(c), c);
    }
    assertTrue(completion.contains("complete -F"), "a bash completion script");
    Path man = tmp.resolve("puzzlefs.1");
    Processes.Result r =
        Processes.exec(60, null, "groff", "-man", "-Tutf8", "-ww", "-z", man.toString());
    assertEquals(0, r.exit(), r.stderr());
    assertEquals("", r.stderr().strip(), "groff warns about nothing");
    String text = Processes.run(60, "man", "-l", "-P", "cat", man.toString()).out();
    for (String c : commands()) {
      assertTrue(text.contains("puzzlefs " + c), c);
    }
    assertTrue(text.contains("EXIT STATUS") && text.contains("--log-level"), text);
  }
}
