package dev.puzzlefs.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code puzzlefs} command line. */
@Command(
    name = "puzzlefs",
    mixinStandardHelpOptions = true,
    version = "puzzlefs-java 0.1.0",
    description = "Build, push and mount PuzzleFS images; mount straight from an OCI registry.",
    subcommands = {
      BuildCommand.class,
      MountCommand.class,
      UmountCommand.class,
      PushCommand.class,
      ExtractCommand.class,
      EnableVerityCommand.class,
      StatsCommand.class,
      RunCommand.class,
      BundleCommand.class
    })
public final class Main {
  private Main() {}

  /** Runs the command line and exits with its status. */
  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the command line and returns its exit status (for tests). */
  public static int run(String... args) {
    CommandLine cli = new CommandLine(new Main());
    // run IMAGE sh -c '...': what follows IMAGE is the command's, options included.
    cli.getSubcommands().get("run").setStopAtPositional(true);
    cli.setExecutionExceptionHandler(
        (e, cmd, parsed) -> {
          cmd.getErr().println("puzzlefs " + cmd.getCommandName() + ": " + describe(e));
          if (Boolean.getBoolean("puzzlefs.debug")) {
            e.printStackTrace(cmd.getErr());
          }
          return 1;
        });
    return cli.execute(args);
  }

  /** One line for a person: the message, and the cause's when it adds something. */
  static String describe(Throwable e) {
    String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    Throwable cause = e.getCause();
    if (cause != null && cause.getMessage() != null && !msg.contains(cause.getMessage())) {
      msg += ": " + cause.getMessage();
    }
    return msg;
  }
}
