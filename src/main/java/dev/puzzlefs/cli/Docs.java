package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Help;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/**
 * Writes the bash completion script and the man page, both from the same picocli definitions the
 * commands run with, so neither can drift from {@code --help}. The build runs it into {@code
 * target/}: {@code java dev.puzzlefs.cli.Docs DIR}.
 */
public final class Docs {
  private Docs() {}

  /**
   * Writes {@code puzzlefs.1} and {@code puzzlefs_completion} into the directory {@code args[0]}.
   */
  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      throw new IllegalArgumentException("usage: Docs OUTPUT_DIR");
    }
    Path dir = Files.createDirectories(Path.of(args[0]));
    CommandLine cli = Main.commandLine();
    Files.writeString(
        dir.resolve("puzzlefs_completion"),
        AutoComplete.bash("puzzlefs", cli),
        StandardCharsets.UTF_8);
    Files.writeString(dir.resolve("puzzlefs.1"), manPage(cli), StandardCharsets.UTF_8);
  }

  /** The man page of {@code cli} and its subcommands, in troff ({@code man -l} shows it). */
  static String manPage(CommandLine cli) {
    CommandSpec top = cli.getCommandSpec();
    StringBuilder out = new StringBuilder();
    out.append(".TH PUZZLEFS 1 \"\" \"puzzlefs ")
        .append(Main.Version.version())
        .append("\" \"User Commands\"\n");
    out.append(".SH NAME\npuzzlefs \\- ").append(text(join(top.usageMessage().description())));
    out.append("\n.SH SYNOPSIS\n.B puzzlefs\n[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n");
    out.append(".SH DESCRIPTION\n");
    out.append(
        text(
            "Each command below has its own options; `puzzlefs COMMAND --help` prints them."
                + " An IMAGE is "
                + ImageArgs.FORMS
                + "."));
    out.append("\n.SH OPTIONS\n");
    options(out, top);
    out.append(".SH COMMANDS\n");
    for (Map.Entry<String, CommandLine> e : cli.getSubcommands().entrySet()) {
      command(out, e.getValue());
    }
    out.append(".SH EXIT STATUS\n");
    for (Map.Entry<String, String> e : Main.EXIT_CODES.entrySet()) {
      out.append(".TP\n.B ").append(e.getKey()).append('\n').append(text(e.getValue()));
      out.append('\n');
    }
    out.append(".SH ENVIRONMENT\n");
    env(out, "PUZZLEFS_LOG", "log levels, as --log-level takes them");
    env(out, "PUZZLEFS_LOG_LEVEL", "one log level; read when PUZZLEFS_LOG is not set");
    env(out, "PUZZLEFS_CONFIG", "the configuration file, when --config is not given");
    env(out, "JAVA_HOME", "the Java (17 or newer) the launcher runs");
    out.append(".SH FILES\n");
    env(out, "~/.config/puzzlefs/config.json, /etc/puzzlefs/config.json", "configuration");
    env(out, "~/.cache/puzzlefs", "disk cache of chunks fetched from registries, mount logs");
    out.append(".SH EXAMPLES\n.nf\n").append(lines(top.usageMessage().footer())).append(".fi\n");
    return out.toString();
  }

  private static void command(StringBuilder out, CommandLine cmd) {
    CommandSpec spec = cmd.getCommandSpec();
    out.append(".SS ").append(text(spec.qualifiedName())).append('\n');
    String synopsis = cmd.getHelp().synopsis(0).strip();
    out.append(".nf\n").append(text(synopsis)).append("\n.fi\n.PP\n");
    out.append(text(join(spec.usageMessage().description()))).append('\n');
    for (PositionalParamSpec p : spec.positionalParameters()) {
      out.append(".TP\n\\fI").append(text(p.paramLabel())).append("\\fR\n");
      out.append(text(join(p.description()))).append('\n');
    }
    options(out, spec);
    String[] footer = spec.usageMessage().footer();
    if (footer.length > 0) {
      out.append(".PP\nExamples:\n.nf\n").append(lines(footer)).append(".fi\n");
    }
  }

  private static void options(StringBuilder out, CommandSpec spec) {
    for (OptionSpec o : spec.options()) {
      if (o.hidden()) {
        continue;
      }
      out.append(".TP\n");
      List<String> names = List.of(o.names());
      for (int i = 0; i < names.size(); i++) {
        out.append(i == 0 ? "" : ", ").append("\\fB").append(text(names.get(i))).append("\\fR");
      }
      if (o.arity().max() > 0) {
        out.append("=\\fI").append(text(o.paramLabel())).append("\\fR");
      }
      out.append('\n').append(text(join(o.description())));
      String def = o.defaultValueString();
      if (def != null
          && !"null".equals(def)
          && o.arity().max() > 0
          && o.showDefaultValue() != Help.Visibility.NEVER) {
        out.append(" (default: ").append(text(def)).append(')');
      }
      out.append('\n');
    }
  }

  private static void env(StringBuilder out, String name, String meaning) {
    out.append(".TP\n.B ").append(text(name)).append('\n').append(text(meaning)).append('\n');
  }

  private static String join(String[] lines) {
    return String.join(" ", lines).replace("%n", " ").strip();
  }

  private static String lines(String[] lines) {
    StringBuilder b = new StringBuilder();
    for (String l : lines) {
      b.append(text(l.replace("%n", ""))).append('\n');
    }
    return b.toString();
  }

  /** Escapes text for troff: backslashes, hyphens, and a leading dot or quote. */
  static String text(String s) {
    String t = Help.Ansi.OFF.string(s).replace("\\", "\\e").replace("-", "\\-");
    StringBuilder out = new StringBuilder();
    for (String line : t.split("\n", -1)) {
      if (out.length() > 0) {
        out.append('\n');
      }
      if (line.startsWith(".") || line.startsWith("'")) {
        out.append("\\&");
      }
      out.append(line);
    }
    return out.toString();
  }
}
