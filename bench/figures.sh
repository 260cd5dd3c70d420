#!/usr/bin/env bash
# One imbench run against a spawned engine, reduced to the figures the
# interleaved comparisons in docs/BENCHMARKS.md quote: engine CPU per 1,000
# messages, messages and deliveries per second, ack p99, ok.
# usage: bench/figures.sh ENGINE_BIN SCENARIO "ENGINE ARGS" [IMBENCH ARGS...]
set -euo pipefail
bin=$1 scenario=$2 engine_args=$3
shift 3
here=$(dirname "$0")
"$here/../build/bench/imbench" "$scenario" --spawn="$bin" --sync=full --engine-args="$engine_args" "$@" \
  2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
s, t, l = d['server'], d['throughput'], d['latency_ms']
print('cpu/1k %.3f  msgs/s %d  deliv/s %d  ack_p99 %.1f ok=%s'
      % (s['cpu_s_per_1k_msgs'], t['msgs_per_s'], t['deliveries_per_s'], l['ack']['p99'], d['ok']))"
