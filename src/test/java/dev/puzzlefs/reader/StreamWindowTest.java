package dev.puzzlefs.reader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.puzzlefs.format.Digest;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StreamWindowTest {
  private static List<Digest> chunks(String prefix, int n) {
    List<Digest> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(Digest.sha256((prefix + i).getBytes(StandardCharsets.UTF_8)));
    }
    return out;
  }

  @Test
  void growsWhileStallsLandInOrRightAfterTheLastWindow_shrinksElsewhere() {
    StreamWindow w = new StreamWindow(8, 32);
    Digest elsewhere = Digest.sha256(new byte[] {1});
    assertEquals(8, w.after(elsewhere), "the first stall");
    List<Digest> first = chunks("a", 9); // 8 fetched and the one after them
    w.asked(first);
    assertEquals(16, w.after(first.get(3)), "a stall inside the window");
    List<Digest> second = chunks("b", 17);
    w.asked(second);
    assertEquals(32, w.after(second.get(16)), "a stall right after the window");
    w.asked(chunks("c", 33));
    assertEquals(32, w.after(chunks("c", 33).get(0)), "never past the most");
    assertEquals(16, w.after(elsewhere), "a stall elsewhere: half");
    assertEquals(8, w.after(elsewhere));
    assertEquals(8, w.after(elsewhere), "never below the first window");
  }

  @Test
  void aMostGivenPerStall_letsTheWindowGrowFurther_andCutsItBackWhenItIsSmallerAgain() {
    StreamWindow w = new StreamWindow(8, 32);
    List<Digest> run = chunks("r", 200);
    w.asked(run);
    assertEquals(16, w.after(run.get(0), 128));
    assertEquals(32, w.after(run.get(0), 128));
    assertEquals(64, w.after(run.get(0), 128));
    assertEquals(128, w.after(run.get(0), 128));
    assertEquals(128, w.after(run.get(0), 128), "never past the most given");
    assertEquals(32, w.after(run.get(0), 32), "a smaller most cuts the window back at once");
    assertEquals(8, w.after(run.get(0), 4), "never below the first window");
  }

  @Test
  void theMiddleOfAWindowIsReachedOnce_andAStallInEitherOfTheLastTwoWindowsStillWidens() {
    StreamWindow w = new StreamWindow(8, 32);
    Digest elsewhere = Digest.sha256(new byte[] {1});
    assertNull(w.reached(elsewhere), "no window yet");
    assertEquals(8, w.after(elsewhere));
    List<Digest> first = chunks("a", 9);
    w.asked(first);
    assertNull(w.reached(first.get(3)));
    assertEquals(first.get(7), w.reached(first.get(4)), "the middle of 8: the window's last chunk");
    assertNull(w.reached(first.get(4)), "only once");
    assertEquals(8, w.size());

    List<Digest> next = chunks("b", 9);
    w.continued(next);
    assertEquals(next.get(7), w.reached(next.get(4)));
    assertEquals(16, w.after(first.get(6)), "a stall in the window before: the reader is behind");
    List<Digest> third = chunks("c", 17);
    w.asked(third);
    assertEquals(8, w.after(next.get(6)), "a window two stalls back no longer counts");
  }

  @Test
  void aWindowOfOneChunkHasNoMiddle() {
    StreamWindow w = new StreamWindow(1, 1);
    List<Digest> one = chunks("x", 2);
    w.after(one.get(0));
    w.asked(one);
    assertNull(w.reached(one.get(0)));
    assertNull(w.reached(one.get(1)));
  }

  @Test
  void rejectsWindowsThatCannotWork() {
    assertThrows(IllegalArgumentException.class, () -> new StreamWindow(0, 8));
    assertThrows(IllegalArgumentException.class, () -> new StreamWindow(8, 4));
  }
}
