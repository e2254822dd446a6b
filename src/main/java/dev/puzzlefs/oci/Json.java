package dev.puzzlefs.oci;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** Canonical JSON: sorted keys, no insignificant whitespace, so equal values hash equally. */
public final class Json {
  private static final ObjectMapper MAPPER =
      JsonMapper.builder()
          .enable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
          .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          // One document per file: what follows it (junk, a second document) is damage.
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private Json() {}

  /** The canonical UTF-8 bytes of {@code value}. */
  public static byte[] write(Object value) {
    try {
      return MAPPER.writeValueAsBytes(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize " + value.getClass().getSimpleName(), e);
    }
  }

  /** {@code text} with each control character (a NUL, a newline, an escape) shown as '?'. */
  private static String printable(String text) {
    StringBuilder out = new StringBuilder(text.length());
    text.codePoints().forEach(c -> out.appendCodePoint(Character.isISOControl(c) ? '?' : c));
    return out.toString();
  }

  /**
   * Parses {@code bytes} as a {@code type}; {@code what} names the source in the error, for example
   * the file path.
   */
  public static <T> T read(byte[] bytes, Class<T> type, String what) throws OciException {
    try {
      T value = MAPPER.readValue(bytes, type);
      if (value == null) {
        throw new OciException(what + ": empty JSON document");
      }
      return value;
    } catch (JsonProcessingException e) {
      String head = new String(bytes, 0, Math.min(bytes.length, 60), StandardCharsets.UTF_8);
      throw new OciException(
          what
              + " is not a valid "
              + type.getSimpleName()
              + " ("
              + e.getOriginalMessage()
              + "; starts with: "
              + printable(head)
              + ")",
          e);
    } catch (IOException e) {
      throw new OciException(what + ": " + e.getMessage(), e);
    }
  }
}
