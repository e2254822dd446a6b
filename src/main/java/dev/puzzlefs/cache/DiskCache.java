package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A content-addressed directory of blobs, {@code <root>/sha256/<hex>}, kept under a byte budget.
 *
 * <p>Entries are written to a hidden temporary file and renamed into place, so a reader never sees
 * a partial entry. Reading an entry sets its modification time, and eviction deletes the entries
 * with the oldest times, which approximates least-recently-used. This class does not verify bytes;
 * {@link CachingChunkSource} does, on the way in and on the way out.
 *
 * <p>Only regular files are entries, and links are never followed: anything else found under an
 * entry's name (a symbolic link, a FIFO, a device, a directory) is deleted itself, never what it
 * points to, and the entry counts as missing.
 */
final class DiskCache {
  private static final Logger LOG = LoggerFactory.getLogger(DiskCache.class);

  private static final Duration STALE_TEMP = Duration.ofMinutes(10);
  private static final FileAttribute<Set<PosixFilePermission>> PRIVATE =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));

  private final Path dir;
  private final long maxBytes;
  private final Clock clock;
  private final AtomicLong bytes = new AtomicLong();
  private final FileChannel locks;

  DiskCache(Path root, long maxBytes, Clock clock) throws IOException {
    if (maxBytes < 1) {
      throw new IllegalArgumentException("disk cache budget must be positive, got " + maxBytes);
    }
    this.dir = root.resolve(Digest.ALGORITHM);
    this.maxBytes = maxBytes;
    this.clock = clock;
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      String why = e.getMessage();
      if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
        why = f.getReason();
      }
      throw new IOException(
          "cannot use the chunk cache directory "
              + root
              + " (--cache-dir, or cache.directory in the configuration): "
              + (Files.exists(root) && !Files.isDirectory(root) ? "it is not a directory" : why));
    }
    FileChannel lockFile = null;
    try {
      lockFile =
          FileChannel.open(
              root.resolve(".fetch-locks"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    } catch (IOException e) {
      LOG.debug("no fetch locks in {} ({}); mounts sharing it may fetch a chunk twice", root, e);
    }
    this.locks = lockFile;
    bytes.set(scan());
    if (bytes.get() > maxBytes) {
      evict();
    }
  }

  /** The file an entry lives in (it may not exist). */
  Path path(Digest blob) {
    return dir.resolve(blob.hex());
  }

  /**
   * The entry's bytes, or null when there is none. Marks the entry as recently used. Something
   * other than a regular file in the entry's place is deleted (itself, not what a link points to)
   * and reported with {@link UnusableEntryException}.
   */
  byte[] read(Digest blob) throws IOException {
    Path path = path(blob);
    if (!exists(path)) {
      return null;
    }
    byte[] data;
    try {
      BasicFileAttributes attributes =
          Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (!attributes.isRegularFile()) {
        deleteNotRegular(path);
        throw new UnusableEntryException(path, "was not a regular file");
      }
      if (attributes.size() > LayoutBlobFetcher.MAX_CHUNK_BLOB_BYTES) {
        // No chunk is that large, and reading it whole could fill the heap of a mount server.
        Files.deleteIfExists(path);
        throw new UnusableEntryException(
            path, "was " + attributes.size() + " bytes, larger than any chunk");
      }
      try (InputStream in =
          Files.newInputStream(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        data = in.readAllBytes();
      }
    } catch (NoSuchFileException e) {
      return null;
    }
    try {
      Files.getFileAttributeView(path, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
          .setTimes(FileTime.from(clock.instant()), null, null);
    } catch (NoSuchFileException e) {
      // Evicted since we read it: the bytes we have are still good.
    }
    return data;
  }

  /**
   * Whether something that leads to a file is at {@code path}: false when nothing is there, and for
   * a dangling link, which the entry's rename then replaces. Asked with java.io.File, which answers
   * a miss without the two exceptions (and stack traces) a java.nio.file check costs on Java 17:
   * every chunk fetched is a miss or two first.
   */
  private static boolean exists(Path path) {
    return path.toFile().exists();
  }

  /** Stores {@code data} as the entry for {@code blob} unless it is already there. */
  void write(Digest blob, byte[] data) throws IOException {
    Path target = path(blob);
    if (data.length > maxBytes || exists(target)) {
      return;
    }
    Path tmp = writeTemp(blob, data);
    boolean moved = false;
    try {
      try {
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
      }
      moved = true;
    } finally {
      if (!moved) {
        Files.deleteIfExists(tmp);
      }
    }
    if (bytes.addAndGet(data.length) > maxBytes) {
      evict();
    }
  }

  /**
   * Writes {@code data} to a new private temporary file beside the entries, made with {@code
   * O_CREAT|O_EXCL} and without {@code O_TRUNC}: ext4 flushes a file that was truncated to zero
   * when it is closed, in the closing thread, where a new file is written back later by the
   * kernel's flusher, as other files are.
   */
  private Path writeTemp(Digest blob, byte[] data) throws IOException {
    String prefix = "." + blob.hex().substring(0, 16) + ".";
    for (int attempt = 0; ; attempt++) {
      Path tmp =
          dir.resolve(
              prefix + Long.toUnsignedString(ThreadLocalRandom.current().nextLong()) + ".tmp");
      SeekableByteChannel out;
      try {
        out =
            Files.newByteChannel(
                tmp, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), PRIVATE);
      } catch (FileAlreadyExistsException e) {
        if (attempt == 10) {
          throw e;
        }
        continue;
      }
      try (out) {
        ByteBuffer rest = ByteBuffer.wrap(data);
        while (rest.hasRemaining()) {
          out.write(rest);
        }
      } catch (IOException | RuntimeException e) {
        Files.deleteIfExists(tmp);
        throw e;
      }
      return tmp;
    }
  }

  /**
   * Claims the fetch of {@code blob} among all processes sharing this cache: an advisory lock on
   * one byte of {@code .fetch-locks}, at an offset taken from the digest. Returns the claim to
   * release once the entry is written ({@link FetchClaim#UNCOORDINATED} when locking is not
   * possible here: the caller just fetches), or null when another process holds it (the caller
   * waits for the entry to appear or the claim to be released).
   */
  FetchClaim tryClaimFetch(Digest blob) {
    if (locks == null) {
      return FetchClaim.UNCOORDINATED;
    }
    long position = ByteBuffer.wrap(blob.bytes()).getLong() >>> 2;
    try {
      FileLock lock = locks.tryLock(position, 1, false);
      return lock == null ? null : new FetchClaim(lock);
    } catch (OverlappingFileLockException e) {
      // This JVM holds it: another source on the same directory, whose fetch we cannot see.
      return FetchClaim.UNCOORDINATED;
    } catch (IOException e) {
      LOG.debug("cannot lock the fetch of {}: {}", blob, e.toString());
      return FetchClaim.UNCOORDINATED;
    }
  }

  /** Closes the fetch lock file (releasing any claim still held). */
  void close() {
    if (locks != null) {
      try {
        locks.close();
      } catch (IOException e) {
        LOG.debug("cannot close {}: {}", dir.resolveSibling(".fetch-locks"), e.toString());
      }
    }
  }

  /** The right to fetch a chunk into the cache, held until the entry is written. */
  static final class FetchClaim {
    /** Fetching without coordinating with other processes. */
    static final FetchClaim UNCOORDINATED = new FetchClaim(null);

    private final FileLock lock;

    private FetchClaim(FileLock lock) {
      this.lock = lock;
    }

    /** Whether other processes see this claim. */
    boolean coordinated() {
      return lock != null;
    }

    void release() {
      if (lock == null) {
        return;
      }
      try {
        lock.release();
      } catch (IOException e) {
        LOG.debug("cannot release a fetch lock: {}", e.toString());
      }
    }
  }

  /** Removes the entry for {@code blob}, if any. */
  void delete(Digest blob) throws IOException {
    Path path = path(blob);
    try {
      long size =
          Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).size();
      if (Files.deleteIfExists(path)) {
        bytes.addAndGet(-size);
      }
    } catch (NoSuchFileException e) {
      // Already gone.
    }
  }

  /** Deletes {@code path} itself (a link, not its target); a directory only when empty. */
  private static void deleteNotRegular(Path path) throws IOException {
    try {
      Files.deleteIfExists(path);
    } catch (DirectoryNotEmptyException e) {
      throw new IOException("cache entry " + path + " is a directory that is not empty", e);
    }
  }

  /** The bytes the entries take, as this process has counted them. */
  long size() {
    return bytes.get();
  }

  /**
   * Deletes the least recently used entries until the cache is at 90% of its budget.
   *
   * <p>TODO: this lists and sorts the whole directory on every eviction, which is fine for tens of
   * thousands of entries; an in-memory index ordered by use would make it O(evicted).
   */
  private synchronized void evict() throws IOException {
    if (bytes.get() <= maxBytes) {
      return;
    }
    List<Entry> entries = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        if (!file.getFileName().toString().startsWith(".")) {
          try {
            BasicFileAttributes a =
                Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            entries.add(new Entry(file, a.lastModifiedTime(), a.isRegularFile() ? a.size() : 0));
          } catch (NoSuchFileException e) {
            // Deleted meanwhile.
          }
        }
      }
    }
    entries.sort(Comparator.comparing(Entry::modified));
    long target = maxBytes / 10 * 9;
    int evicted = 0;
    for (Entry entry : entries) {
      if (bytes.get() <= target) {
        break;
      }
      if (Files.deleteIfExists(entry.path())) {
        bytes.addAndGet(-entry.size());
        evicted++;
      }
    }
    LOG.debug("evicted {} entries from {}; {} bytes remain", evicted, dir, bytes.get());
  }

  /**
   * Sums the entries and deletes temporary files an interrupted write left behind (only old ones:
   * another process sharing the directory may be writing a new one).
   */
  private long scan() throws IOException {
    long total = 0;
    FileTime stale = FileTime.from(clock.instant().minus(STALE_TEMP));
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        if (file.getFileName().toString().startsWith(".")) {
          if (Files.getLastModifiedTime(file, LinkOption.NOFOLLOW_LINKS).compareTo(stale) < 0) {
            Files.deleteIfExists(file);
          }
        } else {
          BasicFileAttributes a =
              Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
          if (a.isRegularFile()) {
            total += a.size();
          }
        }
      }
    }
    return total;
  }

  /** A cache entry could not be used (not a regular file, or too large); it has been deleted. */
  static final class UnusableEntryException extends IOException {
    private static final long serialVersionUID = 1L;

    UnusableEntryException(Path path, String why) {
      super("cache entry " + path + " " + why + "; deleted it");
    }
  }

  private record Entry(Path path, FileTime modified, long size) {}
}
