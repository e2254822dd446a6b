package dev.puzzlefs.format;

import java.io.IOException;
import java.io.InputStream;
import java.security.DigestException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The Linux fs-verity file digest with SHA-256, 4096-byte blocks and no salt, as {@code fsverity
 * digest} prints it and as the kernel measures a file.
 *
 * <p>Why it works this way: the kernel hashes every 4096-byte data block (the last one padded with
 * zeros), packs those 32-byte hashes into 4096-byte blocks (again zero-padded) and hashes them, and
 * repeats until one block is left; the hash of that block is the root. An empty file has an
 * all-zero root. The file digest is the SHA-256 of a 256-byte descriptor holding the root and the
 * data size. The {@link Hasher} builds the tree bottom-up while the data streams past, keeping one
 * partly filled block per tree level, so memory grows with the logarithm of the size.
 */
public final class FsVerity {
  /** The Merkle tree block size. */
  public static final int BLOCK_SIZE = 4096;

  /** The length of a digest in bytes. */
  public static final int DIGEST_LENGTH = 32;

  private static final int DESCRIPTOR_SIZE = 256;
  private static final int LOG_BLOCK_SIZE = 12;
  private static final int HASH_ALG_SHA256 = 1;

  private FsVerity() {}

  /** The fs-verity digest of {@code data[off, off+len)}. */
  public static byte[] digest(byte[] data, int off, int len) {
    Hasher h = new Hasher();
    h.update(data, off, len);
    return h.finish();
  }

  /** The fs-verity digest of all of {@code data}. */
  public static byte[] digest(byte[] data) {
    return digest(data, 0, data.length);
  }

  /** The fs-verity digest of everything {@code in} yields; does not close it. */
  public static byte[] digest(InputStream in) throws IOException {
    Hasher h = new Hasher();
    byte[] chunk = new byte[16 * BLOCK_SIZE];
    int n;
    while ((n = in.read(chunk)) >= 0) {
      h.update(chunk, 0, n);
    }
    return h.finish();
  }

  /** Computes an fs-verity digest over data given in pieces of any size; use once. */
  public static final class Hasher {
    private final MessageDigest sha = Digest.newSha256();
    private final byte[] block = new byte[BLOCK_SIZE];
    private int blockFill;
    private long size;
    private boolean finished;

    /** Level i collects the hashes of level i-1's blocks (level 0: of data blocks). */
    private final List<Level> levels = new ArrayList<>();

    /** A hasher for a new, empty file. */
    public Hasher() {}

    /** Appends {@code data[off, off+len)} to the file. */
    public void update(byte[] data, int off, int len) {
      if (finished) {
        throw new IllegalStateException("fs-verity hasher already finished");
      }
      if (off < 0 || len < 0 || len > data.length - off) {
        throw new IndexOutOfBoundsException(
            "range [" + off + ", " + off + "+" + len + ") of " + data.length + " bytes");
      }
      size += len;
      if (blockFill > 0) {
        int n = Math.min(len, BLOCK_SIZE - blockFill);
        System.arraycopy(data, off, block, blockFill, n);
        blockFill += n;
        off += n;
        len -= n;
        if (blockFill < BLOCK_SIZE) {
          return;
        }
        hashInto(0, block, 0);
        blockFill = 0;
      }
      // Whole blocks are hashed straight from the caller's array. A block that ends the input is
      // kept back only because a later update may still extend the file.
      while (len >= BLOCK_SIZE) {
        hashInto(0, data, off);
        off += BLOCK_SIZE;
        len -= BLOCK_SIZE;
      }
      System.arraycopy(data, off, block, 0, len);
      blockFill = len;
    }

    /** The fs-verity digest of everything given so far; the hasher cannot be used afterwards. */
    public byte[] finish() {
      if (finished) {
        throw new IllegalStateException("fs-verity hasher already finished");
      }
      finished = true;
      if (blockFill > 0) {
        Arrays.fill(block, blockFill, BLOCK_SIZE, (byte) 0);
        hashInto(0, block, 0);
        blockFill = 0;
      }
      return descriptorDigest(rootHash());
    }

    private byte[] rootHash() {
      if (size == 0) {
        return new byte[DIGEST_LENGTH];
      }
      for (int i = 0; ; i++) {
        Level level = levels.get(i);
        if (level.count == 1) {
          return Arrays.copyOf(level.hashes, DIGEST_LENGTH);
        }
        if (level.fill > 0) {
          Arrays.fill(level.hashes, level.fill, BLOCK_SIZE, (byte) 0);
          level.fill = 0;
          hashInto(i + 1, level.hashes, 0);
        }
      }
    }

    /** Hashes the block at {@code src[off, off+4096)} and appends the hash to {@code level}. */
    private void hashInto(int i, byte[] src, int off) {
      if (i == levels.size()) {
        levels.add(new Level());
      }
      Level level = levels.get(i);
      sha.update(src, off, BLOCK_SIZE);
      try {
        sha.digest(level.hashes, level.fill, DIGEST_LENGTH);
      } catch (DigestException e) {
        throw new IllegalStateException("SHA-256 did not produce 32 bytes", e);
      }
      level.fill += DIGEST_LENGTH;
      level.count++;
      if (level.fill == BLOCK_SIZE) {
        level.fill = 0;
        hashInto(i + 1, level.hashes, 0);
      }
    }

    private byte[] descriptorDigest(byte[] root) {
      byte[] d = new byte[DESCRIPTOR_SIZE];
      d[0] = 1; // version
      d[1] = HASH_ALG_SHA256;
      d[2] = LOG_BLOCK_SIZE;
      d[3] = 0; // salt size; bytes 4..7 are reserved
      long n = size;
      for (int i = 0; i < 8; i++) {
        d[8 + i] = (byte) (n >>> (8 * i));
      }
      System.arraycopy(root, 0, d, 16, DIGEST_LENGTH);
      // root_hash has room for 64 bytes; the salt (32) and reserved (144) bytes stay zero.
      sha.reset();
      return sha.digest(d);
    }
  }

  /** One tree level: the block of hashes being filled and how many hashes it has taken in all. */
  private static final class Level {
    final byte[] hashes = new byte[BLOCK_SIZE];
    int fill;
    long count;
  }
}
