package dev.puzzlefs.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The client of the request this thread answers. For {@code run} it starts the container's command
 * itself, so that the command has the client's standard input, output and error: the server writes
 * the command line to {@code exec} and {@code x} on {@code status}; the client reports on its FIFO
 * {@code events}, one line each: {@code started PID}, {@code signal INT} or {@code signal TERM}
 * (what the client got, to pass on), {@code exited STATUS}. A client that disappears (SIGKILL) gets
 * its command killed, and the run is taken down as after a failure. The other way round, a server
 * that dies during the run leaves its mounts to the client: the request's {@code run} says what
 * they are ({@link #leaveRemains}), and the client stops the command and takes them down.
 */
final class ServerClient implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ServerClient.class);
  static final ThreadLocal<ServerClient> CURRENT = new ThreadLocal<>();
  private static final long POLL_MILLIS = 200;

  private final Path req;
  private final FileChannel status;
  private final long pid;
  private final CompletableFuture<Long> started = new CompletableFuture<>();
  private final CompletableFuture<Integer> exited = new CompletableFuture<>();
  private final Set<ServerClient> runs;
  private final List<String> pendingSignals = new ArrayList<>();
  private java.util.function.Consumer<String> onSignal;
  private volatile boolean serverStopping;
  private volatile FileChannel events;

  ServerClient(Path req, FileChannel status, long pid, Set<ServerClient> runs) {
    this.req = req;
    this.status = status;
    this.pid = pid;
    this.runs = runs;
  }

  /** Starts reading the client's events: a signal may come while the image is still mounting. */
  void listen() {
    try {
      events =
          FileChannel.open(
              req.resolve("events"), StandardOpenOption.READ, StandardOpenOption.WRITE);
    } catch (IOException e) {
      log.debug("no events from the client of {}: {}", req, e.getMessage());
      return;
    }
    Thread reader = new Thread(this::readEvents, "puzzlefs-run-events");
    reader.setDaemon(true);
    reader.start();
  }

  /**
   * Writes to the request's {@code run} what the client must stop and take down itself should this
   * server die during the run: {@code remains} as NUL-terminated names and values (written to a
   * temporary file and renamed, so the client reads all or nothing).
   */
  void leaveRemains(Map<String, String> remains) throws IOException {
    ByteArrayOutputStream words = new ByteArrayOutputStream();
    remains.forEach(
        (name, value) -> {
          words.writeBytes(name.getBytes(StandardCharsets.UTF_8));
          words.write(0);
          words.writeBytes(value.getBytes(StandardCharsets.UTF_8));
          words.write(0);
        });
    Path tmp = req.resolve("run.tmp");
    Files.write(tmp, words.toByteArray());
    Files.move(tmp, req.resolve("run"), StandardCopyOption.ATOMIC_MOVE);
  }

  /** The client of the request this thread answers, or null outside the server. */
  static ServerClient current() {
    return CURRENT.get();
  }

  /**
   * Where the signals the client relays go from now on, those that came before included; the
   * server's own stop sends SIGTERM there too.
   */
  void onSignal(java.util.function.Consumer<String> handler) {
    List<String> before;
    synchronized (this) {
      onSignal = handler;
      before = new ArrayList<>(pendingSignals);
      pendingSignals.clear();
    }
    runs.add(this);
    before.forEach(this::signal);
  }

  /** Delivers {@code name} to the handler on a thread of its own (delivering may wait). */
  void signal(String name) {
    java.util.function.Consumer<String> handler;
    synchronized (this) {
      handler = onSignal;
      if (handler == null) {
        pendingSignals.add(name);
        return;
      }
    }
    Thread t = new Thread(() -> handler.accept(name), "puzzlefs-run-signal");
    t.setDaemon(true);
    t.start();
  }

  /** The server is stopping: passes SIGTERM on to the command, as the client's own would be. */
  void serverStopping() {
    serverStopping = true;
    signal("TERM");
  }

  /**
   * What the server tells the client once the run it stopped has ended, or null if it did not stop
   * it.
   */
  String stoppedMessage() {
    if (!serverStopping) {
      return null;
    }
    long server = ProcessHandle.current().pid();
    return started.isDone()
        ? "puzzlefs: the mount server (pid "
            + server
            + ") was stopped during this run; it passed SIGTERM on to the command and took down"
            + " its mounts"
        : "puzzlefs: the mount server (pid "
            + server
            + ") was stopped during this run, before the command started; it took down its"
            + " mounts";
  }

  private boolean clientAlive() {
    return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
  }

  /**
   * Has the client run {@code command}; returns once it started it, as a {@link Process} whose exit
   * the client reports. {@code runtime} kills the command if the client disappears.
   */
  Process exec(List<String> command, ContainerRuntime runtime) throws IOException {
    ByteArrayOutputStream words = new ByteArrayOutputStream();
    for (String w : command) {
      words.writeBytes(w.getBytes(StandardCharsets.UTF_8));
      words.write(0);
    }
    Files.write(req.resolve("exec"), words.toByteArray());
    if (events == null) {
      throw new IOException("the client of " + req + " has no events FIFO");
    }
    status.write(ByteBuffer.wrap("x\n".getBytes(StandardCharsets.US_ASCII)));
    long child;
    try {
      child = awaitStart();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while the client started the command", e);
    }
    FutureProcess process =
        new FutureProcess(child, exited, () -> ContainerRuntime.kill(child, "TERM"));
    Thread watcher = new Thread(() -> watch(process, runtime), "puzzlefs-run-client");
    watcher.setDaemon(true);
    watcher.start();
    return process;
  }

  private long awaitStart() throws IOException, InterruptedException {
    while (true) {
      try {
        return started.get(POLL_MILLIS, TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        if (exited.isDone()) {
          throw new IOException("the client could not start the command");
        }
        if (!clientAlive()) {
          throw new IOException("the client (pid " + pid + ") went away before the command ran");
        }
      } catch (ExecutionException e) {
        throw new IOException("the client could not start the command", e.getCause());
      }
    }
  }

  /** Kills the command when the client disappears without reporting its exit. */
  private void watch(FutureProcess process, ContainerRuntime runtime) {
    try {
      while (!exited.isDone()) {
        if (!clientAlive()) {
          log.warn("the client of {} (pid {}) went away; killing its command", req, pid);
          runtime.kill(process);
          ProcessHandle.of(process.pid())
              .ifPresent(
                  h -> {
                    if (!h.onExit().completeOnTimeout(h, 10, TimeUnit.SECONDS).join().isAlive()) {
                      return;
                    }
                    h.destroyForcibly();
                  });
          exited.complete(128 + 9);
          return;
        }
        Thread.sleep(POLL_MILLIS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void readEvents() {
    try {
      Server.readLines(events, this::event);
    } catch (IOException e) {
      // Closed when the request ends.
    }
  }

  private void event(String line) {
    String[] parts = line.split(" ", 2);
    try {
      switch (parts[0]) {
        case "started" -> started.complete(Long.parseLong(parts[1]));
        case "exited" -> exited.complete(Integer.parseInt(parts[1]));
        // Delivering waits while the command starts, which needs the "started" this
        // thread has yet to read: signal() hands it to a thread of its own.
        case "signal" -> signal(parts[1]);
        default -> log.warn("ignoring an unknown event from the client of {}: {}", req, line);
      }
    } catch (RuntimeException e) {
      log.warn("ignoring a malformed event from the client of {}: {}", req, line);
    }
  }

  @Override
  public void close() {
    runs.remove(this);
    FileChannel e = events;
    if (e != null) {
      try {
        e.close();
      } catch (IOException ignored) {
        // nothing left to read
      }
    }
  }
}
