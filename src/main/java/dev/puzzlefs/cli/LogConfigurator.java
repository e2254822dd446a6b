package dev.puzzlefs.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.spi.ContextAwareBase;

/**
 * The logging set-up of every puzzlefs JVM, in code: messages for a person on stderr ({@code
 * HH:mm:ss.SSS LEVEL Logger - message}), puzzlefs at {@code $PUZZLEFS_LOG_LEVEL} (default info),
 * everything else at warn; {@link Logging} then applies {@code --log-level} and {@code
 * PUZZLEFS_LOG}. Logback finds it through {@code META-INF/services}. It replaces a {@code
 * logback.xml} because parsing XML took about 0.1 s of every command's start. A {@code
 * logback-test.xml} on the class path, or {@code -Dlogback.configurationFile}, still wins.
 */
public final class LogConfigurator extends ContextAwareBase implements Configurator {
  static final String PATTERN = "%d{HH:mm:ss.SSS} %-5level %logger{0} - %msg%n";

  private final boolean deferToFiles;

  /** Logback creates it through the service loader. */
  public LogConfigurator() {
    this(true);
  }

  /** With {@code deferToFiles} false, configures even where a logback file is given (tests). */
  LogConfigurator(boolean deferToFiles) {
    this.deferToFiles = deferToFiles;
  }

  @Override
  public ExecutionStatus configure(LoggerContext context) {
    if (deferToFiles
        && (System.getProperty("logback.configurationFile") != null
            || LogConfigurator.class.getClassLoader().getResource("logback-test.xml") != null)) {
      return ExecutionStatus.INVOKE_NEXT_IF_ANY;
    }
    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    encoder.setPattern(PATTERN);
    encoder.start();
    ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
    stderr.setContext(context);
    stderr.setName("STDERR");
    stderr.setTarget("System.err");
    stderr.setEncoder(encoder);
    stderr.start();
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    root.setLevel(Level.WARN);
    root.addAppender(stderr);
    String level = System.getenv(Logging.LEGACY_ENV);
    context
        .getLogger(Logging.OURS)
        .setLevel(Level.toLevel(level == null || level.isBlank() ? "INFO" : level, Level.INFO));
    return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
  }
}
