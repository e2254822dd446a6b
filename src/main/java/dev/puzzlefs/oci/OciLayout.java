package dev.puzzlefs.oci;

import dev.puzzlefs.format.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * An OCI image layout directory: {@code oci-layout}, {@code index.json} and {@code
 * blobs/sha256/<hex>}. Blobs are written to a temporary file and renamed, so a reader never sees a
 * partial blob; an existing blob is never rewritten.
 */
public final class OciLayout {
  /** The file whose lock serialises changes to the index (and the layout's creation). */
  private static final String INDEX_LOCK = ".index.lock";

  /**
   * Held around {@link #INDEX_LOCK}'s file lock: a JVM may hold a file's lock only once, and two
   * threads asking for it get an exception instead of a wait.
   */
  private static final Object IN_THIS_JVM = new Object();

  private static final byte[] LAYOUT_MARKER =
      "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(StandardCharsets.UTF_8);

  /**
   * Mode of every file written: temporary files start private, but a layout is read by other users
   * and tools (registries, skopeo), as files written under the usual umask 022 would be.
   */
  private static final java.util.Set<java.nio.file.attribute.PosixFilePermission> READABLE =
      java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--");

  private final Path root;

  private OciLayout(Path root) {
    this.root = root;
  }

  /** Opens an existing layout; fails with a clear message if {@code dir} is not one. */
  public static OciLayout open(Path dir) throws OciException {
    if (!Files.isDirectory(dir)) {
      throw new OciException(dir + ": no such OCI image directory");
    }
    if (!Files.isRegularFile(dir.resolve("index.json"))) {
      throw new OciException(dir + " is not an OCI image layout: it has no index.json");
    }
    return new OciLayout(dir);
  }

  /**
   * Opens {@code dir} as a layout, creating an empty one if it does not exist yet, and refuses a
   * non-empty directory that is not one. Several processes may create the same layout at once: the
   * check and the creation hold the lock {@link #tag} takes, so none sees another's half-made
   * layout as foreign, and none writes an empty index over one another has already tagged.
   */
  public static OciLayout openOrCreate(Path dir) throws IOException {
    // A foreign directory is refused before the lock file is made in it.
    refuseForeign(dir);
    Files.createDirectories(dir);
    synchronized (IN_THIS_JVM) {
      createLocked(dir);
    }
    return new OciLayout(dir);
  }

  /** Refuses {@code dir} if it holds anything but a layout or what making one puts first. */
  private static void refuseForeign(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return;
    }
    List<String> names;
    try (var entries = Files.list(dir)) {
      names = entries.map(p -> p.getFileName().toString()).toList();
    }
    // Looked at after the listing: a layout being made gets its oci-layout before anything else,
    // so whatever the listing caught of it, oci-layout exists by now.
    if (!names.contains("oci-layout") && !Files.exists(dir.resolve("oci-layout"))) {
      if (names.stream().anyMatch(n -> !n.equals(INDEX_LOCK))) {
        throw new OciException(
            dir
                + " is a non-empty directory but not an OCI layout (no oci-layout file);"
                + " refusing to write into it");
      }
    }
  }

  private static void createLocked(Path dir) throws IOException {
    try (FileChannel lock =
            FileChannel.open(
                dir.resolve(INDEX_LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock held = lock.lock()) {
      if (!Files.exists(dir.resolve("oci-layout"))) {
        refuseForeign(dir);
        // Written in place, not through a temporary file: under the lock no one else writes it,
        // and a temporary file would look foreign to another process's first check.
        Files.write(dir.resolve("oci-layout"), LAYOUT_MARKER, StandardOpenOption.CREATE_NEW);
        Files.setPosixFilePermissions(dir.resolve("oci-layout"), READABLE);
      }
      Files.createDirectories(dir.resolve("blobs").resolve(Digest.ALGORITHM));
      if (!Files.exists(dir.resolve("index.json"))) {
        writeAtomically(
            dir.resolve("index.json"), Json.write(new ImageIndex(2, null, List.of(), null)));
      }
    }
  }

  /** The layout's directory. */
  public Path root() {
    return root;
  }

  /** Where the blob {@code digest} lives (it may not exist). */
  public Path blobPath(Digest digest) {
    return root.resolve("blobs").resolve(Digest.ALGORITHM).resolve(digest.hex());
  }

  /** True when the blob is present. */
  public boolean hasBlob(Digest digest) {
    return Files.isRegularFile(blobPath(digest));
  }

  /**
   * Stores {@code data[0, len)} as a blob and returns its digest. An existing blob is not
   * rewritten, but its bytes must hash to its name.
   */
  public Digest putBlob(byte[] data, int len) throws IOException {
    Digest digest = Digest.sha256(data, 0, len);
    putBlob(digest, data, len);
    return digest;
  }

  /**
   * Stores {@code data[0, len)} under {@code digest}, which the caller has just computed from these
   * bytes. Returns false when the blob was already present (and intact).
   */
  public boolean putBlob(Digest digest, byte[] data, int len) throws IOException {
    Path target = blobPath(digest);
    if (Files.exists(target)) {
      checkExisting(digest, target, len);
      return false;
    }
    Path dir = target.getParent();
    Path tmp = null;
    try {
      Files.createDirectories(dir);
      // Listed before it exists, so the exit hook never misses it; made only if the hook has not
      // run yet (or it would outlive the JVM).
      tmp =
          dir.resolve(
              ".tmp-"
                  + digest.hex().substring(0, 12)
                  + Long.toUnsignedString(
                      java.util.concurrent.ThreadLocalRandom.current().nextLong(), 36));
      UNFINISHED.add(tmp);
      try (var out =
          Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        if (exiting) {
          throw new IOException("the JVM is exiting");
        }
        out.write(data, 0, len);
      }
      Files.setPosixFilePermissions(tmp, READABLE);
      move(tmp, target);
    } catch (IOException e) {
      String why =
          e instanceof java.nio.file.FileSystemException f && f.getReason() != null
              ? f.getReason()
              : String.valueOf(e.getMessage());
      throw new IOException("cannot store blob " + digest + " in " + dir + ": " + why, e);
    } finally {
      if (tmp != null) {
        Files.deleteIfExists(tmp);
        UNFINISHED.remove(tmp);
      }
    }
    return true;
  }

  /**
   * Blob files being written by this JVM: a JVM stopped by SIGINT or SIGTERM runs no {@code
   * finally} of its other threads, so a hook deletes what they left half-written.
   */
  private static final java.util.Set<Path> UNFINISHED = newUnfinished();

  private static java.util.Set<Path> newUnfinished() {
    java.util.Set<Path> set = java.util.concurrent.ConcurrentHashMap.newKeySet();
    try {
      addHook(set);
    } catch (IllegalStateException e) {
      // first used while the JVM shuts down: no hook, and no blob write will finish anyway
    }
    return set;
  }

  /** Set by the exit hook before it removes the unfinished files: no new one is written then. */
  private static volatile boolean exiting;

  private static void addHook(java.util.Set<Path> set) {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  exiting = true;
                  for (Path p : set) {
                    try {
                      Files.deleteIfExists(p);
                    } catch (IOException e) {
                      // exiting: nothing left to tell
                    }
                  }
                },
                "puzzlefs-unfinished-blobs"));
  }

  /** Stores all of {@code data} as a blob. */
  public Digest putBlob(byte[] data) throws IOException {
    return putBlob(data, data.length);
  }

  private void checkExisting(Digest digest, Path path, long len) throws IOException {
    if (Files.size(path) != len || !Digest.sha256(Files.readAllBytes(path)).equals(digest)) {
      throw new OciException(
          "blob "
              + path
              + " exists but its bytes do not hash to its name "
              + digest
              + "; refusing to overwrite it (remove it by hand if the store is corrupt)");
    }
  }

  /** Reads a whole blob and checks that its bytes hash to {@code digest}. */
  public byte[] readBlob(Digest digest) throws IOException {
    return readBlob(digest, -1);
  }

  /**
   * Reads the blob {@code descriptor} names and checks its size against the descriptor's before
   * reading a byte, then its bytes against the digest.
   */
  public byte[] readBlob(Descriptor descriptor) throws IOException {
    if (descriptor.size() < 0) {
      throw new OciException(
          "the descriptor of blob "
              + descriptor.digest()
              + " has a negative size "
              + descriptor.size());
    }
    return readBlob(descriptor.digestValue(), descriptor.size());
  }

  /**
   * Reads a whole blob of {@code expectedSize} bytes (any size if negative). Only a regular file is
   * read (a link to one is followed): a fifo would block the reader forever and a device such as
   * {@code /dev/zero} would fill its memory, and a mount server serves every mount from one JVM.
   */
  private byte[] readBlob(Digest digest, long expectedSize) throws IOException {
    Path path = blobPath(digest);
    BasicFileAttributes attrs;
    try {
      attrs = Files.readAttributes(path, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      throw new OciException("blob " + digest + " is missing from " + root, e);
    }
    if (!attrs.isRegularFile()) {
      throw new OciException("blob " + path + " is not a regular file; the layout is damaged");
    }
    if (expectedSize >= 0 && attrs.size() != expectedSize) {
      throw new OciException(
          "blob "
              + path
              + " is "
              + attrs.size()
              + " bytes, but its descriptor says "
              + expectedSize
              + "; the layout is damaged");
    }
    if (attrs.size() > MAX_WHOLE_BLOB) {
      throw new OciException(
          "blob " + path + " is " + attrs.size() + " bytes, too large to be read whole");
    }
    byte[] data;
    try {
      data = Files.readAllBytes(path);
    } catch (NoSuchFileException e) {
      throw new OciException("blob " + digest + " is missing from " + root, e);
    }
    Digest actual = Digest.sha256(data);
    if (!actual.equals(digest)) {
      throw new OciException(
          "blob " + path + " is corrupt: expected " + digest + ", its bytes hash to " + actual);
    }
    return data;
  }

  /** The largest blob read whole (a manifest or a rootfs blob): one Java array. */
  private static final long MAX_WHOLE_BLOB = Integer.MAX_VALUE - 16;

  /** Streams a blob without verifying it (callers verify as they read). */
  public InputStream openBlob(Digest digest) throws IOException {
    try {
      return Files.newInputStream(blobPath(digest));
    } catch (NoSuchFileException e) {
      throw new OciException("blob " + digest + " is missing from " + root, e);
    }
  }

  /**
   * The largest {@code index.json} read: about 60,000 tags. A mount server serves every mount from
   * one JVM, so a damaged layout must not get to fill its heap.
   */
  static final long MAX_INDEX_BYTES = 16 << 20;

  /** The parsed {@code index.json}. */
  public ImageIndex index() throws IOException {
    Path path = root.resolve("index.json");
    BasicFileAttributes attrs;
    try {
      attrs = Files.readAttributes(path, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      throw new OciException(root + " is not an OCI image layout: it has no index.json", e);
    }
    if (!attrs.isRegularFile()) {
      throw new OciException(path + " is not a regular file; the layout is damaged");
    }
    if (attrs.size() > MAX_INDEX_BYTES) {
      throw new OciException(
          path
              + " is "
              + attrs.size()
              + " bytes, more than the "
              + MAX_INDEX_BYTES
              + " an index is allowed; the layout is damaged");
    }
    ImageIndex index = Json.read(Files.readAllBytes(path), ImageIndex.class, path.toString());
    if (index.manifests() == null) {
      throw new OciException(path + " has no \"manifests\" list");
    }
    return index;
  }

  /**
   * The index entry carrying {@code tag}, if any. An index with several entries carrying it is
   * refused: which image the tag names would be a guess. ({@link #tag} replaces them all.)
   */
  public Optional<Descriptor> findTag(String tag) throws IOException {
    List<String> digests = new ArrayList<>();
    Descriptor found = null;
    for (Descriptor d : index().manifests()) {
      if (tag.equals(d.annotation(MediaTypes.REF_NAME))) {
        found = found == null ? d : found;
        digests.add(d.digest());
      }
    }
    if (digests.size() > 1) {
      throw new OciException(
          root.resolve("index.json")
              + " names tag '"
              + tag
              + "' "
              + digests.size()
              + " times (manifests "
              + String.join(", ", digests)
              + "), so which image it means is ambiguous: remove all but one of those entries,"
              + " or tag the image again (build or skopeo copy) to replace them");
    }
    return Optional.ofNullable(found);
  }

  /** The manifest descriptor for {@code tag}; a clear error lists the tags that do exist. */
  public Descriptor resolveTag(String tag) throws IOException {
    Optional<Descriptor> found = findTag(tag);
    if (found.isPresent()) {
      return found.get();
    }
    List<String> tags = new ArrayList<>();
    for (Descriptor d : index().manifests()) {
      String name = d.annotation(MediaTypes.REF_NAME);
      if (name != null) {
        tags.add(name);
      }
    }
    throw new OciException(
        "tag '"
            + tag
            + "' does not exist in "
            + root
            + " (tags: "
            + (tags.isEmpty() ? "none" : String.join(", ", tags))
            + ")");
  }

  /** Reads and parses the manifest behind {@code tag}. */
  public ImageManifest manifest(String tag) throws IOException {
    Descriptor d = resolveTag(tag);
    byte[] bytes = readBlob(d);
    return ImageManifest.parse(bytes, "manifest " + d.digest() + " of tag " + tag + " in " + root);
  }

  /**
   * Points {@code tag} at {@code manifest}, replacing an older entry with the same tag. The index
   * is replaced atomically, so it always names complete images. Returns the digest of the other
   * manifest the tag named before, if it named one.
   */
  public Optional<String> tag(String tag, Descriptor manifest) throws IOException {
    synchronized (IN_THIS_JVM) {
      return tagLocked(tag, manifest);
    }
  }

  private Optional<String> tagLocked(String tag, Descriptor manifest) throws IOException {
    try (FileChannel lock =
            FileChannel.open(
                root.resolve(INDEX_LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock held = lock.lock()) {
      return replaceTag(tag, manifest);
    }
  }

  private Optional<String> replaceTag(String tag, Descriptor manifest) throws IOException {
    List<Descriptor> entries = new ArrayList<>();
    String before = null;
    for (Descriptor d : index().manifests()) {
      if (!tag.equals(d.annotation(MediaTypes.REF_NAME))) {
        entries.add(d);
      } else if (!d.digest().equals(manifest.digest())) {
        before = d.digest();
      }
    }
    entries.add(manifest.withAnnotations(Map.of(MediaTypes.REF_NAME, tag)));
    writeAtomically(root.resolve("index.json"), Json.write(new ImageIndex(2, null, entries, null)));
    return Optional.ofNullable(before);
  }

  /**
   * Writes {@code data} to {@code target} through a temporary file and a rename. A failure (a full
   * disk, say) names {@code target}: the error of a write names no file.
   */
  public static void writeAtomically(Path target, byte[] data) throws IOException {
    try {
      Path dir = target.toAbsolutePath().getParent();
      Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
      try {
        Files.write(tmp, data);
        Files.setPosixFilePermissions(tmp, READABLE);
        move(tmp, target);
      } finally {
        Files.deleteIfExists(tmp);
      }
    } catch (IOException e) {
      String reason =
          e instanceof FileSystemException f && f.getReason() != null
              ? f.getReason()
              : e.getMessage();
      throw new IOException("cannot write " + target + ": " + reason, e);
    }
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }
}
