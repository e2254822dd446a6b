package dev.puzzlefs.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.ext.web.client.HttpResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;

/**
 * An operation got an HTTP status it does not handle itself. Only {@link RegistryClient} sees this:
 * it decides whether to retry and which public exception to report.
 */
final class UnexpectedStatus extends Exception {
  private static final long serialVersionUID = 1L;
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private final int status;
  private final String detail;
  private final String retryAfter;
  private final String authenticate;

  private UnexpectedStatus(int status, String detail, String retryAfter, String authenticate) {
    super("HTTP " + status + (detail.isEmpty() ? "" : " (" + detail + ")"), null, false, false);
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
    this.authenticate = authenticate;
  }

  /** The status of {@code response}, with the registry's error text from {@code body}. */
  static UnexpectedStatus of(HttpResponse<?> response, byte[] body) {
    return new UnexpectedStatus(
        response.statusCode(),
        errorText(body),
        response.getHeader("Retry-After"),
        response.getHeader("WWW-Authenticate"));
  }

  /** The status of {@code response}, with the registry's error text from {@code body}. */
  static UnexpectedStatus of(HttpClientResponse response, byte[] body) {
    return new UnexpectedStatus(
        response.statusCode(),
        errorText(body),
        response.getHeader("Retry-After"),
        response.getHeader("WWW-Authenticate"));
  }

  int status() {
    return status;
  }

  /**
   * The wait the Retry-After header asks for in milliseconds (a number of seconds, or an HTTP date
   * compared with {@code nowEpochMillis}), or -1 when absent or unreadable.
   */
  long retryAfterMillis(long nowEpochMillis) {
    if (retryAfter == null) {
      return -1;
    }
    String value = retryAfter.trim();
    try {
      return Math.min(Long.MAX_VALUE / 2000, Math.max(0, Long.parseLong(value))) * 1000;
    } catch (NumberFormatException e) {
      // Not seconds: an HTTP date, perhaps.
    }
    try {
      long at = ZonedDateTime.parse(value, DateTimeFormatter.RFC_1123_DATE_TIME).toEpochSecond();
      return Math.max(0, at * 1000 - nowEpochMillis);
    } catch (DateTimeParseException e) {
      return -1;
    }
  }

  /** The WWW-Authenticate header, or null. */
  String authenticate() {
    return authenticate;
  }

  /** "CODE: message" of the first entry of an OCI error body, else a short text prefix. */
  private static String errorText(byte[] body) {
    if (body == null || body.length == 0) {
      return "";
    }
    try {
      JsonNode first = MAPPER.readTree(body).path("errors").path(0);
      if (first.isObject()) {
        return first.path("code").asText("") + ": " + first.path("message").asText("");
      }
    } catch (IOException e) {
      // Not JSON: fall through to the raw text.
    }
    String text = new String(body, 0, Math.min(body.length, 120), StandardCharsets.UTF_8);
    return text.replaceAll("\\s+", " ").trim();
  }
}
