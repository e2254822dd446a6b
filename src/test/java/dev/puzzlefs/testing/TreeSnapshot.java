package dev.puzzlefs.testing;

import dev.puzzlefs.builder.RawNames;
import dev.puzzlefs.format.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A comparable description of every entry of a tree: type, permissions, owner, size (of anything
 * but a directory), content sha256, symlink target, device major and minor, link count and
 * hard-link group (of any non-directory), keyed by the raw bytes of the relative path; plus every
 * extended attribute as {@code getfattr} prints it, of symlinks too. Two trees with equal snapshots
 * look the same to a reader.
 */
public final class TreeSnapshot {
  private static final String EMPTY_SHA256 = Digest.sha256(new byte[0]).hex();

  private final Map<String, String> entries;
  private final String xattrs;

  private TreeSnapshot(Map<String, String> entries, String xattrs) {
    this.entries = entries;
    this.xattrs = xattrs;
  }

  /** Takes the snapshot of the tree under {@code root}. */
  public static TreeSnapshot of(Path root) throws IOException, InterruptedException {
    Map<String, String> entries = new TreeMap<>();
    Map<List<Long>, String> linkGroups = new HashMap<>();
    Map<String, List<Long>> fileKeys = new HashMap<>();
    Files.walkFileTree(
        root,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a)
              throws IOException {
            record(dir);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes a) throws IOException {
            record(file);
            return FileVisitResult.CONTINUE;
          }

          private void record(Path p) throws IOException {
            String rel = key(root, p);
            Map<String, Object> u = Files.readAttributes(p, "unix:*", LinkOption.NOFOLLOW_LINKS);
            int mode = (Integer) u.get("mode");
            int type = mode & 0170000;
            StringBuilder sb = new StringBuilder();
            sb.append(String.format("type=%o perm=%04o", type, mode & 07777));
            sb.append(" uid=").append(Integer.toUnsignedString((Integer) u.get("uid")));
            sb.append(" gid=").append(Integer.toUnsignedString((Integer) u.get("gid")));
            sb.append(" nlink=").append(u.get("nlink"));
            if (type != 0040000) {
              // Directory sizes are the filesystem's business; any other size is content.
              sb.append(" size=").append(u.get("size"));
              if ((Integer) u.get("nlink") > 1) {
                List<Long> k = List.of((Long) u.get("dev"), (Long) u.get("ino"));
                fileKeys.put(rel, k);
                linkGroups.merge(k, rel, (x, y) -> x.compareTo(y) <= 0 ? x : y);
              }
            }
            if (type == 0100000) {
              // An empty file's digest needs no read: 100,000 of them cost 100,000 opens.
              boolean empty = (Long) u.get("size") == 0;
              sb.append(" sha256=").append(empty ? EMPTY_SHA256 : sha256(p));
            } else if (type == 0120000) {
              sb.append(" target=").append(escape(RawNames.bytes(Files.readSymbolicLink(p))));
            } else if (type == 0020000 || type == 0060000) {
              long rdev = (Long) u.get("rdev");
              long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
              long minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
              sb.append(" rdev=").append(major).append(':').append(minor);
            }
            entries.put(rel, sb.toString());
          }
        });
    fileKeys.forEach(
        (rel, k) -> entries.put(rel, entries.get(rel) + " group=" + linkGroups.get(k)));
    return new TreeSnapshot(entries, xattrs(root));
  }

  private static String xattrs(Path root) throws IOException, InterruptedException {
    // Run in root so both trees print the same relative paths; getfattr prints files in
    // directory order, which differs between filesystems, so sort its per-file blocks.
    Processes.Result r =
        Processes.execIn(
            root, 600, "getfattr", "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", ".");
    if (r.exit() != 0) {
      throw new IOException("getfattr failed in " + root + ": " + r.stderr());
    }
    String out = r.out();
    return String.join("\n", new java.util.TreeSet<>(List.of(out.split("\n\n"))));
  }

  /** The entries, path to description. */
  public Map<String, String> entries() {
    return entries;
  }

  /** Every extended attribute as {@code getfattr -d -e hex} prints it, relative paths. */
  public String xattrs() {
    return xattrs;
  }

  /**
   * A readable list of the differences from {@code other} (at most {@code max} lines); empty when
   * the trees match.
   */
  public String diff(TreeSnapshot other, int max) {
    StringBuilder sb = new StringBuilder();
    int n = 0;
    for (var e : entries.entrySet()) {
      String theirs = other.entries.get(e.getKey());
      if (!e.getValue().equals(theirs) && n++ < max) {
        sb.append(e.getKey()).append(":\n  ").append(e.getValue()).append("\n  ");
        sb.append(theirs == null ? "(missing)" : theirs).append('\n');
      }
    }
    for (String k : other.entries.keySet()) {
      if (!entries.containsKey(k) && n++ < max) {
        sb.append(k).append(": (extra) ").append(other.entries.get(k)).append('\n');
      }
    }
    if (!xattrs.equals(other.xattrs)) {
      sb.append("extended attributes differ:\n").append(xattrs).append("\n---\n");
      sb.append(other.xattrs).append('\n');
    }
    return sb.toString();
  }

  private static String key(Path root, Path p) {
    return escape(RawNames.bytes(root.relativize(p)));
  }

  private static String escape(byte[] raw) {
    StringBuilder sb = new StringBuilder();
    for (byte b : raw) {
      int c = b & 0xff;
      if (c >= 0x21 && c < 0x7f && c != '\\') {
        sb.append((char) c);
      } else {
        sb.append(String.format("\\x%02x", c));
      }
    }
    return sb.toString();
  }

  private static String sha256(Path p) throws IOException {
    MessageDigest md = Digest.newSha256();
    byte[] buf = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(p)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return Digest.of(md.digest()).hex();
  }
}
