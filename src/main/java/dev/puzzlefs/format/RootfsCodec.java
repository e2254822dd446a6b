package dev.puzzlefs.format;

import dev.puzzlefs.format.capnp.Metadata;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.capnproto.ArrayOutputStream;
import org.capnproto.Data;
import org.capnproto.MessageBuilder;
import org.capnproto.MessageReader;
import org.capnproto.ReaderOptions;
import org.capnproto.Serialize;
import org.capnproto.StructBuilder;
import org.capnproto.StructList;
import org.capnproto.Void;

/**
 * Converts between the rootfs blob (a Cap'n Proto message in unpacked stream framing) and the
 * {@link Rootfs} model.
 *
 * <p>Why it works this way: the blob comes from an image that may be damaged or hostile, so decode
 * turns every failure of the Cap'n Proto runtime into a {@link FormatException} that says where it
 * happened, and it refuses a blob that claims more list elements or more bytes of names, targets,
 * attributes and digests than its size can hold: a small message whose pointers all alias one list
 * or one byte array would otherwise expand into millions of objects or gigabytes of copies (the
 * runtime's traversal limit allows eight times the blob, too much for a large blob). The runtime's
 * traversal limit is raised in proportion to the blob so that images with millions of inodes
 * decode. Encode sizes the first segment from the model so that the message is one segment, and
 * writes fields in a fixed order, so the same model always gives the same bytes.
 */
public final class RootfsCodec {
  private static final int NESTING_LIMIT = 64;
  private static final long MIN_TRAVERSAL_WORDS = 8L * 1024 * 1024;
  private static final int MAX_FIRST_SEGMENT_WORDS = 1 << 27;

  /** Inode's union tag: data bits 64-79, i.e. 16-bit field 4. */
  private static final int UNION_TAG_FIELD = 4;

  private static final short FILE_TAG = (short) Metadata.Inode.Mode.Which.FILE.ordinal();
  private static final MethodHandle SET_SHORT_FIELD = setShortField();

  private RootfsCodec() {}

  /** Encodes {@code rootfs} as a rootfs blob; the same model always gives the same bytes. */
  public static byte[] encode(Rootfs rootfs) {
    long estimate = Math.min(estimateWords(rootfs), MAX_FIRST_SEGMENT_WORDS);
    MessageBuilder message = new MessageBuilder((int) estimate);
    Metadata.Rootfs.Builder root = message.initRoot(Metadata.Rootfs.factory);

    List<List<Inode>> layers = rootfs.layers();
    StructList.Builder<Metadata.InodeVector.Builder> metadatas = root.initMetadatas(layers.size());
    for (int l = 0; l < layers.size(); l++) {
      List<Inode> inodes = layers.get(l);
      StructList.Builder<Metadata.Inode.Builder> out = metadatas.get(l).initInodes(inodes.size());
      for (int i = 0; i < inodes.size(); i++) {
        writeInode(inodes.get(i), out.get(i));
      }
    }

    List<VerityData> verity = rootfs.verity();
    StructList.Builder<Metadata.VerityData.Builder> table = root.initFsVerityData(verity.size());
    for (int i = 0; i < verity.size(); i++) {
      Metadata.VerityData.Builder v = table.get(i);
      v.setDigest(verity.get(i).blob().bytes());
      v.setVerity(verity.get(i).verity());
    }
    root.setManifestVersion(rootfs.manifestVersion());

    long words = Serialize.computeSerializedSizeInWords(message);
    ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(words * 8));
    try {
      Serialize.write(new ArrayOutputStream(out), message);
    } catch (IOException e) {
      throw new UncheckedIOException("writing to a byte array failed", e);
    }
    return out.array();
  }

  /**
   * Decodes a rootfs blob.
   *
   * @throws FormatException if the blob is not a well-formed rootfs message of manifestVersion 3
   */
  public static Rootfs decode(byte[] blob) throws FormatException {
    return new Decoder(blob).decode();
  }

  private static void writeInode(Inode inode, Metadata.Inode.Builder b) {
    if (inode.permissions() < 0 || inode.permissions() > 0xffff) {
      throw new IllegalArgumentException(
          "inode " + inode.ino() + " permissions " + inode.permissions() + " do not fit UInt16");
    }
    b.setIno(inode.ino());
    b.setUid(inode.uid());
    b.setGid(inode.gid());
    b.setPermissions((short) inode.permissions());

    Metadata.Inode.Mode.Builder mode = b.getMode();
    switch (inode.kind()) {
      case UNKNOWN -> mode.setUnknown(Void.VOID);
      case FIFO -> mode.setFifo(Void.VOID);
      case CHR -> {
        Metadata.Chr.Builder chr = mode.initChr();
        chr.setMajor(inode.major());
        chr.setMinor(inode.minor());
      }
      case DIR -> writeDir(inode.entries(), mode.initDir());
      case BLK -> {
        Metadata.Blk.Builder blk = mode.initBlk();
        blk.setMajor(inode.major());
        blk.setMinor(inode.minor());
      }
      case FILE -> {
        writeChunks(inode.chunks(), mode.initFile(inode.chunks().size()));
        markFile(mode);
      }
      case LNK -> mode.setLnk(Void.VOID);
      case SOCK -> mode.setSock(Void.VOID);
      case WHT -> mode.setWht(Void.VOID);
    }

    if (inode.xattrs() != null || inode.symlinkTarget() != null) {
      Metadata.InodeAdditional.Builder additional = b.initAdditional();
      List<Xattr> xattrs = inode.xattrs() == null ? List.of() : inode.xattrs();
      StructList.Builder<Metadata.Xattr.Builder> list = additional.initXattrs(xattrs.size());
      for (int i = 0; i < xattrs.size(); i++) {
        list.get(i).setKey(xattrs.get(i).key());
        list.get(i).setVal(xattrs.get(i).value());
      }
      if (inode.symlinkTarget() != null) {
        additional.setSymlinkTarget(inode.symlinkTarget());
      }
    }
  }

  /**
   * Sets the union tag to {@code file}. The generated {@code initFile} does not: the capnpc-java
   * that the build uses predates the generator fix for list members of unions, so without this
   * every file would be written as {@code unknown}.
   */
  static void markFile(Metadata.Inode.Mode.Builder mode) {
    try {
      SET_SHORT_FIELD.invokeExact((StructBuilder) mode, UNION_TAG_FIELD, FILE_TAG);
    } catch (Throwable e) {
      throw new IllegalStateException("could not set the inode mode tag", e);
    }
    if (!mode.isFile()) {
      throw new IllegalStateException("the inode mode tag is not at the expected place");
    }
  }

  private static MethodHandle setShortField() {
    try {
      MethodHandles.Lookup lookup =
          MethodHandles.privateLookupIn(StructBuilder.class, MethodHandles.lookup());
      return lookup.findVirtual(
          StructBuilder.class,
          "_setShortField",
          MethodType.methodType(void.class, int.class, short.class));
    } catch (ReflectiveOperationException | IllegalArgumentException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private static void writeDir(List<DirEntry> entries, Metadata.Dir.Builder dir) {
    StructList.Builder<Metadata.DirEntry.Builder> list = dir.initEntries(entries.size());
    for (int i = 0; i < entries.size(); i++) {
      list.get(i).setIno(entries.get(i).ino());
      list.get(i).setName(entries.get(i).name());
    }
    dir.setLookBelow(false);
  }

  private static void writeChunks(
      List<FileChunk> chunks, StructList.Builder<Metadata.FileChunk.Builder> list) {
    for (int i = 0; i < chunks.size(); i++) {
      FileChunk c = chunks.get(i);
      Metadata.FileChunk.Builder out = list.get(i);
      Metadata.BlobRef.Builder blob = out.initBlob();
      blob.setDigest(c.blob().bytes());
      blob.setOffset(c.offset());
      blob.setCompressed(c.compressed());
      out.setLen(c.len());
    }
  }

  /** An upper bound on the message size in words, so that encode fills a single segment. */
  private static long estimateWords(Rootfs rootfs) {
    long words = 1 + 3 + 1 + rootfs.layers().size();
    for (List<Inode> layer : rootfs.layers()) {
      words += 1 + 5L * layer.size();
      for (Inode inode : layer) {
        words += estimateWords(inode);
      }
    }
    words += 1 + 2L * rootfs.verity().size();
    for (VerityData v : rootfs.verity()) {
      words += 4 + dataWords(v.verity());
    }
    return words + 16;
  }

  private static long estimateWords(Inode inode) {
    long words = 0;
    switch (inode.kind()) {
      case CHR, BLK -> words += 2;
      case DIR -> {
        words += 2 + 1 + 2L * inode.entries().size();
        for (DirEntry e : inode.entries()) {
          words += dataWords(e.name());
        }
      }
      case FILE -> words += 1 + 9L * inode.chunks().size();
      default -> {}
    }
    if (inode.xattrs() != null || inode.symlinkTarget() != null) {
      words += 2 + 1 + dataWords(inode.symlinkTarget());
      if (inode.xattrs() != null) {
        for (Xattr x : inode.xattrs()) {
          words += 2 + dataWords(x.key()) + dataWords(x.value());
        }
      }
    }
    return words;
  }

  private static long dataWords(byte[] data) {
    return data == null ? 0 : (data.length + 7) / 8;
  }

  /** One decode run; remembers where it is so that an error can say so. */
  private static final class Decoder {
    private final byte[] blob;
    private final long elementBudget;
    private long elements;
    private long dataBytes;
    private int layer = -1;
    private int index = -1;
    private long ino = -1;

    Decoder(byte[] blob) {
      this.blob = blob;
      this.elementBudget = blob.length / 8;
    }

    Rootfs decode() throws FormatException {
      try {
        return decodeMessage();
      } catch (FormatException e) {
        throw e;
      } catch (IOException | RuntimeException e) {
        throw new FormatException(
            "rootfs blob of "
                + blob.length
                + " bytes is malformed"
                + where()
                + ": "
                + damage(e)
                + "; the blob is damaged or not a PuzzleFS rootfs",
            e);
      }
    }

    /** What the Cap'n Proto reader tripped on, without Java's class names. */
    private static String damage(Exception e) {
      String why = e.getMessage() == null || e.getMessage().isEmpty() ? null : e.getMessage();
      if (e instanceof java.nio.BufferUnderflowException
          || e instanceof IndexOutOfBoundsException
          || e instanceof java.io.EOFException) {
        return "it ends in the middle of a structure" + (why == null ? "" : " (" + why + ")");
      }
      if (e instanceof org.capnproto.DecodeException) {
        return "its Cap'n Proto structure is invalid" + (why == null ? "" : " (" + why + ")");
      }
      return "its Cap'n Proto structure is invalid ("
          + (why == null ? e.getClass().getSimpleName() : why)
          + ")";
    }

    private Rootfs decodeMessage() throws IOException {
      long words = blob.length / 8;
      ReaderOptions options =
          new ReaderOptions(Math.max(MIN_TRAVERSAL_WORDS, 8 * words), NESTING_LIMIT);
      MessageReader message = Serialize.read(ByteBuffer.wrap(blob), options);
      Metadata.Rootfs.Reader root = message.getRoot(Metadata.Rootfs.factory);

      long version = root.getManifestVersion();
      if (version != Rootfs.MANIFEST_VERSION) {
        throw new FormatException(
            "unsupported rootfs manifestVersion "
                + Long.toUnsignedString(version)
                + "; this reader supports "
                + Rootfs.MANIFEST_VERSION);
      }

      StructList.Reader<Metadata.InodeVector.Reader> metadatas = root.getMetadatas();
      charge(metadatas.size());
      List<List<Inode>> layers = new ArrayList<>(metadatas.size());
      for (layer = 0; layer < metadatas.size(); layer++) {
        layers.add(decodeLayer(metadatas.get(layer).getInodes()));
      }
      layer = -1;
      index = -1;
      ino = -1;

      StructList.Reader<Metadata.VerityData.Reader> table = root.getFsVerityData();
      charge(table.size());
      List<VerityData> verity = new ArrayList<>(table.size());
      for (int i = 0; i < table.size(); i++) {
        Metadata.VerityData.Reader v = table.get(i);
        String what = "fsVerityData[" + i + "]";
        verity.add(
            new VerityData(digest(v.getDigest(), what), bytes32(v.getVerity(), what + " verity")));
      }
      return new Rootfs(layers, verity, version);
    }

    private List<Inode> decodeLayer(StructList.Reader<Metadata.Inode.Reader> list)
        throws FormatException {
      charge(list.size());
      List<Inode> inodes = new ArrayList<>(list.size());
      long previous = 0;
      for (index = 0; index < list.size(); index++) {
        Inode inode = decodeInode(list.get(index));
        int cmp = Long.compareUnsigned(inode.ino(), previous);
        if (index > 0 && cmp == 0) {
          throw new FormatException(
              "rootfs layer " + layer + " holds ino " + Long.toUnsignedString(previous) + " twice");
        }
        if (index > 0 && cmp < 0) {
          throw new FormatException(
              "rootfs layer "
                  + layer
                  + " is not sorted by ino: ino "
                  + Long.toUnsignedString(inode.ino())
                  + " follows ino "
                  + Long.toUnsignedString(previous));
        }
        previous = inode.ino();
        inodes.add(inode);
      }
      return inodes;
    }

    private Inode decodeInode(Metadata.Inode.Reader r) throws FormatException {
      ino = r.getIno();
      Metadata.Inode.Mode.Reader mode = r.getMode();
      InodeKind kind;
      long major = 0;
      long minor = 0;
      List<DirEntry> entries = null;
      List<FileChunk> chunks = null;
      switch (mode.which()) {
        case UNKNOWN -> kind = InodeKind.UNKNOWN;
        case FIFO -> kind = InodeKind.FIFO;
        case CHR -> {
          kind = InodeKind.CHR;
          Metadata.Chr.Reader chr = mode.getChr();
          major = chr.getMajor();
          minor = chr.getMinor();
        }
        case DIR -> {
          kind = InodeKind.DIR;
          entries = decodeEntries(mode.getDir().getEntries());
        }
        case BLK -> {
          kind = InodeKind.BLK;
          Metadata.Blk.Reader blk = mode.getBlk();
          major = blk.getMajor();
          minor = blk.getMinor();
        }
        case FILE -> {
          kind = InodeKind.FILE;
          chunks = decodeChunks(mode.getFile());
        }
        case LNK -> kind = InodeKind.LNK;
        case SOCK -> kind = InodeKind.SOCK;
        case WHT -> kind = InodeKind.WHT;
        default -> throw new FormatException("rootfs blob" + where() + ": unknown inode mode tag");
      }

      List<Xattr> xattrs = null;
      byte[] symlinkTarget = null;
      if (r.hasAdditional()) {
        Metadata.InodeAdditional.Reader additional = r.getAdditional();
        StructList.Reader<Metadata.Xattr.Reader> list = additional.getXattrs();
        charge(list.size());
        xattrs = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
          Metadata.Xattr.Reader x = list.get(i);
          xattrs.add(
              new Xattr(
                  bytes(x.getKey(), "xattr " + i + " key"),
                  bytes(x.getVal(), "xattr " + i + " value")));
        }
        if (additional.hasSymlinkTarget()) {
          symlinkTarget = bytes(additional.getSymlinkTarget(), "symlink target");
        }
      }

      return new Inode(
          ino,
          kind,
          r.getUid(),
          r.getGid(),
          r.getPermissions() & 0xffff,
          major,
          minor,
          entries,
          chunks,
          xattrs,
          symlinkTarget);
    }

    private List<DirEntry> decodeEntries(StructList.Reader<Metadata.DirEntry.Reader> list)
        throws FormatException {
      charge(list.size());
      List<DirEntry> entries = new ArrayList<>(list.size());
      for (int i = 0; i < list.size(); i++) {
        Metadata.DirEntry.Reader e = list.get(i);
        entries.add(new DirEntry(e.getIno(), bytes(e.getName(), "entry " + i + " name")));
      }
      return entries;
    }

    private List<FileChunk> decodeChunks(StructList.Reader<Metadata.FileChunk.Reader> list)
        throws FormatException {
      charge(list.size());
      List<FileChunk> chunks = new ArrayList<>(list.size());
      for (int i = 0; i < list.size(); i++) {
        Metadata.FileChunk.Reader c = list.get(i);
        Metadata.BlobRef.Reader blob = c.getBlob();
        Digest digest = digest(blob.getDigest(), "chunk " + i + " digest");
        chunks.add(new FileChunk(digest, blob.getOffset(), blob.getCompressed(), c.getLen()));
      }
      return chunks;
    }

    private Digest digest(Data.Reader data, String what) throws FormatException {
      return Digest.of(bytes32(data, what));
    }

    private byte[] bytes32(Data.Reader data, String what) throws FormatException {
      if (data.size() != 32) {
        throw new FormatException(
            "rootfs blob" + where() + ": " + what + " has " + data.size() + " bytes, expected 32");
      }
      return bytes(data, what);
    }

    /**
     * Copies {@code data} out of the message. Without aliasing the copies add up to less than the
     * blob, so a blob whose pointers make them add up to more is refused before it is copied.
     */
    private byte[] bytes(Data.Reader data, String what) throws FormatException {
      dataBytes += data.size();
      if (dataBytes > blob.length) {
        throw new FormatException(
            "rootfs blob of "
                + blob.length
                + " bytes declares more bytes of data than it holds"
                + where()
                + " ("
                + what
                + " of "
                + data.size()
                + " bytes)");
      }
      return data.toArray();
    }

    /** Counts decoded list elements; each takes at least one word unless pointers alias. */
    private void charge(int n) throws FormatException {
      elements += n;
      if (elements > elementBudget) {
        throw new FormatException(
            "rootfs blob of "
                + blob.length
                + " bytes declares more list elements than it can hold"
                + where());
      }
    }

    private String where() {
      if (layer < 0) {
        return "";
      }
      if (index < 0) {
        return " in layer " + layer;
      }
      return " in layer "
          + layer
          + " inode #"
          + index
          + " (ino "
          + Long.toUnsignedString(ino)
          + ")";
    }
  }
}
