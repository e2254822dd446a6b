package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The C library's start-up files {@code run} fetches with no prefetch list. */
class StartupFilesTest {
  private static final int X86_64 = 62;

  @Test
  void of_cLocale_onlyTheLoadersCacheAndTheTimeZone_butPythonGetsCUtf8() {
    assertEquals(
        List.of("/etc/ld.so.cache", "/etc/localtime"),
        StartupFiles.of("cat", List.of("PATH=/bin", "LANG=C"), X86_64));
    assertEquals(
        List.of(
            "/etc/ld.so.cache",
            "/usr/lib/locale/C.UTF-8/LC_CTYPE",
            "/usr/lib/locale/C.utf8/LC_CTYPE",
            "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
            "/usr/lib64/gconv/gconv-modules.cache",
            "/etc/localtime"),
        StartupFiles.of("/usr/bin/python3", List.of(), X86_64));
  }

  @Test
  void of_localeAndZoneFromTheEnvironment_lastValueWins() {
    assertEquals(
        List.of(
            "/etc/ld.so.cache",
            "/usr/lib/locale/de_DE.ISO-8859-1@euro/LC_CTYPE",
            "/usr/lib/locale/de_DE.iso88591@euro/LC_CTYPE",
            "/usr/lib/aarch64-linux-gnu/gconv/gconv-modules.cache",
            "/usr/lib64/gconv/gconv-modules.cache",
            "/usr/share/zoneinfo/Europe/Berlin"),
        StartupFiles.of(
            "sh",
            List.of(
                "LANG=en_US.UTF-8",
                "LC_CTYPE=fr_FR.UTF-8",
                "LC_ALL=xx",
                "LC_ALL=de_DE.ISO-8859-1@euro",
                "TZ=:Europe/Berlin"),
            183));
  }

  @Test
  void ctypeLocale_cAndPathsAreNoLocale() {
    for (String value : List.of("C", "POSIX", "", "../../etc", "/x/y", ".utf8")) {
      assertNull(StartupFiles.ctypeLocale(List.of("LANG=" + value)), value);
    }
    assertEquals("en_GB", StartupFiles.ctypeLocale(List.of("LC_ALL=", "LANG=en_GB")));
  }

  @Test
  void normalized_codeSetLowerCaseLettersAndDigitsOnly() {
    assertEquals("en_US.utf8", StartupFiles.normalized("en_US.UTF-8"));
    assertEquals("ja_JP.eucjp", StartupFiles.normalized("ja_JP.EUC-JP"));
    assertEquals("xx.iso885915", StartupFiles.normalized("xx.8859-15"));
    assertEquals("en_US", StartupFiles.normalized("en_US"));
    assertEquals("sr_RS.utf8@latin", StartupFiles.normalized("sr_RS.UTF-8@latin"));
  }

  @Test
  void timeZone_namedZonePathOrLocaltime() {
    assertEquals("/etc/localtime", StartupFiles.timeZone(List.of()));
    assertEquals("/usr/share/zoneinfo/UTC", StartupFiles.timeZone(List.of("TZ=UTC")));
    assertEquals("/usr/share/zoneinfo/EST5EDT", StartupFiles.timeZone(List.of("TZ=EST5EDT")));
    assertEquals("/srv/zone", StartupFiles.timeZone(List.of("TZ=:/srv/zone")));
    assertEquals("/etc/localtime", StartupFiles.timeZone(List.of("TZ=../../etc/shadow")));
    assertEquals("/etc/localtime", StartupFiles.timeZone(List.of("TZ=EST5EDT,M3.2.0,M11.1.0")));
  }

  @Test
  void cLibrary_loaderAndLibcOfTheMachine() {
    assertEquals(
        List.of(
            "/lib64/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/libc.so.6"),
        StartupFiles.cLibrary(X86_64));
    assertEquals("/lib/ld-linux-aarch64.so.1", StartupFiles.cLibrary(183).get(0));
    assertEquals(List.of(), StartupFiles.cLibrary(0));
  }

  /** Python's start-up modules, of the version the command names, else of the newest two. */
  @Test
  void python_modulesOfTheVersionsInTheImage() throws Exception {
    dev.puzzlefs.testing.FakeImage fake = new dev.puzzlefs.testing.FakeImage(4096);
    for (String d :
        List.of(
            "/usr",
            "/usr/lib",
            "/usr/lib/python3.9",
            "/usr/lib/python3.11",
            "/usr/lib/python3",
            "/usr/local",
            "/usr/local/lib",
            "/usr/local/lib/python3.12")) {
      fake.dir(d);
    }
    fake.file("/usr/lib/python3.10", new byte[1]); // a file, not a library directory
    dev.puzzlefs.reader.Image image = fake.open();

    List<String> named = StartupFiles.python(image, "/usr/bin/python3.11");
    assertEquals(
        List.of(
            "/usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc",
            "/usr/lib/python3.11/encodings/__init__.py",
            "/usr/lib/python3.11/encodings/__pycache__/aliases.cpython-311.pyc",
            "/usr/lib/python3.11/encodings/aliases.py",
            "/usr/lib/python3.11/encodings/__pycache__/utf_8.cpython-311.pyc",
            "/usr/lib/python3.11/encodings/utf_8.py",
            "/usr/lib/python3.11/__pycache__/sitecustomize.cpython-311.pyc",
            "/usr/lib/python3.11/sitecustomize.py"),
        named);
    List<String> newest = StartupFiles.python(image, "python3");
    assertEquals(16, newest.size(), newest.toString());
    assertTrue(newest.get(0).startsWith("/usr/local/lib/python3.12/"), newest.get(0));
    assertTrue(newest.get(8).startsWith("/usr/lib/python3.11/"), newest.get(8));
    List<String> old = StartupFiles.python(image, "python3.9");
    assertTrue(old.contains("/usr/lib/python3.9/__pycache__/site.cpython-39.pyc"), old.toString());
    assertEquals(List.of(), StartupFiles.python(image, "python3.13"));
    assertEquals(List.of(), StartupFiles.python(image, "pythonista"));
    assertEquals(List.of(), StartupFiles.python(image, "sh"));
    assertEquals(
        List.of(), StartupFiles.python(new dev.puzzlefs.testing.FakeImage(4096).open(), "python"));
  }

  @Test
  void arguments_pathsAfterTheProgram_relativeOnesFromTheWorkdir_noOptions() {
    assertEquals(
        List.of("/etc/os-release", "/srv/app/main.py", "/srv/app/x=1"),
        StartupFiles.arguments(
            List.of("cat", "/etc/os-release", "-n", "--", "", "main.py", "x=1"), "/srv/app"));
    assertEquals(List.of("/a"), StartupFiles.arguments(List.of("sh", "a"), "/"));
    assertEquals(List.of(), StartupFiles.arguments(List.of("sh"), "/"));
    List<String> many = new java.util.ArrayList<>(List.of("cat"));
    for (int i = 0; i < 100; i++) {
      many.add("/f" + i);
    }
    assertEquals(StartupFiles.MAX_ARGUMENTS, StartupFiles.arguments(many, "/").size());
  }
}
