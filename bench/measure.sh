#!/usr/bin/env bash
# Runs the manual measurement matrix of docs/BENCHMARKS.md: each run spawns
# its own engine on a temp dir. Summaries go to OUT/*.json, progress lines to
# OUT/*.err; bench/report prints a markdown table per scenario at the end and
# draws the plots into OUT/plots/.
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
run "group-timeline-m100-k1" group --sync=full --mode=timeline --members=100 --senders=1 --window=10 --count=1000000 --duration=10
run "room-m1000-k1" room-fanout --sync=full --members=1000 --senders=1 --window=10 --count=1000000 --duration=10 --engine-args=--slow-queue=4096
run "offline-5000" offline --count=5000
run "offline-5000-page1000" offline --count=5000 --page=1000
run "idle-10000" idle --conns=10000 --hold=3

# Tables (median and min–max per configuration) on stdout, plots next to the
# summaries: docs/bench/ is regenerated on purpose, with
# `bench/report --out=docs/bench DIR`, not by every measurement run.
"$(dirname "$0")/report" --out="$out/plots" "$out" ||
  echo "bench/report failed (exit $?); the summaries are in $out" >&2
