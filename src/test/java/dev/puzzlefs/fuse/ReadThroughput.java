package dev.puzzlefs.fuse;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.reader.ChunkSource;
import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.FuseTesting;
import dev.puzzlefs.testing.FuseTesting.Result;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * Not a test: measures {@code dd} throughput of one large file through a real mount. Run by hand:
 * {@code java -cp ... dev.puzzlefs.fuse.ReadThroughput [MiB] [chunkBytes] [verify]}; with {@code
 * verify}, every fetch hashes the chunk first, as a verifying source would.
 */
public final class ReadThroughput {
  private ReadThroughput() {}

  public static void main(String[] args) throws Exception {
    int mib = args.length > 0 ? Integer.parseInt(args[0]) : 200;
    int chunk = args.length > 1 ? Integer.parseInt(args[1]) : 65536;
    boolean verify = args.length > 2 && args[2].equals("verify");
    byte[] content = new byte[mib << 20];
    new Random(1).nextBytes(content);
    FakeImage fake = new FakeImage(chunk);
    fake.file("/big", content);
    Map<Digest, byte[]> blobs = fake.blobs();
    ChunkSource source =
        blob -> {
          byte[] bytes = blobs.get(blob);
          if (verify && !Digest.sha256(bytes).equals(blob)) {
            return CompletableFuture.failedFuture(new IOException("mismatch " + blob));
          }
          return CompletableFuture.completedFuture(bytes);
        };
    Path mnt = Files.createTempDirectory("puzzlefs-bench");
    try (Mount mount =
        Mounter.mount(
            fake.open(source, Duration.ofSeconds(30)), mnt, List.of(), Duration.ofSeconds(30))) {
      System.out.println("mounted on " + mount.mountpoint());
      for (String pass : List.of("first", "second")) {
        long start = System.nanoTime();
        Result dd = FuseTesting.run("dd", "if=" + mnt.resolve("big"), "of=/dev/null", "bs=1M");
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf(
            "%s read: %d MiB, chunk %d, verify %s: %.1f MB/s (%s)%n",
            pass,
            mib,
            chunk,
            verify,
            content.length / 1e6 / seconds,
            dd.stderr().lines().reduce((a, b) -> b).orElse(""));
      }
    } finally {
      FuseTesting.forceUnmount(mnt);
      Files.deleteIfExists(mnt);
    }
  }
}
