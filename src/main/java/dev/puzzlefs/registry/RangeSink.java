package dev.puzzlefs.registry;

import io.vertx.core.buffer.Buffer;

/**
 * Takes the bytes of the parts of a blob that a range request brings, as they arrive: on the event
 * loop, so it must not block. Bytes the registry sends beyond those asked for (a part that covers
 * several) come too; the caller verifies what it cuts out, since nothing here is checked against a
 * digest.
 */
@FunctionalInterface
public interface RangeSink {
  /**
   * Bytes {@code [offset, offset + length)} of the blob arrived: {@code data}'s bytes from {@code
   * from}. The buffer is only valid during the call.
   */
  void arrived(long offset, Buffer data, int from, int length);
}
