package dev.puzzlefs.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code puzzlefs bundle IMAGE DIR}, IMAGE being {@code OCI_DIR TAG} (two words), {@code
 * OCI_DIR:TAG} or a registry reference: an OCI runtime bundle for the user's own runtime. {@code
 * DIR/config.json} is written ({@link RuntimeConfig}, running {@code /bin/sh}), and {@code
 * DIR/rootfs} is a writable mount of the image, exactly as {@code mount --writable} makes one, so
 * {@code puzzlefs umount DIR/rootfs} takes it down.
 */
@Command(
    mixinStandardHelpOptions = true,
    name = "bundle",
    footerHeading = "%nExamples:%n",
    footer = {
      "  puzzlefs bundle --plain-http docker://127.0.0.1:5000/debian:12 /tmp/b",
      "  runc run -b /tmp/b c1; puzzlefs umount /tmp/b/rootfs"
    },
    description = {
      "Write an OCI runtime bundle of an image for your own runtime: DIR/config.json (runs"
          + " /bin/sh; edit it as you like) and DIR/rootfs, a writable mount of the image (lazy"
          + " from a registry) like mount --writable makes. IMAGE is "
          + BundleCommand.FORMS
          + "."
    })
final class BundleCommand implements Callable<Integer> {
  /** The forms IMAGE may take here: {@link ImageName#FORMS} and the two words OCI_DIR TAG. */
  static final String FORMS = "OCI_DIR TAG, " + ImageName.FORMS;

  @Spec CommandSpec spec;

  @Parameters(
      arity = "2..3",
      paramLabel = "IMAGE DIR",
      hideParamSyntax = true,
      description = "IMAGE DIR: IMAGE is " + FORMS + ", DIR the bundle directory")
  List<String> args;

  @Option(
      names = "--persist",
      paramLabel = "DIR",
      description = "keep what the container writes in DIR/upper (default: removed at umount)")
  Path persist;

  @Option(names = "--cache-dir", paramLabel = "DIR", description = "disk cache of fetched chunks")
  Path cacheDir;

  @Option(names = "--config", paramLabel = "FILE", description = "configuration file")
  Path configFile;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    List<String> image = args.subList(0, args.size() - 1);
    String dirArg = args.get(args.size() - 1);
    ImageName name;
    try {
      name = ImageName.parse(image);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), e.getMessage());
    }
    Path dir = Path.of(dirArg);
    Config config = Config.load(configFile);
    String reachable = makePrivate(dir);
    Path rootfs = Files.createDirectories(dir.resolve("rootfs"));
    ContainerSpec container =
        new ContainerSpec(
            rootfs,
            ContainerSpec.DEFAULT_COMMAND,
            ContainerSpec.environment(List.of(), null),
            "/",
            ContainerSpec.HOSTNAME);
    int status =
        WritableMount.mountInBackground(
            lower -> childArgs(name, lower),
            rootfs,
            persist,
            MountCommand.defaultLog(cacheDir != null ? cacheDir : config.cacheDirectory(), rootfs),
            Duration.ofSeconds(config.mount.readyTimeoutSeconds),
            /* containerRoot= */ true);
    if (status != 0) {
      return status;
    }
    RuntimeConfig.write(dir, container, "rootfs");
    System.err.println(
        "bundle in "
            + dir
            + ": run it with e.g. runc run -b "
            + dir
            + " ID; take it down with puzzlefs umount "
            + rootfs);
    if (reachable != null) {
      System.err.println(
          "puzzlefs bundle: warning: "
              + dir
              + " is "
              + reachable
              + ", and the rootfs keeps the image's set-user-ID programs and device nodes for"
              + " the container: other users could run them through it; chmod 700 "
              + dir);
    }
    return 0;
  }

  /**
   * Makes {@code dir} with permissions {@code rwx------} if it is missing; returns null then, or
   * when the existing one is closed to other users, and else says who may enter it.
   */
  private static String makePrivate(Path dir) throws java.io.IOException {
    if (!Files.exists(dir)) {
      Files.createDirectories(
          dir,
          java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
              java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
      return null;
    }
    var p = Files.getPosixFilePermissions(dir);
    if (p.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_EXECUTE)) {
      return "open to every user";
    }
    if (p.contains(java.nio.file.attribute.PosixFilePermission.GROUP_EXECUTE)) {
      return "open to its group";
    }
    return null;
  }

  /** {@code mount} with this command's cache and registry options, the image, and {@code lower}. */
  private List<String> childArgs(ImageName name, Path lower) {
    List<String> child = new ArrayList<>();
    child.add("mount");
    List<String> original = spec.commandLine().getParseResult().originalArgs();
    for (int i = original.indexOf(spec.name()) + 1; i < original.size(); i++) {
      String a = original.get(i);
      if (a.equals("--persist")) {
        i++;
      } else if (!a.startsWith("--persist=")) {
        child.add(a);
      }
    }
    // The positionals, IMAGE (one or two words) and DIR, become mount's image arguments and the
    // lower dir.
    for (int i = args.size() - 1; i >= 0; i--) {
      child.remove(child.lastIndexOf(args.get(i)));
    }
    child.addAll(name.mountArgs());
    child.add(lower.toString());
    return child;
  }
}
