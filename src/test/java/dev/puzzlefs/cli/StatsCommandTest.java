package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.List;
import org.junit.jupiter.api.Test;

class StatsCommandTest {
  /**
   * A mount's counters as its attribute: each time its size is asked, the next value in {@code
   * values} takes over after the answer, as counters that count on between the size and the read.
   */
  private static final class Counting implements UserDefinedFileAttributeView {
    private final List<String> values;
    private int next = 1;
    private String now;

    Counting(List<String> values) {
      this.values = values;
      this.now = values.get(0);
    }

    @Override
    public int size(String name) {
      int size = now.length();
      now = values.get(Math.min(next++, values.size() - 1));
      return size;
    }

    @Override
    public int read(String name, ByteBuffer dst) throws FileSystemException {
      byte[] bytes = now.getBytes(StandardCharsets.UTF_8);
      if (dst.remaining() < bytes.length) {
        throw new FileSystemException(
            "/mnt",
            null,
            "Error reading extended attribute '" + name + "': Insufficient space in buffer");
      }
      dst.put(bytes);
      return bytes.length;
    }

    @Override
    public String name() {
      return "user";
    }

    @Override
    public List<String> list() {
      return List.of(StatsCommand.ATTRIBUTE);
    }

    @Override
    public int write(String name, ByteBuffer src) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void delete(String name) {
      throw new UnsupportedOperationException();
    }
  }

  @Test
  void read_countersGrowBetweenSizeAndRead_readsTheGrownValue() throws Exception {
    String small = "{\"fetches\":1}";
    String grown = "{\"fetches\":1" + ",\"x\":0".repeat(2000) + "}";

    String read = StatsCommand.readGrowing(new Counting(List.of(small, grown, grown)));

    assertEquals(grown.length(), read.length());
    assertEquals(grown, read);
  }

  @Test
  void read_countersKeepOutgrowingTheBuffer_givesUpWithTheError() {
    List<String> ever = new java.util.ArrayList<>();
    for (int i = 1; i <= 10; i++) {
      ever.add("x".repeat(i * 10_000));
    }

    FileSystemException e =
        assertThrows(FileSystemException.class, () -> StatsCommand.readGrowing(new Counting(ever)));
    assertEquals(true, e.getReason().contains("Insufficient space in buffer"), e.getReason());
  }
}
