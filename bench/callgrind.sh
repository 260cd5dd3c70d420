#!/usr/bin/env bash
# Engine instructions per message for a fixed small dm workload, under
# callgrind: free of timing noise, so changes can be compared run to run.
# Two runs (no messages, then COUNT per pair) and the difference, divided.
# usage: bench/callgrind.sh [BUILD_DIR=build-bench] [COUNT=1000]
set -euo pipefail
build=$(realpath "${1:-build-bench}")
count=${2:-1000}
pairs=2
work=$(mktemp -d /tmp/imbench-cg-XXXXXX)
trap 'rm -rf "$work"' EXIT
# --spawn runs a path with the engine's arguments: this wrapper adds valgrind.
cat >"$work/engine.sh" <<SH
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/cg.\$CG_TAG.out $build/engine/imengine "\$@"
SH
chmod +x "$work/engine.sh"
for c in 0 "$count"; do
  # valgrind cannot reserve the default 64 GiB LMDB map: a small one is enough.
  CG_TAG=$c "$build/bench/imbench" dm --spawn="$work/engine.sh" --engine-args=--map-size-mb=1024 \
    --pairs=$pairs --window=4 --count="$c" --grace=30 --duration=300 >"$work/summary.$c.json" 2>/dev/null
done
base=$(sed -n 's/^summary: //p' "$work/cg.0.out")
load=$(sed -n 's/^summary: //p' "$work/cg.$count.out")
msgs=$((pairs * count))
echo "engine instructions: idle run $base, loaded run $load"
echo "per message ($msgs messages, each acked and pushed to 2 devices): $(((load - base) / msgs))"
echo "per delivered push: $(((load - base) / (2 * msgs)))"
