package dev.puzzlefs.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fallback runtime: {@code unshare --mount --pid --uts --ipc --fork} runs a host shell script
 * that mounts {@code /proc}, a minimal {@code /dev}, {@code /sys} (read-only) and the host's DNS
 * configuration into the root, then changes root into it ({@code unshare --root --wd}) and runs the
 * command. The new mount namespace is private, so none of those mounts is seen by the host, and all
 * of them go when the command (PID 1 of the namespace) exits.
 */
final class UnshareRuntime implements ContainerRuntime {
  private static final Logger log = LoggerFactory.getLogger(UnshareRuntime.class);

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
          "exec env -i \"$@\"",
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
            "--fork",
            "--propagation",
            "private",
            "--",
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
    // unshare waits for its child, which is (after the execs) the command: signal it directly.
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
