package dev.puzzlefs.format;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One inode of one layer, as the rootfs blob stores it.
 *
 * <p>{@code uid} and {@code gid} are unsigned 32-bit values held in an {@code int} (use {@link
 * Integer#toUnsignedLong}). {@code entries} is non-null only for {@link InodeKind#DIR}, sorted by
 * name bytes; {@code chunks} only for {@link InodeKind#FILE}. {@code major}/{@code minor} are
 * meaningful for devices. {@code xattrs} is null when the wire {@code additional} is null; it is
 * non-null (maybe empty) whenever xattrs or a symlink target exist. {@code symlinkTarget} is
 * non-null only for {@link InodeKind#LNK}.
 */
public record Inode(
    long ino,
    InodeKind kind,
    int uid,
    int gid,
    int permissions,
    long major,
    long minor,
    List<DirEntry> entries,
    List<FileChunk> chunks,
    List<Xattr> xattrs,
    byte[] symlinkTarget) {

  public Inode {
    Objects.requireNonNull(kind, "kind");
    entries = entries == null ? null : List.copyOf(entries);
    chunks = chunks == null ? null : List.copyOf(chunks);
    xattrs = xattrs == null ? null : List.copyOf(xattrs);
    if (kind == InodeKind.DIR && entries == null) {
      entries = List.of();
    }
    if (kind == InodeKind.FILE && chunks == null) {
      chunks = List.of();
    }
    if (symlinkTarget != null && xattrs == null) {
      xattrs = List.of();
    }
  }

  /** The file size: the sum of the chunk lengths (0 for anything but a regular file). */
  public long size() {
    if (chunks == null) {
      return 0;
    }
    long n = 0;
    for (FileChunk c : chunks) {
      n += c.len();
    }
    return n;
  }

  /** A whiteout: {@code ino} does not exist in this layer. */
  public static Inode whiteout(long ino) {
    return new Inode(ino, InodeKind.WHT, 0, 0, 0, 0, 0, null, null, null, null);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Inode i
        && i.ino == ino
        && i.kind == kind
        && i.uid == uid
        && i.gid == gid
        && i.permissions == permissions
        && i.major == major
        && i.minor == minor
        && Objects.equals(i.entries, entries)
        && Objects.equals(i.chunks, chunks)
        && Objects.equals(i.xattrs, xattrs)
        && Arrays.equals(i.symlinkTarget, symlinkTarget);
  }

  @Override
  public int hashCode() {
    return Objects.hash(ino, kind, uid, gid, permissions, entries, chunks);
  }
}
