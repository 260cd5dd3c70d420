#!/usr/bin/env bash
# Starts a 3-node imengine cluster on loopback, each node with its own data
# dir: clients at ws://127.0.0.1:8081/ws, :8082/ws, :8083/ws; cluster ports
# 7001-7003. Ctrl-C (or SIGTERM) stops all three. Builds first if needed.
# Extra arguments go to every node, e.g. examples/cluster/run.sh --sync=none
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/engine/imengine ] || ./scripts/build.sh --target imengine
data=${DATA:-./data-cluster}
peers="n1@127.0.0.1:7001,n2@127.0.0.1:7002,n3@127.0.0.1:7003"
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap stop EXIT INT TERM
for i in 1 2 3; do
  mkdir -p "$data/n$i"
  ./build/engine/imengine --node="n$i" --port="808$i" --data="$data/n$i" \
    --peers="$peers" "$@" &
  pids+=($!)
done
# The cluster is formed once every node sees both others up.
for _ in $(seq 1 100); do
  up=0
  for i in 1 2 3; do
    body=$(curl -fs "http://127.0.0.1:808$i/cluster" 2>/dev/null || true)
    [ "$(grep -o '"up":true' <<<"$body" | wc -l)" -eq 2 ] && up=$((up + 1))
  done
  [ "$up" -eq 3 ] && break
  sleep 0.1   # polling interval while the nodes dial each other
done
echo "cluster up: ws://127.0.0.1:8081/ws ws://127.0.0.1:8082/ws ws://127.0.0.1:8083/ws (Ctrl-C stops)"
for i in 1 2 3; do curl -fs "http://127.0.0.1:808$i/cluster" || true; done
wait "${pids[@]}"
