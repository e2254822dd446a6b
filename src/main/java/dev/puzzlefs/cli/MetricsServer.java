package dev.puzzlefs.cli;

import com.sun.net.httpserver.HttpServer;
import dev.puzzlefs.reader.Image;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A mount's counters in the Prometheus text format, at {@code http://ADDRESS/metrics}: counters as
 * {@code puzzlefs_<name>_total}, levels (cache sizes, image size) as gauges, every sample labelled
 * with the mount point.
 */
final class MetricsServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MetricsServer.class);

  /** Counters that are levels, not totals. */
  private static final Set<String> GAUGES =
      Set.of("memoryCacheBytes", "diskCacheBytes", "imageBytes", "inodes", "prefetchPlanned");

  private final HttpServer server;

  private MetricsServer(HttpServer server) {
    this.server = server;
  }

  /** Serves {@code image}'s counters on {@code address} ({@code HOST:PORT}); returns at once. */
  static MetricsServer start(String address, Image image, String mountpoint) throws IOException {
    InetSocketAddress bind = parse(address);
    HttpServer server;
    try {
      server = HttpServer.create(bind, 8);
    } catch (IOException e) {
      throw new IOException("cannot serve --metrics on " + address + ": " + Main.describe(e), e);
    }
    String label = "{mount=\"" + escape(mountpoint) + "\"}";
    server.createContext(
        "/metrics",
        exchange -> {
          byte[] body = render(image.stats(), label).getBytes(StandardCharsets.UTF_8);
          exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4");
          exchange.sendResponseHeaders(200, body.length);
          try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
          }
        });
    server.setExecutor(null);
    server.start();
    LOG.info(
        "metrics at http://{}:{}/metrics",
        server.getAddress().getHostString(),
        server.getAddress().getPort());
    return new MetricsServer(server);
  }

  /** The port bound (useful with port 0). */
  int port() {
    return server.getAddress().getPort();
  }

  static InetSocketAddress parse(String address) {
    int colon = address.lastIndexOf(':');
    if (colon <= 0 || colon == address.length() - 1) {
      throw new IllegalArgumentException(
          "--metrics takes HOST:PORT (for example 127.0.0.1:9464), got '" + address + "'");
    }
    String host = address.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(address.substring(colon + 1));
    } catch (NumberFormatException e) {
      port = -1;
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException(
          "--metrics: '" + address.substring(colon + 1) + "' is not a port number");
    }
    return new InetSocketAddress(host, port);
  }

  static String render(Map<String, Long> stats, String label) {
    StringBuilder out = new StringBuilder();
    for (Map.Entry<String, Long> e : new java.util.TreeMap<>(stats).entrySet()) {
      boolean gauge = GAUGES.contains(e.getKey());
      String name = "puzzlefs_" + snake(e.getKey()) + (gauge ? "" : "_total");
      out.append("# TYPE ").append(name).append(gauge ? " gauge\n" : " counter\n");
      out.append(name).append(label).append(' ').append(e.getValue()).append('\n');
    }
    return out.toString();
  }

  private static String snake(String camel) {
    StringBuilder out = new StringBuilder();
    for (char c : camel.toCharArray()) {
      if (Character.isUpperCase(c)) {
        out.append('_').append(Character.toLowerCase(c));
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  private static String escape(String value) {
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
