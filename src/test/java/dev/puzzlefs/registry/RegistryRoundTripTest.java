package dev.puzzlefs.registry;

import static dev.puzzlefs.testing.Futures.await;
import static dev.puzzlefs.testing.Futures.failure;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.puzzlefs.format.Digest;
import dev.puzzlefs.oci.Descriptor;
import dev.puzzlefs.oci.ImageIndex;
import dev.puzzlefs.oci.ImageManifest;
import dev.puzzlefs.oci.Json;
import dev.puzzlefs.oci.MediaTypes;
import dev.puzzlefs.testing.TestImages;
import dev.puzzlefs.testing.TestRegistry;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pushes and pulls against a real distribution registry process. */
class RegistryRoundTripTest {
  private static TestRegistry registry;
  private static Vertx vertx;

  @TempDir Path tmp;
  private RegistryClient client;

  @BeforeAll
  static void startRegistry() throws Exception {
    assertTrue(TestRegistry.available(), TestRegistry.BINARY + " is not installed");
    registry = TestRegistry.launch();
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stopRegistry() throws Exception {
    if (vertx != null) {
      await(vertx.close());
    }
    if (registry != null) {
      registry.close();
    }
  }

  @BeforeEach
  void newClient() {
    client = new RegistryClient(vertx, registry.hostPort(), options());
  }

  @AfterEach
  void closeClient() {
    client.close();
  }

  private static RegistryClientOptions options() {
    return new RegistryClientOptions()
        .plainHttp(true)
        .requestTimeout(Duration.ofSeconds(20))
        .initialBackoff(Duration.ofMillis(50));
  }

  private ImageReference ref(String repoAndTag) {
    return ImageReference.parse("docker://" + registry.hostPort() + "/" + repoAndTag);
  }

  @Test
  void push_newImage_uploadsEveryBlobThenSkipsThemAll() throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v1", 12, 40_000, 1);
    ImageReference target = ref("roundtrip/push:v1");

    PushSummary first = await(new ImagePusher(client).push(image.layout(), "v1", target));

    assertEquals(image.blobs().size(), first.uploaded());
    assertEquals(0, first.skipped());
    assertEquals(image.blobBytes(), first.bytesUploaded());
    assertEquals(image.manifestDigest(), first.manifestDigest());
    assertEquals(image.blobs().size(), client.blobsPushed());

    long pushedBefore = client.blobsPushed();
    PushSummary second = await(new ImagePusher(client).push(image.layout(), "v1", target));

    assertEquals(0, second.uploaded());
    assertEquals(image.blobs().size(), second.skipped());
    assertEquals(0, second.bytesUploaded());
    assertEquals(pushedBefore, client.blobsPushed());
    assertEquals(image.manifestDigest(), second.manifestDigest());
  }

  @Test
  void fetchManifest_pushedImage_returnsSameManifestAndBlobs() throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v2", 6, 20_000, 2);
    ImageReference target = ref("roundtrip/pull:v2");
    await(new ImagePusher(client).push(image.layout(), "v2", target));
    ImagePuller puller = new ImagePuller(client);

    PulledImage pulled = await(puller.fetchManifest(target));

    assertEquals(image.manifestDigest(), pulled.digest());
    assertArrayEquals(image.layout().readBlob(image.manifestDigest()), pulled.bytes());
    assertEquals(image.layout().manifest("v2"), pulled.manifest());
    assertEquals(target.withDigest(image.manifestDigest()), pulled.reference());
    for (Map.Entry<Digest, byte[]> blob : image.blobs().entrySet()) {
      assertArrayEquals(blob.getValue(), await(puller.fetchBlob("roundtrip/pull", blob.getKey())));
    }
    assertEquals(image.blobs().size(), client.blobsFetched());
    assertEquals(image.blobBytes(), client.bytesFetched());
  }

  @Test
  void fetchManifest_byDigest_returnsSameManifest() throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v3", 2, 1000, 3);
    await(new ImagePusher(client).push(image.layout(), "v3", ref("roundtrip/digest:v3")));

    PulledImage pulled =
        await(
            new ImagePuller(client)
                .fetchManifest(
                    ImageReference.parse(
                        "docker://"
                            + registry.hostPort()
                            + "/roundtrip/digest@"
                            + image.manifestDigest())));

    assertEquals(image.manifestDigest(), pulled.digest());
  }

  @Test
  void fetchManifest_index_picksLinuxAmd64Manifest() throws Exception {
    TestImages.Image arm = TestImages.create(tmp.resolve("oci"), "arm", 2, 1000, 4);
    TestImages.Image amd = TestImages.create(tmp.resolve("oci"), "amd", 2, 1000, 5);
    await(new ImagePusher(client).push(arm.layout(), "arm", ref("roundtrip/index:arm")));
    await(new ImagePusher(client).push(amd.layout(), "amd", ref("roundtrip/index:amd")));
    byte[] index =
        Json.write(
            new ImageIndex(
                2,
                MediaTypes.INDEX,
                List.of(platform(arm, "arm64"), platform(amd, "amd64")),
                null));
    await(client.pushManifest("roundtrip/index", "multi", index, MediaTypes.INDEX));

    PulledImage pulled = await(new ImagePuller(client).fetchManifest(ref("roundtrip/index:multi")));

    assertEquals(amd.manifestDigest(), pulled.digest());
  }

  private static Descriptor platform(TestImages.Image image, String arch) throws Exception {
    long size = image.layout().readBlob(image.manifestDigest()).length;
    return Descriptor.of(MediaTypes.MANIFEST, image.manifestDigest(), size)
        .withPlatform(new Descriptor.Platform(arch, "linux"));
  }

  @Test
  void hasBlob_missingThenPushed_answersFalseThenTrue() throws Exception {
    byte[] data = TestImages.randomBytes(new java.util.Random(6), 3000);
    Digest digest = Digest.sha256(data);

    assertFalse(await(client.hasBlob("roundtrip/has", digest)));
    await(client.pushBlob("roundtrip/has", digest, data));
    assertTrue(await(client.hasBlob("roundtrip/has", digest)));
    assertArrayEquals(data, await(client.pullBlob("roundtrip/has", digest)));
  }

  @Test
  void pullBlob_manyBuffersLong_arrivesWholeAfterHopsBetweenThreads() throws Exception {
    // A body that arrives in many network buffers; pulled many times at once so the body
    // handlers are attached on other threads than the one that received the response.
    byte[] data = TestImages.randomBytes(new java.util.Random(7), 3 << 20);
    Digest digest = Digest.sha256(data);
    await(client.pushBlob("roundtrip/large", digest, data));
    java.util.List<io.vertx.core.Future<byte[]>> pulls = new java.util.ArrayList<>();
    for (int i = 0; i < 12; i++) {
      pulls.add(client.pullBlob("roundtrip/large", digest, data.length));
    }
    for (io.vertx.core.Future<byte[]> pull : pulls) {
      assertArrayEquals(data, await(pull));
    }
  }

  @Test
  void pushBlob_bytesNotMatchingDigest_isRejectedWithoutRetry() {
    byte[] data = {1, 2, 3, 4};
    Digest claimed = Digest.sha256(new byte[] {9});
    long before = client.requests();

    Throwable e = failure(client.pushBlob("roundtrip/bad", claimed, data));

    UnexpectedResponseException rejected = assertInstanceOf(UnexpectedResponseException.class, e);
    assertEquals(400, rejected.status());
    assertTrue(e.getMessage().contains("DIGEST_INVALID"), e.getMessage());
    assertEquals(2, client.requests() - before); // POST + PUT, once
  }

  @Test
  void pullBlob_unknownDigest_failsWithBlobNotFoundAfterOneRequest() {
    Digest digest = Digest.sha256(new byte[] {1, 2, 3});
    long before = client.requests();

    Throwable e = failure(client.pullBlob("roundtrip/missing", digest));

    BlobNotFoundException notFound = assertInstanceOf(BlobNotFoundException.class, e);
    assertEquals(digest, notFound.digest());
    assertTrue(e.getMessage().contains(digest.toString()), e.getMessage());
    assertTrue(e.getMessage().contains(registry.hostPort() + "/roundtrip/missing"), e.getMessage());
    assertEquals(1, client.requests() - before);
  }

  @Test
  void pullManifest_unknownTag_failsWithManifestNotFound() {
    Throwable e = failure(client.pullManifest("roundtrip/missing", "nope"));

    ManifestNotFoundException notFound = assertInstanceOf(ManifestNotFoundException.class, e);
    assertEquals("nope", notFound.reference());
  }

  @Test
  void push_manifestOfAbsentTag_failsWithClearLayoutError() throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v1", 1, 100, 7);

    Throwable e =
        failure(new ImagePusher(client).push(image.layout(), "nope", ref("roundtrip/x:v1")));

    assertTrue(e.getMessage().contains("tag 'nope' does not exist"), e.getMessage());
  }

  @Test
  void push_manifestOverFourMiB_isRefusedBeforeAnyBlobIsSent() throws Exception {
    TestImages.Image image = TestImages.create(tmp.resolve("oci"), "v1", 1, 100, 7);
    ImageManifest small = image.layout().manifest("v1");
    // An image of 30,000 chunks lists 30,000 layers: about 4.6 MB of manifest.
    List<Descriptor> layers = new ArrayList<>(small.layers());
    for (int i = 0; layers.size() < 30_000; i++) {
      layers.add(
          Descriptor.of(
              MediaTypes.FILEDATA,
              Digest.sha256(("chunk " + i).getBytes(StandardCharsets.UTF_8)),
              65536));
    }
    byte[] big =
        Json.write(
            new ImageManifest(
                small.schemaVersion(), small.mediaType(), small.config(), layers, null));
    assertTrue(big.length > 4 << 20, "the manifest is over 4 MiB: " + big.length);
    Digest digest = image.layout().putBlob(big);
    image.layout().tag("big", Descriptor.of(MediaTypes.MANIFEST, digest, big.length));

    Throwable e =
        failure(new ImagePusher(client).push(image.layout(), "big", ref("roundtrip/big:v1")));

    assertTrue(
        e.getMessage().contains("has a manifest of " + big.length + " bytes (30000 layers"),
        e.getMessage());
    assertTrue(e.getMessage().contains("nothing was pushed"), e.getMessage());
    for (Descriptor layer : small.layers()) {
      assertFalse(await(client.hasBlob("roundtrip/big", layer.digestValue())), layer.digest());
    }
    // The same layout's small image still pushes.
    await(new ImagePusher(client).push(image.layout(), "v1", ref("roundtrip/big:v1")));
  }
}
