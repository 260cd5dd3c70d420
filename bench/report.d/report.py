"""imbench summaries -> markdown tables (stdout) and gnuplot SVGs.

Run through bench/report, which makes sure python3 and gnuplot are
installed. Everything here is derived from the JSON summaries alone, so the
tables and plots can be regenerated from a kept results directory.
"""
import argparse
import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plots  # noqa: E402  (next to this file)

# Parameters that bound or pace a run but do not define its configuration.
NOT_CONFIG = {"grace_s", "settle_s", "nofile_limit", "connect_concurrency", "run_id"}
# Column order for the parameters that differ between configurations.
PARAM_ORDER = ["sync", "pairs", "window", "members", "senders", "mode", "rooms",
               "conns", "page", "count", "size", "encoding", "threads", "duration_s"]

# (column, paths to try in a summary). A column appears for a scenario when
# at least one of its runs has the field, so summaries from newer or older
# imbench builds (room-fanout's spread, say) just gain or lose columns.
METRICS = [
    ("msgs/s", [("throughput", "msgs_per_s")]),
    ("deliveries/s", [("throughput", "deliveries_per_s")]),
    ("ack p50 ms", [("latency_ms", "ack", "p50")]),
    ("ack p99 ms", [("latency_ms", "ack", "p99")]),
    ("delivery p50 ms", [("latency_ms", "delivery", "p50")]),
    ("delivery p99 ms", [("latency_ms", "delivery", "p99")]),
    ("spread p50 ms", [("latency_ms", "spread", "p50"), ("spread_ms", "p50")]),
    ("spread p99 ms", [("latency_ms", "spread", "p99"), ("spread_ms", "p99")]),
    ("engine CPU s / 1k msgs", [("server", "cpu_s_per_1k_msgs")]),
    ("connections reached", [("connections_reached",)]),
    ("open s", [("open_s",)]),
    ("engine RSS before KiB", [("server", "rss_kb_before")]),
    ("engine RSS after KiB", [("server", "rss_kb_after")]),
    ("bytes / conn", [("server", "rss_bytes_per_conn")]),
    ("sync pages", [("sync_pages",)]),
    ("login ms", [("login_ms",)]),
    ("login → synced ms", [("login_to_synced_ms",)]),
    ("synced msgs/s", [("throughput", "synced_msgs_per_s")]),
    # Last: the load generator's own cost, to tell when it was the limit.
    ("imbench CPU s", [("client_cpu_s",)]),
]


def get(d, path):
    """The number at `path` in `d`, or None (missing, or not a number)."""
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        return None
    return d


def metric(d, paths):
    for p in paths:
        v = get(d, p)
        if v is not None:
            return v
    return None


def load(inputs):
    """[(file, summary)] from files and directories (their *.json only)."""
    files = []
    for i in inputs:
        files += sorted(glob.glob(os.path.join(i, "*.json"))) if os.path.isdir(i) else [i]
    runs = []
    for f in files:
        if os.path.isfile(f) and os.path.getsize(f) == 0:
            print(f"bench/report: skipping {f}: empty (a run that did not finish)", file=sys.stderr)
            continue
        try:
            with open(f) as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            # A run killed mid-way leaves an empty or partial file.
            print(f"bench/report: skipping {f}: {e}", file=sys.stderr)
            continue
        if isinstance(d, dict) and "scenario" in d:
            runs.append((f, d))
    return runs


def config(d):
    c = {k: v for k, v in d.get("params", {}).items() if k not in NOT_CONFIG}
    c["sync"] = d.get("server", {}).get("sync", "?")   # absent when not spawned
    return c


def order(key):
    try:
        return (PARAM_ORDER.index(key), key)
    except ValueError:
        return (len(PARAM_ORDER), key)


def sortable(v):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def group(runs):
    """{scenario: {config key: [summary]}}, configs in a stable order."""
    out = {}
    for _, d in runs:
        key = tuple(sorted(config(d).items()))
        out.setdefault(d["scenario"], {}).setdefault(key, []).append(d)
    return out


def varying(configs):
    """Parameter names whose value differs between configurations."""
    keys = sorted({k for c in configs for k, _ in c}, key=order)
    return [k for k in keys if len({dict(c).get(k) for c in configs}) > 1]


def labels(groups):
    """{(scenario, config key): "sync=full pairs=10 ..."} naming each
    configuration by what sets it apart, for the plots' keys."""
    out = {}
    for scenario, configs in groups.items():
        # One configuration alone: name it by the parameters that shape the
        # load (those before "count" in PARAM_ORDER).
        cols = varying(list(configs)) or [
            c for c in PARAM_ORDER[:PARAM_ORDER.index("count")] if c in dict(next(iter(configs)))]
        for k in configs:
            out[(scenario, k)] = " ".join(f"{c}={dict(k).get(c)}" for c in cols)
    return out


def num(v):
    a = abs(v)
    if a >= 1000 or float(v).is_integer():   # counts stay whole: 50 pages, not 50.0
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cell(values):
    """Median (min–max) over repetitions; one value alone when they agree."""
    if not values:
        return "–"
    med, lo, hi = statistics.median(values), min(values), max(values)
    if num(lo) == num(hi):
        return num(med)
    return f"{num(med)} ({num(lo)}–{num(hi)})"


def check(runs):
    """How many runs completed, and any correctness failure summed."""
    ok = sum(1 for d in runs if d.get("ok"))
    bad = {k: sum(get(d, (k,)) or 0 for d in runs)
           for k in ("lost", "duplicated", "out_of_order", "errors")}
    text = f"{ok}/{len(runs)} ok"
    problems = ", ".join(f"{k} {v}" for k, v in bad.items() if v)
    return f"{text}; {problems}" if problems else text


def table(scenario, configs):
    keys = list(configs)
    cols = varying(keys)
    fixed = {k: v for k, v in keys[0] if k not in cols}
    # Medians only over completed runs: a failed run's rates mean nothing.
    good = {k: [d for d in configs[k] if d.get("ok")] for k in keys}
    metrics = [(name, paths) for name, paths in METRICS
               if any(metric(d, paths) is not None for k in keys for d in configs[k])]
    keys.sort(key=lambda k: [sortable(dict(k).get(c)) for c in cols])

    lines = [f"### {scenario}", ""]
    if fixed:
        lines += ["All runs: " + ", ".join(f"{k} {v}" for k, v in sorted(fixed.items(), key=lambda kv: order(kv[0]))) + ".", ""]
    head = cols + ["runs"] + [name for name, _ in metrics]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for k in keys:
        c = dict(k)
        row = [str(c.get(col, "")) for col in cols] + [check(configs[k])]
        for _, paths in metrics:
            row.append(cell([v for d in good[k] if (v := metric(d, paths)) is not None]))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(prog="bench/report", description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="result directories or summary JSON files")
    # docs/bench/ of this checkout, wherever the script is run from.
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "bench")
    ap.add_argument("--out", default=os.path.relpath(docs),
                    help="directory for the SVG plots (default: docs/bench/ of this checkout)")
    ap.add_argument("--no-plots", action="store_true", help="print the tables only")
    a = ap.parse_args()

    runs = load(a.inputs)
    if not runs:
        sys.exit("bench/report: no imbench summaries in " + " ".join(a.inputs))
    groups = group(runs)
    print(f"Source: {', '.join(a.inputs)} ({len(runs)} summaries). Each cell: median over "
          "the runs that completed, (min–max) when they differ; runs: completed/total, "
          "then lost, duplicated, out-of-order and errors summed over the runs when any.")
    for scenario in sorted(groups):
        print()
        print(table(scenario, groups[scenario]))

    if a.no_plots:
        return
    try:
        written = plots.draw_all(groups, a.out, labels(groups))
    except FileNotFoundError:   # bench/report could not install gnuplot
        print("bench/report: gnuplot not found, no plots", file=sys.stderr)
        sys.exit(4)
    for f in written:
        print(f"bench/report: wrote {f}", file=sys.stderr)


if __name__ == "__main__":
    main()
