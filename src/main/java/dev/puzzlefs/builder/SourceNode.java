package dev.puzzlefs.builder;

import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.format.Xattr;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** One inode of the source tree as the walk found it, before its file bytes are chunked. */
final class SourceNode {
  final long ino;
  final InodeKind kind;
  final Path path;
  final int uid;
  final int gid;
  final int permissions;
  final long rdev;
  final List<Xattr> xattrs;
  final byte[] symlinkTarget;
  final List<DirEntry> entries;

  /** Size and modification time when walked: a file that changes while read is an error. */
  long size;

  Object modified;

  /**
   * The file's device and inode number when walked: the bytes read must come from this very file,
   * not from whatever (a symlink, a fifo, another file) was put at its path since.
   */
  Object fileKey;

  SourceNode(
      long ino,
      InodeKind kind,
      Path path,
      int uid,
      int gid,
      int permissions,
      long rdev,
      List<Xattr> xattrs,
      byte[] symlinkTarget) {
    this.ino = ino;
    this.kind = kind;
    this.path = path;
    this.uid = uid;
    this.gid = gid;
    this.permissions = permissions;
    this.rdev = rdev;
    this.xattrs = xattrs;
    this.symlinkTarget = symlinkTarget;
    this.entries = kind == InodeKind.DIR ? new ArrayList<>() : null;
  }
}
