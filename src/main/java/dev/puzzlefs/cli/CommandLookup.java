package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Set;

/**
 * Finds a container's command in its root file system the way the runtime's {@code execvp} will,
 * before the runtime starts, so that {@code run} can answer a missing command with 127 and one that
 * cannot be executed with 126, as shells and container engines do, instead of the runtime's generic
 * failure. Symbolic links are followed inside the root: an absolute target starts again at the
 * root, and {@code ..} never climbs above it. Only a sure answer refuses a command: any other
 * trouble while looking leaves the decision to the runtime.
 */
final class CommandLookup {
  /** Links followed in one lookup before giving up, as the kernel does (ELOOP). */
  static final int MAX_LINKS = 40;

  /** The exit status of a command that is not in the image. */
  static final int NOT_FOUND = 127;

  /** The exit status of a command that is there but cannot be executed. */
  static final int NOT_EXECUTABLE = 126;

  private CommandLookup() {}

  /** What a lookup found: the exit status to end with, or 0 and no message to run the command. */
  record Verdict(int status, String message) {
    static final Verdict RUN = new Verdict(0, null);

    boolean runs() {
      return status == 0;
    }
  }

  /**
   * Looks {@code command} up in {@code root}: a name with a slash from {@code cwd} (absolute in the
   * container), anything else in each directory of the {@code PATH} that {@code env} sets.
   */
  static Verdict check(Path root, String command, List<String> env, String cwd) {
    if (command.isEmpty()) {
      return new Verdict(NOT_FOUND, "the command is an empty string");
    }
    List<String> candidates = candidates(command, env, cwd);
    if (command.indexOf('/') >= 0) {
      Found f = find(root, candidates.get(0));
      return switch (f) {
        case MISSING -> new Verdict(NOT_FOUND, command + ": no such file in the image");
        case LOOP ->
            new Verdict(
                NOT_EXECUTABLE, command + ": too many levels of symbolic links in the image");
        case NO_FORMAT -> noFormat(command);
        case NOT_EXECUTABLE ->
            new Verdict(
                NOT_EXECUTABLE,
                command + ": not an executable file in the image (permission denied)");
        default -> Verdict.RUN;
      };
    }
    String search = searchPath(env);
    boolean sawNotExecutable = false;
    for (String candidate : candidates) {
      Found f = find(root, candidate);
      if (f == Found.EXECUTABLE || f == Found.UNSURE) {
        return Verdict.RUN;
      }
      if (f == Found.NO_FORMAT) {
        return noFormat(command + " (" + candidate + ")");
      }
      // A link loop is not found, as the runtime's search of PATH (Go's LookPath) has it.
      sawNotExecutable |= f == Found.NOT_EXECUTABLE;
    }
    if (sawNotExecutable) {
      // execvp reports EACCES when it found the name but could execute none of its finds.
      return new Verdict(
          NOT_EXECUTABLE,
          command + ": found in the image's PATH but not executable (PATH=" + search + ")");
    }
    return new Verdict(NOT_FOUND, command + ": not found in the image (PATH=" + search + ")");
  }

  /**
   * The container paths execvp tries for {@code command}, in order: the name itself from {@code
   * cwd} when it has a slash, else the name in each directory of the {@code PATH} {@code env} sets
   * (an empty entry is the working directory).
   */
  static List<String> candidates(String command, List<String> env, String cwd) {
    if (command.indexOf('/') >= 0) {
      return List.of(command.startsWith("/") ? command : cwd + "/" + command);
    }
    List<String> out = new java.util.ArrayList<>();
    for (String dir : searchPath(env).split(":", -1)) {
      String base = dir.isEmpty() ? cwd : dir.startsWith("/") ? dir : cwd + "/" + dir;
      out.add(base + "/" + command);
    }
    return out;
  }

  private static Verdict noFormat(String what) {
    return new Verdict(
        NOT_EXECUTABLE,
        what
            + ": exec format error (neither an ELF program for this machine nor a script"
            + " starting with #!)");
  }

  private static String searchPath(List<String> env) {
    String path = ContainerSpec.value(env, "PATH");
    return path != null ? path : ContainerSpec.DEFAULT_PATH.substring("PATH=".length());
  }

  enum Found {
    EXECUTABLE,
    NOT_EXECUTABLE,
    MISSING,
    /** More than {@link #MAX_LINKS} symbolic links on the way (ELOOP). */
    LOOP,
    /** Executable, but neither a program the kernel runs nor a {@code #!} script (ENOEXEC). */
    NO_FORMAT,
    /** Something else went wrong while looking: let the runtime find out. */
    UNSURE
  }

  /** What the container path {@code path} is in {@code root}, following links inside the root. */
  static Found find(Path root, String path) {
    Deque<String> todo = new ArrayDeque<>();
    push(todo, path);
    Deque<String> at = new ArrayDeque<>(); // the components resolved so far, from the root
    int links = 0;
    try {
      PosixFileAttributes last = Files.readAttributes(root, PosixFileAttributes.class);
      while (!todo.isEmpty()) {
        String name = todo.pop();
        if (name.isEmpty() || name.equals(".")) {
          continue;
        }
        if (name.equals("..")) {
          if (!at.isEmpty()) {
            at.removeLast();
          }
          last = Files.readAttributes(host(root, at), PosixFileAttributes.class);
          continue;
        }
        if (!last.isDirectory()) {
          return Found.MISSING; // ENOTDIR: the runtime's exec says "no such file" too
        }
        at.addLast(name);
        Path here = host(root, at);
        last = Files.readAttributes(here, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (last.isSymbolicLink()) {
          if (++links > MAX_LINKS) {
            return Found.LOOP;
          }
          String target = Files.readSymbolicLink(here).toString();
          at.removeLast();
          if (target.startsWith("/")) {
            at.clear();
          }
          push(todo, target);
          last = Files.readAttributes(host(root, at), PosixFileAttributes.class);
        }
      }
      if (last.isDirectory() || !last.isRegularFile()) {
        return last.isDirectory() ? Found.NOT_EXECUTABLE : Found.UNSURE;
      }
      if (!executable(last.permissions())) {
        return Found.NOT_EXECUTABLE;
      }
      return knownFormat(host(root, at)) || binfmtHandlers() ? Found.EXECUTABLE : Found.NO_FORMAT;
    } catch (NoSuchFileException | NotDirectoryException e) {
      return Found.MISSING;
    } catch (FileSystemException e) {
      return "Not a directory".equals(e.getReason()) ? Found.MISSING : Found.UNSURE;
    } catch (IOException | RuntimeException e) {
      return Found.UNSURE;
    }
  }

  /**
   * Whether the kernel can execute the file at {@code p} by itself: an ELF file, or a script
   * starting with {@code #!}. An empty file, or text without {@code #!}, fails with ENOEXEC ("exec
   * format error") under a runtime, which has no shell to fall back on. True when it cannot tell.
   */
  private static boolean knownFormat(Path p) {
    byte[] head = new byte[64];
    int n = 0;
    try (java.io.InputStream in = Files.newInputStream(p)) {
      for (int r; n < head.length && (r = in.read(head, n, head.length - n)) > 0; ) {
        n += r;
      }
    } catch (IOException | RuntimeException e) {
      return true;
    }
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
      return true;
    }
    return n >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F'
        ? executableElf(java.nio.ByteBuffer.wrap(head, 0, n), n)
        : false;
  }

  /**
   * Whether an ELF header ({@code n} bytes of it in {@code h}) passes the kernel's own first
   * checks: a known class and byte order, a whole header, an executable or shared object, program
   * headers of the class's size, and this machine's architecture (when the JVM names one we know).
   */
  private static boolean executableElf(java.nio.ByteBuffer h, int n) {
    if (n < 52) { // not even a 32-bit header
      return false;
    }
    int elfClass = h.get(4);
    int order = h.get(5);
    if ((elfClass != 1 && elfClass != 2) || (order != 1 && order != 2)) {
      return false;
    }
    boolean wide = elfClass == 2;
    if (n < (wide ? 64 : 52)) {
      return false;
    }
    h.order(order == 1 ? java.nio.ByteOrder.LITTLE_ENDIAN : java.nio.ByteOrder.BIG_ENDIAN);
    int type = Short.toUnsignedInt(h.getShort(16));
    int machine = Short.toUnsignedInt(h.getShort(18));
    int phentsize = Short.toUnsignedInt(h.getShort(wide ? 54 : 42));
    int phnum = Short.toUnsignedInt(h.getShort(wide ? 56 : 44));
    int known = dev.puzzlefs.reader.ElfLinks.hostMachine();
    int host = known == 0 ? machine : known;
    return (type == 2 || type == 3)
        && machine == host
        && phentsize == (wide ? 56 : 32)
        && phnum > 0;
  }

  /**
   * Whether the kernel has binfmt_misc handlers registered, which may execute other formats (a
   * foreign architecture through qemu, say): then only the runtime can tell.
   */
  private static boolean binfmtHandlers() {
    try (var entries = Files.list(Path.of("/proc/sys/fs/binfmt_misc"))) {
      return entries
          .map(e -> e.getFileName().toString())
          .anyMatch(n -> !n.equals("register") && !n.equals("status"));
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** Whether root may execute a file with these permissions: any execute bit will do. */
  private static boolean executable(Set<PosixFilePermission> p) {
    return p.contains(PosixFilePermission.OWNER_EXECUTE)
        || p.contains(PosixFilePermission.GROUP_EXECUTE)
        || p.contains(PosixFilePermission.OTHERS_EXECUTE);
  }

  /** Puts the components of {@code path} in front of {@code todo}, first component first. */
  private static void push(Deque<String> todo, String path) {
    String[] parts = path.split("/");
    for (int i = parts.length - 1; i >= 0; i--) {
      todo.push(parts[i]);
    }
  }

  private static Path host(Path root, Deque<String> at) {
    Path p = root;
    for (String name : at) {
      p = p.resolve(name);
    }
    return p;
  }
}
