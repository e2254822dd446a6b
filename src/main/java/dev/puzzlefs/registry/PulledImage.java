package dev.puzzlefs.registry;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.ImageManifest;

/**
 * An image manifest fetched from a registry, resolved through an index if the reference named one.
 *
 * @param reference the reference pinned to {@code digest}
 * @param digest the digest of the manifest (not of an index that led to it)
 * @param manifest the parsed manifest
 * @param bytes the manifest exactly as stored; not copied, do not modify
 */
public record PulledImage(
    ImageReference reference, Digest digest, ImageManifest manifest, byte[] bytes) {}
