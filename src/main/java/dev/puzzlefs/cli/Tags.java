package dev.puzzlefs.cli;

import java.util.regex.Pattern;

/** Tag names as OCI allows them: {@code [A-Za-z0-9_][A-Za-z0-9._-]{0,127}}. */
final class Tags {
  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");

  private Tags() {}

  static void check(String tag) {
    if (!TAG.matcher(tag).matches()) {
      throw new IllegalArgumentException(
          "'" + tag + "' is not a valid tag (letters, digits, '_', '.', '-'; at most 128)");
    }
  }
}
