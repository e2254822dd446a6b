package dev.puzzlefs.architecture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Keeps the package rules the README lists: each package uses only the packages it may. */
class PackageDependenciesTest {
  private static final Map<String, Set<String>> ALLOWED =
      Map.of(
          "format", Set.of(),
          "oci", Set.of("format"),
          "builder", Set.of("format", "oci"),
          "reader", Set.of("format"),
          "registry", Set.of("format", "oci"),
          "cache", Set.of("format", "oci", "reader", "registry"),
          "fuse", Set.of("format", "reader"),
          "cli", Set.of("format", "oci", "builder", "reader", "registry", "cache", "fuse"));

  private static final Pattern USE = Pattern.compile("dev\\.puzzlefs\\.([a-z]+)\\.");

  @Test
  void mainSources_useOnlyAllowedPackages() throws IOException {
    Path root = Path.of("src/main/java/dev/puzzlefs");
    List<String> violations = new ArrayList<>();
    int files = 0;
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : (Iterable<Path>) paths.filter(f -> f.toString().endsWith(".java"))::iterator) {
        files++;
        String pkg = root.relativize(p).getName(0).toString();
        Set<String> allowed = ALLOWED.get(pkg);
        assertTrue(allowed != null, "package " + pkg + " is not in the README's table");
        Matcher m = USE.matcher(Files.readString(p));
        while (m.find()) {
          String used = m.group(1);
          if (!used.equals(pkg) && !allowed.contains(used)) {
            violations.add(root.relativize(p) + " uses " + used);
          }
        }
      }
    }
    assertTrue(files > 30, "found the sources");
    assertEquals(List.of(), violations.stream().distinct().toList());
  }
}
