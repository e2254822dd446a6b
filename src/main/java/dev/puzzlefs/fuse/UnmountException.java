package dev.puzzlefs.fuse;

import java.io.IOException;
import java.nio.file.Path;

/** An unmount that did not happen, with the reason sorted out so a caller can advise the user. */
public final class UnmountException extends IOException {
  private static final long serialVersionUID = 1L;

  /** Why the unmount did not happen. */
  public enum Reason {
    /** Nothing is mounted on the path. */
    NOT_MOUNTED,
    /** Another filesystem than puzzlefs is mounted there; it was left alone. */
    NOT_PUZZLEFS,
    /** The kernel refused with EBUSY: a process has a file open or its directory inside. */
    BUSY,
    /** Anything else; the message holds the tools' output. */
    FAILED
  }

  private final Reason reason;
  private final transient Path mountpoint;

  UnmountException(Reason reason, Path mountpoint, String message) {
    super(message);
    this.reason = reason;
    this.mountpoint = mountpoint;
  }

  /**
   * The kernel refused to unmount {@code mountpoint} (absolute), a mount of another kind than
   * puzzlefs's own (the overlay of a writable mount), with EBUSY.
   */
  public static UnmountException busy(Path mountpoint, String message) {
    return new UnmountException(Reason.BUSY, mountpoint, message);
  }

  /** Why. */
  public Reason reason() {
    return reason;
  }

  /** The mount point, absolute. */
  public Path mountpoint() {
    return mountpoint;
  }
}
