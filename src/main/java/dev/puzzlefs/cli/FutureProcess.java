package dev.puzzlefs.cli;

import java.io.InputStream;
import java.io.OutputStream;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

/**
 * Something the mount server waits for as code elsewhere waits for a child process: a mount served
 * on one of its threads, or a command its client started. Its exit status is a future; it has no
 * streams of its own.
 */
final class FutureProcess extends Process {
  private final long pid;
  private final CompletableFuture<Integer> exit;
  private final Runnable destroy;

  /**
   * @param pid the process that does the work (this one, for a mount thread)
   * @param exit completed with the exit status
   * @param destroy what stands in for SIGTERM
   */
  FutureProcess(long pid, CompletableFuture<Integer> exit, Runnable destroy) {
    this.pid = pid;
    this.exit = exit;
    this.destroy = destroy;
  }

  @Override
  public OutputStream getOutputStream() {
    return OutputStream.nullOutputStream();
  }

  @Override
  public InputStream getInputStream() {
    return InputStream.nullInputStream();
  }

  @Override
  public InputStream getErrorStream() {
    return InputStream.nullInputStream();
  }

  @Override
  public int waitFor() throws InterruptedException {
    try {
      return exit.get();
    } catch (ExecutionException e) {
      return 1;
    }
  }

  @Override
  public boolean waitFor(long timeout, TimeUnit unit) throws InterruptedException {
    try {
      exit.get(timeout, unit);
      return true;
    } catch (ExecutionException e) {
      return true;
    } catch (TimeoutException e) {
      return false;
    }
  }

  @Override
  public int exitValue() {
    if (!exit.isDone()) {
      throw new IllegalThreadStateException("still running");
    }
    return exit.join();
  }

  @Override
  public void destroy() {
    destroy.run();
  }

  @Override
  public boolean isAlive() {
    return !exit.isDone();
  }

  @Override
  public long pid() {
    return pid;
  }

  @Override
  public Stream<ProcessHandle> children() {
    return ProcessHandle.of(pid).map(ProcessHandle::children).orElse(Stream.empty());
  }

  @Override
  public CompletableFuture<Process> onExit() {
    return exit.thenApply(status -> this);
  }
}
