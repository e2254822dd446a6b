package dev.puzzlefs.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Reads that hang do not take the threads the others need (break-it pass 13: four blobs on storage
 * that stopped answering made every later read of the mount time out).
 */
class HangTolerantExecutorTest {
  private static final long STUCK = TimeUnit.MILLISECONDS.toNanos(100);

  private final HangTolerantExecutor io = new HangTolerantExecutor(2, 4, STUCK, "test-io");
  private final CountDownLatch storageAnswers = new CountDownLatch(1);

  @AfterEach
  void tearDown() {
    storageAnswers.countDown();
    io.shutdownNow();
  }

  private void hang(CountDownLatch started) {
    io.execute(
        () -> {
          started.countDown();
          try {
            storageAnswers.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        });
  }

  @Test
  @Timeout(20)
  void everyThreadHung_aNewReadStillRuns_andTheExtraThreadsEndAfterwards() throws Exception {
    CountDownLatch started = new CountDownLatch(2);
    hang(started);
    hang(started);
    assertTrue(started.await(5, TimeUnit.SECONDS));
    Thread.sleep(3 * STUCK / 1_000_000);

    CountDownLatch healthy = new CountDownLatch(1);
    io.execute(healthy::countDown);

    assertTrue(healthy.await(2, TimeUnit.SECONDS), "a healthy read waited behind hung ones");
    storageAnswers.countDown();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (io.poolSize() > 2 && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertEquals(2, io.poolSize(), "the extra threads ended once nothing hung");
  }

  @Test
  @Timeout(20)
  void moreHungReadsThanTheMostThreads_theRestQueue() throws Exception {
    CountDownLatch started = new CountDownLatch(4);
    for (int i = 0; i < 4; i++) {
      hang(started);
      Thread.sleep(2 * STUCK / 1_000_000); // each found hung before the next comes
    }
    assertTrue(started.await(5, TimeUnit.SECONDS), "up to the most threads, each hung one runs");

    CountDownLatch queued = new CountDownLatch(1);
    io.execute(queued::countDown);

    assertTrue(!queued.await(300, TimeUnit.MILLISECONDS), "no thread past the most");
    assertEquals(4, io.poolSize());
    storageAnswers.countDown();
    assertTrue(queued.await(5, TimeUnit.SECONDS));
  }
}
