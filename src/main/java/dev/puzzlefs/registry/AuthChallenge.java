package dev.puzzlefs.registry;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A {@code WWW-Authenticate} challenge: its scheme ({@code basic} or {@code bearer}, lower-cased)
 * and parameters, for example {@code Bearer realm="https://auth.example/token",
 * service="registry.example",scope="repository:a/b:pull"}. Only the first challenge of a header is
 * read; registries send one.
 */
record AuthChallenge(String scheme, Map<String, String> parameters) {
  static final String BASIC = "basic";
  static final String BEARER = "bearer";

  /** The challenge in {@code header}, or null when it is absent or has no scheme. */
  static AuthChallenge parse(String header) {
    if (header == null) {
      return null;
    }
    String text = header.trim();
    int space = 0;
    while (space < text.length() && !Character.isWhitespace(text.charAt(space))) {
      space++;
    }
    String scheme = text.substring(0, space).toLowerCase(Locale.ROOT);
    if (scheme.isEmpty()) {
      return null;
    }
    return new AuthChallenge(scheme, parameters(text.substring(space)));
  }

  /** A parameter (names are case-insensitive), or null. */
  String parameter(String name) {
    return parameters.get(name.toLowerCase(Locale.ROOT));
  }

  boolean isBearer() {
    return BEARER.equals(scheme);
  }

  boolean isBasic() {
    return BASIC.equals(scheme);
  }

  /** {@code name=value} and {@code name="quoted, \"value\""} pairs separated by commas. */
  private static Map<String, String> parameters(String text) {
    Map<String, String> out = new LinkedHashMap<>();
    int i = 0;
    int n = text.length();
    while (i < n) {
      while (i < n && (text.charAt(i) == ',' || Character.isWhitespace(text.charAt(i)))) {
        i++;
      }
      int nameStart = i;
      while (i < n && text.charAt(i) != '=' && text.charAt(i) != ',') {
        i++;
      }
      String name = text.substring(nameStart, i).trim().toLowerCase(Locale.ROOT);
      if (i >= n || text.charAt(i) != '=') {
        continue;
      }
      i++;
      StringBuilder value = new StringBuilder();
      if (i < n && text.charAt(i) == '"') {
        i++;
        while (i < n && text.charAt(i) != '"') {
          if (text.charAt(i) == '\\' && i + 1 < n) {
            i++;
          }
          value.append(text.charAt(i));
          i++;
        }
        i++;
      } else {
        while (i < n && text.charAt(i) != ',') {
          value.append(text.charAt(i));
          i++;
        }
      }
      if (!name.isEmpty()) {
        out.putIfAbsent(name, value.toString().trim());
      }
    }
    return out;
  }
}
