package dev.puzzlefs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

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
}
