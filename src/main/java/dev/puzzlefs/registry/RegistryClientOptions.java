package dev.puzzlefs.registry;

import java.time.Duration;

/**
 * How a {@link RegistryClient} talks to its registry. Every setter returns this options object; the
 * defaults suit a registry on the internet: HTTPS with certificate verification, anonymous access,
 * 8 concurrent requests, 3 attempts within 2 minutes.
 */
public final class RegistryClientOptions {
  private boolean plainHttp;
  private Duration connectTimeout = Duration.ofSeconds(10);
  private Duration idleTimeout = Duration.ofSeconds(30);
  private Duration requestTimeout = Duration.ofSeconds(60);
  private int maxConcurrentRequests = 8;
  private int maxAttempts = 3;
  private Duration initialBackoff = Duration.ofMillis(200);
  private Duration maxBackoff = Duration.ofSeconds(5);
  private long maxBlobBytes = 512L << 20;
  private String userAgent = "puzzlefs-java";
  private Duration maxRetryTime = Duration.ofMinutes(2);
  private Duration refusedPatience = Duration.ofSeconds(5);
  private CredentialSource credentials = CredentialSource.NONE;
  private java.util.function.UnaryOperator<Runnable> warnings =
      java.util.function.UnaryOperator.identity();

  /** A copy of {@code other}. */
  public RegistryClientOptions copy() {
    RegistryClientOptions c = new RegistryClientOptions();
    c.plainHttp = plainHttp;
    c.connectTimeout = connectTimeout;
    c.idleTimeout = idleTimeout;
    c.requestTimeout = requestTimeout;
    c.maxConcurrentRequests = maxConcurrentRequests;
    c.maxAttempts = maxAttempts;
    c.initialBackoff = initialBackoff;
    c.maxBackoff = maxBackoff;
    c.maxBlobBytes = maxBlobBytes;
    c.userAgent = userAgent;
    c.maxRetryTime = maxRetryTime;
    c.refusedPatience = refusedPatience;
    c.credentials = credentials;
    c.warnings = warnings;
    return c;
  }

  /** True when the registry speaks plain HTTP; only ever set on explicit request. */
  public boolean plainHttp() {
    return plainHttp;
  }

  /** Speak plain HTTP instead of HTTPS (for a local or test registry). Default false. */
  public RegistryClientOptions plainHttp(boolean value) {
    this.plainHttp = value;
    return this;
  }

  /** How long a TCP (and TLS) connect may take. */
  public Duration connectTimeout() {
    return connectTimeout;
  }

  /** Sets how long a connect may take. Default 10 s. */
  public RegistryClientOptions connectTimeout(Duration value) {
    this.connectTimeout = positive(value, "connectTimeout");
    return this;
  }

  /** How long a connection may carry no bytes, mid-request or pooled, before it is closed. */
  public Duration idleTimeout() {
    return idleTimeout;
  }

  /** Sets the idle timeout. Default 30 s. */
  public RegistryClientOptions idleTimeout(Duration value) {
    this.idleTimeout = positive(value, "idleTimeout");
    return this;
  }

  /**
   * How long one attempt may take in total, from when it gets its turn under {@link
   * #maxConcurrentRequests()} to its last body byte. Time spent queued is not counted; callers that
   * need an overall deadline set one (the chunk cache does).
   */
  public Duration requestTimeout() {
    return requestTimeout;
  }

  /** Sets the per-attempt deadline. Default 60 s. */
  public RegistryClientOptions requestTimeout(Duration value) {
    this.requestTimeout = positive(value, "requestTimeout");
    return this;
  }

  /** How many requests may be in flight at once; also the connection pool size. */
  public int maxConcurrentRequests() {
    return maxConcurrentRequests;
  }

  /** Sets the bound on concurrent requests (and the pool size). Default 8. */
  public RegistryClientOptions maxConcurrentRequests(int value) {
    if (value < 1) {
      throw new IllegalArgumentException("maxConcurrentRequests must be at least 1, got " + value);
    }
    this.maxConcurrentRequests = value;
    return this;
  }

  /** How many times an operation is tried before its failure is reported. */
  public int maxAttempts() {
    return maxAttempts;
  }

  /** Sets the attempt bound for connection errors, timeouts, 5xx and 429. Default 3. */
  public RegistryClientOptions maxAttempts(int value) {
    if (value < 1) {
      throw new IllegalArgumentException("maxAttempts must be at least 1, got " + value);
    }
    this.maxAttempts = value;
    return this;
  }

  /**
   * How long an operation whose connections are refused (a registry restarting) keeps trying, even
   * past {@link #maxAttempts()}; never past {@link #maxRetryTime()}.
   */
  public Duration refusedPatience() {
    return refusedPatience;
  }

  /** Sets {@link #refusedPatience()}. Default 5 s; zero gives up after the attempts as usual. */
  public RegistryClientOptions refusedPatience(Duration value) {
    if (value == null || value.isNegative()) {
      throw new IllegalArgumentException("refusedPatience must be zero or positive, got " + value);
    }
    this.refusedPatience = value;
    return this;
  }

  /** The wait before the second attempt; it doubles for each later one. */
  public Duration initialBackoff() {
    return initialBackoff;
  }

  /** Sets the first retry delay. Default 200 ms. */
  public RegistryClientOptions initialBackoff(Duration value) {
    if (value == null || value.isNegative()) {
      throw new IllegalArgumentException("initialBackoff must be zero or positive, got " + value);
    }
    this.initialBackoff = value;
    return this;
  }

  /**
   * The longest wait between attempts that the client chooses itself. A longer {@code Retry-After}
   * from the registry is honoured as long as it fits in {@link #maxRetryTime()}.
   */
  public Duration maxBackoff() {
    return maxBackoff;
  }

  /** Sets the retry delay cap. Default 5 s. */
  public RegistryClientOptions maxBackoff(Duration value) {
    if (value == null || value.isNegative()) {
      throw new IllegalArgumentException("maxBackoff must be zero or positive, got " + value);
    }
    this.maxBackoff = value;
    return this;
  }

  /**
   * How long an operation may take in all, its attempts and the waits between them: no retry is
   * made that would end later, and the last attempt's deadline is shortened to fit.
   */
  public Duration maxRetryTime() {
    return maxRetryTime;
  }

  /** Sets the bound on an operation's total time. Default 2 minutes. */
  public RegistryClientOptions maxRetryTime(Duration value) {
    this.maxRetryTime = positive(value, "maxRetryTime");
    return this;
  }

  /** Where credentials come from; asked each time the client authenticates anew. */
  public CredentialSource credentials() {
    return credentials;
  }

  /** Sets the credential source. Default {@link CredentialSource#NONE}: anonymous only. */
  /**
   * Wraps each warning the client logs from its own threads (a retry): {@code wrap} gets the
   * logging call and returns what to run in its place, for a process serving many callers to log it
   * where the caller who made this client sees it. Default: the call itself.
   */
  public RegistryClientOptions warnings(java.util.function.UnaryOperator<Runnable> wrap) {
    this.warnings = java.util.Objects.requireNonNull(wrap, "wrap");
    return this;
  }

  /** See {@link #warnings(java.util.function.UnaryOperator)}. */
  public java.util.function.UnaryOperator<Runnable> warnings() {
    return warnings;
  }

  public RegistryClientOptions credentials(CredentialSource value) {
    this.credentials = java.util.Objects.requireNonNull(value, "credentials");
    return this;
  }

  /** The largest blob or manifest body accepted; a bigger one fails the operation. */
  public long maxBlobBytes() {
    return maxBlobBytes;
  }

  /** Sets the largest accepted body. Default 512 MiB; at most 2 GiB minus a little. */
  public RegistryClientOptions maxBlobBytes(long value) {
    if (value < 1 || value > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException("maxBlobBytes out of range: " + value);
    }
    this.maxBlobBytes = value;
    return this;
  }

  /** The User-Agent header sent with every request. */
  public String userAgent() {
    return userAgent;
  }

  /** Sets the User-Agent header. */
  public RegistryClientOptions userAgent(String value) {
    this.userAgent = value;
    return this;
  }

  private static Duration positive(Duration value, String name) {
    if (value == null || value.isZero() || value.isNegative()) {
      throw new IllegalArgumentException(name + " must be positive, got " + value);
    }
    return value;
  }
}
