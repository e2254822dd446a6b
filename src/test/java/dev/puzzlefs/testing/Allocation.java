package dev.puzzlefs.testing;

import java.lang.management.ManagementFactory;

/** How many bytes the current thread has allocated on the heap, for bounds on decode costs. */
public final class Allocation {
  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

  private Allocation() {}

  /** The bytes the calling thread has allocated since it started (a running total). */
  public static long ofCurrentThread() {
    return THREADS.getCurrentThreadAllocatedBytes();
  }
}
