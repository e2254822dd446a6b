package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExtractCommandTest {
  @TempDir Path tmp;

  @Test
  void resolveNew_throughASymlink_isTheRealPathSoALaterSwapCannotRedirectTheWalk()
      throws Exception {
    Path real = Files.createDirectory(tmp.resolve("real"));
    Path link = Files.createSymbolicLink(tmp.resolve("link"), real);

    Path dest = ExtractCommand.resolveNew(link.resolve("new/tree"));

    assertEquals(real.toRealPath().resolve("new/tree"), dest);
    assertFalse(Files.exists(dest), "nothing is made yet");
    // Re-pointing the link now changes nothing for an extraction that resolved it already.
    Files.delete(link);
    Files.createSymbolicLink(link, Files.createDirectory(tmp.resolve("elsewhere")));
    assertTrue(dest.startsWith(real.toRealPath()), dest.toString());
  }

  @Test
  void resolveNew_upFromADirectoryThatDoesNotExist_isRefused() {
    Path dir = tmp.resolve("missing/../tree");

    IOException e = assertThrows(IOException.class, () -> ExtractCommand.resolveNew(dir));

    assertTrue(
        e.getMessage().contains("cannot extract into " + dir + ": it goes up"), e.getMessage());
  }

  @Test
  void resolveNew_dotsBelowAnExistingDirectory_followTheKernel() throws Exception {
    Path a = Files.createDirectories(tmp.resolve("a/b"));

    assertEquals(tmp.toRealPath().resolve("a/new"), ExtractCommand.resolveNew(a.resolve("../new")));
    assertEquals(
        tmp.toRealPath().resolve("a/b/new"), ExtractCommand.resolveNew(a.resolve("./new")));
  }
}
