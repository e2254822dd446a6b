package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;

/**
 * A manifest or index exactly as the registry stored it.
 *
 * @param bytes the document; its sha256 is {@code digest}. Not copied: do not modify
 * @param mediaType what the document is: its own {@code mediaType} field or shape, else the
 *     Content-Type the registry gave it (without parameters)
 * @param digest the sha256 of {@code bytes}, checked against the reference when it was a digest
 */
public record PulledManifest(byte[] bytes, String mediaType, Digest digest) {}
