package dev.puzzlefs.registry;

import java.io.IOException;

/**
 * Where a {@link RegistryClient} finds credentials for a registry. It is asked again each time the
 * client authenticates anew (a first challenge, or a refresh after the registry rejected what it
 * had), so a changed password or a renewed login is picked up without a restart. Lookups may block
 * (reading files, running helper programs); the client calls them off the event loop.
 */
public interface CredentialSource {
  /** Anonymous access only. */
  CredentialSource NONE =
      new CredentialSource() {
        @Override
        public Credentials find(String registry) {
          return null;
        }

        @Override
        public String describe() {
          return "no credential source";
        }
      };

  /**
   * The credentials for {@code registry} ({@code HOST[:PORT]}), or null when there are none.
   *
   * @throws IOException when the source exists but cannot be read; the message must not contain any
   *     secret
   */
  Credentials find(String registry) throws IOException;

  /** Where the credentials come from, for messages: {@code the Docker config /root/x.json}. */
  String describe();
}
