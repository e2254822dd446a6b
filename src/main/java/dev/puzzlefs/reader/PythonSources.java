package dev.puzzlefs.reader;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** Where the source of a compiled Python module lies: {@code D/__pycache__/NAME.TAG.pyc}. */
final class PythonSources {
  private static final byte[] PYC = ".pyc".getBytes(StandardCharsets.US_ASCII);

  private static final byte[] PYCACHE = "/__pycache__/".getBytes(StandardCharsets.US_ASCII);

  private static final byte[] PY = ".py".getBytes(StandardCharsets.US_ASCII);

  private PythonSources() {}

  /** Whether {@code path} ends as a compiled module's name does: cheap, for every open. */
  static boolean compiled(byte[] path) {
    return path.length >= PYC.length
        && Arrays.equals(path, path.length - PYC.length, path.length, PYC, 0, PYC.length);
  }

  /**
   * {@code D/NAME.py} for {@code D/__pycache__/NAME.TAG.pyc} (NAME up to its first dot, as module
   * names have none); null when {@code path} is not in a {@code __pycache__} directory or has no
   * module name.
   */
  static byte[] sourceOf(byte[] path) {
    if (!compiled(path)) {
      return null;
    }
    int slash = path.length - 1;
    while (slash >= 0 && path[slash] != '/') {
      slash--;
    }
    int cache = slash - PYCACHE.length + 1; // where D ends: its slash
    if (cache < 0 || !Arrays.equals(path, cache, slash + 1, PYCACHE, 0, PYCACHE.length)) {
      return null;
    }
    int dot = slash + 1;
    while (path[dot] != '.') {
      dot++; // there is one: the name ends in .pyc
    }
    int name = dot - slash - 1;
    if (name == 0) {
      return null; // a hidden file, or .pyc alone: no module
    }
    byte[] source = new byte[cache + 1 + name + PY.length];
    System.arraycopy(path, 0, source, 0, cache + 1);
    System.arraycopy(path, slash + 1, source, cache + 1, name);
    System.arraycopy(PY, 0, source, cache + 1 + name, PY.length);
    return source;
  }
}
