package dev.puzzlefs.bench;

import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.testing.FakeImage;
import java.io.IOException;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * {@link Image#read} over an in-memory chunk source (no FUSE, no disk): one 32 MiB file read from
 * start to end in FUSE-sized (128 KiB) requests, with the chunks stored plain or as seekable zstd.
 * A fresh {@link Image} per iteration, so its recent-chunk memory starts empty.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class ReadPathBenchmark {
  static final int SIZE = 32 << 20;
  static final int REQUEST = 128 << 10;

  /** Whether the chunks are stored as seekable zstd. */
  @Param({"false", "true"})
  public boolean compressed;

  private FakeImage fake;
  private long ino;
  private Image image;
  private final byte[] dst = new byte[REQUEST];

  @Setup(Level.Trial)
  public void build() {
    byte[] content = new byte[SIZE];
    // Half random, half zeros: compressible enough that zstd frames are used.
    Random random = new Random(4);
    for (int at = 0; at < SIZE; at += 8192) {
      byte[] noise = new byte[4096];
      random.nextBytes(noise);
      System.arraycopy(noise, 0, content, at, noise.length);
    }
    fake = new FakeImage(65536);
    if (compressed) {
      fake.compressChunks();
    }
    ino = fake.file("/big", content);
    fake.blobs();
  }

  @Setup(Level.Iteration)
  public void open() throws FormatException {
    image = fake.open(fake.source(), Duration.ofSeconds(30));
  }

  @TearDown(Level.Iteration)
  public void close() {
    image.close();
  }

  /** Reads the whole file in 128 KiB requests; returns the bytes read. */
  @Benchmark
  public long sequentialRead() throws IOException {
    long total = 0;
    for (long off = 0; off < SIZE; off += REQUEST) {
      total += image.read(ino, off, dst, 0, REQUEST);
    }
    return total;
  }
}
