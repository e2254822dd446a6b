package dev.puzzlefs.bench;

import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.testing.FakeImage;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Decoding (and encoding) the Cap'n Proto rootfs blob of a tree the size of Debian minbase: 7000
 * regular files in 140 directories, sizes 0..16 KiB, cut into 64 KiB chunks, so most files span one
 * or two chunks as in a real image.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class RootfsDecodeBenchmark {
  static final int DIRS = 140;
  static final int FILES_PER_DIR = 50;

  private Rootfs rootfs;
  private byte[] blob;

  @Setup
  public void setUp() {
    rootfs = minbaseSized().rootfs();
    blob = RootfsCodec.encode(rootfs);
  }

  /** A generated tree with about as many entries as the minbase tree. */
  static FakeImage minbaseSized() {
    Random random = new Random(3);
    FakeImage fake = new FakeImage(65536);
    for (int d = 0; d < DIRS; d++) {
      String dir = "/usr/share/d" + d;
      if (d == 0) {
        fake.dir("/usr");
        fake.dir("/usr/share");
      }
      fake.dir(dir);
      for (int f = 0; f < FILES_PER_DIR; f++) {
        byte[] content = new byte[random.nextInt(16384)];
        random.nextBytes(content);
        fake.file(dir + "/file-" + f + ".txt", content);
      }
    }
    return fake;
  }

  @Benchmark
  public Rootfs decode() throws FormatException {
    return RootfsCodec.decode(blob);
  }

  @Benchmark
  public byte[] encode() {
    return RootfsCodec.encode(rootfs);
  }
}
