package dev.puzzlefs.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.codec.BodyCodec;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Asks a token server for a bearer token, as a registry's {@code Bearer} challenge directs: {@code
 * GET <realm>?service=..&scope=..} with basic authentication when there is a password, or, with an
 * identity token, the OAuth2 form {@code POST <realm>} with {@code grant_type=refresh_token}. The
 * answer's {@code token} (or {@code access_token}) and {@code expires_in} are taken; nothing of the
 * answer goes into messages, as it may hold a token.
 */
final class TokenFetcher implements RegistryOperation<AccessToken> {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final long MAX_ANSWER_BYTES = 1 << 20;
  private static final String CLIENT_ID = "puzzlefs-java";

  private final String registry;
  private final String realm;
  private final String service;
  private final List<String> scopes;
  private final Credentials credentials;

  TokenFetcher(
      String registry, String realm, String service, List<String> scopes, Credentials credentials) {
    this.registry = registry;
    this.realm = realm;
    this.service = service;
    this.scopes = List.copyOf(scopes);
    this.credentials = credentials;
  }

  @Override
  public String description() {
    int query = realm.indexOf('?');
    String where = query < 0 ? realm : realm.substring(0, query);
    return "get a token for " + String.join(" ", scopes) + " on " + registry + " from " + where;
  }

  @Override
  public String scope() {
    return null;
  }

  @Override
  public Future<AccessToken> attempt(RegistryHttp http) {
    DigestingSink sink = new DigestingSink(MAX_ANSWER_BYTES);
    Future<HttpResponse<Void>> sent;
    if (credentials != null && credentials.isIdentityToken()) {
      StringBuilder form = new StringBuilder();
      form.append("grant_type=refresh_token&client_id=").append(CLIENT_ID);
      form.append("&refresh_token=").append(encode(credentials.secret()));
      if (service != null) {
        form.append("&service=").append(encode(service));
      }
      if (!scopes.isEmpty()) {
        form.append("&scope=").append(encode(String.join(" ", scopes)));
      }
      sent =
          http.request(HttpMethod.POST, realm)
              .putHeader("Content-Type", "application/x-www-form-urlencoded")
              .as(BodyCodec.pipe(sink))
              .sendBuffer(Buffer.buffer(form.toString()));
    } else {
      HttpRequest<Buffer> request = http.request(HttpMethod.GET, getUrl());
      if (credentials != null) {
        request.putHeader("Authorization", credentials.basicAuthorization());
      }
      sent = request.as(BodyCodec.pipe(sink)).send();
    }
    return sent.compose(response -> parse(response, sink));
  }

  /** The realm with {@code service}, each {@code scope} and the account added to its query. */
  String getUrl() {
    StringBuilder url = new StringBuilder(realm);
    char separator = realm.indexOf('?') < 0 ? '?' : '&';
    if (service != null) {
      url.append(separator).append("service=").append(encode(service));
      separator = '&';
    }
    for (String scope : scopes) {
      url.append(separator).append("scope=").append(encode(scope));
      separator = '&';
    }
    if (credentials != null && !credentials.username().isEmpty()) {
      url.append(separator).append("account=").append(encode(credentials.username()));
    }
    return url.toString();
  }

  private Future<AccessToken> parse(HttpResponse<?> response, DigestingSink sink) {
    if (response.statusCode() != 200) {
      return Future.failedFuture(UnexpectedStatus.of(response, sink.bytes()));
    }
    if (sink.overflowed()) {
      return failed("the token server's answer is larger than " + MAX_ANSWER_BYTES + " bytes");
    }
    JsonNode answer;
    try {
      answer = MAPPER.readTree(sink.bytes());
    } catch (IOException e) {
      return failed("the token server's answer is not JSON");
    }
    if (answer == null || !answer.isObject()) {
      return failed("the token server's answer is not a JSON object");
    }
    String token = answer.path("token").asText("");
    if (token.isEmpty()) {
      token = answer.path("access_token").asText("");
    }
    if (token.isEmpty()) {
      return failed("the token server's answer has neither 'token' nor 'access_token'");
    }
    long expiresIn = answer.path("expires_in").asLong(AccessToken.DEFAULT_EXPIRES_IN_SECONDS);
    if (expiresIn <= 0) {
      expiresIn = AccessToken.DEFAULT_EXPIRES_IN_SECONDS;
    }
    return Future.succeededFuture(new AccessToken(token, expiresIn));
  }

  private <T> Future<T> failed(String why) {
    return Future.failedFuture(new RegistryException("could not " + description() + ": " + why));
  }

  private static String encode(String value) {
    return URLEncoder.encode(value, StandardCharsets.UTF_8);
  }

  @Override
  public RegistryException notFound(String message) {
    return new RegistryException(message + " (the token server has no such endpoint)");
  }
}
