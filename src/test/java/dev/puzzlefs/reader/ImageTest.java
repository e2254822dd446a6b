package dev.puzzlefs.reader;

import static dev.puzzlefs.testing.FakeImage.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.FormatException;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Rootfs;
import dev.puzzlefs.format.SeekableZstd;
import dev.puzzlefs.testing.FakeImage;
import dev.puzzlefs.testing.MapChunkSource;
import dev.puzzlefs.testing.TextBytes;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ImageTest {
  private static byte[] random(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static Inode dir(long ino, DirEntry... entries) {
    List<DirEntry> sorted = new ArrayList<>(List.of(entries));
    Collections.sort(sorted);
    return new Inode(ino, InodeKind.DIR, 0, 0, 0755, 0, 0, sorted, null, null, null);
  }

  private static Inode emptyFile(long ino) {
    return new Inode(ino, InodeKind.FILE, 0, 0, 0644, 0, 0, null, List.of(), null, null);
  }

  private static Image open(Rootfs rootfs) throws FormatException {
    return Image.open(rootfs, blob -> new CompletableFuture<>(), Duration.ofSeconds(1));
  }

  private static byte[] readAll(Image image, long ino, int bufferSize) throws IOException {
    byte[] out = new byte[(int) image.size(ino)];
    int at = 0;
    while (true) {
      int n = image.read(ino, at, out, at, Math.min(bufferSize, out.length - at));
      if (n == 0) {
        return out;
      }
      at += n;
    }
  }

  @Test
  void open_layers_newestInodeWinsAndWhiteoutRemovesIno() throws Exception {
    List<Inode> top = List.of(dir(1, new DirEntry(2, utf8("a"))), Inode.whiteout(3));
    List<Inode> bottom =
        List.of(dir(1, new DirEntry(2, utf8("a")), new DirEntry(3, utf8("b"))), dir(2), dir(3));

    Image image = open(new Rootfs(List.of(top, bottom), List.of(), 3));

    assertEquals(1, image.entries(1).size());
    assertEquals(InodeKind.DIR, image.inode(2).kind());
    assertFalse(image.exists(3));
    assertThrows(NoSuchFileException.class, () -> image.inode(3));
    assertEquals(2, image.inodeCount());
  }

  @Test
  void open_entryNamesNoDirectoryMayHold_throwFormatException() {
    for (String bad : List.of("a/b", ".", "..", "")) {
      Inode root =
          new Inode(
              1,
              InodeKind.DIR,
              0,
              0,
              0755,
              0,
              0,
              List.of(new DirEntry(2, utf8(bad))),
              null,
              null,
              null);
      Rootfs rootfs = new Rootfs(List.of(List.of(root, emptyFile(2))), List.of(), 3);

      FormatException e = assertThrows(FormatException.class, () -> open(rootfs), bad);
      assertTrue(e.getMessage().contains("invalid entry name"), e.getMessage());
    }
  }

  @Test
  void open_noRootDirectory_throwsFormatException() {
    Rootfs rootfs = new Rootfs(List.of(List.of(emptyFile(1))), List.of(), 3);

    FormatException e = assertThrows(FormatException.class, () -> open(rootfs));
    assertTrue(e.getMessage().contains("root"), e.getMessage());
  }

  @Test
  void resolve_rawByteNames_matchByteForByte() throws Exception {
    FakeImage fake = new FakeImage(64);
    long dir = fake.dir("/d");
    byte[] invalid = {'/', 'd', '/', 'x', (byte) 0xff, 'y'};
    long bad = fake.file(invalid, utf8("bad"));
    long cafe = fake.file("/d/café", utf8("nfc"));
    long cafeNfd = fake.file("/d/cafe\u0301", utf8("nfd"));
    Image image = fake.open();

    assertEquals(dir, image.resolve(utf8("/d")).ino());
    assertEquals(dir, image.resolve(utf8("//d/")).ino());
    assertEquals(bad, image.resolve(invalid).ino());
    assertEquals(cafe, image.resolve(utf8("/d/café")).ino());
    assertEquals(cafeNfd, image.resolve(utf8("/d/cafe\u0301")).ino());
    assertEquals(Image.ROOT_INO, image.resolve(utf8("/")).ino());
    assertThrows(NoSuchFileException.class, () -> image.resolve(utf8("/d/x\uFFFDy")));
    assertThrows(NoSuchFileException.class, () -> image.resolve(utf8("/d/caf")));
    assertThrows(NotDirectoryException.class, () -> image.resolve(utf8("/d/café/x")));
  }

  @Test
  void lookup_namesAboveByte127_foundWithUnsignedOrder() throws Exception {
    FakeImage fake = new FakeImage(64);
    List<byte[]> names = new ArrayList<>();
    for (int b = 1; b < 256; b++) {
      if (b != '/' && b != '.') { // neither may be a whole name
        names.add(new byte[] {'/', (byte) b});
        fake.file(names.get(names.size() - 1), new byte[] {(byte) b});
      }
    }
    Image image = fake.open();

    for (byte[] name : names) {
      Inode found = image.resolve(name);
      byte[] one = new byte[1];
      image.read(found.ino(), 0, one, 0, 1);
      assertEquals(name[1], one[0]);
    }
  }

  @Test
  void nlink_directoriesAndHardLinks_countNamesInTree() throws Exception {
    FakeImage fake = new FakeImage(64);
    long a = fake.dir("/a");
    fake.dir("/a/b");
    fake.dir("/a/c");
    long file = fake.file("/a/f", utf8("x"));
    fake.hardlink("/g", file);
    fake.hardlink("/a/b/h", file);
    long lone = fake.file("/lone", utf8("y"));
    Image image = fake.open();

    assertEquals(3, image.nlink(Image.ROOT_INO));
    assertEquals(4, image.nlink(a));
    assertEquals(3, image.nlink(file));
    assertEquals(1, image.nlink(lone));
  }

  @Test
  void read_lastChunkSharedWithNextFile_readsOnlyOwnBytes() throws Exception {
    FakeImage fake = new FakeImage(100);
    byte[] first = random(150, 1);
    byte[] second = random(80, 2);
    long one = fake.file("/one", first);
    long two = fake.file("/two", second);
    Image image = fake.open();
    byte[] buf = new byte[300];

    assertEquals(1, image.read(one, 149, buf, 0, 10));
    assertEquals(first[149], buf[0]);
    assertEquals(0, image.read(one, 150, buf, 0, 10));
    assertEquals(0, image.read(one, 10_000, buf, 0, 10));
    assertArrayEquals(first, readAll(image, one, 300));
    assertArrayEquals(second, readAll(image, two, 7));
    assertEquals(2, image.inode(two).chunks().size());
    assertEquals(50, image.inode(two).chunks().get(0).offset());
  }

  @Test
  void size_symlink_isTargetLength() throws Exception {
    FakeImage fake = new FakeImage(100);
    fake.file("/f", random(10, 12));
    long link = fake.symlink("/l", utf8("some/target"));
    Image image = fake.open();

    assertEquals(11, image.size(link));
    assertEquals(10, image.totalBytes());
  }

  @Test
  void read_emptyFile_returnsZero() throws Exception {
    FakeImage fake = new FakeImage(100);
    fake.file("/a", random(10, 3));
    long empty = fake.file("/empty", new byte[0]);
    Image image = fake.open();

    assertEquals(0, image.size(empty));
    assertEquals(0, image.read(empty, 0, new byte[10], 0, 10));
  }

  @Test
  void read_fileSpanningThreeChunks_anyOffsetAndSizeMatches() throws Exception {
    FakeImage fake = new FakeImage(1000);
    fake.file("/pad", random(333, 4));
    byte[] content = random(2500, 5);
    long big = fake.file("/big", content);
    Image image = fake.open();
    assertEquals(3, image.inode(big).chunks().size());

    Random random = new Random(6);
    for (int i = 0; i < 500; i++) {
      int offset = random.nextInt(2600);
      int size = random.nextInt(1500);
      byte[] buf = new byte[size + 3];
      int n = image.read(big, offset, buf, 3, size);
      int expected = Math.max(0, Math.min(size, content.length - offset));
      assertEquals(expected, n, "offset " + offset + " size " + size);
      if (n > 0) {
        assertArrayEquals(
            Arrays.copyOfRange(content, offset, offset + n), Arrays.copyOfRange(buf, 3, 3 + n));
      }
    }
  }

  @Test
  void read_compressedChunksSpanningFrames_anyOffsetAndSizeMatches() throws Exception {
    FakeImage fake = new FakeImage(10_000).compressChunks();
    fake.file("/pad", random(4100, 4));
    byte[] content = TextBytes.of(25_000, 5);
    long big = fake.file("/big", content);
    Image image = fake.open();
    assertEquals(3, image.inode(big).chunks().size());
    assertTrue(image.inode(big).chunks().stream().allMatch(FileChunk::compressed));

    assertArrayEquals(content, readAll(image, big, 4096));
    Random random = new Random(6);
    for (int i = 0; i < 500; i++) {
      int offset = random.nextInt(26_000);
      int size = random.nextInt(12_000);
      byte[] buf = new byte[size + 3];
      int n = image.read(big, offset, buf, 3, size);
      int expected = Math.max(0, Math.min(size, content.length - offset));
      assertEquals(expected, n, "offset " + offset + " size " + size);
      if (n > 0) {
        assertArrayEquals(
            Arrays.copyOfRange(content, offset, offset + n),
            Arrays.copyOfRange(buf, 3, 3 + n),
            "offset " + offset + " size " + size);
      }
    }
  }

  private static Image oneFile(FileChunk chunk, Map<Digest, byte[]> blobs) throws FormatException {
    Inode file = new Inode(2, InodeKind.FILE, 0, 0, 0644, 0, 0, null, List.of(chunk), null, null);
    Rootfs rootfs =
        new Rootfs(List.of(List.of(dir(1, new DirEntry(2, utf8("z"))), file)), List.of(), 3);
    return Image.open(rootfs, new MapChunkSource(blobs), Duration.ofSeconds(5));
  }

  @Test
  void read_compressedFlagOnRawBlob_throwsNamingChunkAndProblem() throws Exception {
    byte[] raw = utf8("these bytes are not seekable zstd at all");
    Digest blob = Digest.sha256(raw);
    Image image = oneFile(new FileChunk(blob, 0, true, 5), Map.of(blob, raw));

    ChunkReadException e =
        assertThrows(ChunkReadException.class, () -> image.read(2, 0, new byte[5], 0, 5));
    assertTrue(e.getMessage().contains(blob.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("seekable magic"), e.getMessage());
    assertEquals(2, e.ino());
  }

  @Test
  void read_compressedChunkShorterThanTheFileSays_throwsNamingBothLengths() throws Exception {
    byte[] stored = SeekableZstd.compress(random(5000, 9));
    Digest blob = Digest.sha256(stored);
    Image image = oneFile(new FileChunk(blob, 4000, true, 1001), Map.of(blob, stored));

    assertEquals(1000, image.read(2, 0, new byte[1000], 0, 1000));
    ChunkReadException e =
        assertThrows(ChunkReadException.class, () -> image.read(2, 990, new byte[11], 0, 11));
    assertTrue(e.getMessage().contains("holds 5000 bytes"), e.getMessage());
    assertTrue(e.getMessage().contains("up to 5001"), e.getMessage());
  }

  @Test
  void read_failingSource_throwsNamingChunkFileAndCause() throws Exception {
    FakeImage fake = new FakeImage(100);
    long file = fake.file("/f", random(50, 7));
    Digest blob = fake.rootfs().layers().get(0).get(1).chunks().get(0).blob();
    Image image =
        fake.open(
            b -> CompletableFuture.failedFuture(new IOException("disk on fire")),
            Duration.ofSeconds(5));

    ChunkReadException e =
        assertThrows(ChunkReadException.class, () -> image.read(file, 0, new byte[50], 0, 50));
    assertTrue(e.getMessage().contains(blob.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("ino " + file), e.getMessage());
    assertTrue(e.getMessage().contains("disk on fire"), e.getMessage());
  }

  @Test
  void read_sourceNeverCompletes_failsAfterDeadline() throws Exception {
    FakeImage fake = new FakeImage(100);
    long file = fake.file("/f", random(250, 8));
    Image image = fake.open(b -> new CompletableFuture<>(), Duration.ofMillis(300));

    long start = System.nanoTime();
    ChunkReadException e =
        assertThrows(ChunkReadException.class, () -> image.read(file, 0, new byte[250], 0, 250));
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertTrue(e.getMessage().contains("timed out"), e.getMessage());
    assertTrue(millis >= 290 && millis < 2000, "took " + millis + " ms");

    // The kernel's immediate second try of the same bytes fails at once, not after another wait.
    start = System.nanoTime();
    e = assertThrows(ChunkReadException.class, () -> image.read(file, 0, new byte[50], 0, 50));
    millis = (System.nanoTime() - start) / 1_000_000;
    assertTrue(e.getMessage().contains("timed out again"), e.getMessage());
    assertTrue(millis < 250, "took " + millis + " ms");
    assertEquals(2L, image.stats().get("readTimeouts"), "each read that gave up is counted");
  }

  @Test
  void read_sourceDeadlineBeforeTheReads_theRetryFailsAtOnceToo() throws Exception {
    // The cache's own fetch deadline (as long as the read's) may fire first; the read that gets
    // it must count as timed out, or the kernel's retry waits a second full deadline.
    FakeImage fake = new FakeImage(100);
    long file = fake.file("/f", random(50, 10));
    Image image =
        fake.open(
            b ->
                CompletableFuture.supplyAsync(
                    () -> {
                      throw new java.util.concurrent.CompletionException(
                          new ChunkTimeoutException("could not fetch chunk " + b + " in time", b));
                    },
                    CompletableFuture.delayedExecutor(400, TimeUnit.MILLISECONDS)),
            Duration.ofSeconds(30));

    ChunkReadException e =
        assertThrows(ChunkReadException.class, () -> image.read(file, 0, new byte[50], 0, 50));
    assertTrue(e.getMessage().contains("in time"), e.getMessage());

    long start = System.nanoTime();
    e = assertThrows(ChunkReadException.class, () -> image.read(file, 0, new byte[50], 0, 50));
    long millis = (System.nanoTime() - start) / 1_000_000;
    // Either "timed out again", or the same failure still held for the chunk: at once, both.
    assertTrue(
        e.getMessage().contains("timed out again") || e.getMessage().contains("in time"),
        e.getMessage());
    assertTrue(millis < 350, "took " + millis + " ms");
    assertEquals(2L, image.stats().get("readTimeouts"), "each read that gave up is counted");
  }

  @Test
  void read_failedFetch_isRetriedOnNextRead() throws Exception {
    FakeImage fake = new FakeImage(100);
    byte[] content = random(50, 9);
    long file = fake.file("/f", content);
    Map<Digest, byte[]> blobs = fake.blobs();
    AtomicInteger calls = new AtomicInteger();
    ChunkSource flaky =
        b ->
            calls.incrementAndGet() == 1
                ? CompletableFuture.failedFuture(new IOException("first try fails"))
                : CompletableFuture.completedFuture(blobs.get(b));
    Image image = fake.open(flaky, Duration.ofSeconds(5));

    assertThrows(ChunkReadException.class, () -> image.read(file, 0, new byte[50], 0, 50));
    byte[] buf = new byte[50];
    assertEquals(50, image.read(file, 0, buf, 0, 50));
    assertArrayEquals(content, buf);
  }

  @Test
  void read_chunkShorterThanFileNeeds_throws() throws Exception {
    byte[] stored = utf8("tiny");
    Digest blob = Digest.sha256(stored);
    Inode file =
        new Inode(
            2,
            InodeKind.FILE,
            0,
            0,
            0644,
            0,
            0,
            null,
            List.of(new FileChunk(blob, 2, false, 10)),
            null,
            null);
    Image image =
        Image.open(
            new Rootfs(List.of(List.of(dir(1, new DirEntry(2, utf8("f"))), file)), List.of(), 3),
            b -> CompletableFuture.completedFuture(stored),
            Duration.ofSeconds(1));

    ChunkReadException e =
        assertThrows(ChunkReadException.class, () -> image.read(2, 0, new byte[10], 0, 10));
    assertTrue(e.getMessage().contains(blob.toString()), e.getMessage());
  }

  @Test
  void read_sequentialReads_prefetchNextChunks() throws Exception {
    FakeImage fake = new FakeImage(100_000);
    long file = fake.file("/f", random(2_000_000, 10));
    List<Digest> chunks =
        fake.rootfs().layers().get(0).get(1).chunks().stream().map(FileChunk::blob).toList();
    List<Digest> requested = Collections.synchronizedList(new ArrayList<>());
    Map<Digest, byte[]> blobs = fake.blobs();
    Image image =
        fake.open(
            b -> {
              requested.add(b);
              return CompletableFuture.completedFuture(blobs.get(b));
            },
            Duration.ofSeconds(5));

    image.read(file, 1_000_000, new byte[50], 0, 50);
    assertEquals(List.of(chunks.get(10)), requested, "far from the last read: no readahead");
    image.read(file, 1_000_050, new byte[100_000], 0, 100_000);

    List<Digest> expected = new ArrayList<>(chunks.subList(10, 12));
    expected.addAll(chunks.subList(12, 12 + Image.READAHEAD_CHUNKS));
    assertEquals(expected, requested, "the next chunks after the read's last one");
    image.read(file, 0, new byte[10], 0, 10);
    assertEquals(chunks.get(0), requested.get(requested.size() - 1), "a jump back: no readahead");
  }

  /**
   * A stalled read that walks a file to its end (tar) fetches the chunks that follow in the data
   * stream, the next files'; a jump to a file's end (a loader mapping a library) does not. Only the
   * file's last chunk is slow, so each read stalls exactly there.
   */
  @Test
  void read_stalledWalkToTheEnd_fetchesTheNextFiles_aJumpDoesNot() throws Exception {
    FakeImage fake = new FakeImage(100_000);
    long a = fake.file("/a", random(2_000_000, 12));
    long b = fake.file("/b", random(1_000_000, 13));
    Map<Digest, byte[]> blobs = fake.blobs();
    List<Digest> ofA =
        fake.rootfs().layers().get(0).get(1).chunks().stream().map(FileChunk::blob).toList();
    java.util.Set<Digest> onlyB =
        new java.util.HashSet<>(
            fake.rootfs().layers().get(0).get(2).chunks().stream().map(FileChunk::blob).toList());
    assertEquals(b, fake.rootfs().layers().get(0).get(2).ino());
    onlyB.removeAll(ofA);
    Digest slow = ofA.get(ofA.size() - 1);

    List<Digest> jumped = Collections.synchronizedList(new ArrayList<>());
    Image jumping = fake.open(slowAt(slow, blobs, jumped), Duration.ofSeconds(5));
    jumping.read(a, 1_950_000, new byte[50_000], 0, 50_000);
    assertTrue(jumped.contains(slow), "the jump read the last chunk: " + jumped);
    assertTrue(jumped.stream().noneMatch(onlyB::contains), "a jump: " + jumped);

    List<Digest> walked = Collections.synchronizedList(new ArrayList<>());
    Image walking = fake.open(slowAt(slow, blobs, walked), Duration.ofSeconds(5));
    walking.read(a, 0, new byte[2_000_000], 0, 2_000_000);
    assertTrue(walked.stream().anyMatch(onlyB::contains), "a walk: " + walked);
  }

  /**
   * A walk of many small files from a slow source (tar of a tree from a registry) fetches further
   * ahead in the data stream as it keeps stalling on chunks already asked for: past the first
   * window of {@link Image#STREAM_AHEAD_CHUNKS}, and never past {@link
   * Image#MAX_STREAM_AHEAD_CHUNKS}; every byte read is still right.
   */
  @Test
  void read_walkThatKeepsStalling_widensTheStreamWindow() throws Exception {
    int furthest = walk(120, false, i -> true).furthest();
    assertTrue(
        furthest > Image.STREAM_AHEAD_CHUNKS, "fetched at most " + furthest + " files ahead");
    assertTrue(furthest <= Image.MAX_STREAM_AHEAD_CHUNKS, "fetched " + furthest + " files ahead");
  }

  /**
   * From a source that fetches runs cheaply the window grows past {@link
   * Image#MAX_STREAM_AHEAD_CHUNKS} up to {@link Image#MAX_STREAM_AHEAD_RUN_CHUNKS}; a reader that
   * reaches a window's middle has the next one asked for, so the walk may be asked up to two
   * windows ahead, never more.
   */
  @Test
  void read_walkFromASourceThatFetchesRunsCheaply_widensTheStreamWindowFurther() throws Exception {
    int furthest = walk(400, true, i -> true).furthest();
    assertTrue(
        furthest > Image.MAX_STREAM_AHEAD_CHUNKS, "fetched at most " + furthest + " files ahead");
    assertTrue(
        furthest <= 2 * Image.MAX_STREAM_AHEAD_RUN_CHUNKS, "fetched " + furthest + " files ahead");
  }

  /**
   * A walk from a source that fetches runs cheaply asks for the next window when it reaches the
   * middle of the last one, so it does not run off the end of every window, and no chunk is fetched
   * twice. From a source that does not fetch runs cheaply, a window is still asked for only after a
   * stall.
   */
  @Test
  void read_walkFromASourceThatFetchesRunsCheaply_asksForTheNextWindowBeforeTheLastEnds()
      throws Exception {
    // Only the first file is slow: its stall starts a window of 8, and from then on every file is
    // there at once, so no later read stalls to start another window.
    Walk cheap = walk(300, true, i -> i == 0);
    assertEquals(1, cheap.unasked(), "files reached before any fetch asked for them");
    assertEquals(1, cheap.mostFetchesOfOneChunk(), "a chunk was fetched twice");

    Walk plain = walk(300, false, i -> i == 0);
    assertEquals(300 - 8, plain.unasked(), "without cheap runs, the walk stops after one window");
  }

  /**
   * What a walk did: how many files ahead of the one being read the source was asked for at most,
   * how many files it reached before any fetch had asked for them, and the most times one chunk was
   * fetched.
   */
  private record Walk(int furthest, int unasked, int mostFetchesOfOneChunk) {}

  /**
   * Reads {@code files} one-chunk files in stream order from a source (fetching runs cheaply or
   * not) that answers for the files {@code late} picks 20 ms late, for the others at once.
   */
  private static Walk walk(int files, boolean cheapRuns, java.util.function.IntPredicate late)
      throws Exception {
    FakeImage fake = new FakeImage(3_000); // files of one chunk each, in stream order
    long[] inos = new long[files];
    byte[][] contents = new byte[files][];
    for (int i = 0; i < files; i++) {
      contents[i] = random(3_000, 100 + i);
      inos[i] = fake.file(String.format("/f%04d", i), contents[i]);
    }
    Map<Digest, byte[]> blobs = fake.blobs();
    Map<Digest, Integer> fileOf = new java.util.HashMap<>();
    Image plain = fake.open();
    for (int i = 0; i < files; i++) {
      fileOf.put(plain.inode(inos[i]).chunks().get(0).blob(), i);
    }
    java.util.concurrent.atomic.AtomicInteger reading =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger furthest =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.Executor later =
        CompletableFuture.delayedExecutor(20, java.util.concurrent.TimeUnit.MILLISECONDS);
    Map<Digest, Integer> fetches = new java.util.concurrent.ConcurrentHashMap<>();
    AtomicInteger unasked = new AtomicInteger();
    ChunkSource slow =
        new ChunkSource() {
          @Override
          public CompletableFuture<byte[]> fetch(Digest d) {
            int ahead = fileOf.get(d) - reading.get();
            furthest.accumulateAndGet(ahead, Math::max);
            if (ahead == 0 && fetches.putIfAbsent(d, 0) == null) {
              unasked.incrementAndGet();
            }
            fetches.merge(d, 1, Integer::sum);
            return late.test(fileOf.get(d))
                ? CompletableFuture.supplyAsync(() -> blobs.get(d), later)
                : CompletableFuture.completedFuture(blobs.get(d));
          }

          @Override
          public boolean fetchesRunsCheaply() {
            return cheapRuns;
          }
        };
    Image image = fake.open(slow, Duration.ofSeconds(5));

    for (int i = 0; i < files; i++) {
      reading.set(i);
      byte[] buf = new byte[3_000];
      assertEquals(3_000, image.read(inos[i], 0, buf, 0, buf.length));
      assertArrayEquals(contents[i], buf, "file " + i);
    }
    return new Walk(
        furthest.get(),
        unasked.get(),
        fetches.values().stream().mapToInt(Integer::intValue).max().orElse(0));
  }

  /** A chunk source that records what it is asked for and answers {@code slow} 50 ms late. */
  private static ChunkSource slowAt(Digest slow, Map<Digest, byte[]> blobs, List<Digest> asked) {
    java.util.concurrent.Executor later =
        CompletableFuture.delayedExecutor(50, java.util.concurrent.TimeUnit.MILLISECONDS);
    return d -> {
      asked.add(d);
      return d.equals(slow)
          ? CompletableFuture.supplyAsync(() -> blobs.get(d), later)
          : CompletableFuture.completedFuture(blobs.get(d));
    };
  }

  /** A process that exited, or is a zombie, is gone; a running one is not. */
  @Test
  void gone_tellsRunningFromExitedAndZombieProcesses() throws Exception {
    // sh starts a short sleep, then becomes a long one that never reaps it: a zombie.
    Process parent = new ProcessBuilder("sh", "-c", "sleep 0.3 & exec sleep 30").start();
    try {
      long until = System.nanoTime() + 5_000_000_000L;
      java.util.Optional<ProcessHandle> child = java.util.Optional.empty();
      while (child.isEmpty() && System.nanoTime() < until) {
        child = parent.toHandle().children().findFirst();
      }
      long zombie = child.orElseThrow().pid();
      while (!Waits.gone(zombie) && System.nanoTime() < until) {
        Thread.sleep(10);
      }
      assertTrue(Waits.gone(zombie), "a zombie");
      assertFalse(Waits.gone(parent.pid()), "running");
    } finally {
      parent.destroyForcibly().waitFor();
    }
    assertTrue(Waits.gone(parent.pid()), "exited and reaped");
  }

  @Test
  void read_randomReads_doNotPrefetch() throws Exception {
    FakeImage fake = new FakeImage(100_000);
    long file = fake.file("/f", random(10_000_000, 11));
    MapChunkSourceCounter counter = new MapChunkSourceCounter(fake.blobs());
    Image image = fake.open(counter, Duration.ofSeconds(5));

    image.read(file, 5_000_000, new byte[10], 0, 10);
    image.read(file, 3_000_000, new byte[10], 0, 10);
    image.read(file, 8_000_000, new byte[10], 0, 10);

    assertEquals(3, counter.calls.get());
  }

  private static final class MapChunkSourceCounter implements ChunkSource {
    final Map<Digest, byte[]> blobs;
    final AtomicInteger calls = new AtomicInteger();

    MapChunkSourceCounter(Map<Digest, byte[]> blobs) {
      this.blobs = blobs;
    }

    @Override
    public CompletableFuture<byte[]> fetch(Digest blob) {
      calls.incrementAndGet();
      return CompletableFuture.completedFuture(blobs.get(blob));
    }
  }
}
