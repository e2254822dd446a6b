package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ServerOutputTest {
  private static void writeOn(String threadName, OutputStream out, String text) throws Exception {
    Thread t =
        new Thread(
            () -> {
              try {
                out.write(text.getBytes(StandardCharsets.UTF_8));
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            },
            threadName);
    t.start();
    t.join();
  }

  @Test
  void sharedVertxThreads_startedByAMount_writeToTheServersLogNotTheMounts() throws Exception {
    ByteArrayOutputStream server = new ByteArrayOutputStream();
    ByteArrayOutputStream mountOut = new ByteArrayOutputStream();
    ByteArrayOutputStream mountErr = new ByteArrayOutputStream();
    ServerOutput err = new ServerOutput(server, true);
    ServerOutput.attach(ServerOutput.Sink.of(mountOut, mountErr));
    java.util.function.UnaryOperator<Runnable> mountsWarnings;
    try {
      mountsWarnings = ServerOutput.toCallerOfThisThread();
      // Threads started here inherit the mount's sink, as the mount's FUSE threads do.
      writeOn("puzzlefs-fuse-1", err, "mount's own\n");
      // The server's one Vert.x instance serves every mount, whichever started its threads.
      writeOn("vert.x-eventloop-thread-0", err, "another mount's retry\n");
      err.write("on the mount thread\n".getBytes(StandardCharsets.UTF_8));
    } finally {
      ServerOutput.detach();
    }
    writeOn("after", err, "after the mount\n");
    // A warning the mount's registry client logs on a shared thread goes to the mount's log.
    Thread shared =
        new Thread(
            mountsWarnings.apply(
                () -> {
                  try {
                    err.write("its retry\n".getBytes(StandardCharsets.UTF_8));
                  } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                }),
            "vert.x-eventloop-thread-1");
    shared.start();
    shared.join();
    writeOn("vert.x-eventloop-thread-1", err, "then unscoped again\n");

    assertEquals(
        "mount's own\non the mount thread\nits retry\n", mountErr.toString(StandardCharsets.UTF_8));
    assertEquals(
        "another mount's retry\nafter the mount\nthen unscoped again\n",
        server.toString(StandardCharsets.UTF_8));
    assertEquals("", mountOut.toString(StandardCharsets.UTF_8));
  }
}
