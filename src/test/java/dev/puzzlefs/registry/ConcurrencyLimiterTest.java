package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ConcurrencyLimiterTest {
  @Test
  void run_moreTasksThanPermits_startsOnlyPermitsAtOnceInOrder() {
    ConcurrencyLimiter limiter = new ConcurrencyLimiter(2);
    List<Promise<Integer>> started = new ArrayList<>();
    List<Future<Integer>> results = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      results.add(
          limiter.run(
              () -> {
                Promise<Integer> p = Promise.promise();
                started.add(p);
                return p.future();
              }));
    }

    assertEquals(2, started.size());
    assertEquals(2, limiter.running());

    started.get(0).complete(0);
    assertEquals(3, started.size());
    assertEquals(0, results.get(0).result());

    for (int i = 1; i < 5; i++) {
      started.get(i).complete(i);
    }
    assertEquals(5, started.size());
    assertEquals(0, limiter.running());
    assertEquals(4, results.get(4).result());
  }

  @Test
  void run_longQueueOfTasksFailingAtOnce_doesNotOverflowTheStack() {
    ConcurrencyLimiter limiter = new ConcurrencyLimiter(1);
    Promise<Void> gate = Promise.promise();
    limiter.run(gate::future);
    AtomicInteger failed = new AtomicInteger();
    for (int i = 0; i < 100_000; i++) {
      limiter
          .run(() -> Future.<Void>failedFuture("refused"))
          .onFailure(e -> failed.incrementAndGet());
    }

    gate.complete();

    assertEquals(100_000, failed.get());
    assertEquals(0, limiter.running());
  }

  @Test
  void run_taskThrows_failsItsFutureAndFreesThePermit() {
    ConcurrencyLimiter limiter = new ConcurrencyLimiter(1);

    Future<Void> thrown =
        limiter.run(
            () -> {
              throw new IllegalStateException("boom");
            });

    assertTrue(thrown.failed());
    assertEquals("boom", thrown.cause().getMessage());
    assertEquals(0, limiter.running());
  }
}
