package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fallback runtime: {@code unshare --mount --pid --uts --ipc} runs a host shell ({@link #WAIT})
 * whose one child, PID 1 of the new PID namespace, runs a host shell script that mounts {@code
 * /proc}, a minimal {@code /dev}, {@code /sys} (read-only) and the host's DNS configuration into
 * the root, then changes root into it ({@code unshare --root --wd}) and runs the command. The new
 * mount namespace is private, so none of those mounts is seen by the host, and all of them go when
 * the command (PID 1 of the namespace) exits.
 *
 * <p>Why not {@code unshare --fork}, which would be the parent of PID 1 itself: when its child dies
 * of a signal, util-linux's unshare (2.38) kills itself with the same signal so that its parent
 * sees it, but for SIGKILL the step before fails (a SIGKILL disposition cannot be reset): it prints
 * "sigprocmask unblock failed: Invalid argument" and exits 1, so a command killed by SIGKILL (by
 * the stop timeout, or by anyone) looked like one that exited 1. Our own parent of PID 1 waits for
 * it and exits 128 + N when signal N killed it, as a shell reports it, SIGKILL included. The first
 * process it forks becomes PID 1 of the new PID namespace, and it forks no other, so the command is
 * still PID 1 and the only child {@link #signal} finds.
 */
final class UnshareRuntime implements ContainerRuntime {
  private static final Logger log = LoggerFactory.getLogger(UnshareRuntime.class);

  /**
   * Runs in the new namespaces outside the new PID namespace, as the parent of its PID 1 ($@, the
   * setup script): it waits for it and exits with its status, 128 + N when signal N killed it. It
   * ignores SIGINT, SIGQUIT and SIGTERM, as unshare --fork blocked them: a signal meant for the
   * command (a Ctrl-C goes to the whole process group) must not end the wait before the command
   * ends. Its child inherits those three ignored, and a shell's background job gets SIGINT and
   * SIGQUIT ignored and standard input from /dev/null in any case: the setup script sets the three
   * back to their defaults as it starts the command, and standard input is passed on as descriptor
   * 3, which the child then closes. Its own standard error goes to /dev/null once the child has
   * started: a shell reports a job killed by a signal there ("Killed"), and run says nothing of the
   * kind with runc either.
   */
  private static final String WAIT =
      String.join(
          "\n",
          "trap '' INT QUIT TERM",
          "exec 3<&0",
          "\"$@\" 0<&3 3<&- &",
          "exec 3<&- 2>/dev/null",
          "wait $!",
          "");

  /**
   * Runs in the new namespaces as PID 1: $1 root, $2 host name, then {@code env -i}'s arguments
   * (the command's environment, then the chroot and the command).
   */
  private static final String SETUP =
      String.join(
          "\n",
          "set -e",
          "root=$1; host=$2; shift 2",
          "hostname \"$host\"",
          "mount -t proc -o nosuid,noexec,nodev proc \"$root/proc\"",
          "mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs \"$root/dev\"",
          "for d in null zero full random urandom tty; do",
          "  touch \"$root/dev/$d\"; mount --bind \"/dev/$d\" \"$root/dev/$d\"",
          "done",
          "mkdir \"$root/dev/pts\" \"$root/dev/shm\"",
          "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts"
              + " \"$root/dev/pts\"",
          "ln -s pts/ptmx \"$root/dev/ptmx\"",
          "mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm \"$root/dev/shm\"",
          "ln -s /proc/self/fd \"$root/dev/fd\"",
          "ln -s /proc/self/fd/0 \"$root/dev/stdin\"",
          "ln -s /proc/self/fd/1 \"$root/dev/stdout\"",
          "ln -s /proc/self/fd/2 \"$root/dev/stderr\"",
          "mount -t sysfs -o ro,nosuid,nodev,noexec sysfs \"$root/sys\"",
          "for f in /etc/resolv.conf /etc/hosts; do",
          "  [ -e \"$f\" ] || continue",
          "  [ -e \"$root$f\" ] || [ -L \"$root$f\" ] || touch \"$root$f\"",
          "  mount --bind \"$f\" \"$root$f\" && mount -o remount,bind,ro \"$root$f\"",
          "done",
          "exec env -i --default-signal=INT,QUIT,TERM \"$@\"",
          "");

  private final Path unshare;

  private UnshareRuntime(Path unshare) {
    this.unshare = unshare;
  }

  static UnshareRuntime create() throws IOException {
    Path unshare = ContainerRuntime.find("unshare");
    if (unshare == null) {
      throw new IOException("neither runc nor unshare (util-linux) is installed");
    }
    return new UnshareRuntime(unshare);
  }

  @Override
  public String name() {
    return "unshare";
  }

  @Override
  public List<String> command(ContainerSpec spec, Path scratch) {
    String root = spec.rootfs().toAbsolutePath().toString();
    List<String> cmd = new ArrayList<>();
    cmd.addAll(
        List.of(
            unshare.toString(),
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            WAIT,
            "puzzlefs-wait",
            "/bin/sh",
            "-c",
            SETUP,
            "puzzlefs-setup",
            root,
            spec.hostname()));
    // env -i K=V... unshare --root=ROOT --wd=CWD -- CMD: the environment is set before the chroot
    cmd.addAll(spec.env());
    cmd.addAll(List.of(unshare.toString(), "--root=" + root, "--wd=" + spec.cwd(), "--"));
    cmd.addAll(spec.args());
    log.debug("running {} with unshare and chroot into {}", spec.args(), root);
    return cmd;
  }

  @Override
  public void signal(Process started, String signal) {
    // The waiting shell's one child is (after the execs) the command: signal it directly.
    commandOf(started).ifPresent(pid -> ContainerRuntime.kill(pid, signal));
  }

  @Override
  public void kill(Process started) {
    commandOf(started).ifPresent(pid -> ContainerRuntime.kill(pid, "KILL"));
  }

  @Override
  public void cleanUp() {
    // Nothing kept: the namespaces and their mounts go with their last process.
  }

  private static Optional<Long> commandOf(Process started) {
    return started.children().findFirst().map(ProcessHandle::pid);
  }
}
