package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator.ExecutionStatus;
import ch.qos.logback.core.ConsoleAppender;
import org.junit.jupiter.api.Test;

class LogConfiguratorTest {
  @Test
  void configure_stderrWithOurPattern_puzzlefsAtInfo_restAtWarn() {
    LoggerContext context = new LoggerContext();
    ExecutionStatus status = new LogConfigurator(false).configure(context);
    assertEquals(ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY, status);
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    assertEquals(Level.WARN, root.getLevel());
    String envLevel = System.getenv(Logging.LEGACY_ENV);
    if (envLevel == null || envLevel.isBlank()) {
      assertEquals(Level.INFO, context.getLogger("dev.puzzlefs").getLevel());
    }
    ConsoleAppender<?> stderr = (ConsoleAppender<?>) root.getAppender("STDERR");
    assertEquals("System.err", stderr.getTarget());
    assertTrue(stderr.isStarted());
    assertEquals(
        "%d{HH:mm:ss.SSS} %-5level %logger{0} - %msg%n",
        ((PatternLayoutEncoder) stderr.getEncoder()).getPattern());
  }

  @Test
  void configure_aTestConfigurationOnTheClassPathWins() {
    // src/test/resources/logback-test.xml is on this class path.
    assertEquals(
        ExecutionStatus.INVOKE_NEXT_IF_ANY, new LogConfigurator().configure(new LoggerContext()));
  }
}
