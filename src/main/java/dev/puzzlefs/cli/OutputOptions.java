package dev.puzzlefs.cli;

import picocli.CommandLine.Option;

/** {@code --quiet}, shared by the commands that show progress. */
final class OutputOptions {
  @Option(
      names = {"-q", "--quiet"},
      description =
          "print nothing but errors: no progress and no summary (progress goes to stderr: redrawn"
              + " on a terminal, a line every 5 s otherwise)")
  boolean quiet;

  /** A progress display for this command as the flags and stderr say. */
  Progress progress(String verb, String items) {
    return new Progress(verb, items, Progress.mode(quiet), System.err);
  }
}
