package dev.puzzlefs.testing;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * A tree holding every kind of thing a container root filesystem can hold, each in its awkward
 * forms: regular, empty and sparse files (one larger than 4 GiB), empty and 100,000-entry
 * directories, relative, absolute, dangling, directory and 4095-byte symlinks, hard links to files,
 * symlinks, fifos, sockets and devices, character and block devices with numbers above 255, setuid,
 * setgid and sticky bits, 32-bit owners, extended attributes with binary values (a {@code
 * security.capability}, values with {@code \n} and NUL, empty values, several on one file, on a
 * directory and on a symlink, POSIX ACLs), names that are not UTF-8, names of 255 bytes and a path
 * of {@value #DEEP_PATH_LENGTH} bytes. Needs root.
 *
 * <p>The sparse files cost almost no disk; the whole tree takes a few megabytes.
 */
public final class FidelityTree {
  /** Entries of {@code many}. */
  public static final int MANY_ENTRIES = 100_000;

  /** The length of {@link #DEEP_FILE}, relative to the tree root. */
  public static final int DEEP_PATH_LENGTH = 4031;

  /**
   * The longest path of the tree, relative to its root: nested 255-byte directory names. A tree
   * root longer than {@code 4095 - DEEP_PATH_LENGTH - 1} bytes makes its absolute path longer than
   * PATH_MAX allows in one system call.
   */
  public static final String DEEP_FILE = deepFile();

  /** The size of {@code huge}: just over 4 GiB. */
  public static final long HUGE_SIZE = (4L << 30) + 12345;

  /** Offsets of the non-zero bytes written into {@code huge}; everything else is a hole. */
  public static final long[] HUGE_DATA_AT = {
    0, 1 << 20, (4L << 30) - 3, 4L << 30, (4L << 30) + 4096, HUGE_SIZE - 1
  };

  /** Major and minor of the character device {@code chr-big}: both above 255. */
  public static final long BIG_MAJOR = 300;

  public static final long BIG_MINOR = 70_000;

  private FidelityTree() {}

  private static String deepFile() {
    StringBuilder sb = new StringBuilder("deep");
    char c = 'a';
    // Each level adds '/' and a 255-byte name; the leaf takes what is left.
    while (sb.length() + 1 + 255 + 1 + 1 <= DEEP_PATH_LENGTH) {
      sb.append('/').append(String.valueOf(c++).repeat(255));
    }
    int leaf = DEEP_PATH_LENGTH - sb.length() - 1;
    return sb.append('/').append("z".repeat(leaf)).toString();
  }

  /** Fills the existing, empty directory {@code src} with the tree. */
  public static void make(Path src) throws IOException, InterruptedException {
    regularFiles(src);
    sparseFiles(src);
    many(src);
    deep(src);
    // What Java cannot make (raw names, devices, sockets, links to symlinks, every xattr
    // namespace, owners of symlinks), the shell can.
    Processes.run(60, "bash", "-c", "set -e; cd '" + src + "'\n" + SHELL_PART);
  }

  private static void regularFiles(Path src) throws IOException {
    byte[] random = new byte[300_000];
    new Random(3).nextBytes(random);
    Files.write(src.resolve("file"), random);
    Files.write(src.resolve("empty"), new byte[0]);
    Files.createDirectories(src.resolve("empty-dir"));
    Files.createDirectories(src.resolve("dir/sub"));
    Files.writeString(src.resolve("dir/inner"), "inside a directory\n");
    Files.writeString(src.resolve("hard-a"), "one inode, three names\n");
    Files.createLink(src.resolve("dir/hard-b"), src.resolve("hard-a"));
    Files.createLink(src.resolve("dir/sub/hard-c"), src.resolve("hard-a"));
    Files.writeString(src.resolve("n".repeat(255)), "a name of 255 bytes\n");
    Files.createDirectories(src.resolve("D".repeat(255)));
  }

  private static void sparseFiles(Path src) throws IOException {
    try (RandomAccessFile f = new RandomAccessFile(src.resolve("huge").toFile(), "rw")) {
      f.setLength(HUGE_SIZE);
      for (long at : HUGE_DATA_AT) {
        f.seek(at);
        f.write((int) (at % 251) + 1);
      }
    }
    try (RandomAccessFile f = new RandomAccessFile(src.resolve("sparse").toFile(), "rw")) {
      byte[] block = new byte[5000];
      new Random(5).nextBytes(block);
      f.seek(3 << 20);
      f.write(block);
      f.seek(7 << 20);
      f.write(block);
      f.setLength(10 << 20); // ends in a hole
    }
    try (RandomAccessFile f = new RandomAccessFile(src.resolve("all-hole").toFile(), "rw")) {
      f.setLength(1 << 20);
    }
  }

  private static void many(Path src) throws IOException {
    Path many = Files.createDirectories(src.resolve("many"));
    for (int i = 0; i < MANY_ENTRIES; i++) {
      Files.createFile(many.resolve(String.format("entry-%06d", i)));
    }
  }

  private static void deep(Path src) throws IOException {
    Path leaf = src.resolve(DEEP_FILE);
    Files.createDirectories(leaf.getParent());
    Files.writeString(leaf, "at the bottom of a path of " + DEEP_PATH_LENGTH + " bytes\n");
  }

  /** user::rw-, user:1234:r--, group::r--, mask::rw-, other::r--, as the kernel stores it. */
  private static final String ACL =
      "0x0200000001000600ffffffff02000400d204000004000400ffffffff10000600ffffffff"
          + "20000400ffffffff";

  private static final String SHELL_PART =
      String.join(
          "\n",
          // symlinks of every shape
          "ln -s file link-rel",
          "ln -s /etc/hostname link-abs",
          "ln -s no/such/target link-dangling",
          "ln -s dir link-dir",
          "ln -s ../file dir/link-up",
          "ln -s \"$(printf 't%.0s' $(seq 4095))\" link-4095",
          "ln -s $'tar\\xfeget' link-bad-utf8",
          "ln -sf file link-owned && chown -h 1000:2000 link-owned",
          // hard links to things that are not regular files
          "ln -P link-rel link-rel-hard",
          "ln -P link-dangling dir/link-dangling-hard",
          "mkfifo fifo && ln fifo fifo-hard",
          "python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock",
          "ln sock dir/sock-hard",
          // devices, numbers beyond 8 bits
          "mknod chr-null c 1 3 && ln chr-null chr-null-hard",
          "mknod chr-big c " + BIG_MAJOR + " " + BIG_MINOR,
          "mknod blk-loop b 7 0",
          "mknod blk-big b 4095 1048575",
          "chown 0:6 blk-loop && chmod 0660 blk-loop",
          // permissions and owners
          "mkdir sticky && chmod 01777 sticky",
          "mkdir setgid-dir && chmod 02775 setgid-dir",
          "mkdir locked && echo hidden > locked/inside && chmod 0 locked",
          "echo u > setuid && chmod 04755 setuid",
          "echo g > setgid && chmod 02755 setgid",
          "echo all > all-bits && chmod 07777 all-bits",
          "echo none > no-perms && chmod 0 no-perms",
          "echo owned > owned-max && chown 4294967294:4294967294 owned-max",
          "chmod 06755 owned-max",
          "echo owned > owned-high && chown 65536:2147483648 owned-high",
          "mknod fifo-owned p && chown 4294967294:123 fifo-owned",
          // names
          "echo bad > $'bad\\xffname'",
          "mkdir $'dir\\xfe\\x80' && echo x > $'dir\\xfe\\x80/\\xc3\\x28'",
          "echo nl > $'new\\nline'",
          "echo sp > ' lead and trail '",
          "echo dash > ./-dash",
          "echo accent > café",
          // extended attributes: binary values, NUL, newline, empty, several on one file
          "echo x > xattrs",
          "setfattr -n user.nul -v 0x00780000 xattrs",
          "setfattr -n user.nl -v 0x610a62 xattrs",
          "setfattr -n user.empty xattrs",
          "setfattr -n user.big -v 0x$(printf 'ab%.0s' $(seq 2000)) xattrs",
          "setfattr -n trusted.t -v 0x0a xattrs",
          "setfattr -n security.capability -v 0x010000020a000000000000000000000000000000 xattrs",
          "setfattr -n user.a -v 0xff xattrs",
          "setfattr -n user.on-dir -v 0x0a00 dir",
          "setfattr -n user.on-root -v root .",
          "setfattr -h -n trusted.on-link -v 0x00 link-rel",
          "setfattr -n trusted.on-fifo -v f fifo",
          "setfattr -n security.capability -v 0x010000020a000000000000000000000000000000 setuid",
          "chmod 04755 setuid",
          "setfattr -n user.on-hard -v h hard-a",
          // POSIX ACLs are xattrs too: an access ACL (user 1234 may read) and a default ACL set
          // after the directory's child was made, so the child does not inherit it
          "echo acl > acl-file && setfattr -n system.posix_acl_access -v " + ACL + " acl-file",
          "mkdir acl-dir && echo child > acl-dir/child",
          "setfattr -n system.posix_acl_default -v " + ACL + " acl-dir");
}
