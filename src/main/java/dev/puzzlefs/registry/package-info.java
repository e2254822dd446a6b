/**
 * A client for OCI distribution registries: image references, one class per registry operation, one
 * {@link dev.puzzlefs.registry.RegistryClient} that runs them with retries and typed errors, and
 * the push and pull of whole images. Uses {@code format} and {@code oci} only.
 */
package dev.puzzlefs.registry;
