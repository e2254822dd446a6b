package dev.puzzlefs.fuse;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import jnr.constants.platform.Errno;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.byref.IntByReference;
import jnr.ffi.byref.PointerByReference;
import jnr.ffi.types.size_t;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import ru.serce.jnrfuse.struct.FuseOperations;

/**
 * libfuse 2's multithreaded loop ({@code fuse_loop_mt}), run on Java threads.
 *
 * <p>Why: jnr-fuse runs {@code fuse_main}, whose worker threads are native threads that libfuse
 * starts. jffi attaches such a thread to the JVM when a callback enters Java and detaches it again
 * when the callback returns, so every FUSE request paid for a JVM thread attach and detach (a new
 * {@code java.lang.Thread}, thread-list updates, a handshake on exit): about 8,000 of them for a 1
 * GiB sequential read, a large share of its time. Here the workers are Java threads, so a callback
 * runs on a thread the JVM already knows.
 *
 * <p>What stays libfuse's: {@code fuse_setup} parses the arguments, mounts and builds the
 * high-level filesystem exactly as {@code fuse_main} does, and {@code fuse_teardown} unmounts and
 * destroys it. Each worker receives a request with {@code fuse_session_receive_buf} into a buffer
 * of its own and processes it with {@code fuse_session_process_buf}. Workers come and go the way
 * {@code fuse_loop_mt} does it: when the last idle worker takes a request another one starts, and a
 * worker that finishes a request while more than {@value #MAX_IDLE} others are idle ends. The loop
 * ends when the kernel ends the session (the filesystem was unmounted: every worker's read fails
 * with ENODEV) or a receive fails.
 */
final class FuseLoop {
  private static final Logger log = LoggerFactory.getLogger(FuseLoop.class);

  /** Idle workers beyond this end, as in libfuse 2. */
  static final int MAX_IDLE = 10;

  /** {@code struct fuse_buf}: size_t size; int flags; void *mem; int fd; off_t pos. */
  private static final int FUSE_BUF_BYTES = 40;

  private static final int FUSE_BUF_IS_FD = 1 << 1;
  private static final int FUSE_FORGET = 2;
  private static final int FUSE_BATCH_FORGET = 42;
  private static final int EINTR = Errno.EINTR.intValue();

  /** The parts of libfuse 2 that {@code fuse_main} is made of. */
  public interface LibFuseSession {
    Pointer fuse_setup(
        int argc,
        String[] argv,
        FuseOperations op,
        @size_t long opSize,
        PointerByReference mountpoint,
        IntByReference multithreaded,
        Pointer userData);

    void fuse_teardown(Pointer fuse, Pointer mountpoint);

    Pointer fuse_get_session(Pointer fuse);

    Pointer fuse_session_next_chan(Pointer se, Pointer ch);

    @size_t
    long fuse_chan_bufsize(Pointer ch);

    int fuse_session_receive_buf(Pointer se, Pointer buf, PointerByReference chp);

    void fuse_session_process_buf(Pointer se, Pointer buf, Pointer ch);

    int fuse_session_exited(Pointer se);

    void fuse_session_exit(Pointer se);
  }

  private static volatile LibFuseSession lib;

  private final Pointer session;
  private final Pointer channel;
  private final long bufferSize;
  private final String name;
  private final Runtime runtime;
  private final Object lock = new Object();
  private int available; // idle workers, under lock
  private int workers; // running workers, under lock
  private final AtomicInteger started = new AtomicInteger();
  private final CountDownLatch firstEnded = new CountDownLatch(1);
  private volatile int error;

  private FuseLoop(Pointer session, Pointer channel, long bufferSize, String name) {
    this.session = session;
    this.channel = channel;
    this.bufferSize = bufferSize;
    this.name = name;
    this.runtime = Runtime.getSystemRuntime();
  }

  /** Loads the session functions now (a mount does it anyway): see Mounter.prepareInBackground. */
  static void prepare() {
    lib();
  }

  private static LibFuseSession lib() {
    LibFuseSession l = lib;
    if (l == null) {
      synchronized (FuseLoop.class) {
        l = lib;
        if (l == null) {
          l = LibraryLoader.create(LibFuseSession.class).failImmediately().load("fuse");
          lib = l;
        }
      }
    }
    return l;
  }

  /**
   * Mounts with {@code argv} ({@code fuse_main}'s arguments: program name, options, mount point)
   * and serves requests until the filesystem is unmounted; then unmounts and destroys it.
   *
   * @return 0 after a clean end, 1 if the mount could not be set up or a receive failed
   */
  static int run(FuseOperations operations, String[] argv, Path mountpoint, String threadName) {
    LibFuseSession l = lib();
    PointerByReference mountpointOut = new PointerByReference();
    IntByReference multithreaded = new IntByReference();
    Pointer fuse =
        l.fuse_setup(
            argv.length,
            argv,
            operations,
            jnr.ffi.Struct.size(operations),
            mountpointOut,
            multithreaded,
            null);
    if (fuse == null) {
      return 1;
    }
    Pointer se = l.fuse_get_session(fuse);
    Pointer ch = l.fuse_session_next_chan(se, null);
    FuseLoop loop = new FuseLoop(se, ch, l.fuse_chan_bufsize(ch), threadName);
    try {
      loop.serve(mountpoint);
    } finally {
      l.fuse_teardown(fuse, mountpointOut.getValue());
    }
    return loop.error == 0 ? 0 : 1;
  }

  private void serve(Path mountpoint) {
    synchronized (lock) {
      startWorker();
    }
    awaitUninterruptibly(firstEnded);
    lib.fuse_session_exit(session);
    if (error != 0) {
      // The session is still mounted: unmount it, so the other workers' reads end (ENODEV).
      try {
        Mounter.umountLazily(mountpoint);
      } catch (IOException e) {
        log.debug("unmounting {} after a FUSE loop error: {}", mountpoint, e.getMessage());
      }
    }
    synchronized (lock) {
      while (workers > 0) {
        try {
          lock.wait();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
  }

  /** Starts a worker; under {@link #lock}. */
  private void startWorker() {
    available++;
    workers++;
    Thread t = new Thread(this::work, name + "-" + started.incrementAndGet());
    t.setDaemon(true);
    try {
      t.start();
    } catch (Throwable e) { // out of threads: the running workers carry on
      available--;
      workers--;
      log.warn("cannot start another FUSE worker: {}", e.toString());
    }
  }

  private void work() {
    LibFuseSession l = lib;
    Pointer buffer = Memory.allocateDirect(runtime, (int) bufferSize);
    Pointer fuseBuf = Memory.allocateDirect(runtime, FUSE_BUF_BYTES, true);
    boolean retired = false;
    try {
      while (l.fuse_session_exited(session) == 0) {
        fuseBuf.putLong(0, bufferSize);
        fuseBuf.putInt(8, 0);
        fuseBuf.putAddress(16, buffer.address());
        fuseBuf.putInt(24, 0);
        fuseBuf.putLong(32, 0);
        PointerByReference chp = new PointerByReference(channel);
        int res = l.fuse_session_receive_buf(session, fuseBuf, chp);
        if (res == -EINTR) {
          continue;
        }
        if (res <= 0) {
          if (res < 0) {
            log.warn("reading from the FUSE device failed: errno {}", -res);
            error = -res;
          }
          break;
        }
        boolean forget = false;
        if ((fuseBuf.getInt(8) & FUSE_BUF_IS_FD) == 0) {
          int opcode = fuseBuf.getPointer(16).getInt(4);
          forget = opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET;
        }
        synchronized (lock) {
          if (!forget) {
            available--;
          }
          if (available == 0) {
            startWorker();
          }
        }
        l.fuse_session_process_buf(session, fuseBuf, chp.getValue());
        synchronized (lock) {
          if (!forget) {
            available++;
          }
          if (available > MAX_IDLE) {
            available--;
            workers--;
            retired = true;
            lock.notifyAll();
            return;
          }
        }
      }
    } catch (Throwable t) {
      log.error("FUSE worker failed", t);
      error = error == 0 ? -1 : error;
    } finally {
      if (!retired) {
        synchronized (lock) {
          available--;
          workers--;
          lock.notifyAll();
        }
        firstEnded.countDown();
      }
    }
  }

  private static void awaitUninterruptibly(CountDownLatch latch) {
    boolean interrupted = false;
    while (true) {
      try {
        latch.await();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
