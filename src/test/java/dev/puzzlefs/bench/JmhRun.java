package dev.puzzlefs.bench;

import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.Collection;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;

/**
 * Not a test: the way Maven starts the JMH benchmarks. The {@code jmh} profile runs only this class
 * ({@code mvn -B -o -Pjmh verify}), passing JMH's command line in {@code -Djmh.args}; its name
 * keeps it out of a plain {@code mvn verify}.
 */
class JmhRun {
  @Test
  void runBenchmarks() throws Exception {
    String args = System.getProperty("jmh.args", "-f 1 -wi 2 -i 3").strip();
    CommandLineOptions options = new CommandLineOptions(args.split("\\s+"));
    Collection<RunResult> results = new Runner(options).run();
    assertFalse(results.isEmpty(), "no benchmark matched: " + args);
  }
}
