package dev.puzzlefs.reader;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches a program of a lazily fetched image before it runs: the ELF file whole, then, once its
 * headers are here, the files the dynamic loader will open for it (its interpreter and the
 * libraries it needs, {@link ElfLinks}), whole as well, and theirs in turn. Started when a read
 * finds an ELF header it had to wait for ({@link Image#read}), or for the command {@code run} is
 * about to start ({@link Image#prefetchProgram}). Each file the loader opens would otherwise cost a
 * round trip for its header and more for the pages it maps, one after the other; here they are all
 * asked for as soon as the first file's headers are read.
 *
 * <p>The headers are read on a thread of its own, waiting for their chunks as reads do; a library
 * that cannot be found or read is skipped. At most {@link #MAX_FILES} files per image.
 */
final class ProgramFetch implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ProgramFetch.class);

  /** The most files one image follows links into: a program and its libraries are a few dozen. */
  static final int MAX_FILES = 64;

  /**
   * The most bytes one image fetches whole for linked files: python3 and its libraries are about 10
   * MB; a hostile file naming large ones fetches no more than this.
   */
  static final long MAX_LINKED_BYTES = 64L << 20;

  private final Image image;
  private final Set<Integer> followed = ConcurrentHashMap.newKeySet();
  private final LongAdder linked = new LongAdder();
  private final java.util.concurrent.atomic.AtomicLong linkedBytes =
      new java.util.concurrent.atomic.AtomicLong();
  private final ThreadPoolExecutor headers;

  ProgramFetch(Image image) {
    this.image = image;
    this.headers =
        new ThreadPoolExecutor(
            2,
            2,
            5,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            r -> {
              Thread t = new Thread(r, "puzzlefs-program-fetch");
              t.setDaemon(true);
              return t;
            });
    this.headers.allowCoreThreadTimeOut(true);
  }

  /**
   * Fetches file {@code index}, a program (an ELF file, or a command about to run), whole and
   * follows its links, once per file; true when this call started that.
   */
  boolean fetch(int index) {
    return start(index, true);
  }

  /**
   * Fetches the first regular file among {@code paths} as a program; false when none is, or it is
   * fetched already.
   */
  boolean fetch(List<String> paths) {
    int index = firstFile(paths);
    return index >= 0 && start(index, true);
  }

  private int firstFile(List<String> paths) {
    for (String path : paths) {
      int index = image.fileIndex(path.getBytes(StandardCharsets.UTF_8));
      if (index >= 0) {
        return index;
      }
    }
    return -1;
  }

  /**
   * Starts following file {@code index}: fetched whole at once, a file a link names while the
   * linked files fetched whole stay within {@link #MAX_LINKED_BYTES} (the loader opens it next:
   * waiting to see its head first would cost a round trip), then its links read.
   */
  private boolean start(int index, boolean program) {
    if (followed.size() >= MAX_FILES || !followed.add(index)) {
      return false;
    }
    if (program) {
      image.fetchWhole(index);
    } else {
      linked.increment();
      long size = image.sizeAt(index);
      if (linkedBytes.addAndGet(size) <= MAX_LINKED_BYTES) {
        image.fetchWhole(index);
      } else {
        linkedBytes.addAndGet(-size);
        LOG.debug(
            "not fetching linked ino {} whole: linked files past {} bytes",
            image.inoAt(index),
            MAX_LINKED_BYTES);
      }
    }
    try {
      headers.execute(() -> follow(index));
    } catch (RejectedExecutionException e) { // closed: the image is going away
      LOG.debug("not following the links of ino {}: closed", image.inoAt(index));
    }
    return true;
  }

  private void follow(int index) {
    // The interpreter first: the kernel opens it right after the program, and its name is in the
    // program's first pages, while the libraries' names may be at its far end.
    String interpreter = links(index, true).interpreter();
    if (interpreter != null) {
      fetchLinked(List.of(interpreter));
    }
    ElfLinks links = links(index, false);
    List<String> dirs = links.libraryDirectories();
    for (String name : links.needed()) {
      if (name.indexOf('/') >= 0) {
        fetchLinked(List.of(name));
      } else {
        fetchLinked(dirs.stream().map(d -> d + "/" + name).toList());
      }
    }
  }

  private ElfLinks links(int index, boolean interpreterOnly) {
    try {
      return ElfLinks.read(
          (offset, length) -> image.readFetched(index, offset, length),
          image.sizeAt(index),
          interpreterOnly);
    } catch (java.io.IOException | RuntimeException e) {
      LOG.debug("could not read the ELF headers of ino {}: {}", image.inoAt(index), e.toString());
      return ElfLinks.NONE;
    }
  }

  private void fetchLinked(List<String> candidates) {
    int index = firstFile(candidates);
    if (index >= 0) {
      start(index, false);
    }
  }

  /** Files fetched because a program links them. */
  long linkedFiles() {
    return linked.sum();
  }

  @Override
  public void close() {
    headers.shutdownNow();
  }
}
