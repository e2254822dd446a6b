package dev.puzzlefs.cli;

import dev.puzzlefs.fuse.Mounter;
import dev.puzzlefs.fuse.UnmountException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code puzzlefs umount [--lazy] MOUNTPOINT}. */
@Command(
    mixinStandardHelpOptions = true,
    name = "umount",
    description =
        "Unmount a puzzlefs mount; its daemon (a background mount) then logs its counters "
            + "and exits. A mount whose daemon died ('Transport endpoint is not connected') is "
            + "cleaned up too. A busy mount is refused, naming the processes that use it, "
            + "unless --lazy.",
    footerHeading = "%nExamples:%n",
    footer = {"  puzzlefs umount /mnt/v1", "  puzzlefs umount --lazy /mnt/v1   # even while busy"})
final class UmountCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MOUNTPOINT", description = "where the image is mounted")
  Path mountpoint;

  @Option(
      names = {"-l", "--lazy"},
      description =
          "detach now even if busy (fusermount -u -z): the mount leaves the tree at once and ends"
              + " when the last process using it lets go")
  boolean lazy;

  @Override
  public Integer call() throws Exception {
    // Only a path known to be missing (a dead mount's path answers ENOTCONN: it is cleaned up).
    if (java.nio.file.Files.notExists(mountpoint, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(mountpoint + " does not exist");
    }
    if (WritableMount.isWritable(mountpoint)) {
      try {
        WritableMount.unmount(mountpoint, System.err, lazy);
      } catch (UnmountException e) {
        throw new IOException(advice(e));
      }
      return 0;
    }
    try {
      Mounter.umountPuzzlefs(mountpoint, lazy);
    } catch (UnmountException e) {
      // The advice already says what the tools said where it matters; their output stays in the
      // message only for failures it cannot explain.
      throw new IOException(advice(e));
    }
    return 0;
  }

  /** The mount points strictly below {@code dir}; none when the table cannot be read. */
  private static List<Path> mountsInside(Path dir) {
    try {
      Path top = dir.toAbsolutePath().normalize();
      return dev.puzzlefs.fuse.MountTable.mountsUnder(top).stream()
          .filter(p -> !p.equals(top))
          .toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** The error for a person: what failed, why, and what to do about it. */
  static String advice(UnmountException e) {
    Path dir = e.mountpoint();
    switch (e.reason()) {
      case NOT_MOUNTED:
        return dir
            + " is not a mount point: nothing is mounted there (findmnt -t fuse.puzzlefs lists"
            + " puzzlefs mounts)";
      case BUSY:
        List<Path> inside = mountsInside(dir);
        if (!inside.isEmpty()) {
          return "cannot unmount "
              + dir
              + ": it is busy (EBUSY): "
              + (inside.size() == 1 ? "a mount is" : "mounts are")
              + " inside it ("
              + inside.stream()
                  .map(Path::toString)
                  .collect(java.util.stream.Collectors.joining(", "))
              + "); unmount "
              + (inside.size() == 1 ? "it" : "them")
              + " first, or detach everything now with 'puzzlefs umount --lazy "
              + dir
              + "'";
        }
        List<String> users = MountUsers.of(dir);
        return "cannot unmount "
            + dir
            + ": it is busy (EBUSY)"
            + (users.isEmpty()
                ? ", a process has a file open or its working directory inside it"
                : ": used by " + String.join(", ", users))
            + "; stop those processes or leave the directory, or detach it now with"
            + " 'puzzlefs umount --lazy "
            + dir
            + "'";
      case NOT_PUZZLEFS:
        return e.getMessage();
      default:
        return e.getMessage()
            + "; if its daemon hangs, 'puzzlefs umount --lazy "
            + dir
            + "' detaches it";
    }
  }
}
