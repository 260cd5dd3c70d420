#!/usr/bin/env bash
# bench/cluster.sh: what the cluster costs (docs/BENCHMARKS.md, "Cluster
# (issue 7)"). For every run it starts a fresh 3-node cluster n1..n3 on
# loopback (own temp data dirs, free cluster ports, WebSocket port 0), waits
# until GET /cluster on every node shows both peers up, runs one imbench
# scenario against the nodes (--ports), prints its JSON summary, and stops
# the nodes (SIGTERM, then SIGKILL after 10 s, by PID). The one-node
# baselines of the same configuration run with imbench --spawn.
#
# usage: bench/cluster.sh [--build=build-b] [--out=DIR] [--reps=3] [--sync=full]
#                         [--only=dm,room] [--duration=10] [--engine-args='...']
#                         [-- IMBENCH_ARGS...]
# With IMBENCH_ARGS (e.g. `-- dm --pairs=1 --count=100`) it runs only that,
# once per repetition, on the cluster (--ports/--server-pids appended).
# Summaries: OUT/NAME-rN.json, progress and engine logs: OUT/NAME-rN.err and
# OUT/NAME-rN.nodes/ (kept only when the run failed); OUT/runs.txt has the
# command, UTC time and load of every run; a table per scenario at the end
# (bench/cluster_table.py).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
build=build-b out=/tmp/imbench-cluster reps=3 sync=full only=dm,room duration=10
engine_args=()
custom=()
while (($#)); do
  case $1 in
    --build=*) build=${1#*=} ;;
    --out=*) out=${1#*=} ;;
    --reps=*) reps=${1#*=} ;;
    --sync=*) sync=${1#*=} ;;
    --only=*) only=${1#*=} ;;
    --duration=*) duration=${1#*=} ;;
    --engine-args=*) read -r -a engine_args <<<"${1#*=}" ;;
    --) shift; custom=("$@"); break ;;
    *) echo "bench/cluster.sh: unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done
bench=$(readlink -f "$build/bench/imbench")
engine=$(readlink -f "$build/engine/imengine")
[[ -x $bench && -x $engine ]] || { echo "no $build/bench/imbench or $build/engine/imengine" >&2; exit 64; }
mkdir -p "$out"
out=$(readlink -f "$out")

pids=() ports=() tmp=""
stop_cluster() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=() ports=()
}
cleanup() {
  stop_cluster
  [[ -n $tmp && -d $tmp ]] && rm -rf "$tmp"
  tmp=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Three free TCP ports on 127.0.0.1 (bound, closed: no TIME_WAIT).
free_ports() {
  /usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()'
}

# start_cluster EXTRA_ENGINE_ARGS...: n1..n3, fills pids/ports; 0 when all up.
start_cluster() {
  tmp=$(mktemp -d /tmp/imbench-cluster-XXXXXX)
  local cps peers k
  read -r -a cps <<<"$(free_ports)"
  peers="n1@127.0.0.1:${cps[0]},n2@127.0.0.1:${cps[1]},n3@127.0.0.1:${cps[2]}"
  for k in 1 2 3; do
    mkdir -p "$tmp/n$k/data"
    "$engine" --host=127.0.0.1 --port=0 --data="$tmp/n$k/data" --node="n$k" \
      --peers="$peers" --cluster-port="${cps[k-1]}" --cluster-host=127.0.0.1 \
      --sync="$sync" "$@" >"$tmp/n$k/stdout" 2>"$tmp/n$k/engine.log" &
    pids+=($!)
  done
  for k in 1 2 3; do   # the listening line, 20 s at most
    local port=""
    for _ in $(seq 1 200); do
      port=$(sed -n 's|^imengine listening on ws://127.0.0.1:\([0-9]*\)/ws$|\1|p' "$tmp/n$k/stdout")
      [[ -n $port ]] && break
      kill -0 "${pids[k-1]}" 2>/dev/null || break
      sleep 0.1
    done
    [[ -n $port ]] || { echo "   n$k did not start (log: $tmp/n$k/engine.log)" >&2; return 1; }
    ports+=("$port")
  done
  for _ in $(seq 1 150); do   # every node sees both peers up, 30 s at most
    local ok=1
    for k in 1 2 3; do
      local view
      view=$(curl -sf -m 1 "http://127.0.0.1:${ports[k-1]}/cluster" || true)
      [[ $(jq -r --arg n "n$k" 'select(.node == $n) | [.peers[] | select(.up)] | length' \
            <<<"$view" 2>/dev/null) == 2 ]] || ok=0
    done
    ((ok)) && return 0
    sleep 0.2
  done
  echo "   cluster not up after 30 s" >&2
  return 1
}

run_no=0
log_run() { echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) $*" >>"$out/runs.txt"; }

# cluster NAME IMBENCH_ARGS...: one run on a fresh cluster.
cluster() {
  local name=$1; shift
  local extra=()
  [[ $name == room* ]] && extra=(--slow-queue=4096)
  echo "== $name (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if ! start_cluster "${engine_args[@]}" "${extra[@]}"; then
    mkdir -p "$out/$name.nodes" && cp -r "$tmp"/n? "$out/$name.nodes/" || true
    cleanup
    echo '{"ok": false, "failure": "cluster did not come up"}' >"$out/$name.json"
    return
  fi
  local ps ids
  ps=$(IFS=,; echo "${ports[*]}")
  ids=$(IFS=,; echo "${pids[*]}")
  local cmd=("$bench" "$@" --ports="$ps" --server-pids="$ids")
  log_run "$name: ${cmd[*]} (engines: --sync=$sync ${engine_args[*]} ${extra[*]})"
  local rc=0
  timeout 180 "${cmd[@]}" >"$out/$name.json" 2>"$out/$name.err" || rc=$?
  # The engines must still be alive after the load.
  local k dead=""
  for k in 0 1 2; do kill -0 "${pids[k]}" 2>/dev/null || dead+=" n$((k+1))"; done
  if [[ -n $dead ]]; then
    echo "   engine(s) died:$dead" >&2
    ((rc != 0)) || rc=99
  fi
  if ((rc != 0)); then
    echo "   exit $rc (see $out/$name.err, $out/$name.nodes/)" >&2
    mkdir -p "$out/$name.nodes" && cp -r "$tmp"/n? "$out/$name.nodes/" || true
  fi
  cat "$out/$name.json"
  cleanup
}

# single NAME IMBENCH_ARGS...: the same on one spawned node.
single() {
  local name=$1; shift
  local extra=()
  [[ $name == room* ]] && extra=(--slow-queue=4096)
  echo "== $name (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  local ea="${engine_args[*]} ${extra[*]}"
  local cmd=("$bench" "$@" --spawn="$engine" --sync="$sync" --engine-args="${ea# }")
  log_run "$name: ${cmd[*]}"
  local rc=0
  timeout 180 "${cmd[@]}" >"$out/$name.json" 2>"$out/$name.err" || rc=$?
  ((rc == 0)) || echo "   exit $rc (see $out/$name.err)" >&2
  cat "$out/$name.json"
}

has() { [[ ,$only, == *,$1,* ]]; }
dm=(dm --pairs=10 --window=20 --count=1000000 --duration="$duration")
room=(room-fanout --members=300 --senders=1 --window=10 --count=1000000 --duration="$duration")
start=$(date -u +%FT%TZ)
for r in $(seq 1 "$reps"); do
  if ((${#custom[@]})); then
    cluster "custom-r$r" "${custom[@]}"
    continue
  fi
  # Configurations alternate within a repetition, so slow phases of the
  # shared box spread over all of them.
  if has dm; then
    single "dm-single-r$r" "${dm[@]}"
    cluster "dm-conv-n3-r$r" "${dm[@]}" --sender-node=1 --receiver-node=2 \
      --sender-owner=1 --receiver-owner=2 --conv-owner=3
    cluster "dm-conv-n1-r$r" "${dm[@]}" --sender-node=1 --receiver-node=2 \
      --sender-owner=1 --receiver-owner=2 --conv-owner=1
  fi
  if has room; then
    single "room-single-r$r" "${room[@]}"
    cluster "room-conv-n1-r$r" "${room[@]}" --conv-owner=1
    cluster "room-conv-n3-r$r" "${room[@]}" --conv-owner=3
  fi
done
echo "runs from $start to $(date -u +%FT%TZ); commands in $out/runs.txt" >&2
/usr/bin/python3 -B "$here/cluster_table.py" "$out" || echo "cluster_table.py failed (exit $?)" >&2
