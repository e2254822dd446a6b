package dev.puzzlefs.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * A tree with every awkward case the format has to get right: a file whose last chunk it shares
 * with the next file, an empty file, a dangling symlink, hard links, accented and non-UTF-8 names,
 * uid 65536 and gid 4294967294 with mode 06755, a 5000-entry directory, character and block
 * devices, a fifo, and user and trusted extended attributes. Needs root.
 */
public final class EdgeCaseTree {
  private EdgeCaseTree() {}

  /** Fills the existing, empty directory {@code src} with the tree. */
  public static void make(Path src) throws IOException, InterruptedException {
    Random random = new Random(7);
    byte[] big = new byte[300_000];
    random.nextBytes(big);
    Files.write(src.resolve("a-big"), big);
    Files.write(src.resolve("b-empty"), new byte[0]);
    Files.writeString(src.resolve("c-small"), "the tail of a-big's last chunk is shared with me\n");
    Files.createSymbolicLink(src.resolve("dangling"), Path.of("/no/such/target"));
    Files.writeString(src.resolve("linked"), "two names\n");
    Files.createLink(src.resolve("linked-too"), src.resolve("linked"));
    Files.writeString(src.resolve("café"), "accented\n");
    Files.createDirectories(src.resolve("naïve dir"));
    Files.writeString(src.resolve("naïve dir/ünïcödé"), "deeper\n");
    Path owned = Files.writeString(src.resolve("owned"), "owners\n");
    Files.setAttribute(owned, "unix:uid", 65536);
    Files.setAttribute(owned, "unix:gid", (int) 4294967294L);
    Files.setAttribute(owned, "unix:mode", 06755);
    Path many = Files.createDirectories(src.resolve("many"));
    for (int i = 0; i < 5000; i++) {
      Files.createFile(many.resolve("entry-with-a-longish-name-" + i));
    }
    // Names and devices Java cannot make: the shell can.
    Processes.run(
        30,
        "bash",
        "-c",
        "cd '"
            + src
            + "' && touch $'bad\\xffname' && mknod chr c 1 3 && mknod blk b 7 0"
            + " && mkfifo fifo && setfattr -n user.note -v hello c-small"
            + " && setfattr -n user.bin -v 0x00ff01 owned"
            + " && setfattr -n trusted.puzzle -v t owned");
  }
}
