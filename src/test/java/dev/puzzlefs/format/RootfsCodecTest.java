package dev.puzzlefs.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.puzzlefs.format.capnp.Metadata;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.capnproto.MessageBuilder;
import org.capnproto.Serialize;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

class RootfsCodecTest {
  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static Digest digest(int seed) {
    return Digest.sha256(new byte[] {(byte) seed});
  }

  static Inode inode(long ino, InodeKind kind, int uid, int gid, int permissions) {
    return new Inode(ino, kind, uid, gid, permissions, 0, 0, null, null, null, null);
  }

  /** A two-layer image that uses every inode kind and every optional field. */
  static Rootfs sample() {
    byte[] oddName = {(byte) 0xff, (byte) 0xfe, 'x', (byte) 0x80};
    List<Inode> top =
        List.of(
            new Inode(
                1,
                InodeKind.DIR,
                0,
                0,
                0755,
                0,
                0,
                List.of(
                    new DirEntry(2, utf8("bin")),
                    new DirEntry(3, utf8("empty")),
                    new DirEntry(4, utf8("link")),
                    new DirEntry(9, utf8("link-hard")),
                    new DirEntry(5, oddName)),
                null,
                List.of(new Xattr(utf8("user.dir"), new byte[0])),
                null),
            new Inode(
                2,
                InodeKind.FILE,
                65536,
                (int) 4294967294L,
                04755,
                0,
                0,
                null,
                List.of(
                    new FileChunk(digest(1), 0, false, 262144),
                    new FileChunk(digest(2), 17, true, 5),
                    new FileChunk(digest(3), 1L << 40, false, 1)),
                List.of(
                    new Xattr(utf8("security.capability"), new byte[] {1, 0, 0, 2, (byte) 0xff}),
                    new Xattr(utf8("user.\u00e9"), utf8("v"))),
                null),
            new Inode(3, InodeKind.FILE, 1000, 1000, 0644, 0, 0, null, List.of(), null, null),
            new Inode(
                4,
                InodeKind.LNK,
                -1,
                0,
                0777,
                0,
                0,
                null,
                null,
                List.of(new Xattr(utf8("trusted.t"), utf8("x"))),
                new byte[] {'.', '.', '/', (byte) 0xc3}),
            new Inode(5, InodeKind.CHR, 0, 5, 0620, 136, 1L << 33, null, null, null, null),
            new Inode(6, InodeKind.BLK, 0, 6, 0660, 259, 0xfffffL, null, null, null, null),
            inode(7, InodeKind.FIFO, 1, 2, 0600),
            inode(8, InodeKind.SOCK, 3, 4, 0777),
            Inode.whiteout(10),
            inode(11, InodeKind.UNKNOWN, 0, 0, 0xffff),
            new Inode(12, InodeKind.LNK, 0, 0, 0777, 0, 0, null, null, null, new byte[0]));
    List<Inode> bottom =
        List.of(
            new Inode(
                1,
                InodeKind.DIR,
                0,
                0,
                0700,
                0,
                0,
                List.of(new DirEntry(9, utf8("old"))),
                null,
                null,
                null),
            new Inode(
                9,
                InodeKind.FILE,
                0,
                0,
                0400,
                0,
                0,
                null,
                List.of(new FileChunk(digest(1), 100, false, 42)),
                null,
                null),
            inode(Long.MAX_VALUE, InodeKind.FIFO, 0, 0, 0));
    List<VerityData> verity = new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      verity.add(new VerityData(digest(i), FsVerity.digest(new byte[] {(byte) i})));
    }
    verity.sort((a, b) -> a.blob().compareTo(b.blob()));
    return new Rootfs(List.of(top, bottom), verity, Rootfs.MANIFEST_VERSION);
  }

  @Test
  void decode_roundTripsEveryInodeKind() throws FormatException {
    Rootfs model = sample();

    Rootfs back = RootfsCodec.decode(RootfsCodec.encode(model));

    assertEquals(model, back);
    Inode file = back.layers().get(0).get(1);
    assertEquals(65536, file.uid());
    assertEquals(4294967294L, Integer.toUnsignedLong(file.gid()));
    assertEquals(04755, file.permissions());
    assertEquals(262150, file.size());
    assertArrayEquals(
        new byte[] {(byte) 0xff, (byte) 0xfe, 'x', (byte) 0x80},
        back.layers().get(0).get(0).entries().get(4).name());
    assertEquals(0xffff, back.layers().get(0).get(9).permissions());
    assertNull(back.layers().get(0).get(2).xattrs(), "no additional, no xattrs");
    assertEquals(List.of(), back.layers().get(0).get(2).chunks());
    assertArrayEquals(new byte[0], back.layers().get(0).get(10).symlinkTarget());
    assertEquals(List.of(), back.layers().get(0).get(10).xattrs());
  }

  @Test
  void decode_truncatedOrGarbled_saysSoWithoutJavaClassNames() {
    byte[] blob = RootfsCodec.encode(sample());
    byte[] garbled = blob.clone();
    for (int i = 8; i < garbled.length; i += 3) {
      garbled[i] = (byte) 0xFF;
    }
    for (byte[] bad :
        List.of(
            java.util.Arrays.copyOf(blob, blob.length / 2),
            java.util.Arrays.copyOf(blob, 12),
            garbled)) {
      FormatException e = assertThrows(FormatException.class, () -> RootfsCodec.decode(bad));
      assertTrue(
          e.getMessage().startsWith("rootfs blob of " + bad.length + " bytes is"), e.getMessage());
      assertFalse(e.getMessage().contains("java."), e.getMessage());
      assertFalse(e.getMessage().contains("Exception"), e.getMessage());
    }
  }

  @Test
  void encode_isDeterministic() {
    assertArrayEquals(RootfsCodec.encode(sample()), RootfsCodec.encode(sample()));
  }

  @Test
  void encode_writesOneSegmentInStreamFraming() {
    byte[] blob = RootfsCodec.encode(sample());
    ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);

    assertEquals(0, b.getInt(0), "segment count minus one");
    assertEquals(blob.length - 8, 8L * b.getInt(4), "the one segment fills the rest");
  }

  @Test
  void decode_emptyImage() throws FormatException {
    Rootfs empty = new Rootfs(List.of(), List.of(), 3);

    assertEquals(empty, RootfsCodec.decode(RootfsCodec.encode(empty)));
  }

  @Test
  void decode_truncatedBlobThrowsFormatException() {
    byte[] blob = RootfsCodec.encode(sample());
    for (int len = 0; len < blob.length; len++) {
      byte[] cut = Arrays.copyOf(blob, len);

      FormatException e =
          assertThrows(FormatException.class, () -> RootfsCodec.decode(cut), "length " + len);
      assertTrue(e.getMessage().contains("rootfs"), e.getMessage());
    }
  }

  @Test
  void decode_garbageThrowsFormatException() {
    Random random = new Random(42);
    byte[] valid = RootfsCodec.encode(sample());
    List<byte[]> garbage = new ArrayList<>();
    garbage.add(new byte[] {1, 2, 3});
    garbage.add(new byte[64]);
    byte[] ones = new byte[64];
    Arrays.fill(ones, (byte) 0xff);
    garbage.add(ones);
    garbage.add(utf8("{\"this is\": \"json, not capnp\", \"padding\": \"..............\"}"));
    for (int i = 0; i < 200; i++) {
      byte[] b = new byte[8 + random.nextInt(400)];
      random.nextBytes(b);
      garbage.add(b);
    }
    for (int i = 0; i < 300; i++) {
      // A valid segment table in front of random words: the pointers are what goes wrong.
      byte[] b = valid.clone();
      for (int k = 8; k < b.length; k++) {
        b[k] = (byte) random.nextInt();
      }
      garbage.add(b);
    }

    for (byte[] b : garbage) {
      // Random bytes can by chance form a message with no errors; it must then be a version 3
      // rootfs, which random bits essentially never are, so every case throws.
      FormatException e = assertThrows(FormatException.class, () -> RootfsCodec.decode(b));
      assertNotNull(e.getMessage());
    }
  }

  @Test
  void decode_flippedBytesNeverEscapeAsRuntimeException() {
    byte[] valid = RootfsCodec.encode(sample());
    Random random = new Random(7);
    for (int i = 0; i < 2000; i++) {
      byte[] b = valid.clone();
      for (int k = 0; k < 1 + random.nextInt(4); k++) {
        b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
      }
      try {
        RootfsCodec.decode(b);
      } catch (FormatException expected) {
        assertNotNull(expected.getMessage());
      }
    }
  }

  @Test
  void decode_manifestVersion2IsRejected() {
    byte[] blob = RootfsCodec.encode(new Rootfs(sample().layers(), sample().verity(), 2));

    FormatException e = assertThrows(FormatException.class, () -> RootfsCodec.decode(blob));

    assertEquals("unsupported rootfs manifestVersion 2; this reader supports 3", e.getMessage());
  }

  @Test
  void decode_shortChunkDigestIsRejected() throws IOException {
    MessageBuilder message = new MessageBuilder();
    Metadata.Rootfs.Builder root = message.initRoot(Metadata.Rootfs.factory);
    root.setManifestVersion(3);
    Metadata.Inode.Builder inode = root.initMetadatas(1).get(0).initInodes(1).get(0);
    inode.setIno(7);
    Metadata.FileChunk.Builder chunk = inode.getMode().initFile(1).get(0);
    RootfsCodec.markFile(inode.getMode());
    chunk.initBlob().setDigest(new byte[31]);
    chunk.setLen(1);

    FormatException e =
        assertThrows(FormatException.class, () -> RootfsCodec.decode(serialize(message)));

    assertTrue(e.getMessage().contains("31 bytes, expected 32"), e.getMessage());
    assertTrue(e.getMessage().contains("ino 7"), e.getMessage());
  }

  @Test
  void decode_shortVerityDigestIsRejected() throws IOException {
    MessageBuilder message = new MessageBuilder();
    Metadata.Rootfs.Builder root = message.initRoot(Metadata.Rootfs.factory);
    root.setManifestVersion(3);
    root.initMetadatas(0);
    Metadata.VerityData.Builder v = root.initFsVerityData(1).get(0);
    v.setDigest(new byte[32]);
    v.setVerity(new byte[33]);

    FormatException e =
        assertThrows(FormatException.class, () -> RootfsCodec.decode(serialize(message)));

    assertTrue(e.getMessage().contains("fsVerityData[0] verity has 33 bytes"), e.getMessage());
  }

  @Test
  void decode_unsortedLayerIsRejected() {
    Rootfs model =
        new Rootfs(
            List.of(List.of(Inode.whiteout(1), Inode.whiteout(3), Inode.whiteout(2))),
            List.of(),
            3);
    byte[] blob = RootfsCodec.encode(model);

    FormatException e = assertThrows(FormatException.class, () -> RootfsCodec.decode(blob));

    assertTrue(e.getMessage().contains("not sorted by ino"), e.getMessage());
  }

  @Test
  void decode_twoMillionInodes() throws FormatException {
    // Larger than the Cap'n Proto runtime's default traversal limit of 64 MiB.
    int n = 2_000_000;
    List<Inode> layer = new ArrayList<>(n);
    for (int i = 1; i <= n; i++) {
      layer.add(inode(i, i % 2 == 0 ? InodeKind.FIFO : InodeKind.SOCK, i, i, 0644));
    }
    Rootfs model = new Rootfs(List.of(layer), List.of(), 3);
    byte[] blob = RootfsCodec.encode(model);
    assertTrue(blob.length > 64 << 20, "blob of " + blob.length + " bytes");

    Rootfs back = RootfsCodec.decode(blob);

    assertEquals(n, back.layers().get(0).size());
    assertEquals(layer.get(n - 1), back.layers().get(0).get(n - 1));
  }

  @Test
  void capnpTool_readsEncodedBlobAsTheModel() throws IOException {
    Assertions.assertTrue(CapnpTool.available(), "capnp tool, schema and java.capnp present");
    Rootfs model = sample();

    JsonNode json = CapnpTool.toJson(RootfsCodec.encode(model));

    assertEquals("3", json.get("manifestVersion").asText());
    assertEquals(model.layers().size(), json.get("metadatas").size());
    for (int l = 0; l < model.layers().size(); l++) {
      JsonNode inodes = json.get("metadatas").get(l).get("inodes");
      assertEquals(model.layers().get(l).size(), inodes.size());
      for (int i = 0; i < inodes.size(); i++) {
        assertInodeJson(model.layers().get(l).get(i), inodes.get(i));
      }
    }
    JsonNode verity = json.get("fsVerityData");
    assertEquals(model.verity().size(), verity.size());
    for (int i = 0; i < verity.size(); i++) {
      assertArrayEquals(model.verity().get(i).blob().bytes(), bytes(verity.get(i).get("digest")));
      assertArrayEquals(model.verity().get(i).verity(), bytes(verity.get(i).get("verity")));
    }
  }

  @Test
  void decode_blobEncodedByCapnpTool() throws IOException {
    Assertions.assertTrue(CapnpTool.available(), "capnp tool, schema and java.capnp present");
    Rootfs model = sample();

    byte[] theirs = CapnpTool.reencode(RootfsCodec.encode(model));

    assertEquals(model, RootfsCodec.decode(theirs));
  }

  static void assertInodeJson(Inode inode, JsonNode j) {
    String what = "ino " + inode.ino();
    assertEquals(Long.toUnsignedString(inode.ino()), j.get("ino").asText(), what);
    assertEquals(Integer.toUnsignedLong(inode.uid()), j.get("uid").asLong(), what);
    assertEquals(Integer.toUnsignedLong(inode.gid()), j.get("gid").asLong(), what);
    assertEquals(inode.permissions(), j.get("permissions").asInt(), what);

    JsonNode mode = j.get("mode");
    assertEquals(1, mode.size(), what + " mode has one member");
    String member = inode.kind().name().toLowerCase(Locale.ROOT);
    assertTrue(mode.has(member), what + " mode " + mode);
    JsonNode m = mode.get(member);
    switch (inode.kind()) {
      case DIR -> {
        assertFalse(m.get("lookBelow").asBoolean(), what);
        JsonNode entries = m.get("entries");
        assertEquals(inode.entries().size(), entries.size(), what);
        for (int i = 0; i < entries.size(); i++) {
          DirEntry e = inode.entries().get(i);
          assertEquals(Long.toString(e.ino()), entries.get(i).get("ino").asText(), what);
          assertArrayEquals(e.name(), bytes(entries.get(i).get("name")), what);
        }
      }
      case FILE -> {
        assertEquals(inode.chunks().size(), m.size(), what);
        for (int i = 0; i < m.size(); i++) {
          FileChunk c = inode.chunks().get(i);
          JsonNode blob = m.get(i).get("blob");
          assertArrayEquals(c.blob().bytes(), bytes(blob.get("digest")), what);
          assertEquals(Long.toString(c.offset()), blob.get("offset").asText(), what);
          assertEquals(c.compressed(), blob.get("compressed").asBoolean(), what);
          assertEquals(Long.toString(c.len()), m.get(i).get("len").asText(), what);
        }
      }
      case CHR, BLK -> {
        assertEquals(Long.toString(inode.major()), m.get("major").asText(), what);
        assertEquals(Long.toString(inode.minor()), m.get("minor").asText(), what);
      }
      default -> assertTrue(m.isNull(), what + " void member");
    }

    JsonNode additional = j.get("additional");
    if (inode.xattrs() == null) {
      assertNull(additional, what + " has no additional");
      return;
    }
    JsonNode xattrs = additional.get("xattrs");
    assertEquals(inode.xattrs().size(), xattrs.size(), what);
    for (int i = 0; i < xattrs.size(); i++) {
      assertArrayEquals(inode.xattrs().get(i).key(), bytes(xattrs.get(i).get("key")), what);
      assertArrayEquals(inode.xattrs().get(i).value(), bytes(xattrs.get(i).get("val")), what);
    }
    if (inode.symlinkTarget() == null) {
      assertNull(additional.get("symlinkTarget"), what);
    } else {
      assertArrayEquals(inode.symlinkTarget(), bytes(additional.get("symlinkTarget")), what);
    }
  }

  /** Data as the capnp tool prints it: an array of unsigned byte values. */
  static byte[] bytes(JsonNode array) {
    assertTrue(array.isArray(), "Data prints as an array: " + array);
    byte[] b = new byte[array.size()];
    for (int i = 0; i < b.length; i++) {
      int v = array.get(i).asInt();
      assertTrue(v >= 0 && v <= 255, "byte value " + v);
      b[i] = (byte) v;
    }
    return b;
  }

  static byte[] serialize(MessageBuilder message) throws IOException {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    Serialize.write(Channels.newChannel(out), message);
    return out.toByteArray();
  }
}
