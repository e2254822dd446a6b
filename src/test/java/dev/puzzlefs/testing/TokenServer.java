package dev.puzzlefs.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A token server for a {@link TestRegistry} configured with {@code auth: token}: the JDK's HTTP
 * server on 127.0.0.1 issuing RS256 JWTs with the access asked for, to one user with one password,
 * signed by a key whose self-signed certificate (made by {@code openssl}) the registry trusts and
 * that each token carries in its {@code x5c} header.
 *
 * <p>{@link #issueExpired(int)} makes the next tokens expired already, beyond the registry's minute
 * of leeway, while telling the client they last five minutes: the registry then refuses them, as it
 * would a token that expired or was revoked early.
 */
public final class TokenServer implements AutoCloseable {
  /** The {@code service} the registry is configured with. */
  public static final String SERVICE = "puzzlefs-test-registry";

  /** The {@code issuer} the registry trusts. */
  public static final String ISSUER = "puzzlefs-test-issuer";

  private static final ObjectMapper MAPPER = new ObjectMapper();

  private final HttpServer server;
  private final Path certificate;
  private final PrivateKey key;
  private final String x5c;
  private final String user;
  private final String password;
  private final AtomicInteger expiredToIssue = new AtomicInteger();
  private final List<String> requests = new CopyOnWriteArrayList<>();
  private final List<String> issued = new CopyOnWriteArrayList<>();

  private TokenServer(Path dir, String user, String password)
      throws IOException, InterruptedException, GeneralSecurityException {
    this.user = user;
    this.password = password;
    this.certificate = dir.resolve("token-cert.pem");
    Path keyFile = dir.resolve("token-key.pem");
    Path openssl = Path.of("/usr/bin/openssl");
    if (!Files.isExecutable(openssl)) {
      throw new IllegalStateException(openssl + " is missing: .ci/setup-debian installs it");
    }
    Processes.run(
        60,
        openssl.toString(),
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        keyFile.toString(),
        "-out",
        certificate.toString(),
        "-subj",
        "/CN=puzzlefs-test-token-signer",
        "-days",
        "2");
    this.key = readKey(keyFile);
    X509Certificate cert =
        (X509Certificate)
            CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(Files.readAllBytes(certificate)));
    this.x5c = Base64.getEncoder().encodeToString(cert.getEncoded());
    this.server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/token", this::handle);
    server.start();
  }

  /** Starts a token server for {@code user}, keeping its key and certificate in {@code dir}. */
  public static TokenServer start(Path dir, String user, String password) throws Exception {
    return new TokenServer(dir, user, password);
  }

  /** The {@code auth:} section that makes a {@link TestRegistry} trust this server. */
  public String registryAuth() {
    return String.join(
        "\n",
        "auth:",
        "  token:",
        "    realm: " + realm(),
        "    service: " + SERVICE,
        "    issuer: " + ISSUER,
        "    rootcertbundle: " + certificate,
        "");
  }

  /** {@code http://127.0.0.1:PORT/token}. */
  public String realm() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/token";
  }

  /** Makes the next {@code count} tokens already expired (while claiming five minutes). */
  public void issueExpired(int count) {
    expiredToIssue.set(count);
  }

  /** The query of every token request so far. */
  public List<String> requests() {
    return List.copyOf(requests);
  }

  /** Every token issued so far. */
  public List<String> issued() {
    return List.copyOf(issued);
  }

  @Override
  public void close() {
    server.stop(0);
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      String query = exchange.getRequestURI().getRawQuery();
      requests.add(query == null ? "" : query);
      String expected =
          "Basic "
              + Base64.getEncoder()
                  .encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
      if (!expected.equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
        send(exchange, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"who?\"}]}");
        return;
      }
      List<String> scopes = new ArrayList<>();
      String service = null;
      for (String pair : (query == null ? "" : query).split("&")) {
        int eq = pair.indexOf('=');
        if (eq < 0) {
          continue;
        }
        String name = pair.substring(0, eq);
        String value = URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
        if (name.equals("scope")) {
          scopes.add(value);
        } else if (name.equals("service")) {
          service = value;
        }
      }
      if (!SERVICE.equals(service)) {
        send(exchange, 400, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"unknown service\"}]}");
        return;
      }
      boolean expired = expiredToIssue.getAndUpdate(n -> Math.max(0, n - 1)) > 0;
      String token = token(scopes, expired);
      issued.add(token);
      ObjectNode answer = MAPPER.createObjectNode();
      answer.put("token", token);
      answer.put("expires_in", 300);
      send(exchange, 200, MAPPER.writeValueAsString(answer));
    } catch (GeneralSecurityException e) {
      throw new IOException(e);
    }
  }

  private String token(List<String> scopes, boolean expired) throws GeneralSecurityException {
    long now = System.currentTimeMillis() / 1000;
    ObjectNode header = MAPPER.createObjectNode();
    header.put("typ", "JWT");
    header.put("alg", "RS256");
    header.putArray("x5c").add(x5c);
    ObjectNode claims = MAPPER.createObjectNode();
    claims.put("iss", ISSUER);
    claims.put("sub", user);
    claims.put("aud", SERVICE);
    claims.put("exp", expired ? now - 600 : now + 300);
    claims.put("nbf", expired ? now - 900 : now - 10);
    claims.put("iat", expired ? now - 900 : now);
    claims.put("jti", Long.toString(System.nanoTime()));
    ArrayNode access = claims.putArray("access");
    for (String scope : scopes) {
      int first = scope.indexOf(':');
      int last = scope.lastIndexOf(':');
      if (first < 0 || last <= first) {
        continue;
      }
      ObjectNode entry = access.addObject();
      entry.put("type", scope.substring(0, first));
      entry.put("name", scope.substring(first + 1, last));
      ArrayNode actions = entry.putArray("actions");
      for (String action : scope.substring(last + 1).split(",")) {
        actions.add(action);
      }
    }
    String signingInput = encode(json(header)) + "." + encode(json(claims));
    Signature rsa = Signature.getInstance("SHA256withRSA");
    rsa.initSign(key);
    rsa.update(signingInput.getBytes(StandardCharsets.US_ASCII));
    return signingInput + "." + encode(rsa.sign());
  }

  private static byte[] json(ObjectNode node) {
    try {
      return MAPPER.writeValueAsBytes(node);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String encode(byte[] bytes) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
  }

  private static void send(HttpExchange exchange, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  private static PrivateKey readKey(Path pem) throws IOException, GeneralSecurityException {
    String text = Files.readString(pem, StandardCharsets.US_ASCII);
    if (!text.contains("BEGIN PRIVATE KEY")) {
      throw new IllegalStateException("openssl did not write a PKCS#8 key to " + pem);
    }
    String base64 = text.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    return KeyFactory.getInstance("RSA")
        .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(base64)));
  }
}
