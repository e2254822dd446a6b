package dev.puzzlefs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.puzzlefs.format.Digest;
import dev.puzzlefs.format.DirEntry;
import dev.puzzlefs.format.FileChunk;
import dev.puzzlefs.format.Inode;
import dev.puzzlefs.format.InodeKind;
import dev.puzzlefs.reader.ChunkSource;
import dev.puzzlefs.reader.Image;
import dev.puzzlefs.registry.ChunkPack;
import dev.puzzlefs.registry.ImageReference;
import dev.puzzlefs.registry.RegistryClient;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code puzzlefs inspect IMAGE}: what an image holds and how it is stored, from its metadata only
 * (the manifest and the rootfs blob; no chunk is read).
 */
@Command(
    mixinStandardHelpOptions = true,
    name = "inspect",
    description =
        "Show what an image holds and how it is stored: layers, inodes and files, chunks "
            + "(count, min/avg/max size), bytes stored and uncompressed, the compression ratio, "
            + "chunks shared with another tag, and a listing of paths. Reads the metadata only, "
            + "never a chunk.",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs inspect images/ v2 --compare v1",
      "  puzzlefs inspect --files oci:images/:v2",
      "  puzzlefs inspect --json --plain-http docker://127.0.0.1:5000/app | jq .chunks"
    })
final class InspectCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(
      arity = "1..2",
      paramLabel = "IMAGE",
      hideParamSyntax = true,
      description = "OCI_DIR TAG, oci:OCI_DIR[:TAG] or docker://HOST[:PORT]/REPO[:TAG]")
  List<String> args;

  @Option(
      names = "--compare",
      paramLabel = "TAG",
      description =
          "count the chunks this image shares with the image tagged TAG in the same place")
  String compareTag;

  @Option(names = "--files", description = "list every path with its size and chunk count")
  boolean files;

  @Option(names = "--json", description = "print one JSON object (for scripts) instead of text")
  boolean json;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    ImageArgs image = ImageArgs.parse(spec.commandLine(), args, 0, "");
    if (compareTag != null) {
      try {
        Tags.check(compareTag);
      } catch (IllegalArgumentException e) {
        throw new picocli.CommandLine.ParameterException(
            spec.commandLine(), "--compare " + e.getMessage());
      }
    }
    Map<String, Object> report;
    if (image.remote()) {
      ImageReference ref = image.reference();
      try (RegistryClient client = registry.client(ref, Config.load(configFile))) {
        OpenedImage.Metadata meta = OpenedImage.remoteMetadata(ref, client);
        OpenedImage.Metadata other = null;
        if (compareTag != null) {
          ImageReference otherRef =
              ImageReference.parse(
                  ImageReference.SCHEME
                      + ref.registry()
                      + "/"
                      + ref.repository()
                      + ":"
                      + compareTag);
          other = OpenedImage.remoteMetadata(otherRef, client);
        }
        report = report(image.display(), meta, other);
        report.put("chunkPack", packReport(client, ref, meta));
      }
    } else {
      OpenedImage.Metadata meta = OpenedImage.localMetadata(image.layout(), image.tag());
      OpenedImage.Metadata other =
          compareTag == null ? null : OpenedImage.localMetadata(image.layout(), compareTag);
      report = report(image.display(), meta, other);
    }
    if (json) {
      System.out.println(
          new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
    } else {
      printText(report, System.out);
    }
    return 0;
  }

  /** The facts, in the order the text shows them; JSON gets the same keys. */
  private Map<String, Object> report(
      String name, OpenedImage.Metadata meta, OpenedImage.Metadata other) throws IOException {
    Image merged = Image.open(meta.rootfs(), NO_CHUNKS, Duration.ofSeconds(1));
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("image", name);
    r.put("manifest", meta.manifestDigest());
    r.put("manifestBytes", meta.manifestSize());
    r.put("rootfsBlob", meta.rootfsBlob().digest());
    r.put("rootfsBytes", meta.rootfsBlob().size());
    r.put("formatVersion", meta.rootfs().manifestVersion());
    r.put("layers", meta.rootfs().layers().size());
    r.put("manifestLayers", meta.manifest().layers() == null ? 0 : meta.manifest().layers().size());

    Map<InodeKind, Long> kinds = new EnumMap<>(InodeKind.class);
    for (long ino : merged.inos()) {
      kinds.merge(merged.inode(ino).kind(), 1L, Long::sum);
    }
    Map<String, Object> inodes = new LinkedHashMap<>();
    inodes.put("total", merged.inodeCount());
    kinds.forEach((k, n) -> inodes.put(k.name().toLowerCase(Locale.ROOT), n));
    r.put("inodes", inodes);
    r.put("files", merged.fileCount());
    r.put("fileBytes", merged.totalBytes());

    Map<Digest, Long> stored = OpenedImage.layerSizes(meta.manifest());
    Map<Digest, Long> uncompressed = chunkLengths(meta);
    long storedTotal = 0;
    long plainTotal = 0;
    long min = Long.MAX_VALUE;
    long max = 0;
    for (Map.Entry<Digest, Long> e : uncompressed.entrySet()) {
      long s = stored.getOrDefault(e.getKey(), 0L);
      storedTotal += s;
      plainTotal += e.getValue();
      min = Math.min(min, s);
      max = Math.max(max, s);
    }
    int n = uncompressed.size();
    Map<String, Object> chunks = new LinkedHashMap<>();
    chunks.put("count", n);
    chunks.put("minBytes", n == 0 ? 0 : min);
    chunks.put("avgBytes", n == 0 ? 0 : storedTotal / n);
    chunks.put("maxBytes", max);
    chunks.put("storedBytes", storedTotal);
    chunks.put("uncompressedBytes", plainTotal);
    chunks.put(
        "compressionRatio",
        storedTotal == 0 ? 1.0 : Math.round(100.0 * plainTotal / storedTotal) / 100.0);
    r.put("chunks", chunks);

    if (other != null) {
      Set<Digest> theirs = chunkLengths(other).keySet();
      long sharedCount = 0;
      long sharedBytes = 0;
      for (Digest d : uncompressed.keySet()) {
        if (theirs.contains(d)) {
          sharedCount++;
          sharedBytes += stored.getOrDefault(d, 0L);
        }
      }
      Map<String, Object> shared = new LinkedHashMap<>();
      shared.put("tag", compareTag);
      shared.put("manifest", other.manifestDigest());
      shared.put("chunks", sharedCount);
      shared.put("storedBytes", sharedBytes);
      shared.put("ofChunks", n);
      r.put("shared", shared);
    }
    if (files) {
      r.put("paths", listing(merged));
    }
    return r;
  }

  /**
   * The image's chunk pack in its registry: its manifest, segments and chunks; {@code "none"}; or
   * why it cannot be used.
   */
  private static Object packReport(
      RegistryClient client, ImageReference ref, OpenedImage.Metadata meta)
      throws InterruptedException {
    ChunkPack pack;
    try {
      pack =
          Futures.await(
              client.findChunkPack(
                  ref.repository(),
                  Digest.parse(meta.manifestDigest()),
                  OpenedImage.layerSizes(meta.manifest())),
              "search for the chunk pack of " + ref);
    } catch (IOException e) {
      return "unusable: " + e.getMessage();
    }
    if (pack == null) {
      return "none";
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("manifest", pack.manifest().toString());
    out.put("segments", pack.segments());
    out.put("chunks", pack.chunks());
    return out;
  }

  /** Each chunk an inode of any layer uses, with its uncompressed length as the inodes see it. */
  private static Map<Digest, Long> chunkLengths(OpenedImage.Metadata meta) {
    Map<Digest, Long> out = new HashMap<>();
    for (List<Inode> layer : meta.rootfs().layers()) {
      for (Inode inode : layer) {
        if (inode.chunks() != null) {
          for (FileChunk c : inode.chunks()) {
            out.merge(c.blob(), c.offset() + c.len(), Math::max);
          }
        }
      }
    }
    return out;
  }

  /** Every path of the merged view in tree order, with its kind, size and chunk count. */
  private static List<Map<String, Object>> listing(Image image) throws IOException {
    List<Map<String, Object>> out = new ArrayList<>();
    Deque<Object[]> stack = new ArrayDeque<>();
    stack.push(new Object[] {Image.ROOT_INO, "/"});
    while (!stack.isEmpty()) {
      Object[] top = stack.pop();
      long ino = (Long) top[0];
      String path = (String) top[1];
      Inode inode = image.inode(ino);
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("path", path);
      row.put("type", inode.kind().name().toLowerCase(Locale.ROOT));
      row.put("size", image.size(ino));
      row.put("chunks", inode.chunks() == null ? 0 : inode.chunks().size());
      out.add(row);
      if (inode.kind() == InodeKind.DIR) {
        List<DirEntry> entries = image.entries(ino);
        for (int i = entries.size() - 1; i >= 0; i--) {
          DirEntry e = entries.get(i);
          String name = new String(e.name(), StandardCharsets.UTF_8);
          stack.push(new Object[] {e.ino(), path.equals("/") ? "/" + name : path + "/" + name});
        }
      }
    }
    return out;
  }

  @SuppressWarnings("unchecked")
  private static void printText(Map<String, Object> r, PrintStream out) {
    Map<String, Object> inodes = (Map<String, Object>) r.get("inodes");
    Map<String, Object> chunks = (Map<String, Object>) r.get("chunks");
    out.printf("image:        %s%n", r.get("image"));
    out.printf("manifest:     %s (%s bytes)%n", r.get("manifest"), r.get("manifestBytes"));
    out.printf(
        "rootfs blob:  %s (%s), format version %s%n",
        r.get("rootfsBlob"), Progress.bytes((Long) r.get("rootfsBytes")), r.get("formatVersion"));
    out.printf(
        "layers:       %s puzzlefs layer(s) in %s manifest layer blobs%n",
        r.get("layers"), r.get("manifestLayers"));
    StringBuilder kinds = new StringBuilder();
    inodes.forEach(
        (k, v) -> {
          if (!k.equals("total")) {
            kinds.append(kinds.length() == 0 ? "" : ", ").append(v).append(' ').append(k);
          }
        });
    out.printf("inodes:       %s (%s)%n", inodes.get("total"), kinds);
    out.printf(
        "files:        %s regular files, %s%n",
        r.get("files"), Progress.bytes((Long) r.get("fileBytes")));
    out.printf(
        "chunks:       %s, stored size min %s, avg %s, max %s%n",
        chunks.get("count"),
        Progress.bytes(((Number) chunks.get("minBytes")).longValue()),
        Progress.bytes(((Number) chunks.get("avgBytes")).longValue()),
        Progress.bytes(((Number) chunks.get("maxBytes")).longValue()));
    out.printf(
        "stored:       %s of chunks (%s uncompressed), compression ratio %s%n",
        Progress.bytes((Long) chunks.get("storedBytes")),
        Progress.bytes((Long) chunks.get("uncompressedBytes")),
        chunks.get("compressionRatio"));
    Object pack = r.get("chunkPack");
    if (pack instanceof Map<?, ?> p) {
      out.printf(
          "chunk pack:   %s, %s chunks in %s segment(s)%n",
          p.get("manifest"), p.get("chunks"), p.get("segments"));
    } else if (pack != null) {
      out.printf("chunk pack:   %s%n", pack);
    }
    Map<String, Object> shared = (Map<String, Object>) r.get("shared");
    if (shared != null) {
      out.printf(
          "shared:       %s of %s chunks (%s) also in %s%n",
          shared.get("chunks"),
          shared.get("ofChunks"),
          Progress.bytes((Long) shared.get("storedBytes")),
          shared.get("tag"));
    }
    List<Map<String, Object>> paths = (List<Map<String, Object>>) r.get("paths");
    if (paths != null) {
      out.printf("%nSIZE        CHUNKS  TYPE  PATH%n");
      for (Map<String, Object> p : paths) {
        out.printf(
            "%-11s %6s  %-4s  %s%n", p.get("size"), p.get("chunks"), p.get("type"), p.get("path"));
      }
    }
  }

  /** Inspect reads no chunk; a read would be a bug. */
  private static final ChunkSource NO_CHUNKS =
      blob ->
          CompletableFuture.failedFuture(
              new IllegalStateException("inspect reads no chunks, yet " + blob + " was asked for"));
}
