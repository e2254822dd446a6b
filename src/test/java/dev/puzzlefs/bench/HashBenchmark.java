package dev.puzzlefs.bench;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FsVerity;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The two digests the builder takes of every chunk: sha256 (its blob name, {@link Digest}) and the
 * fs-verity digest ({@link FsVerity}), over one chunk-sized buffer.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class HashBenchmark {
  /** Chunk sizes: the FastCDC minimum, average and maximum. */
  @Param({"16384", "65536", "262144"})
  public int size;

  private byte[] data;

  @Setup
  public void setUp() {
    data = new byte[size];
    new Random(2).nextBytes(data);
  }

  @Benchmark
  public Digest sha256() {
    return Digest.sha256(data);
  }

  @Benchmark
  public byte[] fsVerity() {
    return FsVerity.digest(data);
  }
}
