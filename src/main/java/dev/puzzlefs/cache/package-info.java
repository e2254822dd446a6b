/**
 * The verified chunk cache between the reader and a blob source (a registry or a local layout):
 * memory, then a content-addressed disk directory, then the source. Uses {@code registry}, {@code
 * oci}, {@code format} and the reader's {@code ChunkSource} interface.
 */
package dev.puzzlefs.cache;
