#!/usr/bin/env bash
# Runs the manual measurement matrix of docs/BENCHMARKS.md: each run spawns
# its own engine on a temp dir. Summaries go to OUT/*.json, progress lines to
# OUT/*.err; a markdown table per scenario is printed at the end.
# usage: bench/measure.sh [BUILD_DIR=build-bench] [OUT=/tmp/imbench-results] [REPS=3]
set -euo pipefail
build=${1:-build-bench}
out=${2:-/tmp/imbench-results}
reps=${3:-3}
bench="$build/bench/imbench"
engine="$build/engine/imengine"
mkdir -p "$out"

run() {   # name, imbench args...
  local name=$1; shift
  for r in $(seq 1 "$reps"); do
    echo "== $name #$r (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    "$bench" "$@" --spawn="$engine" >"$out/$name-r$r.json" 2>"$out/$name-r$r.err" ||
      echo "   exit $? (see $out/$name-r$r.err)" >&2
  done
}

for sync in full none; do
  run "dm-$sync-10x20" dm --sync=$sync --pairs=10 --window=20 --count=1000000 --duration=10
  run "dm-$sync-100x10" dm --sync=$sync --pairs=100 --window=10 --count=1000000 --duration=10
done
run "dm-full-10x20-msgpack" dm --sync=full --pairs=10 --window=20 --count=1000000 --duration=10 --encoding=msgpack
run "dm-full-1x1" dm --sync=full --pairs=1 --window=1 --count=1000000 --duration=10
run "group-full-m100-k1" group --sync=full --members=100 --senders=1 --window=10 --count=1000000 --duration=10
run "offline-5000" offline --count=5000
run "offline-5000-page1000" offline --count=5000 --page=1000
run "idle-10000" idle --conns=10000 --hold=3

python3 - "$out" <<'PY'
import glob, json, os, sys
rows = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    try:
        d = json.load(open(f))
    except ValueError:
        continue
    rows.setdefault(d["scenario"], []).append((os.path.basename(f)[:-5], d))
def lat(d, k, p):
    return d.get("latency_ms", {}).get(k, {}).get(p, "")
for scen, items in rows.items():
    print(f"\n### {scen}\n")
    if scen in ("dm", "group"):
        print("| run | msg/s | deliveries/s | ack p50/p99/p999 ms | delivery p50/p99/p999 ms | server CPU s/1k msgs | imbench CPU s | lost | dup | ooo | errors |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for n, d in items:
            t = d["throughput"]
            print(f"| {n} | {t['msgs_per_s']:.0f} | {t['deliveries_per_s']:.0f} | "
                  f"{lat(d,'ack','p50')}/{lat(d,'ack','p99')}/{lat(d,'ack','p999')} | "
                  f"{lat(d,'delivery','p50')}/{lat(d,'delivery','p99')}/{lat(d,'delivery','p999')} | "
                  f"{d['server'].get('cpu_s_per_1k_msgs', 0):.3f} | {d.get('client_cpu_s', 0):.1f} | {d['lost']} | {d['duplicated']} | {d['out_of_order']} | {d['errors']} |")
    elif scen == "offline":
        print("| run | messages | pages | login ms | login → all synced ms | lost | dup | ooo |")
        print("|---|---|---|---|---|---|---|---|")
        for n, d in items:
            print(f"| {n} | {d['delivered']} | {d['sync_pages']} | {d.get('login_ms', 0):.1f} | "
                  f"{d.get('login_to_synced_ms', 0):.0f} | {d['lost']} | {d['duplicated']} | {d['out_of_order']} |")
    elif scen == "idle":
        print("| run | connections | open s | server RSS before/after KiB | bytes/conn |")
        print("|---|---|---|---|---|")
        for n, d in items:
            s = d["server"]
            print(f"| {n} | {d['connections_reached']} | {d['open_s']:.2f} | "
                  f"{s['rss_kb_before']}/{s['rss_kb_after']} | {s.get('rss_bytes_per_conn', 0):.0f} |")
PY
