package dev.puzzlefs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.oci.OciException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A chunk pack's plan and the checks a reader makes of a pack before using it. */
class ChunkPackTest {
  private static final Digest IMAGE = Digest.sha256("image".getBytes(StandardCharsets.UTF_8));
  private static final Digest PACK = Digest.sha256("pack".getBytes(StandardCharsets.UTF_8));

  private static Digest chunk(int i) {
    return Digest.sha256(("chunk " + i).getBytes(StandardCharsets.UTF_8));
  }

  private static Descriptor chunkDescriptor(int i, long size) {
    return Descriptor.of(MediaTypes.FILEDATA, chunk(i), size);
  }

  private static Map<Digest, Long> sizes(long... sizes) {
    Map<Digest, Long> out = new LinkedHashMap<>();
    for (int i = 0; i < sizes.length; i++) {
      out.put(chunk(i), sizes[i]);
    }
    return out;
  }

  private static ChunkPack.PackManifest manifest(long... segmentSizes) {
    List<Descriptor> layers = new ArrayList<>();
    layers.add(Descriptor.of(ChunkPack.INDEX_MEDIA_TYPE, chunk(100), 10));
    for (int i = 0; i < segmentSizes.length; i++) {
      layers.add(Descriptor.of(ChunkPack.SEGMENT_MEDIA_TYPE, chunk(200 + i), segmentSizes[i]));
    }
    return new ChunkPack.PackManifest(
        2,
        MediaTypes.MANIFEST,
        ChunkPack.ARTIFACT_TYPE,
        null,
        layers,
        Descriptor.of(MediaTypes.MANIFEST, IMAGE, 1));
  }

  private static byte[] index(int version, List<List<Integer>> segments) {
    List<List<String>> out = new ArrayList<>();
    for (List<Integer> s : segments) {
      out.add(s.stream().map(i -> chunk(i).toString()).toList());
    }
    return Json.write(new ChunkPack.Index(version, out));
  }

  @Test
  void plan_cutsSegmentsAtTheLimit_andKeepsAnOversizedChunkWhole() {
    List<Descriptor> chunks =
        List.of(
            chunkDescriptor(0, 40),
            chunkDescriptor(1, 60),
            chunkDescriptor(2, 1),
            chunkDescriptor(3, 250),
            chunkDescriptor(4, 10));
    List<List<Descriptor>> plan = ChunkPack.plan(chunks, 100);
    assertEquals(
        List.of(
            List.of(chunks.get(0), chunks.get(1)),
            List.of(chunks.get(2)),
            List.of(chunks.get(3)),
            List.of(chunks.get(4))),
        plan);
  }

  @Test
  void parse_locatesEveryChunk_inItsSegmentAtTheSumOfTheSizesBefore() throws Exception {
    ChunkPack pack =
        ChunkPack.parse(
            IMAGE,
            sizes(10, 20, 30, 40),
            PACK,
            manifest(30, 70),
            index(1, List.of(List.of(0, 1), List.of(2, 3))));
    assertEquals(4, pack.chunks());
    assertEquals(2, pack.segments());
    assertEquals(new ChunkPack.Location(chunk(200), 10, 20), pack.locate(chunk(1)));
    assertEquals(new ChunkPack.Location(chunk(201), 0, 30), pack.locate(chunk(2)));
    assertEquals(new ChunkPack.Location(chunk(201), 30, 40), pack.locate(chunk(3)));
    assertNull(pack.locate(chunk(9)));
  }

  private static String refused(ChunkPack.PackManifest manifest, byte[] index, long... sizes) {
    OciException e =
        assertThrows(
            OciException.class, () -> ChunkPack.parse(IMAGE, sizes(sizes), PACK, manifest, index));
    assertTrue(
        e.getMessage().contains("chunk pack " + PACK + " of image " + IMAGE), e.getMessage());
    return e.getMessage();
  }

  @Test
  void parse_refusesAPackThatDoesNotFitTheImage() {
    assertTrue(
        refused(manifest(30), index(1, List.of(List.of(0, 5))), 10, 20)
            .contains("it packs " + chunk(5) + ", which the image does not list"));
    assertTrue(
        refused(manifest(30, 10), index(1, List.of(List.of(0, 1), List.of(0))), 10, 20)
            .contains("it packs " + chunk(0) + " twice"));
    assertTrue(
        refused(manifest(31), index(1, List.of(List.of(0, 1))), 10, 20)
            .contains("is 31 bytes but its chunks add up to 30"));
    assertTrue(
        refused(manifest(30, 5), index(1, List.of(List.of(0, 1))), 10, 20)
            .contains("its index lists 1 segments but its manifest has 2"));
    assertTrue(
        refused(manifest(30), index(2, List.of(List.of(0, 1))), 10, 20)
            .contains("index version 2, expected 1"));
    assertTrue(
        refused(manifest(30), "{\"segments\":".getBytes(StandardCharsets.UTF_8), 10, 20)
            .contains("is not a valid Index"));
    // Nulls a hostile index or manifest may hold are refused by name, not with a
    // NullPointerException's message.
    assertTrue(
        refused(
                manifest(30),
                "{\"segments\":[null],\"version\":1}".getBytes(StandardCharsets.UTF_8),
                10,
                20)
            .contains("segment 1 of its index is null"));
    ChunkPack.PackManifest nullLayer = manifest(30);
    nullLayer.layers().set(1, null);
    assertTrue(
        refused(nullLayer, index(1, List.of(List.of(0, 1))), 10, 20).contains("layer 1 is null"));
  }

  private static byte[] indexWithPrefetch(String prefetch) {
    return ("{\"segments\":[[\""
            + chunk(0)
            + "\",\""
            + chunk(1)
            + "\"]],\"version\":1,\"prefetch\":"
            + prefetch
            + "}")
        .getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void parse_publishedPrefetchList_inItsOrder_andNoneWithoutOne() throws Exception {
    ChunkPack pack =
        ChunkPack.parse(
            IMAGE,
            sizes(10, 20, 30),
            PACK,
            manifest(30),
            indexWithPrefetch("[\"" + chunk(2) + "\",\"" + chunk(0) + "\"]"));
    assertEquals(List.of(chunk(2), chunk(0)), pack.prefetch(), "chunk 2 is in no segment: fine");
    ChunkPack none =
        ChunkPack.parse(IMAGE, sizes(10, 20), PACK, manifest(30), index(1, List.of(List.of(0, 1))));
    assertEquals(List.of(), none.prefetch());
  }

  @Test
  void parse_refusesAPrefetchListThatDoesNotFitTheImage() {
    assertTrue(
        refused(manifest(30), indexWithPrefetch("[\"" + chunk(7) + "\"]"), 10, 20)
            .contains("its prefetch list names " + chunk(7) + ", which the image does not list"));
    assertTrue(
        refused(manifest(30), indexWithPrefetch("[null]"), 10, 20)
            .contains("its prefetch list holds a null"));
    assertTrue(
        refused(manifest(30), indexWithPrefetch("[\"sha256:abc\"]"), 10, 20)
            .contains("not 64 lowercase hex characters: abc"));
  }

  @Test
  void parse_ofGarbage_quotesItsStartWithoutControlCharacters() {
    byte[] garbage = "\u0000\u001b[2J{\n oops".getBytes(StandardCharsets.UTF_8);
    String message = refused(manifest(30), garbage, 10, 20);
    assertTrue(message.contains("starts with: ??[2J{? oops"), message);
  }

  @Test
  void referrersTag_isTheDistributionSpecsFallbackTag() {
    assertEquals("sha256-" + IMAGE.hex(), ChunkPack.referrersTag(IMAGE));
  }
}
