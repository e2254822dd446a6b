package dev.puzzlefs.cli;

import dev.puzzlefs.fuse.Mounter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code puzzlefs umount MOUNTPOINT}. */
@Command(
    mixinStandardHelpOptions = true,
    name = "umount",
    description = "Unmount a puzzlefs mount.")
final class UmountCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Override
  public Integer call() throws Exception {
    if (WritableMount.isWritable(mountpoint)) {
      WritableMount.unmount(mountpoint, System.err);
      return 0;
    }
    Mounter.umountPuzzlefs(mountpoint);
    return 0;
  }
}
