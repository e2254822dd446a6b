package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class PythonSourcesTest {
  private static String sourceOf(String path) {
    byte[] source = PythonSources.sourceOf(path.getBytes(StandardCharsets.UTF_8));
    return source == null ? null : new String(source, StandardCharsets.UTF_8);
  }

  @Test
  void sourceOf_theModuleBesideItsPycacheDirectory() {
    assertEquals(
        "/usr/lib/python3.11/os.py",
        sourceOf("/usr/lib/python3.11/__pycache__/os.cpython-311.pyc"));
    assertEquals("/a/b/mod.py", sourceOf("/a/b/__pycache__/mod.cpython-311.opt-2.pyc"));
    assertEquals("/x.py", sourceOf("/__pycache__/x.pyc"));
    assertEquals("/d/é.py", sourceOf("/d/__pycache__/é.cpython-312.pyc"));
  }

  @Test
  void sourceOf_nullForAnythingElse() {
    for (String path :
        new String[] {
          "/a/mod.pyc",
          "/a/__pycache__/.pyc",
          "/a/__pycache__/.hidden.pyc",
          "/a/x__pycache__/m.pyc",
          "/a/__pycache__/m.py",
          "__pycache__/m.pyc",
          ".pyc",
          ""
        }) {
      assertNull(sourceOf(path), path);
    }
  }
}
