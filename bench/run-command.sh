#!/usr/bin/env bash
# Time to run one command in an image fetched from a registry on 127.0.0.1, HelloBench style, with
# cold caches (no chunk cache, page cache dropped before every run):
#   puzzlefs run  docker://.../IMAGE CMD        (lazy mount + overlay + runc; fetches what CMD reads)
#   full pull:    skopeo copy + umoci unpack + chroot DIR CMD   (an ordinary tar-layer OCI image)
# for `cat /etc/os-release` on the debootstrap minbase tree and `python3 -c 'print(1)'` on the
# tree with python3 and curl. Writes bench/RUN-RESULTS.md.
# Run as root: bash bench/run-command.sh   (env: BENCH_RUNS, BENCH_PORT, PUZZLEFS_TEST_ROOTFS)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
minbase=${PUZZLEFS_TEST_ROOTFS:-/var/tmp/puzzlefs-test/bookworm}
plus=${minbase}-plus
runs=${BENCH_RUNS:-5}
port=${BENCH_PORT:-5057}
out=$top/bench/out-run
jar=$top/target/puzzlefs.jar
[ -f "$jar" ] || mvn -B -q -ntp -DskipTests package
for t in "$minbase" "$plus"; do
  [ -d "$t/usr/bin" ] || { echo "no root filesystem at $t (run the e2e tests first)"; exit 1; }
done
command -v runc >/dev/null || { echo "runc is missing: bash .ci/setup-debian"; exit 1; }
pfs="$top/bin/puzzlefs"  # the launcher: its start-up archive and JVM flags, as users run it
reg=127.0.0.1:$port

rm -rf "$out" && mkdir -p "$out/registry"
server="PUZZLEFS_SERVER_DIR=$out/server"
cleanup() {
  env "$server" "$pfs" serve --stop >/dev/null 2>&1 || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
}
trap cleanup EXIT
drop='sync; echo 3 > /proc/sys/vm/drop_caches'

cat > "$out/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $out/registry}}
http: {addr: $reg}
YML
docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

echo "== images: puzzlefs (build + push) and tar layers (umoci insert + skopeo copy)"
for name in minbase plus; do
  tree=$minbase; [ $name = plus ] && tree=$plus
  $pfs build "$tree" "$out/oci-pfs" $name >/dev/null
  $pfs push --plain-http --pack "$out/oci-pfs" $name "docker://$reg/pfs/$name:t"
  [ -d "$out/oci-tar" ] || umoci init --layout "$out/oci-tar"
  umoci new --image "$out/oci-tar:$name"
  umoci insert --image "$out/oci-tar:$name" "$tree" /
  skopeo copy -q --dest-tls-verify=false "oci:$out/oci-tar:$name" "docker://$reg/tar/$name:t"
done

# The mount server (puzzlefs serve), started once; every "served" run goes through it. A check
# before timing makes sure it does not decline: the client there cannot start a JVM of its own.
env "$server" "$pfs" serve --log-file "$out/server.log"
env "$server" PUZZLEFS_JAVA_OPTS=-XX:+NoSuchOptionSoNoJvmStarts "$pfs" run --plain-http \
  --cache-dir "$out/check-cache" "docker://$reg/pfs/minbase:t" true ||
  { echo "the mount server did not serve run; see $out/server.log"; exit 1; }

ours() { # MODE IMAGE CMD...: MODE is "served" (through the server), "listed" (the same with the
  # prefetch list an earlier run recorded), "published" (served, given no list, from the image
  # pushed with that list: pfs/IMAGE-listed) or "alone" (PUZZLEFS_NO_SERVER)
  local mode=$1 image=$2 how extra= repo; shift 2
  how=$server; [ "$mode" = alone ] && how=PUZZLEFS_NO_SERVER=1
  [ "$mode" = listed ] && extra="--prefetch-list $out/$image.prefetch "
  repo=$image; [ "$mode" = published ] && repo=$image-listed
  printf '%s\n' "rm -rf $out/cache; $drop" "$how $pfs run --plain-http --cache-dir $out/cache $extra""docker://$reg/pfs/$repo:t $*"
}
full() { # IMAGE CMD...
  local image=$1; shift
  printf '%s\n' "rm -rf $out/pull $out/unpacked; $drop" \
    "skopeo copy -q --src-tls-verify=false docker://$reg/tar/$image:t oci:$out/pull:t && umoci unpack --image $out/pull:t $out/unpacked && chroot $out/unpacked/rootfs $*"
}

echo "== timing ($runs runs each)"
i=0
for spec in "minbase|cat /etc/os-release" "plus|python3 -c 'print(1)'"; do
  image=${spec%%|*}; cmd=${spec#*|}
  # The prefetch list: recorded once, untimed, by a run of the same command with a cache of its own
  # (what a CI job's first run, or an image's publisher, would do); the timed runs start cold.
  rm -rf "$out/record-cache"
  eval "env '$server' '$pfs' run --plain-http --cache-dir '$out/record-cache'" \
    "--record-prefetch-list '$out/$image.prefetch' 'docker://$reg/pfs/$image:t' $cmd" >/dev/null
  # The same image published with that list (another repository: a pack belongs to the image's
  # manifest, so the same image in the same repository would have its pack replaced).
  $pfs push --plain-http --pack --prefetch-list "$out/$image.prefetch" "$out/oci-pfs" "$image" \
    "docker://$reg/pfs/$image-listed:t" >/dev/null
  mapfile -t o < <(ours served "$image" "$cmd")
  mapfile -t l < <(ours listed "$image" "$cmd")
  mapfile -t p < <(ours published "$image" "$cmd")
  mapfile -t a < <(ours alone "$image" "$cmd")
  mapfile -t f < <(full "$image" "$cmd")
  printf '%s\n  prepare: %s\n' "${o[1]}" "${o[0]}" "${l[1]}" "${l[0]}" "${p[1]}" "${p[0]}" \
    "${a[1]}" "${a[0]}" \
    "${f[1]}" "${f[0]}" >> "$out/commands.txt"
  hyperfine --style basic --runs "$runs" --export-json "$out/t$i.json" \
    --prepare "${o[0]}" -n "puzzlefs run (mount server): $image: $cmd" "${o[1]}" \
    --prepare "${l[0]}" -n "puzzlefs run (mount server, recorded prefetch list): $image: $cmd" "${l[1]}" \
    --prepare "${p[0]}" -n "puzzlefs run (mount server, list published with the image, none given): $image: $cmd" "${p[1]}" \
    --prepare "${a[0]}" -n "puzzlefs run (no server): $image: $cmd" "${a[1]}" \
    --prepare "${f[0]}" -n "full pull: $image: $cmd" "${f[1]}"
  # One more run of ours, with and without the list, for the counters: how much of the image the
  # command fetched.
  for mode in plain listed published; do
    rm -rf "$out/cache"
    extra=(); [ $mode = listed ] && extra=(--prefetch-list "$out/$image.prefetch")
    repo=$image; [ $mode = published ] && repo=$image-listed
    env "$server" "$pfs" run --stats --plain-http --cache-dir "$out/cache" "${extra[@]}" \
      "docker://$reg/pfs/$repo:t" sh -c "$cmd >/dev/null" 2>"$out/stats$i-$mode.txt" || true
    tail -1 "$out/stats$i-$mode.txt" > "$out/stats$i-$mode.json"
  done
  i=$((i + 1))
done

python3 - "$out" "$top/bench/RUN-RESULTS.md" "$runs" <<'PY'
import json, sys, os, subprocess, datetime
out, dest, runs = sys.argv[1], sys.argv[2], sys.argv[3]
load = open("/proc/loadavg").read().split()[:3]
lines = ["# Running a command from a registry: puzzlefs run vs a full pull", "",
         f"`bash bench/run-command.sh` on {datetime.date.today()}, {os.cpu_count()} CPUs, load average "
         f"{' '.join(load)} at the end (the machine is shared: the numbers are noisy), {runs} runs each,",
         "registry on 127.0.0.1, page cache dropped and chunk cache emptied before every run.",
         "\"mount server\": `puzzlefs serve` was started once before timing (its JVM warm from the",
         "runs before); the launcher hands it the run and starts the command itself. \"no server\":",
         "`PUZZLEFS_NO_SERVER=1`, one JVM per run. \"recorded prefetch list\": the served run given",
         "`--prefetch-list` with the list an earlier run of the same command wrote",
         "(`--record-prefetch-list`, once, untimed, with a cache of its own). \"list published with",
         "the image\": the same image pushed with that list (`push --pack --prefetch-list`, to another",
         "repository), run through the server with no list given, as on a machine that never ran the",
         "command. Every timed run still starts with an empty chunk cache and a dropped page cache.",
         "Target: ours at most 0.1 of the full pull.", "",
         "Ratios are of medians, as bench/run reports them.", "",
         "| command | median s | mean s | min s | max s | fetched / image bytes |",
         "|---|---|---|---|---|---|"]
def fetched(i, mode):
    try:
        st = json.load(open(f"{out}/stats{i}-{mode}.json"))
        return f"{st['fetchedBytes']:,} / {st['imageBytes']:,}"
    except Exception:
        return "?"
for i in range(2):
    res = json.load(open(f"{out}/t{i}.json"))["results"]
    for r in res:
        f = ("all" if not r["command"].startswith("puzzlefs")
             else fetched(i, "listed" if "recorded prefetch list" in r["command"]
                          else "published" if "list published" in r["command"] else "plain"))
        lines.append(f"| {r['command']} | {r['median']:.3f} | {r['mean']:.2f} | {r['min']:.2f} "
                     f"| {r['max']:.2f} | {f} |")
    served, listed, published, alone, full = (r["median"] for r in res)
    for name, value in (("mount server", served), ("mount server, recorded prefetch list", listed),
                        ("mount server, list published with the image", published)):
        verdict = "met" if value / full <= 0.1 else "NOT MET"
        lines.append(f"| ratio ({name} / full pull), target <= 0.1 | {value / full:.3f} ({verdict}) | | | | |")
    lines.append(f"| ratio (no server / full pull) | {alone / full:.2f} | | | | |")
lines += ["", "Commands (hyperfine; `--prepare` before each run):", "", "```"]
lines += open(f"{out}/commands.txt").read().splitlines()
lines += ["```"]
# The reading of the numbers is written by hand and kept next to this script's output.
notes = os.path.join(os.path.dirname(dest), "RUN-FINDINGS.md")
if os.path.exists(notes):
    lines += ["", open(notes).read().rstrip()]
open(dest, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
