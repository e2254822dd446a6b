package dev.puzzlefs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The {@code config.json} of an OCI runtime bundle (runtime-spec 1.0), in the shape {@code runc
 * spec} writes, with Docker's default capabilities and these differences: no network namespace (the
 * container shares the host's network, so the host's {@code /etc/resolv.conf} and {@code
 * /etc/hosts} are bound in read-only), no cgroup namespace and no cgroup mount.
 *
 * <p>Example: <code>{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},
 * "args":["/bin/sh"],"env":["PATH=..."],"cwd":"/",...},"root":{"path":"rootfs","readonly":false},
 * "hostname":"puzzlefs","mounts":[{"destination":"/proc","type":"proc","source":"proc"},...],
 * "linux":{"namespaces":[{"type":"pid"},...],...}}</code>
 */
final class RuntimeConfig {
  /** Docker's default set: enough for package managers, no administration of the host. */
  static final List<String> CAPABILITIES =
      List.of(
          "CAP_CHOWN",
          "CAP_DAC_OVERRIDE",
          "CAP_FSETID",
          "CAP_FOWNER",
          "CAP_MKNOD",
          "CAP_NET_RAW",
          "CAP_SETGID",
          "CAP_SETUID",
          "CAP_SETFCAP",
          "CAP_SETPCAP",
          "CAP_NET_BIND_SERVICE",
          "CAP_SYS_CHROOT",
          "CAP_KILL",
          "CAP_AUDIT_WRITE");

  /** The namespaces a container gets of its own. */
  static final List<String> NAMESPACES = List.of("pid", "ipc", "uts", "mount");

  private static final ObjectMapper JSON = new ObjectMapper();

  private RuntimeConfig() {}

  /** Writes {@code bundle}/config.json for {@code spec} with {@code root} as root.path. */
  static Path write(Path bundle, ContainerSpec spec, String root) throws IOException {
    Path file = bundle.resolve("config.json");
    Files.createDirectories(bundle);
    JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), of(spec, root));
    return file;
  }

  /** The configuration for {@code spec}; {@code root} is the root.path (relative to the bundle). */
  static ObjectNode of(ContainerSpec spec, String root) {
    ObjectNode c = JSON.createObjectNode();
    c.put("ociVersion", "1.0.2");
    ObjectNode process = c.putObject("process");
    process.put("terminal", false);
    process.putObject("user").put("uid", 0).put("gid", 0);
    strings(process.putArray("args"), spec.args());
    strings(process.putArray("env"), spec.env());
    process.put("cwd", spec.cwd());
    ObjectNode caps = process.putObject("capabilities");
    for (String set : List.of("bounding", "effective", "permitted")) {
      strings(caps.putArray(set), CAPABILITIES);
    }
    process.put("noNewPrivileges", false);
    c.putObject("root").put("path", root).put("readonly", false);
    c.put("hostname", spec.hostname());
    mounts(c.putArray("mounts"));
    ObjectNode linux = c.putObject("linux");
    linux
        .putObject("resources")
        .putArray("devices")
        .addObject()
        .put("allow", false)
        .put("access", "rwm");
    ArrayNode ns = linux.putArray("namespaces");
    NAMESPACES.forEach(t -> ns.addObject().put("type", t));
    strings(
        linux.putArray("maskedPaths"),
        List.of(
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"));
    strings(
        linux.putArray("readonlyPaths"),
        List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"));
    return c;
  }

  /** runc creates the minimal devices (null, zero, full, random, urandom, tty, ptmx) in /dev. */
  private static void mounts(ArrayNode m) {
    mount(m, "/proc", "proc", "proc");
    mount(m, "/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k");
    mount(
        m,
        "/dev/pts",
        "devpts",
        "devpts",
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5");
    mount(m, "/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k");
    mount(m, "/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev");
    mount(m, "/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro");
    for (String f : List.of("/etc/resolv.conf", "/etc/hosts")) {
      if (Files.exists(Path.of(f))) {
        mount(m, f, "bind", f, "rbind", "ro", "nosuid", "nodev", "noexec");
      }
    }
  }

  private static void mount(
      ArrayNode mounts, String dest, String type, String src, String... opts) {
    ObjectNode o = mounts.addObject().put("destination", dest).put("type", type).put("source", src);
    if (opts.length > 0) {
      strings(o.putArray("options"), List.of(opts));
    }
  }

  private static void strings(ArrayNode array, List<String> values) {
    values.forEach(array::add);
  }
}
