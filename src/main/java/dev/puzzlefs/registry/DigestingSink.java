package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.streams.WriteStream;
import java.io.ByteArrayOutputStream;
import java.security.MessageDigest;

/**
 * Receives a response body, hashing it as it arrives and keeping at most {@code limit} bytes. Bytes
 * beyond the limit are counted and dropped, so a misbehaving server cannot exhaust memory; the
 * caller checks {@link #overflowed()} before using the body.
 */
final class DigestingSink implements WriteStream<Buffer> {
  /** The largest announced size allocated before the bytes arrive. */
  static final int MAX_PRESIZED = 16 << 20;

  private final MessageDigest sha256 = Digest.newSha256();
  private final long limit;
  private long received;
  // The body: an array of the announced size, filled in place (a chunk's bytes are copied once,
  // from the network buffer into the array the reader gets), or a growing stream when no size was
  // announced or the body turned out longer than announced.
  private byte[] exact;
  private int filled;
  private ByteArrayOutputStream grown;

  DigestingSink(long limit) {
    this(limit, -1);
  }

  /**
   * A sink for a body announced as {@code expected} bytes (-1: not announced); an announced size
   * within the limit is allocated at once.
   */
  DigestingSink(long limit, long expected) {
    this.limit = limit;
    // Up to a bound only: a header alone must not make us allocate much (the body may never come).
    if (expected >= 0 && expected <= limit && expected <= MAX_PRESIZED) {
      exact = new byte[(int) expected];
    } else {
      grown = new ByteArrayOutputStream();
    }
  }

  @Override
  public Future<Void> write(Buffer data) {
    int length = data.length();
    received += length;
    if (received > limit) {
      return Future.succeededFuture();
    }
    if (exact != null && filled + length <= exact.length) {
      data.getBytes(exact, filled);
      sha256.update(exact, filled, length);
      filled += length;
      return Future.succeededFuture();
    }
    if (exact != null) { // longer than announced: keep all of it all the same
      grown = new ByteArrayOutputStream(filled + length);
      grown.write(exact, 0, filled);
      exact = null;
    }
    byte[] bytes = data.getBytes();
    sha256.update(bytes);
    grown.write(bytes, 0, bytes.length);
    return Future.succeededFuture();
  }

  @Override
  public Future<Void> end() {
    return Future.succeededFuture();
  }

  @Override
  public DigestingSink exceptionHandler(Handler<Throwable> handler) {
    return this;
  }

  @Override
  public DigestingSink setWriteQueueMaxSize(int maxSize) {
    return this;
  }

  @Override
  public boolean writeQueueFull() {
    return false;
  }

  @Override
  public DigestingSink drainHandler(Handler<Void> handler) {
    return this;
  }

  /** Body bytes received so far, including any dropped past the limit. */
  long received() {
    return received;
  }

  /** True when the body was longer than the limit. */
  boolean overflowed() {
    return received > limit;
  }

  /** The sha256 of the whole body; only meaningful when it did not overflow. Call once. */
  Digest digest() {
    return Digest.of(sha256.digest());
  }

  /** The body (or its first {@code limit} bytes). */
  byte[] bytes() {
    if (exact == null) {
      return grown.toByteArray();
    }
    return filled == exact.length ? exact : java.util.Arrays.copyOf(exact, filled);
  }
}
