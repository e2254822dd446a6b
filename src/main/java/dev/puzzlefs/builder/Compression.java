package dev.puzzlefs.builder;

/** How a build stores chunk blobs. */
public enum Compression {
  /** Every chunk is stored as it is; manifest layers are {@code filedata.v1}. */
  NONE,

  /**
   * Every chunk is compressed on its own in the zstd seekable format and stored that way when that
   * is smaller, raw otherwise; manifest layers are {@code filedata.v1+zstd}.
   */
  ZSTD
}
