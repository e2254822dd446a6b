package dev.puzzlefs.format;

import java.io.IOException;

/**
 * Cuts one long byte stream, written in pieces of any size, into FastCDC chunks.
 *
 * <p>Why it works this way: a cut only looks at the next {@code max} bytes of the stream, so the
 * chunker holds bytes back until at least {@code max} are buffered (or the stream ends), and the
 * chunks come out exactly as if the whole stream had been cut in one go. Bytes are copied into the
 * buffer at most once; when a write starts with the buffer empty, whole chunks are cut straight
 * from the caller's array.
 *
 * <p>Not thread-safe.
 */
public final class Chunker {
  /** Receives each chunk, in stream order. */
  public interface ChunkSink {
    /**
     * Takes the chunk {@code buf[off, off+len)}; the array may be reused once this returns, so copy
     * what you keep.
     */
    void chunk(byte[] buf, int off, int len) throws IOException;
  }

  private final FastCdc cdc;
  private final ChunkSink sink;
  private final byte[] buf;
  private int start;
  private int end;
  private long written;
  private long emitted;
  private boolean finished;

  /** A chunker that cuts with {@code cdc} and hands every chunk to {@code sink}. */
  public Chunker(FastCdc cdc, ChunkSink sink) {
    this.cdc = cdc;
    this.sink = sink;
    this.buf = new byte[4 * cdc.max()];
  }

  /** Appends {@code b[off, off+len)} to the stream, emitting every chunk that is now decided. */
  public void write(byte[] b, int off, int len) throws IOException {
    if (finished) {
      throw new IllegalStateException("chunker already finished");
    }
    if (off < 0 || len < 0 || len > b.length - off) {
      throw new IndexOutOfBoundsException(
          "range [" + off + ", " + off + "+" + len + ") of " + b.length + " bytes");
    }
    written += len;
    int max = cdc.max();

    while (start == end && len >= max) {
      int n = cdc.cut(b, off, len);
      emit(b, off, n);
      off += n;
      len -= n;
    }

    while (len > 0) {
      if (end == buf.length) {
        compact();
      }
      int n = Math.min(len, buf.length - end);
      System.arraycopy(b, off, buf, end, n);
      end += n;
      off += n;
      len -= n;
      while (end - start >= max) {
        int c = cdc.cut(buf, start, end - start);
        emit(buf, start, c);
        start += c;
      }
      if (start == end) {
        start = 0;
        end = 0;
      }
    }
  }

  /** Ends the stream: emits the remaining buffered bytes as the last chunk(s). */
  public void finish() throws IOException {
    if (finished) {
      return;
    }
    finished = true;
    while (start < end) {
      int c = cdc.cut(buf, start, end - start);
      emit(buf, start, c);
      start += c;
    }
    start = 0;
    end = 0;
  }

  /** The number of bytes written so far: the stream offset of the next byte to be written. */
  public long position() {
    return written;
  }

  /** The number of bytes already handed to the sink as chunks. */
  public long emitted() {
    return emitted;
  }

  private void emit(byte[] b, int off, int len) throws IOException {
    sink.chunk(b, off, len);
    emitted += len;
  }

  private void compact() {
    System.arraycopy(buf, start, buf, 0, end - start);
    end -= start;
    start = 0;
  }
}
