package dev.puzzlefs.cache;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.OciException;
import dev.puzzlefs.oci.OciLayout;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;

/**
 * Reads blobs from a local OCI layout on {@code executor}, never on the caller's thread.
 *
 * <p>A blob is read into an array of its exact size with positional reads straight from the file:
 * no stream buffers, no growing and copying (a stream's {@code readAllBytes} copies every byte a
 * second time and makes several times the blob in garbage).
 */
public final class LayoutBlobFetcher implements BlobFetcher {
  /**
   * A blob larger than this is no chunk: the format cuts chunks of at most 256 KiB and stores a
   * chunk raw when compressing it would not make it smaller. Read whole into memory, a huge file in
   * a damaged layout would fill the heap of the mount server, and every mount it serves would die.
   */
  public static final long MAX_CHUNK_BLOB_BYTES = 1 << 20;

  private final OciLayout layout;
  private final Executor executor;
  private final Map<Digest, Long> sizes;

  /**
   * Reads from {@code layout}, doing the file I/O on {@code executor}; a blob whose size the
   * manifest gives in {@code sizes} must have that size.
   */
  public LayoutBlobFetcher(OciLayout layout, Executor executor, Map<Digest, Long> sizes) {
    this.layout = layout;
    this.executor = executor;
    this.sizes = Map.copyOf(sizes);
  }

  /** Reads from {@code layout}, doing the file I/O on {@code executor}; sizes are not known. */
  public LayoutBlobFetcher(OciLayout layout, Executor executor) {
    this(layout, executor, Map.of());
  }

  @Override
  public CompletableFuture<byte[]> fetch(Digest blob) {
    return CompletableFuture.supplyAsync(() -> read(blob), executor);
  }

  private byte[] read(Digest blob) {
    java.nio.file.Path path = layout.blobPath(blob);
    try {
      // A fifo would hold this thread (one of a few for the whole mount) forever, a device such
      // as /dev/zero would never end: only a regular file (or a link to one) is a blob.
      if (!java.nio.file.Files.readAttributes(
              path, java.nio.file.attribute.BasicFileAttributes.class)
          .isRegularFile()) {
        throw new CompletionException(
            new OciException("blob " + path + " is not a regular file; the layout is damaged"));
      }
    } catch (NoSuchFileException e) {
      throw new CompletionException(
          new OciException("blob " + blob + " is missing from " + layout.root(), e));
    } catch (IOException e) {
      throw new CompletionException(unreadable(path, e));
    }
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = channel.size();
      Long listed = sizes.get(blob);
      if (listed != null && size != listed) {
        throw new OciException(
            "blob "
                + path
                + " is "
                + size
                + " bytes, but the manifest says "
                + listed
                + "; the layout is damaged");
      }
      if (size > MAX_CHUNK_BLOB_BYTES) {
        throw new OciException(
            "blob "
                + path
                + " is "
                + size
                + " bytes, more than any chunk ("
                + MAX_CHUNK_BLOB_BYTES
                + "); the layout is damaged");
      }
      byte[] bytes = new byte[(int) size];
      ByteBuffer into = ByteBuffer.wrap(bytes);
      while (into.hasRemaining()) {
        if (channel.read(into, into.position()) < 0) {
          // Shorter than it was a moment ago: what was read fails verification, as it must.
          return java.util.Arrays.copyOf(bytes, into.position());
        }
      }
      return bytes;
    } catch (NoSuchFileException e) {
      throw new CompletionException(
          new OciException("blob " + blob + " is missing from " + layout.root(), e));
    } catch (OciException e) {
      throw new CompletionException(e);
    } catch (IOException e) {
      throw new CompletionException(unreadable(path, e));
    }
  }

  /**
   * {@code failure} to read the blob at {@code path}, said with its cause: a file error's message
   * is often its path alone (permission denied, a path through something that is not a directory),
   * which names no cause at all.
   */
  private static IOException unreadable(java.nio.file.Path path, IOException failure) {
    String why;
    if (failure instanceof java.nio.file.FileSystemException fse) {
      why =
          fse.getReason() != null
              ? fse.getReason()
              : failure instanceof java.nio.file.AccessDeniedException
                  ? "permission denied"
                  : failure instanceof java.nio.file.NotDirectoryException
                      ? "a part of its path is not a directory"
                      : failure.getClass().getSimpleName();
    } else {
      why = String.valueOf(failure.getMessage());
    }
    return new IOException("cannot read blob " + path + ": " + why, failure);
  }

  /** The executor's threads read files; verifying there saves a hand-off per chunk. */
  @Override
  public boolean completesOnWorkerThread() {
    return true;
  }

  /**
   * A read of a local file that hangs holds its thread, and another would hang the same way. A
   * deadline per chunk cost a sequential read of 1 GiB (13,500 chunks) about 4% of its time.
   */
  @Override
  public boolean retriesHelpAHang() {
    return false;
  }

  @Override
  public String source() {
    return layout.root().toString();
  }
}
