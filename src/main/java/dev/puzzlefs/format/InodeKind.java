package dev.puzzlefs.format;

/** The members of the rootfs {@code Inode.mode} union, in wire tag order. */
public enum InodeKind {
  UNKNOWN,
  FIFO,
  CHR,
  DIR,
  BLK,
  FILE,
  LNK,
  SOCK,
  WHT
}
