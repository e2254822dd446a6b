package dev.puzzlefs.reader;

import static dev.puzzlefs.testing.FakeImage.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.RootfsCodec;
import dev.puzzlefs.format.VerityData;
import dev.puzzlefs.format.Xattr;
import dev.puzzlefs.testing.Allocation;
import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.MapChunkSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged and hostile rootfs blobs, made from a real encoded image by seeded mutation (bit flips,
 * byte and word replacements, truncations, splices, model-level edits) and from random bytes.
 *
 * <p>Each case must either decode to a model that {@link Image#open} accepts and that then serves
 * every lookup, stat and read as a tree (no directory reached twice, every entry found by lookup,
 * reads failing only with {@link ChunkReadException}), or fail with a {@link FormatException}; in
 * time, without allocating more than a few megabytes. Some opened images are also extracted, and
 * nothing may appear beside the target.
 */
class RootfsFuzzTest {
  private static final long SEED = 0x5eed_f00dL;
  private static final int MUTATIONS = 6000;
  private static final Duration CASE_TIMEOUT = Duration.ofSeconds(10);
  private static final long CASE_ALLOCATION_LIMIT = 32L << 20;
  private static final int EXTRACT_EVERY = 25;
  private static final int READ_LIMIT = 1 << 16;

  private static Rootfs model;
  private static byte[] blob;
  private static MapChunkSource source;

  @TempDir Path tmp;
  private int opened;
  private int refused;
  private int extracted;

  /** A two-layer image with every inode kind, files across chunks, hard links and xattrs. */
  @BeforeAll
  static void realImage() {
    FakeImage fake = new FakeImage(48);
    long d = fake.dir("/dir");
    fake.dir("/dir/sub");
    fake.file("/dir/sub/deep", utf8("deep file contents spanning more than one chunk of data"));
    long f = fake.file("/file", utf8("x".repeat(150)));
    fake.file("/empty", new byte[0]);
    fake.hardlink("/dir/again", f);
    fake.symlink("/link", utf8("dir/sub/deep"));
    fake.special("/fifo", InodeKind.FIFO, 0, 0);
    fake.special("/chr", InodeKind.CHR, 1, 3);
    fake.xattr(d, "user.k", utf8("value"));
    fake.xattr(f, "security.capability", new byte[] {1, 2, 3});

    List<Inode> top = new ArrayList<>(fake.rootfs().layers().get(0));
    long gone = top.get(top.size() - 1).ino() + 1;
    top.add(Inode.whiteout(gone));
    List<Inode> bottom =
        List.of(
            new Inode(1, InodeKind.DIR, 0, 0, 0755, 0, 0, List.of(), null, null, null),
            new Inode(gone, InodeKind.SOCK, 0, 0, 0644, 0, 0, null, null, null, null));
    List<VerityData> verity = new ArrayList<>();
    fake.blobs().keySet().stream()
        .sorted()
        .forEach(b -> verity.add(new VerityData(b, Digest.sha256(b.bytes()).bytes())));
    model = new Rootfs(List.of(top, bottom), verity, Rootfs.MANIFEST_VERSION);
    blob = RootfsCodec.encode(model);
    source = fake.source();
  }

  @Test
  void realImage_opensAndServesEveryFile() throws Exception {
    assertEquals(Outcome.OPENED, run("the unmutated image", blob, true));
  }

  @Test
  void everyTruncation_refused() throws Exception {
    for (int len = 0; len < blob.length; len++) {
      byte[] cut = Arrays.copyOf(blob, len);
      assertEquals(Outcome.REFUSED, run("truncation to " + len + " bytes", cut, false));
    }
  }

  @Test
  void mutatedAndRandomBlobs_openAsATreeOrFailWithFormatException() throws Exception {
    Random random = new Random(SEED);
    long start = System.nanoTime();
    for (int i = 0; i < MUTATIONS; i++) {
      Mutation m = Mutation.values()[random.nextInt(Mutation.values().length)];
      byte[] b = m.apply(random);
      boolean extract = opened % EXTRACT_EVERY == 0;
      Outcome o = run("case " + i + " (" + m + ", seed " + SEED + ")", b, extract);
      if (o == Outcome.OPENED) {
        opened++;
      } else {
        refused++;
      }
    }
    long millis = (System.nanoTime() - start) / 1_000_000;
    System.out.printf(
        "rootfs fuzz: %d cases in %d ms: %d opened (%d extracted), %d refused%n",
        MUTATIONS, millis, opened, extracted, refused);
    // Both outcomes must be common, or the mutations are not reaching the checks behind decode.
    assertTrue(opened > MUTATIONS / 20, "only " + opened + " cases opened");
    assertTrue(refused > MUTATIONS / 4, "only " + refused + " cases refused");
  }

  enum Outcome {
    OPENED,
    REFUSED
  }

  private Outcome run(String what, byte[] b, boolean extract) throws Exception {
    return assertTimeoutPreemptively(
        CASE_TIMEOUT,
        () -> {
          long before = Allocation.ofCurrentThread();
          Outcome o;
          try {
            o = open(b, extract);
          } catch (FormatException e) {
            assertNotNull(e.getMessage(), what);
            o = Outcome.REFUSED;
          } catch (Throwable t) {
            fail(what + ": threw " + t, t);
            throw t;
          }
          long allocated = Allocation.ofCurrentThread() - before;
          assertTrue(allocated < CASE_ALLOCATION_LIMIT, what + ": allocated " + allocated);
          return o;
        },
        what);
  }

  private Outcome open(byte[] b, boolean extract) throws Exception {
    Rootfs decoded = RootfsCodec.decode(b);
    try (Image image = Image.open(decoded, source, Duration.ofSeconds(1))) {
      serveEverything(image);
      if (extract) {
        extractBesideNothing(image);
      }
    }
    return Outcome.OPENED;
  }

  /** Walks the tree as a mount would, checking that it is a tree and that everything answers. */
  private static void serveEverything(Image image) throws IOException {
    Set<Long> dirsSeen = new HashSet<>();
    Deque<Inode> dirs = new ArrayDeque<>();
    dirs.push(image.inode(Image.ROOT_INO));
    dirsSeen.add(Image.ROOT_INO);
    byte[] buffer = new byte[4096];
    while (!dirs.isEmpty()) {
      Inode dir = dirs.pop();
      assertTrue(image.nlink(dir.ino()) >= 2);
      for (DirEntry e : image.entries(dir.ino())) {
        Inode child = image.lookup(dir, e.name(), 0, e.name().length);
        assertEquals(e.ino(), child.ino(), "lookup finds the entry it lists");
        assertTrue(image.nlink(child.ino()) >= 1);
        long size = image.size(child.ino());
        assertTrue(size >= 0, "size " + size);
        switch (child.kind()) {
          case DIR -> {
            assertTrue(
                dirsSeen.add(child.ino()), "directory ino " + child.ino() + " reached twice");
            assertEquals(dir.ino(), image.parent(child.ino()));
            dirs.push(child);
          }
          case FILE -> readSome(image, child.ino(), size, buffer);
          case LNK -> assertEquals(child.symlinkTarget().length, size);
          default -> {}
        }
      }
    }
  }

  /** Reads the start and the end of a file; a read may fail only for its chunk. */
  private static void readSome(Image image, long ino, long size, byte[] buffer) {
    for (long offset : new long[] {0, Math.max(0, size - buffer.length), size, size + 1}) {
      long at = offset;
      while (at < Math.min(size, offset + READ_LIMIT)) {
        try {
          int n = image.read(ino, at, buffer, 0, buffer.length);
          assertTrue(n > 0 && n <= buffer.length, "read returned " + n);
          at += n;
        } catch (ChunkReadException expected) {
          break;
        } catch (IOException e) {
          throw new AssertionError("read of ino " + ino + " at " + at + " failed: " + e, e);
        }
      }
    }
  }

  /** Extracts into a fresh directory; afterwards only that directory may exist beside it. */
  private void extractBesideNothing(Image image) throws IOException {
    Path box = Files.createTempDirectory(tmp, "case");
    Path out = Files.createDirectory(box.resolve("out"));
    try {
      new Extractor(image, false).extractInto(out);
    } catch (ChunkReadException | FormatException e) {
      // a chunk the mutation broke, or a shape the extractor refuses
    } catch (IOException e) {
      if (!String.valueOf(e.getMessage()).startsWith("cannot ")) {
        throw new AssertionError("extraction failed unexpectedly: " + e, e);
      }
    }
    try (Stream<Path> beside = Files.list(box)) {
      assertEquals(List.of(out), beside.toList(), "nothing beside the target");
    }
    extracted++;
  }

  /** Ways to damage the real blob, or to replace it with noise. */
  enum Mutation {
    BIT_FLIPS {
      @Override
      byte[] apply(Random r) {
        byte[] b = blob.clone();
        for (int k = 1 + r.nextInt(8); k > 0; k--) {
          b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
        }
        return b;
      }
    },
    BYTE_REPLACEMENTS {
      @Override
      byte[] apply(Random r) {
        byte[] b = blob.clone();
        byte[] interesting = {0, 1, -1, 0x7f, (byte) 0x80, 0x20, 0x3f};
        for (int k = 1 + r.nextInt(8); k > 0; k--) {
          b[r.nextInt(b.length)] =
              r.nextBoolean() ? interesting[r.nextInt(interesting.length)] : (byte) r.nextInt();
        }
        return b;
      }
    },
    WORD_REPLACEMENT {
      @Override
      byte[] apply(Random r) {
        long[] interesting = {
          0,
          -1,
          Long.MIN_VALUE,
          Long.MAX_VALUE,
          1L << 31,
          // list pointers (to the next word) claiming 2^29 - 1 bytes, words or empty structs
          1 | (2L << 32) | (((1L << 29) - 1) << 35),
          1 | (5L << 32) | (((1L << 29) - 1) << 35),
          1 | (7L << 32),
          ((1L << 29) - 1) << 2,
          // a struct pointer far outside the segment, and a far pointer
          (0x0fffffffL << 2) | (1L << 32) | (1L << 48),
          2 | (0x0fffffffL << 3),
        };
        byte[] b = blob.clone();
        ByteBuffer words = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int word = 1 + r.nextInt(b.length / 8 - 1);
        long value =
            r.nextInt(4) == 0
                ? r.nextLong()
                : r.nextInt(3) == 0
                    ? words.getLong(8 * word) ^ (1L << r.nextInt(64))
                    : interesting[r.nextInt(interesting.length)];
        words.putLong(8 * word, value);
        return b;
      }
    },
    TRUNCATION {
      @Override
      byte[] apply(Random r) {
        return Arrays.copyOf(blob, r.nextInt(blob.length));
      }
    },
    SPLICE {
      @Override
      byte[] apply(Random r) {
        // A run of the blob copied over another place, as if sectors were misplaced.
        byte[] b = blob.clone();
        int len = 1 + r.nextInt(64);
        int from = r.nextInt(b.length - len);
        int to = r.nextInt(b.length - len);
        System.arraycopy(blob, from, b, to, len);
        return b;
      }
    },
    INSERTION_OR_DELETION {
      @Override
      byte[] apply(Random r) {
        int at = r.nextInt(blob.length);
        int len = 1 + r.nextInt(32);
        if (r.nextBoolean()) {
          byte[] b = new byte[blob.length + len];
          System.arraycopy(blob, 0, b, 0, at);
          System.arraycopy(blob, r.nextInt(blob.length - len), b, at, len);
          System.arraycopy(blob, at, b, at + len, blob.length - at);
          return b;
        }
        len = Math.min(len, blob.length - at);
        byte[] b = new byte[blob.length - len];
        System.arraycopy(blob, 0, b, 0, at);
        System.arraycopy(blob, at + len, b, at, blob.length - at - len);
        return b;
      }
    },
    RANDOM_BYTES {
      @Override
      byte[] apply(Random r) {
        byte[] b = new byte[r.nextInt(2048)];
        r.nextBytes(b);
        if (b.length >= 8 && r.nextBoolean()) {
          // A plausible one-segment table in front of the noise.
          ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 0).putInt(4, b.length / 8);
        }
        return b;
      }
    },
    MODEL_EDIT {
      @Override
      byte[] apply(Random r) {
        return RootfsCodec.encode(ModelEdits.apply(model, r));
      }
    };

    abstract byte[] apply(Random r);
  }

  /** Edits that keep the wire format valid but make the structure wrong (or, by chance, right). */
  static final class ModelEdits {
    private ModelEdits() {}

    static Rootfs apply(Rootfs rootfs, Random r) {
      List<List<Inode>> layers = new ArrayList<>();
      for (List<Inode> layer : rootfs.layers()) {
        layers.add(new ArrayList<>(layer));
      }
      long version = rootfs.manifestVersion();
      for (int k = 1 + r.nextInt(3); k > 0; k--) {
        List<Inode> layer = layers.get(r.nextInt(layers.size()));
        if (layer.isEmpty()) {
          continue;
        }
        int i = r.nextInt(layer.size());
        Inode n = layer.get(i);
        switch (r.nextInt(9)) {
          case 0 -> layer.set(i, withIno(n, someIno(r)));
          case 1 -> layer.remove(i);
          case 2 -> Collections.swap(layer, i, r.nextInt(layer.size()));
          case 3 ->
              layer.set(i, withKind(n, InodeKind.values()[r.nextInt(InodeKind.values().length)]));
          case 4 -> layer.set(i, withChunk(n, r));
          case 5 -> layer.set(i, withEntry(n, r, true));
          case 6 -> layer.set(i, withEntry(n, r, false));
          case 7 -> layer.set(i, withOddities(n, r));
          default -> version = r.nextInt(3) == 0 ? r.nextLong() : version;
        }
      }
      return new Rootfs(layers, rootfs.verity(), version);
    }

    private static long someIno(Random r) {
      long[] inos = {0, 1, 2, 3, 4, 5, 8, 12, 13, 99, -1, Long.MIN_VALUE};
      return r.nextInt(4) == 0 ? r.nextLong() : inos[r.nextInt(inos.length)];
    }

    private static byte[] someName(Random r) {
      String[] names = {"", ".", "..", "a/b", "dir", "file", "link", "zz", "\0", "x\0y"};
      int pick = r.nextInt(names.length + 2);
      if (pick == names.length) {
        return utf8("n".repeat(200 + r.nextInt(100)));
      }
      if (pick == names.length + 1) {
        byte[] b = new byte[1 + r.nextInt(8)];
        r.nextBytes(b);
        return b;
      }
      return utf8(names[pick]);
    }

    private static Inode copy(
        Inode n,
        long ino,
        InodeKind kind,
        List<DirEntry> entries,
        List<FileChunk> chunks,
        List<Xattr> xattrs,
        byte[] target) {
      return new Inode(
          ino,
          kind,
          n.uid(),
          n.gid(),
          n.permissions(),
          n.major(),
          n.minor(),
          entries,
          chunks,
          xattrs,
          target);
    }

    private static Inode withIno(Inode n, long ino) {
      return copy(n, ino, n.kind(), n.entries(), n.chunks(), n.xattrs(), n.symlinkTarget());
    }

    private static Inode withKind(Inode n, InodeKind kind) {
      List<DirEntry> entries = kind == InodeKind.DIR ? n.entries() : null;
      List<FileChunk> chunks = kind == InodeKind.FILE ? n.chunks() : null;
      byte[] target = kind == InodeKind.LNK ? n.symlinkTarget() : null;
      return copy(n, n.ino(), kind, entries, chunks, n.xattrs(), target);
    }

    private static Inode withChunk(Inode n, Random r) {
      if (n.kind() != InodeKind.FILE || n.chunks().isEmpty()) {
        return n;
      }
      long[] values = {
        0, 1, 47, 48, 49, 1L << 31, 1L << 62, Long.MAX_VALUE, -1, Long.MIN_VALUE, r.nextLong()
      };
      List<FileChunk> chunks = new ArrayList<>(n.chunks());
      int c = r.nextInt(chunks.size());
      FileChunk old = chunks.get(c);
      long v = values[r.nextInt(values.length)];
      FileChunk edited =
          switch (r.nextInt(4)) {
            case 0 -> new FileChunk(old.blob(), v, old.compressed(), old.len());
            case 1 -> new FileChunk(old.blob(), old.offset(), old.compressed(), v);
            case 2 -> new FileChunk(old.blob(), old.offset(), !old.compressed(), old.len());
            default ->
                new FileChunk(
                    Digest.sha256(new byte[] {(byte) r.nextInt()}),
                    old.offset(),
                    old.compressed(),
                    old.len());
          };
      chunks.set(c, edited);
      if (r.nextBoolean()) {
        chunks.add(edited);
      }
      return copy(n, n.ino(), n.kind(), null, chunks, n.xattrs(), n.symlinkTarget());
    }

    /** Adds an entry (or renames/re-points one) in a directory. */
    private static Inode withEntry(Inode n, Random r, boolean add) {
      if (n.kind() != InodeKind.DIR) {
        return n;
      }
      List<DirEntry> entries = new ArrayList<>(n.entries());
      if (add || entries.isEmpty()) {
        byte[] name = r.nextBoolean() ? someName(r) : entries.isEmpty() ? utf8("e") : null;
        if (name == null) {
          // The name of an existing entry: two entries with one name.
          name = entries.get(r.nextInt(entries.size())).name();
        }
        DirEntry e = new DirEntry(r.nextBoolean() ? n.ino() : someIno(r), name);
        entries.add(r.nextInt(entries.size() + 1), e);
      } else {
        int i = r.nextInt(entries.size());
        DirEntry old = entries.get(i);
        entries.set(
            i,
            r.nextBoolean()
                ? new DirEntry(someIno(r), old.name())
                : new DirEntry(old.ino(), someName(r)));
      }
      return copy(n, n.ino(), n.kind(), entries, null, n.xattrs(), n.symlinkTarget());
    }

    /** Symlink targets and xattr names no filesystem holds. */
    private static Inode withOddities(Inode n, Random r) {
      byte[][] targets = {null, new byte[0], {'a', 0}, utf8("/elsewhere")};
      List<Xattr> xattrs = new ArrayList<>(n.xattrs() == null ? List.of() : n.xattrs());
      if (r.nextBoolean()) {
        xattrs.add(new Xattr(r.nextBoolean() ? new byte[0] : someName(r), new byte[3]));
      }
      byte[] target =
          n.kind() == InodeKind.LNK ? targets[r.nextInt(targets.length)] : n.symlinkTarget();
      return copy(n, n.ino(), n.kind(), n.entries(), n.chunks(), xattrs, target);
    }
  }
}
