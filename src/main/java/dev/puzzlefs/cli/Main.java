package dev.puzzlefs.cli;

import dev.puzzlefs.format.Rootfs;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import picocli.CommandLine.UnmatchedArgumentException;

/** The {@code puzzlefs} command line. */
@Command(
    name = "puzzlefs",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description =
        "Build, push, inspect and mount PuzzleFS images; mount straight from an OCI" + " registry.",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs build rootfs/ /var/lib/images app v1",
      "  puzzlefs mount /var/lib/images app-v1 /mnt/app",
      "  puzzlefs mount docker://registry.example:5000/app:v1 /mnt/app",
      "",
      "Environment: PUZZLEFS_LOG (log levels, as --log-level), PUZZLEFS_CONFIG (configuration"
          + " file).",
      "Images: " + ImageArgs.FORMS + "."
    })
public final class Main {
  /**
   * The subcommands, in the order help lists them. They are added in {@link #commandLine}, not
   * named in the annotation, so that a command line naming one builds only that one: picocli's
   * reflection over all of them was a quarter of a short command's start.
   */
  static final List<Class<?>> SUBCOMMANDS =
      List.of(
          BuildCommand.class,
          MountCommand.class,
          UmountCommand.class,
          PushCommand.class,
          ExtractCommand.class,
          InspectCommand.class,
          EnableVerityCommand.class,
          StatsCommand.class,
          RunCommand.class,
          BundleCommand.class,
          ServerCommand.class,
          AutoComplete.GenerateCompletion.class,
          CommandLine.HelpCommand.class);

  /** Exit status of a usage error (picocli's, for every command). */
  static final int USAGE_ERROR = 2;

  /** What each exit status means, shown in every command's help. */
  static final Map<String, String> EXIT_CODES = exitCodes();

  @Spec CommandSpec spec;

  private Main() {}

  @Option(
      names = "--log-level",
      paramLabel = "LEVELS",
      scope = ScopeType.INHERIT,
      description =
          "log levels: LEVEL for all of puzzlefs and LOGGER=LEVEL for one package, comma"
              + " separated (trace, debug, info, warn, error, off), e.g."
              + " info,dev.puzzlefs.registry=debug. Default: $PUZZLEFS_LOG, else info")
  void logLevel(String levels) {
    try {
      Logging.apply(levels);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(
          spec.commandLine(), "--log-level " + e.getMessage(), e, null, levels);
    }
  }

  /** Runs the command line and exits with its status. */
  public static void main(String[] args) {
    if (args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"))) {
      // The answer needs neither logging nor the command model: skip starting them (about half
      // of this command's time).
      for (String line : new Version().getVersion()) {
        System.out.println(line);
      }
      System.exit(0);
    }
    System.exit(run(args));
  }

  /** Runs the command line and returns its exit status (for tests). */
  public static int run(String... args) {
    Logging.fromEnvironment(System.getenv());
    return commandLine(args).execute(args);
  }

  /** The configured command line with every subcommand: help layout, exit codes, handlers. */
  static CommandLine commandLine() {
    return commandLine(new String[0]);
  }

  /**
   * The configured command line for {@code args}: with only the subcommand they name when they name
   * one that needs no other (what it runs, its help and its errors are the same), else with all of
   * them (top-level help, an unknown command, completion).
   */
  static CommandLine commandLine(String[] args) {
    CommandLine cli = new CommandLine(new Main());
    String named = subcommandNamed(args);
    for (Class<?> sub : SUBCOMMANDS) {
      String name = sub.getAnnotation(Command.class).name();
      if (named == null || named.equals(name)) {
        cli.addSubcommand(name, sub);
      }
    }
    CommandLine run = cli.getSubcommands().get("run");
    if (run != null) {
      // run IMAGE sh -c '...': what follows IMAGE is the command's, options included.
      run.setStopAtPositional(true);
    }
    CommandLine completion = cli.getSubcommands().get("generate-completion");
    if (completion != null) {
      completion
          .getCommandSpec()
          .usageMessage()
          .description(
              "Print the bash completion script (also built as target/puzzlefs_completion).")
          .footerHeading("%nExamples:%n")
          .footer("  source <(puzzlefs generate-completion)");
    }
    CommandLine help = cli.getSubcommands().get("help");
    if (help != null) {
      help.getCommandSpec()
          .usageMessage()
          .footerHeading("%nExamples:%n")
          .footer("  puzzlefs help mount", "  puzzlefs help");
    }
    configureHelp(cli);
    // Paths on the command line mean the caller's directory, which in the mount server is the
    // client's (Caller), not the JVM's.
    cli.registerConverter(java.nio.file.Path.class, Caller::path);
    cli.setParameterExceptionHandler(Main::usageError);
    cli.setExecutionExceptionHandler(
        (e, cmd, parsed) -> {
          cmd.getErr().println("puzzlefs " + cmd.getCommandName() + ": " + describe(e));
          if (Boolean.getBoolean("puzzlefs.debug")) {
            e.printStackTrace(cmd.getErr());
          }
          return 1;
        });
    return cli;
  }

  /**
   * The subcommand {@code args} run, after the top-level {@code --log-level}; null when they name
   * none, or one that needs the others (generate-completion and help describe them all).
   */
  static String subcommandNamed(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (arg.equals("--log-level")) {
        i++;
      } else if (!arg.startsWith("--log-level=")) {
        for (Class<?> sub : SUBCOMMANDS) {
          String name = sub.getAnnotation(Command.class).name();
          if (name.equals(arg)) {
            return name.equals("generate-completion") || name.equals("help") ? null : name;
          }
        }
        return null;
      }
    }
    return null;
  }

  private static void configureHelp(CommandLine cmd) {
    cmd.getCommandSpec()
        .usageMessage()
        .showDefaultValues(true)
        .exitCodeListHeading("%nExit status:%n")
        .exitCodeList(EXIT_CODES);
    for (CommandLine sub : cmd.getSubcommands().values()) {
      configureHelp(sub);
    }
  }

  /** A usage error: the problem, the synopsis and where to read more; nothing else. */
  private static int usageError(ParameterException ex, String[] args) {
    CommandLine cmd = ex.getCommandLine();
    PrintWriter err = cmd.getErr();
    err.println(cmd.getCommandSpec().qualifiedName() + ": " + ex.getMessage());
    UnmatchedArgumentException.printSuggestions(ex, err);
    err.print(cmd.getHelp().fullSynopsis());
    err.printf("Try '%s --help' for more information.%n", cmd.getCommandSpec().qualifiedName());
    return USAGE_ERROR;
  }

  private static Map<String, String> exitCodes() {
    Map<String, String> codes = new LinkedHashMap<>();
    codes.put("0", "success");
    codes.put("1", "failure: the message says what failed and what to try");
    codes.put("2", "usage error: unknown option, missing or malformed argument (see --help)");
    return codes;
  }

  /** One line for a person: the message, and the cause's when it adds something. */
  static String describe(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof IllegalStateException && "Shutdown in progress".equals(t.getMessage())) {
        // The JVM refused a shutdown hook: this is the mount server, stopping under the request.
        return "the process serving this request is shutting down (the mount server got"
            + " SIGTERM); run the command again";
      }
    }
    String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    Throwable cause = e.getCause();
    if (cause != null && cause.getMessage() != null && !saysAlready(msg, cause)) {
      msg += ": " + cause.getMessage();
    }
    return msg;
  }

  /**
   * Whether {@code msg} already says what {@code cause} does: its whole message, or, for a file
   * error, its reason (the message of a file error is its path and reason, and a path may be
   * thousands of bytes long: the message that wraps it names the file its own way).
   */
  private static boolean saysAlready(String msg, Throwable cause) {
    if (cause instanceof java.nio.file.FileSystemException fse && fse.getReason() != null) {
      return msg.contains(fse.getReason());
    }
    if (cause instanceof com.fasterxml.jackson.core.JsonProcessingException json
        && json.getOriginalMessage() != null) {
      // Its message adds where in the text and how Jackson got there: noise to a person.
      return msg.contains(json.getOriginalMessage());
    }
    return msg.contains(cause.getMessage());
  }

  /** {@code --version}: the tool's version, the format version it writes, the Java it runs on. */
  static final class Version implements IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {
        "puzzlefs " + version(),
        "PuzzleFS format: manifest version " + Rootfs.MANIFEST_VERSION,
        "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.home") + ")"
      };
    }

    /** The project version Maven wrote into {@code version.properties}. */
    static String version() {
      Properties p = new Properties();
      try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
        if (in != null) {
          p.load(in);
        }
      } catch (IOException e) {
        // fall through to "unknown"
      }
      return p.getProperty("version", "unknown");
    }
  }
}
