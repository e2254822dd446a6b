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
  private final MessageDigest sha256 = Digest.newSha256();
  private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
  private final long limit;
  private long received;

  DigestingSink(long limit) {
    this.limit = limit;
  }

  @Override
  public Future<Void> write(Buffer data) {
    received += data.length();
    if (received <= limit) {
      byte[] bytes = data.getBytes();
      sha256.update(bytes);
      kept.write(bytes, 0, bytes.length);
    }
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
    return kept.toByteArray();
  }
}
