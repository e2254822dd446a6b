package dev.puzzlefs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code puzzlefs stats [--json] MOUNTPOINT}: the counters of a running mount. */
@Command(
    mixinStandardHelpOptions = true,
    name = "stats",
    description =
        "Show what a running mount has fetched and served: bytes and chunks fetched, "
            + "cache hits in memory and on disk, read stalls, readahead and prefetch progress.",
    footerHeading = "%nExamples:%n",
    footer = {"  puzzlefs stats /mnt/v1", "  puzzlefs stats --json /mnt/v1 | jq .fetchedBytes"})
final class StatsCommand implements Callable<Integer> {
  /** The virtual attribute of a mount's root that holds its counters (without "user."). */
  static final String ATTRIBUTE = "puzzlefs.stats";

  /** Room to spare when reading the counters, for them to grow meanwhile. */
  private static final int GROWTH_ROOM = 4096;

  @Parameters(index = "0", paramLabel = "MOUNTPOINT", description = "a puzzlefs mount")
  Path mountpoint;

  @Option(names = "--json", description = "print the counters as one JSON object")
  boolean json;

  @Override
  public Integer call() throws Exception {
    String text = read(mountpoint);
    if (json) {
      System.out.println(text);
      return 0;
    }
    JsonNode counters = new ObjectMapper().readTree(text);
    int width = 0;
    for (Iterator<String> it = counters.fieldNames(); it.hasNext(); ) {
      width = Math.max(width, it.next().length());
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = counters.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      System.out.printf("%-" + width + "s  %s%n", e.getKey(), e.getValue().asText());
    }
    return 0;
  }

  private static IOException dead(Path mountpoint, String reason) {
    return new IOException(
        mountpoint
            + " is a mount whose process has died ("
            + reason
            + "): it has no counters; 'puzzlefs umount "
            + mountpoint
            + "' cleans it up");
  }

  /**
   * The attribute's value. The counters change while they are read (a prefetch counts on), so the
   * value may have grown between asking its size and reading it (ERANGE): the buffer has room to
   * spare, and a read that still finds it too small asks again.
   */
  static String readGrowing(UserDefinedFileAttributeView view) throws IOException {
    for (int attempt = 1; ; attempt++) {
      ByteBuffer buf = ByteBuffer.allocate(view.size(ATTRIBUTE) + GROWTH_ROOM);
      try {
        view.read(ATTRIBUTE, buf);
      } catch (FileSystemException e) {
        String reason = String.valueOf(e.getReason());
        if (attempt < 5 && reason.contains("Insufficient space in buffer")) {
          continue;
        }
        throw e;
      }
      buf.flip();
      return StandardCharsets.UTF_8.decode(buf).toString();
    }
  }

  /** The counters of the mount on {@code mountpoint}, as JSON text. */
  static String read(Path mountpoint) throws IOException {
    java.nio.file.attribute.BasicFileAttributes attributes;
    try {
      attributes =
          Files.readAttributes(mountpoint, java.nio.file.attribute.BasicFileAttributes.class);
    } catch (java.nio.file.NoSuchFileException e) {
      throw new IOException(mountpoint + " does not exist");
    } catch (FileSystemException e) {
      String reason = e.getReason() != null ? e.getReason() : String.valueOf(e.getMessage());
      if (reason.contains("not connected")) {
        throw dead(mountpoint, reason);
      }
      throw new IOException("cannot look at " + mountpoint + ": " + reason);
    }
    if (!attributes.isDirectory()) {
      throw new IOException(mountpoint + " is not a directory, so not a mount point");
    }
    UserDefinedFileAttributeView view =
        Files.getFileAttributeView(mountpoint, UserDefinedFileAttributeView.class);
    try {
      return readGrowing(view);
    } catch (FileSystemException e) {
      String reason = e.getReason() != null ? e.getReason() : String.valueOf(e.getMessage());
      if (reason.contains("not connected")) {
        throw dead(mountpoint, reason); // the kernel still knew its attributes
      }
      throw new IOException(
          mountpoint
              + " is not a puzzlefs mount: it has no user."
              + ATTRIBUTE
              + " attribute"
              + (reason.contains("No data available") ? "" : " (" + reason + ")"));
    }
  }
}
