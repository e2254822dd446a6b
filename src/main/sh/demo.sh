#!/usr/bin/env bash
# The main job, end to end, on a real input: a Debian root filesystem is built into a PuzzleFS
# image, pushed to a local registry (127.0.0.1), mounted lazily straight from the registry, a
# few files are read, and the demo shows how little was fetched. Then it cleans up.
# Run as root (debootstrap, FUSE). Environment: PUZZLEFS_TEST_ROOTFS (input tree, made with
# debootstrap when absent), PUZZLEFS_DEMO_DIR (scratch), PUZZLEFS_DEMO_PORT (registry port).
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$top"
rootfs=${PUZZLEFS_TEST_ROOTFS:-/var/tmp/puzzlefs-test/bookworm}
work=${PUZZLEFS_DEMO_DIR:-/var/tmp/puzzlefs-demo}
port=${PUZZLEFS_DEMO_PORT:-5055}
ref="docker://127.0.0.1:$port/demo/bookworm:latest"

[ -f target/puzzlefs.jar ] || mvn -B -q -ntp -DskipTests package
pfs() { "$top/bin/puzzlefs" "$@"; }

if [ ! -d "$rootfs/usr/bin" ]; then
  echo "== making a Debian root filesystem in $rootfs (debootstrap, about a minute)"
  rm -rf "$rootfs.tmp" && mkdir -p "$(dirname "$rootfs")"
  debootstrap --variant=minbase bookworm "$rootfs.tmp" >/dev/null
  mv "$rootfs.tmp" "$rootfs"
fi

registry_pid=
cleanup() {
  fusermount -u "$work/mnt" 2>/dev/null || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$work" && mkdir -p "$work/mnt" "$work/registry"

echo "== build: $rootfs ($(du -sh "$rootfs" | cut -f1), $(find "$rootfs" | wc -l) entries)"
time pfs build "$rootfs" "$work/oci" bookworm

echo "== start a registry on 127.0.0.1:$port"
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done

echo "== push"
pfs push --plain-http "$work/oci" bookworm "$ref"

echo "== mount lazily from the registry (nothing pulled yet)"
time pfs mount --plain-http --cache-dir "$work/cache" "$ref" "$work/mnt"
ls "$work/mnt"
echo "-- /etc/os-release:"
cat "$work/mnt/etc/os-release"
echo "-- $(find "$work/mnt" | wc -l) entries listed without fetching any file data"
image_bytes=$(du -sb "$work/oci/blobs" | cut -f1)
fetched=$(getfattr --absolute-names --only-values -n user.puzzlefs.stats "$work/mnt" 2>/dev/null || echo '{}')
echo "-- image: $image_bytes bytes in the registry; mount stats: $fetched"
echo "== read every file (a full pull through the mount)"
time tar -C "$work/mnt" -cf - . | wc -c
getfattr --absolute-names --only-values -n user.puzzlefs.stats "$work/mnt"; echo

echo "== unmount and clean up"
pfs umount "$work/mnt"
cleanup
rm -rf "$work"
echo "demo done"
