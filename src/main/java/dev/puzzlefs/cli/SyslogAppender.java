package dev.puzzlefs.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;
import org.slf4j.LoggerFactory;

/**
 * Sends log events as RFC 3164 datagrams ({@code <PRI>Mmm dd hh:mm:ss puzzlefs[PID]: text}) to a
 * local syslog socket such as {@code /dev/log}, which journald or rsyslog reads. The JDK cannot
 * open a Unix datagram socket (JEP 380 covers stream sockets only), so libc's {@code socket} and
 * {@code sendto} are called through jnr-ffi. An event that cannot be sent goes to stderr instead.
 */
final class SyslogAppender extends AppenderBase<ILoggingEvent> {
  /** The libc calls this appender needs. */
  public interface LibC {
    int socket(int domain, int type, int protocol);

    long sendto(int fd, @In byte[] buf, long len, int flags, @In byte[] addr, int addrlen);

    int close(int fd);
  }

  private static final int AF_UNIX = 1;
  private static final int SOCK_DGRAM = 2;
  private static final int SOCK_CLOEXEC = 02000000;
  private static final int FACILITY_DAEMON = 3;
  private static final int SUN_PATH_MAX = 108;
  private static final DateTimeFormatter STAMP =
      DateTimeFormatter.ofPattern("MMM ppd HH:mm:ss", Locale.ROOT);

  private final LibC libc = LibraryLoader.create(LibC.class).load("c");
  private final byte[] address;
  private final String tag;
  private int fd = -1;

  /** An appender sending to the datagram socket at {@code socket}. */
  SyslogAppender(Path socket) throws IOException {
    byte[] path = socket.toString().getBytes(StandardCharsets.UTF_8);
    if (path.length >= SUN_PATH_MAX) {
      throw new IOException("syslog socket path " + socket + " is too long");
    }
    address = new byte[2 + path.length + 1];
    address[0] = (byte) AF_UNIX; // sa_family_t, host order (little-endian on x86 and arm64)
    System.arraycopy(path, 0, address, 2, path.length);
    tag = "puzzlefs[" + ProcessHandle.current().pid() + "]";
  }

  /** Sends every event of the root logger to {@code socket} instead of the console. */
  static void install(Path socket) throws IOException {
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    SyslogAppender appender = new SyslogAppender(socket);
    appender.setContext(context);
    appender.setName("SYSLOG");
    appender.start();
    Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    root.detachAppender("STDERR");
    root.addAppender(appender);
  }

  @Override
  public void start() {
    fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    super.start();
  }

  @Override
  public void stop() {
    super.stop();
    if (fd >= 0) {
      libc.close(fd);
      fd = -1;
    }
  }

  @Override
  protected void append(ILoggingEvent event) {
    byte[] datagram = format(event).getBytes(StandardCharsets.UTF_8);
    if (fd < 0 || libc.sendto(fd, datagram, datagram.length, 0, address, address.length) < 0) {
      System.err.println(new String(datagram, StandardCharsets.UTF_8));
    }
  }

  /** The RFC 3164 line for {@code event}. */
  String format(ILoggingEvent event) {
    int pri = FACILITY_DAEMON * 8 + severity(event.getLevel());
    ZonedDateTime at =
        java.time.Instant.ofEpochMilli(event.getTimeStamp()).atZone(ZoneId.systemDefault());
    String logger = event.getLoggerName();
    logger = logger.substring(logger.lastIndexOf('.') + 1);
    String text = event.getFormattedMessage();
    if (event.getThrowableProxy() != null) {
      text += ": " + event.getThrowableProxy().getMessage();
    }
    return "<"
        + pri
        + ">"
        + STAMP.format(at)
        + " "
        + tag
        + ": "
        + event.getLevel()
        + " "
        + logger
        + " - "
        + text;
  }

  private static int severity(Level level) {
    switch (level.toInt()) {
      case Level.ERROR_INT:
        return 3;
      case Level.WARN_INT:
        return 4;
      case Level.INFO_INT:
        return 6;
      default:
        return 7;
    }
  }
}
