#!/usr/bin/env bash
# Times puzzlefs-java against its peers on the same real tree, in one run, on this machine:
#   build:      puzzlefs build  vs  mksquashfs -comp zstd  vs  casync make
#   full read:  tar -cf - . | cat >/dev/null  over our mount  vs  squashfuse_ll
#   metadata:   find -ls                       over our mount  vs  squashfuse_ll
#   lazy:       mount from a registry + read one file  vs  a full pull (skopeo copy)
# Page caches are dropped before every timed read run. Writes bench/RESULTS.md.
# Run as root: bash bench/run.sh   (env: PUZZLEFS_TEST_ROOTFS, BENCH_RUNS, BENCH_PORT)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
rootfs=${PUZZLEFS_TEST_ROOTFS:-/var/tmp/puzzlefs-test/bookworm}
runs=${BENCH_RUNS:-5}
port=${BENCH_PORT:-5056}
out=$top/bench/out
jar=$top/target/puzzlefs.jar
[ -f "$jar" ] || mvn -B -q -ntp -DskipTests package
[ -d "$rootfs/usr/bin" ] || { echo "no root filesystem at $rootfs (run the demo or tests first)"; exit 1; }
pfs="java -jar $jar"

rm -rf "$out" && mkdir -p "$out"/{mnt-pfs,mnt-sq,mnt-lazy,registry}
cleanup() {
  fusermount -u "$out/mnt-pfs" 2>/dev/null || true
  fusermount -u "$out/mnt-sq" 2>/dev/null || true
  fusermount -u "$out/mnt-lazy" 2>/dev/null || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
}
trap cleanup EXIT
drop='sync; echo 3 > /proc/sys/vm/drop_caches'
hf() { hyperfine --style basic --runs "$runs" "$@"; }

echo "== build"
hf --export-json "$out/build.json" \
  --prepare "rm -rf $out/oci $out/sq.img $out/castr $out/ca.caidx; $drop" \
  -n "puzzlefs build" "$pfs build $rootfs $out/oci t" \
  -n "mksquashfs -comp zstd" "mksquashfs $rootfs $out/sq.img -comp zstd -noappend -quiet -no-progress" \
  -n "casync make" "casync make --store=$out/castr $out/ca.caidx $rootfs"

$pfs build "$rootfs" "$out/oci" t >/dev/null
mksquashfs "$rootfs" "$out/sq.img" -comp zstd -noappend -quiet -no-progress
casync make --store="$out/castr" "$out/ca.caidx" "$rootfs" >/dev/null

echo "== mounted reads"
$pfs mount "$out/oci" t "$out/mnt-pfs"
squashfuse_ll "$out/sq.img" "$out/mnt-sq"
hf --export-json "$out/read.json" --prepare "$drop" \
  -n "full read: puzzlefs" "tar -C $out/mnt-pfs -cf - . | cat >/dev/null" \
  -n "full read: squashfuse_ll" "tar -C $out/mnt-sq -cf - . | cat >/dev/null"
hf --export-json "$out/find.json" --prepare "$drop" \
  -n "find -ls: puzzlefs" "find $out/mnt-pfs -ls >/dev/null" \
  -n "find -ls: squashfuse_ll" "find $out/mnt-sq -ls >/dev/null"
hf --export-json "$out/mount.json" \
  -n "mount+umount: puzzlefs" "$pfs mount $out/oci t $out/mnt-lazy && fusermount -u $out/mnt-lazy" \
  -n "mount+umount: squashfuse_ll" "squashfuse_ll $out/sq.img $out/mnt-lazy && fusermount -u $out/mnt-lazy"
fusermount -u "$out/mnt-pfs"; fusermount -u "$out/mnt-sq"

echo "== lazy mount from a registry vs a full pull"
cat > "$out/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $out/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
ref="docker://127.0.0.1:$port/bench/bookworm:t"
$pfs push --plain-http "$out/oci" t "$ref" >/dev/null
hf --export-json "$out/lazy.json" \
  --prepare "fusermount -u $out/mnt-lazy 2>/dev/null; rm -rf $out/cache; $drop" \
  -n "lazy mount + first file" \
  "$pfs mount --plain-http --cache-dir $out/cache $ref $out/mnt-lazy && cat $out/mnt-lazy/etc/os-release >/dev/null" \
  -n "lazy mount + read every file" \
  "$pfs mount --plain-http --cache-dir $out/cache $ref $out/mnt-lazy && tar -C $out/mnt-lazy -cf - . | cat >/dev/null"
fusermount -u "$out/mnt-lazy" 2>/dev/null || true
# skopeo takes minutes on an image with thousands of layers: one run is enough to compare.
hyperfine --style basic --runs 1 --export-json "$out/pull.json" \
  --prepare "rm -rf $out/pulled; $drop" \
  -n "full pull (skopeo copy)" "skopeo copy -q --src-tls-verify=false $ref oci:$out/pulled:t"

tar_gz=$(tar -C "$rootfs" -czf - . | wc -c)
sizes="| image | bytes |
|---|---|
| puzzlefs OCI layout (blobs) | $(du -sb "$out/oci/blobs" | cut -f1) |
| squashfs zstd | $(stat -c %s "$out/sq.img") |
| casync store + index | $(( $(du -sb "$out/castr" | cut -f1) + $(stat -c %s "$out/ca.caidx") )) |
| tar.gz of the tree | $tar_gz |"

python3 - "$out" "$rootfs" "$runs" "$sizes" > "$top/bench/RESULTS.md" <<'PY'
import json, os, platform, subprocess, sys
out, rootfs, runs, sizes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def load(name):
    return {r["command"]: r for r in json.load(open(f"{out}/{name}.json"))["results"]}
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
def java():
    return subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
entries = sum(1 for _ in os.walk(rootfs)) + sum(len(f) for _, _, f in os.walk(rootfs))
print("# Benchmark results\n")
print(f"Produced by `bash bench/run.sh` (runs per command: {runs}; page cache dropped before "
      "every timed read). Medians in seconds; ratio = peer / puzzlefs (above 1: we are faster).\n")
print(f"- machine: {os.cpu_count()} cores, {cpu()}, kernel {platform.release()}")
print(f"- java: {java()}")
print(f"- input: `debootstrap --variant=minbase bookworm` at {rootfs}, about {entries} entries\n")
def table(title, name, ours, peers):
    r = load(name)
    print(f"## {title}\n\n| command | median s | ratio |\n|---|---|---|")
    base = r[ours]["median"]
    print(f"| {ours} | {base:.3f} | 1.00 |")
    for p in peers:
        print(f"| {p} | {r[p]['median']:.3f} | {r[p]['median'] / base:.2f} |")
    print()
table("Build", "build", "puzzlefs build", ["mksquashfs -comp zstd", "casync make"])
table("Full read through the mount", "read", "full read: puzzlefs", ["full read: squashfuse_ll"])
table("Metadata walk through the mount", "find", "find -ls: puzzlefs", ["find -ls: squashfuse_ll"])
table("Mount and unmount", "mount", "mount+umount: puzzlefs", ["mount+umount: squashfuse_ll"])
lazy = {**load("lazy"), **load("pull")}
print("## Lazy mount from a registry: first file vs full pull\n")
print("| command | median s | ratio |\n|---|---|---|")
base = lazy["lazy mount + first file"]["median"]
for c in ["lazy mount + first file", "lazy mount + read every file", "full pull (skopeo copy)"]:
    print(f"| {c} | {lazy[c]['median']:.3f} | {lazy[c]['median'] / base:.2f} |")
print()
print("## Sizes\n")
print(sizes)
print("\n## Commands\n")
print("Each row's command, exactly as `bench/run.sh` ran it ($pfs is `java -jar target/puzzlefs.jar`):\n")
print("```")
for line in open(os.path.join(os.path.dirname(out), "run.sh")):
    if line.strip().startswith(('-n "', '"$pfs')):
        print(line.rstrip().rstrip("\\").strip())
print("```")
PY
cat "$top/bench/RESULTS.md"
