#!/usr/bin/env bash
# Side-by-side comparison of imengine with ejabberd 23.01, prosody 0.12 and mosquitto 2.0.11
# (issue 4). Each server runs ALONE on loopback, fresh data, the same Node workloads of the shared
# peers kit (../shared/peers, read-only) drive every server; imengine is driven through our kit
# driver overlay bench/compare/drivers.js. Results: JSON lines in $RESULTS/results.jsonl, then a
# markdown table (bench/compare/table.py) on stdout.
#
# usage: bench/compare.sh [--reps=3] [--only=W1,W2,W3,W4,W5] [--servers=LIST] [--results=DIR]
#                         [--no-build] [--no-install]
#   servers: imengine-full, imengine-none, ejabberd, prosody, mosquitto, imbench (imengine's own
#            C++ load generator, its peak figures; runs with --sync=full and --sync=none; W2 is its
#            room-fanout, the same r: room the Node driver uses; W2g its inbox-mode group, for reference)
#   env: PEERS_DIR (deployed kit, default /tmp/imengine-peers), PEERS_KIT (kit source,
#        default ../shared/peers), IM_PORT (imengine port, default 8090: mosquitto's WS uses 8080)
# Tiers: imengine --sync=full vs ejabberd/prosody (SQLite WAL, synchronous=FULL);
#        imengine --sync=none vs mosquitto (in-memory, snapshot every 1 s).
# Workloads (one run each per server per repetition):
#   W1 bench.js   10 pairs x 20 in flight, 10,000 dm messages        -> msgs_per_s
#   W2 fanout.js  100 members in one room (XMPP MUC / MQTT topic / imengine r: room), 500 msgs,
#                 window 10                                          -> deliveries_per_s
#   W3 offline.js 5,000 messages to an offline user, login -> all delivered (ms); the kit script
#                 gives the server a fixed 3 s after the last send, so a slow store adds its backlog
#   W3b offline-acked.js (ours): same, but the recipient logs in only once the server has acked
#                 all 5,000 (XEP-0198 / PUBACK / imengine ack): delivery time only
#   W4 idle.js    10,000 idle logged-in connections                  -> server RSS KiB per connection
#   W5 crash.js   SIGKILL the server the moment it has acked 2,000 messages to an offline user,
#                 restart it on the same data, count acked messages the recipient gets
# Every step is bounded by `timeout`; servers are stopped by PID. Root, Debian 12.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
reps=3; only=W1,W2,W3,W4,W5; servers=imbench,imengine-full,imengine-none,ejabberd,prosody,mosquitto
results=${COMPARE_RESULTS:-/tmp/imengine-compare}/$(date -u +%Y%m%dT%H%M%SZ); build=1; install=1
for a in "$@"; do
  case $a in
    --reps=*) reps=${a#*=} ;;
    --only=*) only=${a#*=} ;;
    --servers=*) servers=${a#*=} ;;
    --results=*) results=${a#*=} ;;
    --no-build) build=0 ;;
    --no-install) install=0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown option $a" >&2; exit 64 ;;
  esac
done
[[ $reps =~ ^[0-9]+$ && $reps -ge 1 && $reps -le 10 ]] || { echo "--reps must be 1..10" >&2; exit 64; }
P=${PEERS_DIR:-/tmp/imengine-peers}
KIT=${PEERS_KIT:-$repo/../shared/peers}
IM_PORT=${IM_PORT:-8090}
ENGINE=$repo/build/engine/imengine
IMBENCH=$repo/build/bench/imbench
mkdir -p "$results"
R=$results/results.jsonl
LOG=$results/run.log
has() { [[ ",$1," == *",$2,"* ]]; }
log() { echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" | tee -a "$LOG" >&2; }

# ------------------------------------------------------------------ build, deploy, install
need_im=0; [[ ,$servers, == *,imbench,* || ,$servers, == *,imengine-* ]] && need_im=1
if [ $build = 1 ] || { [ $need_im = 1 ] && { [ ! -x "$ENGINE" ] || [ ! -x "$IMBENCH" ]; }; }; then
  log "building imengine + imbench (scripts/build.sh)"
  (cd "$repo" && timeout 1800 ./scripts/build.sh --target imengine imbench >"$results/build.log" 2>&1) ||
    { log "build failed, see $results/build.log"; exit 1; }
fi
[ -f "$KIT/deploy.sh" ] || { echo "peers kit not found at $KIT (set PEERS_KIT)" >&2; exit 1; }
log "deploying peers kit $KIT -> $P"
PEERS_DIR=$P bash "$KIT/deploy.sh" >>"$LOG" 2>&1 || { log "deploy failed"; exit 1; }
chmod -R u+w "$P"   # the kit source is read-only; the servers write pid files next to their configs
mv -f "$P/client/drivers.js" "$P/client/drivers-kit.js"
cp "$repo/bench/compare/drivers.js" "$repo/bench/compare/crash.js" "$repo/bench/compare/offline-acked.js" "$P/client/"
if [ $install = 1 ]; then
  need=0
  for p in ejabberd erlang-p1-sqlite3 sqlite3 mosquitto prosody lua-dbi-sqlite3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need=1
  done
  for m in ws mqtt; do [ -d "$P/client/node_modules/$m" ] || need=1; done
  command -v node >/dev/null && command -v npm >/dev/null || {
    log "installing nodejs/npm"; DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends nodejs npm >>"$LOG" 2>&1; }
  if [ $need = 1 ]; then
    log "installing peers (kit install.sh)"
    timeout 1200 bash "$P/install.sh" >"$results/install.log" 2>&1 || { log "install failed, see $results/install.log"; exit 1; }
  fi
fi

# ------------------------------------------------------------------ servers
ulimit -n "$(ulimit -Hn)"
EJ_URL=ws://127.0.0.1:5280/ws; PR_URL=ws://127.0.0.1:5380/xmpp-websocket; MQ_URL=ws://127.0.0.1:8080/mqtt
IM_URL="ws://127.0.0.1:$IM_PORT/ws?imengine"
IM_DATA=$results/imengine-data; IM_PID=""

port_busy() { ss -ltnH "sport = :$1" | grep -q .; }
wait_port() {  # port seconds
  local i; for ((i = 0; i < $2 * 10; i++)); do port_busy "$1" && return 0; sleep 0.1; done; return 1
}
wait_free() { local i; for ((i = 0; i < $2 * 10; i++)); do port_busy "$1" || return 0; sleep 0.1; done; return 1; }
wait_gone() { local i; for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

srv_port() { case $1 in ejabberd) echo 5280 ;; prosody) echo 5380 ;; mosquitto) echo 8080 ;; *) echo "$IM_PORT" ;; esac; }
srv_url() { case $1 in ejabberd) echo $EJ_URL ;; prosody) echo $PR_URL ;; mosquitto) echo $MQ_URL ;; *) echo "$IM_URL" ;; esac; }
srv_proto() { case $1 in mosquitto) echo mqtt ;; imengine-*) echo imengine ;; *) echo xmpp ;; esac; }

srv_pid() {  # main server process
  case $1 in
    ejabberd) cat "$P/ejabberd/ejabberd.pid" 2>/dev/null ;;
    prosody) cat "$P/prosody/launcher.pid" 2>/dev/null ;;
    mosquitto) cat "$P/mosquitto/mosquitto.pid" 2>/dev/null ;;
    imengine-*) echo "$IM_PID" ;;
  esac
}

srv_fresh() {  # wipe the server's data
  case $1 in
    ejabberd) timeout 60 bash "$P/ejabberd/setup.sh" >>"$LOG" 2>&1 ;;
    prosody) timeout 60 bash "$P/prosody/setup.sh" >>"$LOG" 2>&1 ;;
    mosquitto) rm -rf "$P/mosquitto/data" && mkdir -p "$P/mosquitto/data" && rm -f "$P/mosquitto/mosquitto.pid" ;;
    imengine-*) rm -rf "$IM_DATA" && mkdir -p "$IM_DATA" ;;
  esac
}

srv_start() {  # name ; on the current data
  local port; port=$(srv_port "$1")
  if port_busy "$port"; then log "port $port busy before starting $1"; return 1; fi
  case $1 in
    ejabberd) rm -f "$P/ejabberd/ejabberd.pid"; timeout 90 bash "$P/ejabberd/ctl.sh" start >>"$LOG" 2>&1 &&
                timeout 90 bash "$P/ejabberd/ctl.sh" started >>"$LOG" 2>&1 ;;
    prosody) rm -f "$P/prosody/prosody.pid"; bash "$P/prosody/run.sh" >>"$LOG" 2>&1 ;;
    mosquitto) bash "$P/mosquitto/run.sh" >>"$LOG" 2>&1 ;;
    imengine-full|imengine-none)
      "$ENGINE" --port="$IM_PORT" --data="$IM_DATA" --auth=none --sync="${1#imengine-}" >>"$results/imengine.log" 2>&1 &
      IM_PID=$!; disown "$IM_PID" ;;   # no job-control chatter when W5 SIGKILLs it
  esac
  wait_port "$port" 60 || { log "$1 did not listen on $port"; return 1; }
  if [[ $1 == imengine-* ]]; then
    local i; for ((i = 0; i < 100; i++)); do curl -fsS "http://127.0.0.1:$IM_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  local i; for ((i = 0; i < 50; i++)); do [ -n "$(srv_pid "$1")" ] && break; sleep 0.1; done
  sleep 1
  log "$1 up, pid $(srv_pid "$1")"
}

srv_stop() {  # by PID
  local pid; pid=$(srv_pid "$1")
  case $1 in
    ejabberd)
      timeout 60 bash "$P/ejabberd/ctl.sh" stop >>"$LOG" 2>&1 && timeout 60 bash "$P/ejabberd/ctl.sh" stopped >>"$LOG" 2>&1
      [ -n "$pid" ] && kill "$pid" 2>/dev/null
      # epmd started by ejabberdctl: the one listening on 127.0.0.1:4369
      local e; e=$(ss -ltnpH 'sport = :4369' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
      [ -n "$e" ] && kill "$e" 2>/dev/null ;;
    *) [ -n "$pid" ] && kill "$pid" 2>/dev/null ;;
  esac
  if [ -n "$pid" ] && ! wait_gone "$pid" 20; then log "$1 ($pid) still alive, SIGKILL"; kill -9 "$pid" 2>/dev/null; fi
  wait_free "$(srv_port "$1")" 20 || log "port $(srv_port "$1") still busy after stopping $1"
  [[ $1 == imengine-* ]] && IM_PID=""
  true
}

# ------------------------------------------------------------------ recording
record() {  # rep server workload rc json-or-empty [note]
  local res=$5
  [ -z "$res" ] && res=null
  printf '{"rep":%s,"server":"%s","workload":"%s","rc":%s,"load":"%s","ts":"%s","result":%s,"note":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%FT%TZ)" "$res" "${6:-}" >>"$R"
}
lastjson() { grep '^{' "$1" | tail -1; }

run_node() {  # rep server workload timeout-s script args...
  local rep=$1 s=$2 w=$3 t=$4; shift 4
  local out=$results/$s-$w-r$rep.out err=$results/$s-$w-r$rep.err
  log "$s $w rep $rep: node $*"
  (cd "$P/client" && timeout "$t" node "$@") >"$out" 2>"$err"
  local rc=$?
  local j; j=$(lastjson "$out")
  record "$rep" "$s" "$w" "$rc" "$j" "$( [ -z "$j" ] && tail -c 200 "$err" | tr -d '"\\\n' )"
  log "  rc=$rc $(echo "$j" | cut -c1-220)"
}

run_w5() {  # rep server
  local rep=$1 s=$2 proto url pid pfx out
  proto=$(srv_proto "$s"); url=$(srv_url "$s"); pid=$(srv_pid "$s"); pfx=k$RANDOM
  out=$results/$s-W5-r$rep
  log "$s W5 rep $rep: send until 2000 acked, SIGKILL $pid"
  (cd "$P/client" && timeout 120 node crash.js --phase send --proto "$proto" --url "$url" --prefix "$pfx" \
     --n 2000 --window 50 --kill-pid "$pid" --timeout 90) >"$out.send.out" 2>"$out.send.err"
  local rc=$? sj acked; sj=$(lastjson "$out.send.out")
  acked=$(echo "$sj" | grep -o '"acked":[0-9]*' | cut -d: -f2)
  kill -9 "$pid" 2>/dev/null   # in case the script did not get there
  wait_gone "$pid" 20
  [ "$s" = ejabberd ] && { sleep 1; }
  [ "$s" = prosody ] && rm -f "$P/prosody/prosody.pid"
  [ "$s" = mosquitto ] && rm -f "$P/mosquitto/mosquitto.pid"
  if [ $rc -ne 0 ] || [ -z "$acked" ]; then
    record "$rep" "$s" W5 "$rc" "${sj:-}" "send phase failed: $(tail -c 200 "$out.send.err" | tr -d '"\\\n')"
    log "  W5 send phase failed rc=$rc"; srv_start "$s" >/dev/null 2>&1; return
  fi
  local t0; t0=$(date +%s%N)
  if ! srv_start "$s"; then record "$rep" "$s" W5 1 "$sj" "restart failed"; return; fi
  local restart_s; restart_s=$(( ($(date +%s%N) - t0) / 1000000 ))
  (cd "$P/client" && timeout 120 node crash.js --phase recv --proto "$proto" --url "$url" --prefix "$pfx" \
     --acked "$acked" --idle 5 --timeout 90) >"$out.recv.out" 2>"$out.recv.err"
  rc=$?
  local rj; rj=$(lastjson "$out.recv.out")
  record "$rep" "$s" W5 "$rc" "{\"send\":${sj},\"recv\":${rj:-null}}" "restart to ready ${restart_s} ms (incl. 1 s settle)"
  log "  W5: $(echo "$rj" | cut -c1-200)"
}

run_server() {  # rep server
  local rep=$1 s=$2 proto url x pid
  proto=$(srv_proto "$s"); url=$(srv_url "$s"); x=c$rep$RANDOM
  srv_fresh "$s"
  if ! srv_start "$s"; then record "$rep" "$s" start 1 "" "start failed"; srv_stop "$s"; return; fi
  has "$only" W1 && run_node "$rep" "$s" W1 270 bench.js --proto "$proto" --url "$url" --pairs 10 --n 10000 \
    --window 20 --timeout 240 --prefix "${x}b" --label "$s-W1-10pairs-w20"
  has "$only" W2 && run_node "$rep" "$s" W2 240 fanout.js --proto "$proto" --url "$url" --m 100 --k 500 \
    --window 10 --timeout 150 --prefix "${x}g"
  has "$only" W3 && run_node "$rep" "$s" W3 200 offline.js --proto "$proto" --url "$url" --k 5000 \
    --timeout 180 --prefix "${x}o"
  has "$only" W3 && run_node "$rep" "$s" W3b 260 offline-acked.js --proto "$proto" --url "$url" --k 5000 \
    --timeout 240 --prefix "${x}p"
  if has "$only" W4; then
    pid=$(srv_pid "$s")
    run_node "$rep" "$s" W4 450 idle.js --proto "$proto" --url "$url" --k 10000 --conc 50 --hold 5 \
      --pid "$pid" --timeout 420 --prefix "${x}i"
    sleep 3   # let the server drop 10k connections
  fi
  has "$only" W5 && run_w5 "$rep" "$s"
  srv_stop "$s"
}

run_imbench() {  # rep
  local rep=$1 name args out rc
  while read -r name args; do
    [ -z "$name" ] && continue
    has "$only" "${name:0:2}" || continue
    out=$results/imbench-$name-r$rep
    log "imbench $name rep $rep: $args"
    # shellcheck disable=SC2086
    timeout 120 "$IMBENCH" $args --spawn="$ENGINE" >"$out.json" 2>"$out.err"
    rc=$?
    record "$rep" "imbench-${name#*-}" "${name%%-*}" "$rc" "$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin),separators=(",",":")))' <"$out.json" 2>/dev/null)" ""
    log "  rc=$rc"
  done <<'EOF'
W1-full dm --sync=full --pairs=10 --window=20 --count=1000000 --duration=10
W1-none dm --sync=none --pairs=10 --window=20 --count=1000000 --duration=10
W2-full room-fanout --sync=full --members=100 --senders=1 --window=10 --count=1000000 --duration=10
W2-none room-fanout --sync=none --members=100 --senders=1 --window=10 --count=1000000 --duration=10
W2g-full group --sync=full --members=100 --senders=1 --window=10 --count=1000000 --duration=10
W3-full offline --sync=full --count=5000 --page=1000
W3-none offline --sync=none --count=5000 --page=1000
W4-full idle --sync=full --conns=10000 --hold=3
EOF
}

# ------------------------------------------------------------------ main
{
  echo "# compare.sh $* ; $(date -u +%FT%TZ) ; $(nproc) vCPU ; $(uname -r)"
  echo "# git $(git -C "$repo" rev-parse --short HEAD 2>/dev/null) ; reps=$reps only=$only servers=$servers"
} >"$results/meta.txt"
log "results in $results (reps=$reps only=$only servers=$servers)"
for s in ejabberd prosody mosquitto imengine-full imengine-none; do
  has "$servers" "$s" && port_busy "$(srv_port "$s")" && log "WARNING: port $(srv_port "$s") for $s is already in use"
done
start=$(date +%s)
for ((rep = 1; rep <= reps; rep++)); do
  for s in ${servers//,/ }; do
    case $s in
      imbench) run_imbench "$rep" ;;
      ejabberd|prosody|mosquitto|imengine-full|imengine-none) run_server "$rep" "$s" ;;
      *) log "unknown server $s" ;;
    esac
  done
done
log "done in $(( $(date +%s) - start )) s"
python3 "$repo/bench/compare/table.py" "$R" | tee "$results/table.md"
