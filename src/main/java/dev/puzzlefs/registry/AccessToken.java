package dev.puzzlefs.registry;

/**
 * A bearer token from a token server and how long it may be used, counted from when it was asked
 * for. {@link #toString()} hides the token.
 *
 * @param value the token, sent as {@code Authorization: Bearer <value>}
 * @param expiresInSeconds its lifetime as the server gave it ({@code expires_in}; 60 if absent)
 */
record AccessToken(String value, long expiresInSeconds) {
  /** The lifetime the token spec assumes when a server gives none. */
  static final long DEFAULT_EXPIRES_IN_SECONDS = 60;

  @Override
  public String toString() {
    return "token valid for " + expiresInSeconds + " s";
  }
}
