package dev.puzzlefs.registry;

import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import java.io.IOException;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs {@link RegistryOperation}s for a {@link RegistryClient}: the one place that owns
 * authentication, retries, deadlines and turning failures into typed {@link RegistryException}s.
 *
 * <p>Each attempt waits for a slot under the concurrency bound and has its own deadline. A 401 or
 * 403 goes to the {@link RegistryAuthenticator}: a first challenge is answered, and a refused
 * header is replaced once, without counting as an attempt. Connection failures, timeouts, 5xx, 429
 * and failures the operation calls retryable (a corrupted body) are retried (unless the operation
 * takes no retries at all, as a pack range whose chunks also come as blobs) with jittered
 * exponential backoff, never sooner than a {@code Retry-After} asks, within {@link
 * RegistryClientOptions#maxAttempts()} attempts and {@link RegistryClientOptions#maxRetryTime()} in
 * all. Anything else (404, other 4xx, a body too large) fails at once: asking again would get the
 * same answer.
 */
final class OperationRunner {
  private static final Logger LOG = LoggerFactory.getLogger(OperationRunner.class);

  private final Vertx vertx;
  private final RegistryHttp http;
  private final RegistryClientOptions options;
  private final ConcurrencyLimiter limiter;
  private final RegistryAuthenticator authenticator;
  private final BooleanSupplier closed;
  private final LongSupplier nanoTime;
  private final Random random;

  /** Attempts repeated after a retryable failure. */
  final java.util.concurrent.atomic.LongAdder retries = new java.util.concurrent.atomic.LongAdder();

  /** Operations that failed for good. */
  final java.util.concurrent.atomic.LongAdder failures =
      new java.util.concurrent.atomic.LongAdder();

  OperationRunner(
      Vertx vertx,
      RegistryHttp http,
      RegistryClientOptions options,
      boolean plainHttp,
      String registry,
      BooleanSupplier closed) {
    this.vertx = vertx;
    this.http = http;
    this.options = options;
    this.limiter = new ConcurrencyLimiter(options.maxConcurrentRequests());
    this.closed = closed;
    this.nanoTime = System::nanoTime;
    this.random = new Random();
    this.authenticator =
        new RegistryAuthenticator(
            registry, plainHttp, options.credentials(), vertx, this::run, nanoTime);
  }

  /**
   * The least time a retry must have before the retry time limit: one started with less would be
   * cut short by it (on a loaded machine, even a local registry's answer takes a few milliseconds)
   * and fail as a time-out, hiding what the registry said to the attempts before it.
   */
  static final long MIN_ATTEMPT_MILLIS = 100;

  /** Runs {@code operation}; the future fails only with a RegistryException. */
  <T> Future<T> run(RegistryOperation<T> operation) {
    Run<T> run = new Run<>(operation);
    run.result
        .future()
        .onFailure(
            e -> {
              if (!(e instanceof ManifestNotFoundException && operation.notFoundIsAnAnswer())) {
                failures.increment();
              }
            });
    if (operation.scope() == null) {
      run.attempt(null, true);
    } else {
      authenticator
          .authorization(operation.scope())
          .onComplete(
              ar -> {
                if (ar.failed()) {
                  run.result.fail(asRegistryException(operation, ar.cause()));
                } else {
                  run.attempt(ar.result(), true);
                }
              });
    }
    return run.result.future();
  }

  /** One operation's progress through its attempts. */
  private final class Run<T> {
    final RegistryOperation<T> operation;
    final Promise<T> result = Promise.promise();
    final long startNanos = nanoTime.getAsLong();
    int attempts;
    boolean refreshed;

    Run(RegistryOperation<T> operation) {
      this.operation = operation;
    }

    /** Sends the request again with {@code authorization}; an auth retry is not an attempt. */
    void attempt(String authorization, boolean counts) {
      if (counts) {
        attempts++;
      }
      RegistryHttp h = http.forAttempt(authorization);
      long deadline = Math.max(1, Math.min(options.requestTimeout().toMillis(), remainingMillis()));
      limiter
          .run(() -> withDeadline(operation.attempt(h), deadline, h::abandon))
          .onComplete(ar -> handle(ar, authorization, h));
    }

    private void handle(AsyncResult<T> ar, String authorization, RegistryHttp h) {
      if (ar.succeeded()) {
        result.complete(ar.result());
        return;
      }
      Throwable cause = h.explain(ar.cause());
      if (closed.getAsBoolean()) {
        result.fail(
            new RegistryException(
                "could not " + operation.description() + ": the client was closed", cause));
        return;
      }
      if (operation.scope() != null && cause instanceof UnexpectedStatus status) {
        if (status.status() == 401 || status.status() == 403) {
          refused(status, authorization);
          return;
        }
      }
      // A refused connection is a registry that is down, often for a restart of a few seconds:
      // it is tried for as long as the patience allows, whatever the attempts.
      boolean patient =
          RegistryClient.refused(cause)
              && nanoTime.getAsLong() - startNanos < options.refusedPatience().toNanos();
      if (!operation.retries()
          || !retryable(operation, cause)
          || (attempts >= options.maxAttempts() && !patient)) {
        result.fail(translate(operation, cause, attemptsText()));
        return;
      }
      long wait = backoffMillis(attempts, cause);
      boolean stop = wait + MIN_ATTEMPT_MILLIS >= remainingMillis();
      if (attempts >= options.maxAttempts()) {
        // Past the attempts only for the patience: no retry that would start after it (a refused
        // connection fails at once, so a retry just before it still has time to tell).
        long patienceLeft =
            (options.refusedPatience().toNanos() - (nanoTime.getAsLong() - startNanos)) / 1_000_000;
        stop |= wait >= Math.max(0, patienceLeft);
      }
      if (stop) {
        result.fail(translate(operation, cause, attemptsText() + "; " + whyStop(cause, wait)));
        return;
      }
      String why = reason(cause);
      String attempt =
          (attempts + 1)
              + (attempts < options.maxAttempts()
                  ? " of " + options.maxAttempts()
                  : " while refused, for up to " + seconds(options.refusedPatience().toMillis()));
      options
          .warnings()
          .apply(
              () ->
                  LOG.warn(
                      "retrying {} in {} ms after {} ({})",
                      operation.description(),
                      wait,
                      why,
                      attempt))
          .run();
      retries.increment();
      vertx.setTimer(Math.max(1, wait), id -> attempt(authorization, true));
    }

    /** After a 401 or 403: authenticate, or replace a refused header once, else give up. */
    private void refused(UnexpectedStatus status, String sent) {
      if (sent != null && refreshed) {
        result.fail(denied(status, sent));
        return;
      }
      if (sent != null) {
        refreshed = true;
      }
      authenticator
          .authenticate(status.authenticate(), operation.scope(), sent)
          .onComplete(
              ar -> {
                if (ar.failed()) {
                  result.fail(asRegistryException(operation, ar.cause()));
                } else if (ar.result() == null) {
                  result.fail(denied(status, sent));
                } else {
                  LOG.debug(
                      "{} {} ({})",
                      sent == null ? "authenticating to" : "renewing authentication for",
                      operation.description(),
                      status.getMessage());
                  attempt(ar.result(), false);
                }
              });
    }

    private RegistryUnauthorizedException denied(UnexpectedStatus status, String sent) {
      String challenge = status.authenticate() == null ? "" : ", " + status.authenticate();
      String registry = http.registry();
      String hint;
      if (authenticator.credentialsFound()) {
        hint =
            "the credentials for " + registry + " from " + authenticator.source() + " were refused";
      } else if (sent != null) {
        hint =
            "anonymous access was refused; no credentials for "
                + registry
                + " in "
                + authenticator.source();
      } else {
        hint = "no credentials for " + registry + " in " + authenticator.source();
      }
      return new RegistryUnauthorizedException(
          "could not "
              + operation.description()
              + ": access denied ("
              + status.getMessage()
              + challenge
              + "); "
              + hint);
    }

    private String attemptsText() {
      return attempts + (attempts == 1 ? " attempt" : " attempts");
    }

    private long remainingMillis() {
      long elapsed = TimeUnit.NANOSECONDS.toMillis(nanoTime.getAsLong() - startNanos);
      return options.maxRetryTime().toMillis() - elapsed;
    }

    private String whyStop(Throwable cause, long wait) {
      long limit = options.maxRetryTime().toMillis();
      if (attempts >= options.maxAttempts() && remainingMillis() > wait + MIN_ATTEMPT_MILLIS) {
        return "refused for " + seconds(options.refusedPatience().toMillis()) + " and more";
      }
      if (cause instanceof UnexpectedStatus status
          && status.retryAfterMillis(System.currentTimeMillis()) >= wait) {
        return "the registry asked to wait "
            + seconds(wait)
            + ", beyond the retry time limit of "
            + seconds(limit);
      }
      return "the retry time limit of " + seconds(limit) + " is reached";
    }
  }

  /**
   * Fails the attempt when it has not completed within {@code millis}, and then abandons the
   * requests it streams ({@code abandon}).
   */
  private <T> Future<T> withDeadline(Future<T> attempt, long millis, Runnable abandon) {
    Promise<T> bounded = Promise.promise();
    long timer =
        vertx.setTimer(
            millis,
            id -> {
              if (bounded.tryFail(
                  new TimeoutException("no complete response within " + millis + " ms"))) {
                abandon.run();
              }
            });
    attempt.onComplete(
        ar -> {
          vertx.cancelTimer(timer);
          if (ar.succeeded()) {
            bounded.tryComplete(ar.result());
          } else {
            bounded.tryFail(ar.cause());
          }
        });
    return bounded.future();
  }

  private static boolean retryable(RegistryOperation<?> operation, Throwable cause) {
    if (cause instanceof UnexpectedStatus status) {
      return status.status() == 429 || status.status() >= 500;
    }
    if (cause instanceof RegistryException failure) {
      return operation.retryable(failure);
    }
    return cause instanceof IOException
        || cause instanceof TimeoutException
        || cause instanceof VertxException;
  }

  /**
   * Exponential backoff from {@link RegistryClientOptions#initialBackoff()}, capped at {@link
   * RegistryClientOptions#maxBackoff()}, with its upper half random (so clients that failed
   * together do not retry together), and never shorter than a Retry-After.
   */
  private long backoffMillis(int attempt, Throwable cause) {
    long initial = options.initialBackoff().toMillis();
    long max = options.maxBackoff().toMillis();
    long exponential = Math.min(max, initial << Math.min(attempt - 1, 20));
    long half = exponential / 2;
    long delay = exponential - half + (half > 0 ? random.nextLong(half + 1) : 0);
    if (cause instanceof UnexpectedStatus status) {
      delay = Math.max(delay, status.retryAfterMillis(System.currentTimeMillis()));
    }
    return delay;
  }

  private static RegistryException translate(
      RegistryOperation<?> operation, Throwable cause, String attempts) {
    String suffix = " (" + attempts + ")";
    if (cause instanceof BlobDigestMismatchException m) {
      return new BlobDigestMismatchException(m.getMessage() + suffix, m.expected(), m.actual());
    }
    if (cause instanceof DigestMismatchException m) {
      return new DigestMismatchException(m.getMessage() + suffix, m.expected(), m.actual());
    }
    if (cause instanceof RegistryException e) {
      return e;
    }
    String prefix = "could not " + operation.description() + ": ";
    if (cause instanceof UnexpectedStatus status) {
      if (status.status() == 404) {
        return operation.notFound(prefix + "not found (" + status.getMessage() + ")");
      }
      if (status.status() == 401 || status.status() == 403) {
        return new RegistryUnauthorizedException(
            prefix + "access denied (" + status.getMessage() + ")");
      }
      return new UnexpectedResponseException(
          prefix + status.getMessage() + suffix, status.status());
    }
    if (retryable(operation, cause)) {
      return new RegistryUnreachableException(prefix + reason(cause) + suffix, cause);
    }
    return new RegistryException(prefix + reason(cause), cause);
  }

  private static RegistryException asRegistryException(
      RegistryOperation<?> operation, Throwable cause) {
    if (cause instanceof RegistryException e) {
      return e;
    }
    return new RegistryException(
        "could not " + operation.description() + ": " + reason(cause), cause);
  }

  private static String seconds(long millis) {
    return millis % 1000 == 0 ? millis / 1000 + " s" : String.format("%.1f s", millis / 1000.0);
  }

  /** A short lower-case account of a transport failure, for messages. */
  static String reason(Throwable cause) {
    return RegistryClient.reason(cause);
  }
}
