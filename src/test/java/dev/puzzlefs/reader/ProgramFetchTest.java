package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.testing.FakeImage;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Whole-file fetches of a lazily fetched image ({@link Image#MAX_WHOLE_FILE_BYTES}) and the files a
 * program links ({@link ProgramFetch}), from a source that answers every chunk 20 ms late, so that
 * each first read of a file waits.
 */
class ProgramFetchTest {
  private static final int CHUNK = 4096;

  private static byte[] random(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  /** A source answering 20 ms late, recording each chunk asked for. */
  private static final class LateSource implements ChunkSource {
    final Map<Digest, byte[]> blobs;
    final boolean cheapRuns;
    final Set<Digest> asked = ConcurrentHashMap.newKeySet();
    final Executor later = CompletableFuture.delayedExecutor(20, TimeUnit.MILLISECONDS);

    LateSource(Map<Digest, byte[]> blobs, boolean cheapRuns) {
      this.blobs = blobs;
      this.cheapRuns = cheapRuns;
    }

    @Override
    public CompletableFuture<byte[]> fetch(Digest d) {
      asked.add(d);
      return CompletableFuture.supplyAsync(() -> blobs.get(d), later);
    }

    @Override
    public boolean fetchesRunsCheaply() {
      return cheapRuns;
    }

    /** Waits up to 5 s until every chunk in {@code wanted} has been asked for. */
    boolean awaitAsked(Set<Digest> wanted) throws InterruptedException {
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (!asked.containsAll(wanted) && System.nanoTime() < until) {
        Thread.sleep(5);
      }
      return asked.containsAll(wanted);
    }
  }

  private static Set<Digest> chunksOf(Image image, long ino) throws Exception {
    Set<Digest> out = new HashSet<>();
    for (FileChunk c : image.inode(ino).chunks()) {
      out.add(c.blob());
    }
    return out;
  }

  /** A tree with a program, its interpreter, a library it needs that needs another, and others. */
  private static final class Tree {
    final FakeImage fake = new FakeImage(CHUNK);
    final long prog;
    final long interpreter;
    final long libfoo;
    final long libbar;
    final long libdata;
    final long unrelated;
    final byte[] progBytes;

    Tree() {
      for (String d :
          List.of("/usr", "/usr/bin", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/opt", "/opt/l")) {
        fake.dir(d);
      }
      fake.symlink("/lib64", FakeImage.utf8("usr/lib"));
      fake.symlink("/lib", FakeImage.utf8("usr/lib"));
      progBytes =
          ElfFiles.build(
              true,
              ByteOrder.LITTLE_ENDIAN,
              ElfFiles.EM_X86_64,
              "/lib64/ld-linux-x86-64.so.2",
              List.of("libfoo.so.1"),
              "/opt/l",
              40 * CHUNK);
      prog = fake.file("/usr/bin/prog", progBytes);
      interpreter =
          fake.file("/usr/lib/ld-linux-x86-64.so.2", ElfFiles.x86_64(List.of(), 12 * CHUNK));
      libfoo =
          fake.file(
              "/usr/lib/x86_64-linux-gnu/libfoo.so.1",
              ElfFiles.x86_64(List.of("libbar.so.2", "libdata.so.3"), 15 * CHUNK));
      // libfoo has no run path of its own, so these are looked up in the usual directories.
      libbar =
          fake.file("/usr/lib/x86_64-linux-gnu/libbar.so.2", ElfFiles.x86_64(List.of(), 9 * CHUNK));
      // Named as a library, but not ELF: fetched whole all the same, and nothing followed.
      libdata = fake.file("/usr/lib/x86_64-linux-gnu/libdata.so.3", random(9 * CHUNK, 3));
      // A library of the same name in a directory nobody searches, and another in a searched one.
      fake.file("/opt/libbar.so.2", random(5 * CHUNK, 4));
      unrelated = fake.file("/usr/lib/x86_64-linux-gnu/libother.so.1", random(11 * CHUNK, 5));
    }
  }

  /**
   * A read that waits for an ELF header fetches the whole file; once its headers are read, the
   * interpreter and the libraries it needs (theirs too) are fetched whole as well: nothing else.
   * From a source that does not fetch runs cheaply, only what reads ask for.
   */
  @Test
  void read_elfHeaderThatHadToWait_fetchesTheProgramAndWhatItLinks() throws Exception {
    Tree t = new Tree();
    LateSource source = new LateSource(t.fake.blobs(), true);
    Image image = t.fake.open(source, Duration.ofSeconds(5));
    byte[] head = new byte[64];
    assertEquals(64, image.read(t.prog, 0, head, 0, 64));
    assertArrayEquals(java.util.Arrays.copyOf(t.progBytes, 64), head);

    Set<Digest> wanted = new HashSet<>();
    for (long ino : new long[] {t.prog, t.interpreter, t.libfoo, t.libbar, t.libdata}) {
      wanted.addAll(chunksOf(image, ino));
    }
    assertTrue(source.awaitAsked(wanted), "not all asked for: " + source.asked.size());
    Thread.sleep(100); // anything more would have been asked for by now
    Set<Digest> other = chunksOf(image, t.unrelated);
    other.removeAll(wanted);
    assertTrue(other.stream().noneMatch(source.asked::contains), "an unrelated library");
    assertEquals(wanted.size(), source.asked.size(), "chunks asked for");
    assertEquals(4L, image.stats().get("linkedFiles"));
    assertEquals(5L, image.stats().get("wholeFiles"));
    // The program's bytes are right, read at random as a loader maps them.
    byte[] all = new byte[t.progBytes.length];
    for (int at : new int[] {30 * CHUNK, 2 * CHUNK, 39 * CHUNK, 0}) {
      image.read(t.prog, at, all, at, Math.min(3 * CHUNK, all.length - at));
      assertArrayEquals(
          java.util.Arrays.copyOfRange(t.progBytes, at, Math.min(at + 3 * CHUNK, all.length)),
          java.util.Arrays.copyOfRange(all, at, Math.min(at + 3 * CHUNK, all.length)));
    }

    LateSource plain = new LateSource(t.fake.blobs(), false);
    Image local = t.fake.open(plain, Duration.ofSeconds(5));
    local.read(t.prog, 0, head, 0, 64);
    Thread.sleep(100);
    assertEquals(
        1 + Image.READAHEAD_CHUNKS, plain.asked.size(), "the header's chunk and the readahead");
    assertEquals(0L, local.stats().get("wholeFiles"));
  }

  /**
   * Linked files are fetched whole while they add up to at most {@link
   * ProgramFetch#MAX_LINKED_BYTES}: a program naming five libraries of 15 MiB gets four of them
   * whole, and of the fifth only what reading its headers needs.
   */
  @Test
  void linkedFiles_fetchedWholeWithinTheirBudget() throws Exception {
    int chunk = 1 << 20;
    FakeImage fake = new FakeImage(chunk);
    fake.dir("/lib");
    List<String> names = new ArrayList<>();
    List<Long> libs = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      names.add("libbig" + i + ".so");
      // Each names a library of its own, so that no two are alike (they would share chunks).
      libs.add(
          fake.file(
              "/lib/libbig" + i + ".so",
              ElfFiles.x86_64(List.of("libabsent" + i + ".so"), 15 * chunk)));
    }
    long prog = fake.file("/prog", ElfFiles.x86_64(names, 3 * chunk));
    LateSource source = new LateSource(fake.blobs(), true);
    Image image = fake.open(source, Duration.ofSeconds(5));
    image.read(prog, 0, new byte[64], 0, 64);
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    int whole = 0;
    int heads = 0;
    while (System.nanoTime() < until) {
      whole = 0;
      heads = 0;
      for (long lib : libs) {
        Set<Digest> all = chunksOf(image, lib);
        whole += source.asked.containsAll(all) ? 1 : 0;
        heads += source.asked.contains(image.inode(lib).chunks().get(0).blob()) ? 1 : 0;
      }
      if (whole == 4 && heads == 5) {
        break;
      }
      Thread.sleep(10);
    }
    Thread.sleep(100);
    whole = 0;
    for (long lib : libs) {
      whole += source.asked.containsAll(chunksOf(image, lib)) ? 1 : 0;
    }
    assertEquals(4, whole, "libraries fetched whole");
    assertEquals(5, heads, "libraries whose head was read");
    assertEquals(5L, image.stats().get("linkedFiles"));
  }

  /**
   * A file that is not ELF is fetched whole on its second read that waits (it is read at random),
   * not on its first; a file larger than {@link Image#MAX_WHOLE_FILE_BYTES} never is.
   */
  @Test
  void read_secondReadThatWaits_fetchesTheFileWhole_unlessItIsLarge() throws Exception {
    int chunk = 64 << 10; // reads further apart than a sequential read's slack
    FakeImage fake = new FakeImage(chunk);
    long small = fake.file("/small", random(30 * chunk, 1));
    int bigChunk = 1 << 20;
    FakeImage bigImage = new FakeImage(bigChunk);
    long big = bigImage.file("/big", random((int) Image.MAX_WHOLE_FILE_BYTES + bigChunk, 2));

    LateSource source = new LateSource(fake.blobs(), true);
    Image image = fake.open(source, Duration.ofSeconds(5));
    image.read(small, 20 * chunk, new byte[100], 0, 100);
    assertEquals(1, source.asked.size(), "a first read: its chunk");
    image.read(small, 5 * chunk, new byte[100], 0, 100);
    assertTrue(source.awaitAsked(chunksOf(image, small)), "the second: the whole file");
    assertEquals(1L, image.stats().get("wholeFiles"));

    LateSource bigSource = new LateSource(bigImage.blobs(), true);
    Image bigOne = bigImage.open(bigSource, Duration.ofSeconds(5));
    for (int i = 0; i < 3; i++) {
      bigOne.read(big, (long) (2 + 5 * i) * bigChunk, new byte[100], 0, 100);
    }
    Thread.sleep(50);
    assertEquals(3, bigSource.asked.size(), "a large file: only what its reads need");
  }

  /**
   * A command about to run has its program, found as execvp would in the directories given, and
   * what the program links fetched at once; a path that is not a regular file is skipped; nothing
   * from a source that does not fetch runs cheaply.
   */
  @Test
  void prefetchProgram_firstRegularFileAmongTheCandidates_withItsLinks() throws Exception {
    Tree t = new Tree();
    LateSource source = new LateSource(t.fake.blobs(), true);
    Image image = t.fake.open(source, Duration.ofSeconds(5));
    assertTrue(image.prefetchProgram(List.of("/usr/local/bin/prog", "/usr/bin", "/usr/bin/prog")));
    Set<Digest> wanted = new HashSet<>();
    for (long ino : new long[] {t.prog, t.interpreter, t.libfoo, t.libbar}) {
      wanted.addAll(chunksOf(image, ino));
    }
    assertTrue(source.awaitAsked(wanted), "not all asked for");
    assertFalse(image.prefetchProgram(List.of("/usr/bin/prog")), "once");
    assertFalse(image.prefetchProgram(List.of("/nowhere", "/usr")), "no regular file");

    LateSource plain = new LateSource(t.fake.blobs(), false);
    Image local = t.fake.open(plain, Duration.ofSeconds(5));
    assertFalse(local.prefetchProgram(List.of("/usr/bin/prog")));
    local.prefetchFiles(List.of("/usr/bin/prog"));
    Thread.sleep(50);
    assertTrue(plain.asked.isEmpty(), "asked for " + plain.asked.size());
  }

  /** A broken ELF file is fetched whole and read right; its links are skipped, nothing fails. */
  @Test
  void read_brokenElfHeaders_stillReadRight() throws Exception {
    FakeImage fake = new FakeImage(CHUNK);
    byte[] broken = random(20 * CHUNK, 9);
    broken[0] = 0x7f;
    broken[1] = 'E';
    broken[2] = 'L';
    broken[3] = 'F';
    long file = fake.file("/broken", broken);
    LateSource source = new LateSource(fake.blobs(), true);
    Image image = fake.open(source, Duration.ofSeconds(5));
    byte[] out = new byte[broken.length];
    for (int at = 0; at < out.length; at += 3000) {
      image.read(file, at, out, at, Math.min(3000, out.length - at));
    }
    assertArrayEquals(broken, out);
    assertEquals(0L, image.stats().get("linkedFiles"));
  }

  /**
   * Opening a Python module's compiled form starts fetching its source whole (times read as 0, so
   * Python reads the source next); anything else opened, a source too large, or a source that does
   * not fetch runs cheaply, fetches nothing.
   */
  @Test
  void opened_compiledPythonModule_fetchesItsSourceWhole() throws Exception {
    FakeImage fake = new FakeImage(CHUNK);
    fake.dir("/lib");
    fake.dir("/lib/__pycache__");
    long source = fake.file("/lib/mod.py", random(3 * CHUNK, 6));
    fake.file("/lib/__pycache__/mod.cpython-311.pyc", random(2 * CHUNK, 7));
    long other = fake.file("/lib/other.py", random(3 * CHUNK, 8));
    fake.file("/lib/__pycache__/other.cpython-311.opt-1.pyc", random(CHUNK, 9));
    long big = fake.file("/lib/big.py", random((int) Image.MAX_SOURCE_BYTES + CHUNK, 10));
    fake.file("/lib/__pycache__/big.cpython-311.pyc", random(CHUNK, 11));
    LateSource late = new LateSource(fake.blobs(), true);
    Image image = fake.open(late, Duration.ofSeconds(5));

    image.opened(FakeImage.utf8("/lib/__pycache__/mod.cpython-311.pyc"));
    assertTrue(late.awaitAsked(chunksOf(image, source)), "the source's chunks");
    assertEquals(chunksOf(image, source), late.asked);
    assertEquals(1L, image.stats().get("wholeFiles"));

    image.opened(FakeImage.utf8("/lib/__pycache__/other.cpython-311.opt-1.pyc"));
    assertTrue(late.awaitAsked(chunksOf(image, other)), "an optimised form's source");
    late.asked.clear();
    for (String path :
        List.of(
            "/lib/__pycache__/big.cpython-311.pyc", // its source is too large
            "/lib/__pycache__/absent.cpython-311.pyc", // no source
            "/lib/mod.pyc", // not in __pycache__
            "/lib/__pycache__/.pyc",
            "/lib/mod.py",
            "/__pycache__/x.pyc")) {
      image.opened(FakeImage.utf8(path));
    }
    Thread.sleep(100);
    assertTrue(late.asked.isEmpty(), "asked for " + late.asked.size() + " chunks");
    assertFalse(chunksOf(image, big).stream().anyMatch(late.asked::contains));

    LateSource plain = new LateSource(fake.blobs(), false);
    Image local = fake.open(plain, Duration.ofSeconds(5));
    local.opened(FakeImage.utf8("/lib/__pycache__/mod.cpython-311.pyc"));
    Thread.sleep(100);
    assertTrue(plain.asked.isEmpty(), "a source that does not fetch runs cheaply");
  }
}
