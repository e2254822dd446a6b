package dev.puzzlefs.registry;

import io.vertx.core.Future;

/**
 * One registry operation (check a blob, pull a manifest, ...). {@link RegistryClient} runs it,
 * possibly several times, and owns retries and error translation; an operation only sends its
 * requests and reads the answers.
 */
interface RegistryOperation<T> {
  /**
   * What the operation does, to follow "could not": {@code fetch blob sha256:.. from
   * host:port/repo}.
   */
  String description();

  /**
   * Makes one attempt. Fails with {@link UnexpectedStatus} for a status the operation does not
   * handle, with a {@link RegistryException} for a definite failure that must not be retried, and
   * with any other exception for a transport failure.
   */
  Future<T> attempt(RegistryHttp http);

  /** The exception to report when the registry answers 404. */
  RegistryException notFound(String message);

  /**
   * The access the operation needs, as a token scope ({@code repository:a/b:pull}); null for an
   * operation that must not be authenticated to the registry (fetching a token).
   */
  String scope();

  /**
   * Whether {@code failure}, a {@link RegistryException} of this operation's own, may go away when
   * asked again (a body that arrived corrupted); transport failures, 5xx and 429 always may.
   */
  default boolean retryable(RegistryException failure) {
    return false;
  }

  /**
   * Whether any failure of this operation is tried again at all. An operation whose caller has a
   * fallback (a range of a chunk pack, whose chunks also come as blobs) says no: its retries, each
   * as long as a request may take, would use up the time its caller has for the fallback.
   */
  default boolean retries() {
    return true;
  }

  /**
   * Whether a 404 is an answer rather than a failure (a look for something that is often not there,
   * such as an image's referrers): it is then not counted among the client's failures.
   */
  default boolean notFoundIsAnAnswer() {
    return false;
  }

  /** The scope for reading {@code repository}. */
  static String pullScope(String repository) {
    return "repository:" + repository + ":pull";
  }

  /** The scope for writing to (and reading) {@code repository}. */
  static String pushScope(String repository) {
    return "repository:" + repository + ":pull,push";
  }
}
