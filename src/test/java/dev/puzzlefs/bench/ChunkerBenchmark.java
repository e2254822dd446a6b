package dev.puzzlefs.bench;

import dev.puzzlefs.format.Chunker;
import dev.puzzlefs.format.FastCdc;
import java.io.IOException;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/** FastCDC over 64 MiB of random bytes: the cut search alone, and through {@link Chunker}. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class ChunkerBenchmark {
  static final int SIZE = 64 << 20;

  private byte[] data;

  @Setup
  public void setUp() {
    data = new byte[SIZE];
    new Random(1).nextBytes(data);
  }

  /** Cuts the whole buffer with {@link FastCdc#cut}; returns the number of chunks. */
  @Benchmark
  public int fastCdcCut() {
    FastCdc cdc = FastCdc.PUZZLEFS;
    int chunks = 0;
    for (int off = 0; off < data.length; chunks++) {
      off += cdc.cut(data, off, data.length - off);
    }
    return chunks;
  }

  /** Streams the buffer through a {@link Chunker} in 128 KiB writes, as the builder does. */
  @Benchmark
  public long chunkerStream() throws IOException {
    long[] sum = new long[1];
    Chunker chunker = new Chunker(FastCdc.PUZZLEFS, (buf, off, len) -> sum[0] += len);
    for (int off = 0; off < data.length; off += 128 << 10) {
      chunker.write(data, off, Math.min(128 << 10, data.length - off));
    }
    chunker.finish();
    return sum[0];
  }
}
