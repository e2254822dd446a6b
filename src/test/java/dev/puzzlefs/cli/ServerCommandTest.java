package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The server's default log file: one per server directory. */
class ServerCommandTest {
  @Test
  void defaultLogName_isServerLogForTheDefaultDirectory_andNamesAnyOther() throws Exception {
    Map<String, String> env = new HashMap<>(System.getenv());
    env.remove("PUZZLEFS_SERVER_DIR");
    assertEquals("server.log", ServerCommand.defaultLogName(Server.defaultDirectory(env)));
    assertEquals(
        "server-tmp_ci_server.log", ServerCommand.defaultLogName(Path.of("/tmp/ci/server")));
    assertEquals(
        "server-srv_my_dir_x.log", ServerCommand.defaultLogName(Path.of("/srv/my dir//x")));
    assertNotEquals(
        ServerCommand.defaultLogName(Path.of("/tmp/a/server")),
        ServerCommand.defaultLogName(Path.of("/tmp/b/server")));
    String deep = ServerCommand.defaultLogName(Path.of("/" + "d/".repeat(200) + "end"));
    assertTrue(deep.length() <= 140 && deep.endsWith("d_end.log"), deep);
  }
}
