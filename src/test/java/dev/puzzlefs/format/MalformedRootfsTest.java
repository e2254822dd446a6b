package dev.puzzlefs.format;

import static dev.puzzlefs.format.CapnpWords.BYTE_ELEMENTS;
import static dev.puzzlefs.format.CapnpWords.INLINE_COMPOSITE;
import static dev.puzzlefs.format.CapnpWords.compositeTag;
import static dev.puzzlefs.format.CapnpWords.listPointer;
import static dev.puzzlefs.format.CapnpWords.structPointer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.capnp.Metadata;
import dev.puzzlefs.testing.Allocation;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.time.Duration;
import java.util.List;
import org.capnproto.MessageBuilder;
import org.capnproto.Serialize;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Rootfs blobs made by hand to be hostile at the wire level: lists and byte arrays that claim more
 * than the blob holds, pointers that alias, digests of the wrong length, foreign versions. Each is
 * refused with a {@link FormatException}, quickly, without allocating much.
 */
class MalformedRootfsTest {
  private static final Duration QUICKLY = Duration.ofSeconds(5);
  private static final long LITTLE_MEMORY = 16L << 20;
  private static final int MAX_LIST_ELEMENTS = (1 << 29) - 1;

  /** Decodes {@code blob}, expecting a refusal that is quick and allocates little. */
  private static FormatException refused(byte[] blob) {
    return assertTimeoutPreemptively(
        QUICKLY,
        () -> {
          long before = Allocation.ofCurrentThread();
          FormatException e = assertThrows(FormatException.class, () -> RootfsCodec.decode(blob));
          long allocated = Allocation.ofCurrentThread() - before;
          assertTrue(allocated < LITTLE_MEMORY, "allocated " + allocated + " bytes: " + e);
          assertTrue(e.getMessage().contains("rootfs"), e.getMessage());
          return e;
        });
  }

  /** A message whose root is a Rootfs (version 3) with {@code metadatas} at word 2. */
  private static CapnpWords rootfsHeader() {
    CapnpWords m = new CapnpWords();
    m.add(structPointer(0, 1, 1, 2));
    m.add(Rootfs.MANIFEST_VERSION);
    m.add(0); // metadatas, set by the caller
    m.add(0); // fsVerityData: null
    return m;
  }

  /**
   * One layer holding one inode, the root directory, with {@code entries} entries whose inos are 2,
   * 3, ... and whose name pointers are left null; returns the index of the first entry's words.
   */
  private static int rootWithEntries(CapnpWords m, int entries) {
    int layers = m.add(compositeTag(1, 0, 1));
    m.set(2, listPointer(2, layers, INLINE_COMPOSITE, 1));
    int inodesPointer = m.add(0);
    int inodesTag = m.add(compositeTag(1, 3, 2));
    m.set(inodesPointer, listPointer(inodesPointer, inodesTag, INLINE_COMPOSITE, 5));
    m.add(1); // ino 1: the root
    m.add((0755L << 16) | 3); // union tag 3 = dir, then the permissions
    m.add(0); // uid, gid
    int dirPointer = m.add(0);
    m.add(0); // additional: null
    int dir = m.add(0); // lookBelow false
    m.set(dirPointer, structPointer(dirPointer, dir, 1, 1));
    int entriesPointer = m.add(0);
    int entriesTag = m.add(compositeTag(entries, 1, 1));
    m.set(entriesPointer, listPointer(entriesPointer, entriesTag, INLINE_COMPOSITE, 2 * entries));
    int first = m.reserve(2 * entries);
    for (int i = 0; i < entries; i++) {
      m.set(first + 2 * i, 2 + i);
    }
    return first;
  }

  /**
   * Lists of empty structs cost no words, so a few words can claim any number of them. 2^29 - 1 is
   * the most a list pointer can say; the runtime's traversal limit catches that, and the decoder's
   * own count catches the millions that stay below it.
   */
  @ParameterizedTest
  @ValueSource(ints = {MAX_LIST_ELEMENTS, 4_000_000})
  void decode_layerListClaimingMillionsOfEmptyStructs_refusedQuickly(int count) {
    CapnpWords m = rootfsHeader();
    int tag = m.add(compositeTag(count, 0, 0));
    m.set(2, listPointer(2, tag, INLINE_COMPOSITE, 0));

    FormatException e = refused(m.message());

    assertTrue(
        e.getMessage().contains("more list elements than it can hold")
            || e.getMessage().contains("Read limit exceeded"),
        e.getMessage());
  }

  @Test
  void decode_layerListOfMillionsBelowTheTraversalLimit_refusedByTheElementCount() {
    CapnpWords m = rootfsHeader();
    int tag = m.add(compositeTag(4_000_000, 0, 0));
    m.set(2, listPointer(2, tag, INLINE_COMPOSITE, 0));

    FormatException e = refused(m.message());

    assertTrue(e.getMessage().contains("more list elements than it can hold"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(ints = {MAX_LIST_ELEMENTS, 4_000_000})
  void decode_layerListOfMillionsOfVoidElements_refusedQuickly(int count) {
    CapnpWords m = rootfsHeader();
    m.set(2, listPointer(2, 4, 0, count));
    m.add(0);

    refused(m.message());
  }

  @ParameterizedTest
  @ValueSource(ints = {MAX_LIST_ELEMENTS, 4_000_000})
  void decode_entryListClaimingMillionsOfEntries_refusedQuickly(int count) {
    CapnpWords m = rootfsHeader();
    int first = rootWithEntries(m, 1);
    // The entries' tag sits just before the first entry: make it claim empty structs.
    m.set(first - 1, compositeTag(count, 0, 0));
    m.set(first - 2, listPointer(first - 2, first - 1, INLINE_COMPOSITE, 0));

    refused(m.message());
  }

  @Test
  void decode_nameClaimingHalfAGigabyte_refusedQuickly() {
    CapnpWords m = rootfsHeader();
    int first = rootWithEntries(m, 1);
    int data = m.add(0x6161616161616161L);
    m.set(first + 1, listPointer(first + 1, data, BYTE_ELEMENTS, MAX_LIST_ELEMENTS));

    refused(m.message());
  }

  @Test
  void decode_namesAliasingOneLargeArray_refusedBeforeCopyingIt() {
    // 8192 entries whose names all point at the same 64 KiB: copied out, 512 MiB.
    int entries = 8192;
    int dataBytes = 65536;
    CapnpWords m = rootfsHeader();
    int first = rootWithEntries(m, entries);
    int data = m.reserve(dataBytes / 8);
    for (int i = 0; i < entries; i++) {
      int pointer = first + 2 * i + 1;
      m.set(pointer, listPointer(pointer, data, BYTE_ELEMENTS, dataBytes));
    }

    FormatException e = refused(m.message());

    assertTrue(e.getMessage().contains("more bytes of data than it holds"), e.getMessage());
  }

  @Test
  void decode_handMadeWords_decodeWhenWellFormed() throws FormatException {
    // The hand-made layout itself is right: with real names it decodes to the intended root.
    CapnpWords m = rootfsHeader();
    int first = rootWithEntries(m, 2);
    int a = m.add('a');
    int b = m.add('b');
    m.set(first + 1, listPointer(first + 1, a, BYTE_ELEMENTS, 1));
    m.set(first + 3, listPointer(first + 3, b, BYTE_ELEMENTS, 1));

    Rootfs rootfs = RootfsCodec.decode(m.message());

    Inode root = rootfs.layers().get(0).get(0);
    assertEquals(InodeKind.DIR, root.kind());
    assertEquals(0755, root.permissions());
    assertEquals(
        List.of(new DirEntry(2, new byte[] {'a'}), new DirEntry(3, new byte[] {'b'})),
        root.entries());
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 31, 33, 64})
  void decode_chunkDigestOfWrongLength_refused(int length) throws IOException {
    MessageBuilder message = new MessageBuilder();
    Metadata.Rootfs.Builder root = message.initRoot(Metadata.Rootfs.factory);
    root.setManifestVersion(3);
    Metadata.Inode.Builder inode = root.initMetadatas(1).get(0).initInodes(1).get(0);
    inode.setIno(7);
    Metadata.FileChunk.Builder chunk = inode.getMode().initFile(1).get(0);
    RootfsCodec.markFile(inode.getMode());
    chunk.initBlob().setDigest(new byte[length]);
    chunk.setLen(1);

    FormatException e = refused(serialize(message));

    assertTrue(e.getMessage().contains(length + " bytes, expected 32"), e.getMessage());
    assertTrue(e.getMessage().contains("ino 7"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 64})
  void decode_verityEntryOfWrongLength_refused(int length) throws IOException {
    for (boolean digestWrong : new boolean[] {true, false}) {
      MessageBuilder message = new MessageBuilder();
      Metadata.Rootfs.Builder root = message.initRoot(Metadata.Rootfs.factory);
      root.setManifestVersion(3);
      root.initMetadatas(0);
      Metadata.VerityData.Builder v = root.initFsVerityData(1).get(0);
      v.setDigest(new byte[digestWrong ? length : 32]);
      v.setVerity(new byte[digestWrong ? 32 : length]);

      FormatException e = refused(serialize(message));

      String what = digestWrong ? "fsVerityData[0] has " : "fsVerityData[0] verity has ";
      assertTrue(e.getMessage().contains(what + length + " bytes"), e.getMessage());
    }
  }

  @ParameterizedTest
  @ValueSource(longs = {0, 1, 2, 4, -1})
  void decode_manifestVersionOtherThan3_refusedNamingIt(long version) {
    byte[] blob = RootfsCodec.encode(new Rootfs(List.of(), List.of(), version));

    FormatException e = refused(blob);

    assertEquals(
        "unsupported rootfs manifestVersion "
            + Long.toUnsignedString(version)
            + "; this reader supports 3",
        e.getMessage());
  }

  @Test
  void decode_inoTwiceInALayer_refused() {
    Rootfs model =
        new Rootfs(
            List.of(List.of(Inode.whiteout(1), Inode.whiteout(2), Inode.whiteout(2))),
            List.of(),
            3);

    FormatException e = refused(RootfsCodec.encode(model));

    assertEquals("rootfs layer 0 holds ino 2 twice", e.getMessage());
  }

  private static byte[] serialize(MessageBuilder message) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Serialize.write(Channels.newChannel(out), message);
    return out.toByteArray();
  }
}
