package dev.puzzlefs.cli;

import dev.puzzlefs.reader.Image;
import dev.puzzlefs.testing.FakeImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Stands in for {@code Main mount -f -i FIFO} in background-mount tests: {@code MOUNTPOINT [--pid
 * FILE] [--hang] -f -i FIFO}. Mounts a small fake image with {@code /hello} in it.
 */
public final class FakeMountMain {
  private FakeMountMain() {}

  public static void main(String[] args) throws Exception {
    List<String> rest = new ArrayList<>(List.of(args));
    Path fifo = null;
    int i = rest.indexOf("-i");
    if (i >= 0) {
      fifo = Path.of(rest.get(i + 1));
      rest.subList(i, i + 2).clear();
    }
    rest.remove("-f");
    int pid = rest.indexOf("--pid");
    if (pid >= 0) {
      Files.writeString(Path.of(rest.get(pid + 1)), Long.toString(ProcessHandle.current().pid()));
      rest.subList(pid, pid + 2).clear();
    }
    if (rest.remove("--hang")) {
      Thread.sleep(Long.MAX_VALUE);
    }
    FakeImage fake = new FakeImage(64);
    fake.file("/hello", FakeImage.utf8("hello from the child\n"));
    Image image = fake.open();
    System.exit(MountSupport.runForeground(image, Path.of(rest.get(0)), List.of(), fifo));
  }
}
