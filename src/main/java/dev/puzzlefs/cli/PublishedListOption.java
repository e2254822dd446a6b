package dev.puzzlefs.cli;

import picocli.CommandLine.Option;

/** {@code --no-published-list} of {@code mount} and {@code run}. */
final class PublishedListOption {
  @Option(
      names = "--no-published-list",
      description =
          "without --prefetch-list, do not fetch the prefetch list published with a registry"
              + " image's chunk pack (push --prefetch-list) first")
  boolean off;

  /** True unless the option was given. */
  boolean use() {
    return !off;
  }
}
