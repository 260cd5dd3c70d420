#!/usr/bin/python3
"""bench/cluster.sh's tables: one row per configuration (NAME of NAME-rN.json),
median of the repetitions with min-max in brackets. Standard library only.
usage: bench/cluster_table.py RESULT_DIR"""
import json
import pathlib
import re
import statistics
import sys


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def cell(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    m = statistics.median(vals)
    lo, hi = min(vals), max(vals)
    return fmt(m) if fmt(lo) == fmt(hi) else f"{fmt(m)} ({fmt(lo)}–{fmt(hi)})"


def engine_cpu(r):
    v = get(r, "cluster.cpu_s_per_1k_msgs")
    return v if v is not None else get(r, "server.cpu_s_per_1k_msgs")


COMMON = [
    ("msgs/s", lambda r: get(r, "throughput.msgs_per_s")),
    ("deliveries/s", lambda r: get(r, "throughput.deliveries_per_s")),
    ("ack p50 ms", lambda r: get(r, "latency_ms.ack.p50")),
    ("ack p99 ms", lambda r: get(r, "latency_ms.ack.p99")),
    ("delivery p50 ms", lambda r: get(r, "latency_ms.delivery.p50")),
    ("delivery p99 ms", lambda r: get(r, "latency_ms.delivery.p99")),
]
ROOM = [
    ("spread p50 ms", lambda r: get(r, "latency_ms.spread.p50")),
    ("spread p99 ms", lambda r: get(r, "latency_ms.spread.p99")),
]
TAIL = [
    ("engine CPU s / 1k msgs (all nodes)", engine_cpu),
    ("inter-node sends / msg", lambda r: get(r, "cluster.sent_per_msg")),
    ("timeline sends / msg", lambda r: get(r, "cluster.timeline_sent_per_msg")),
    ("imbench CPU s", lambda r: get(r, "client_cpu_s")),
]


def main():
    d = pathlib.Path(sys.argv[1])
    groups = {}
    for f in sorted(d.glob("*.json")):
        m = re.match(r"(.*)-r(\d+)$", f.stem)
        if not m:
            continue
        try:
            r = json.loads(f.read_text())
        except ValueError:
            r = {"ok": False, "failure": "no JSON summary"}
        groups.setdefault(m.group(1), []).append(r)
    for scen in ("dm", "room"):
        names = [n for n in groups if n.startswith(scen)]
        if not names:
            continue
        cols = COMMON + (ROOM if scen == "room" else []) + TAIL
        print(f"\n### {scen}\n")
        print("| configuration | runs ok | lost / dup / out of order | errors | "
              + " | ".join(c for c, _ in cols) + " |")
        print("|---" * (len(cols) + 4) + "|")
        for n in names:
            rs = groups[n]
            ok = sum(1 for r in rs if r.get("ok"))
            bad = [sum(int(r.get(k, 0) or 0) for r in rs)
                   for k in ("lost", "duplicated", "out_of_order")]
            errs = sum(int(r.get("errors", 0) or 0) for r in rs)
            print(f"| {n} | {ok}/{len(rs)} | {' / '.join(map(str, bad))} | {errs} | "
                  + " | ".join(cell([f(r) for r in rs]) for _, f in cols) + " |")
        for n in names:
            for i, r in enumerate(groups[n], 1):
                if not r.get("ok") or r.get("errors"):
                    print(f"\n{n} #{i}: ok={r.get('ok')} failure={r.get('failure')} "
                          f"errors={r.get('errors')} samples={r.get('error_samples')}")


if __name__ == "__main__":
    main()
