package dev.puzzlefs.format;

/**
 * A piece of a regular file: {@code len} bytes starting at {@code offset} of the uncompressed chunk
 * blob {@code blob}; {@code compressed} says the blob is stored as seekable zstd.
 */
public record FileChunk(Digest blob, long offset, boolean compressed, long len) {}
