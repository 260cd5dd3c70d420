#!/usr/bin/env python3
"""Markdown table from bench/compare.sh results.jsonl (one JSON line per run).

usage: table.py RESULTS.jsonl
Figures are medians over repetitions (min-max in brackets when there are several).
"imengine advantage" = how many times better imengine's Node-driven figure is than the peer's:
imengine/peer for rates, peer/imengine for times and memory (> 1: imengine better).
"""
import json
import statistics
import sys

TIERS = [  # peer, imengine counterpart (same durability tier), imbench counterpart
    ("ejabberd", "imengine-full", "imbench-full"),
    ("prosody", "imengine-full", "imbench-full"),
    ("mosquitto", "imengine-none", "imbench-none"),
]
# workload -> (title, unit, higher_is_better, extractor for kit/Node results, extractor for imbench)
def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def ok_status(r):
    return r.get("status", "ok") == "ok"


W = {
    "W1": ("W1 dm, 10 pairs x 20 in flight", "msg/s", True,
           lambda r: r.get("msgs_per_s") if ok_status(r) and r.get("delivered") == r.get("n") else None,
           lambda r: _get(r, "throughput", "msgs_per_s")),
    "W2": ("W2 100-member room/group, 500 msgs", "deliveries/s", True,
           lambda r: r.get("deliveries_per_s") if ok_status(r) else None,
           lambda r: _get(r, "throughput", "deliveries_per_s")),
    "W3": ("W3 5,000 offline msgs, login -> all delivered", "ms", False,
           lambda r: r.get("login_to_all_delivered_ms") if ok_status(r) and r.get("delivered") == r.get("k") else None,
           lambda r: r.get("login_to_synced_ms")),
    "W3b": ("W3b same, recipient logs in once all 5,000 are server-acked", "ms", False,
            lambda r: r.get("login_to_all_delivered_ms") if ok_status(r) and r.get("delivered") == r.get("k") else None,
            None),
    "W4": ("W4 10k idle connections, server RSS", "KiB/conn", False,
           lambda r: r.get("kib_per_conn") if r.get("ok", 0) >= 0.99 * r.get("k", 1) else None,
           lambda r: (_get(r, "server", "rss_bytes_per_conn") or 0) / 1024 or None),
}


def fmt(v, unit):
    if v is None:
        return "—"
    if unit in ("KiB/conn",):
        return f"{v:.1f}"
    return f"{v:,.0f}"


def summary(vals, unit):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, "failed"
    m = statistics.median(vals)
    s = fmt(m, unit)
    if len(vals) > 1:
        s += f" ({fmt(min(vals), unit)}–{fmt(max(vals), unit)})"
    return m, s


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    by = {}
    for r in rows:
        by.setdefault((r["server"], r["workload"]), []).append(r)

    def values(server, wl, imbench=False):
        ext = W[wl][4] if imbench else W[wl][3]
        out = []
        for r in by.get((server, wl), []):
            res = r.get("result")
            # imbench idle exits 2 when a few handshakes fail under load: keep the figure if >= 99 % connected
            partial = (imbench and wl == "W4" and isinstance(res, dict) and r.get("rc") == 2 and
                       (res.get("connections_reached") or 0) >= 0.99 * (_get(res, "params", "conns") or 1e9))
            if (r.get("rc", 1) != 0 and not partial) or not isinstance(res, dict):
                out.append(None)
                continue
            try:
                out.append(ext(res))
            except Exception:
                out.append(None)
        return out

    reps = max([r.get("rep", 1) for r in rows] or [0])
    print(f"Medians of {reps} repetition(s); brackets: min–max. *advantage* = imengine (Node, same tier) vs the peer, "
          "> 1 means imengine is better (rate: imengine/peer; time, memory: peer/imengine).\n")
    print("| workload | unit | peer | peer figure | imengine, same Node client | imengine sync | imengine advantage | imengine peak (imbench, C++) |")
    print("|---|---|---|---|---|---|---|---|")
    for wl, (title, unit, higher, _, _) in W.items():
        for peer, im, ib in TIERS:
            if not by.get((peer, wl)) and not by.get((im, wl)) and not by.get((ib, wl)):
                continue
            pv, ps = summary(values(peer, wl), unit) if by.get((peer, wl)) else (None, "not run")
            iv, is_ = summary(values(im, wl), unit) if by.get((im, wl)) else (None, "not run")
            ibk = ib if by.get((ib, wl)) or wl != "W4" else "imbench-full"  # idle: sync does not matter
            bv, bs = summary(values(ibk, wl, True), unit) if by.get((ibk, wl)) else (None, "not run")
            if wl == "W3b":
                bv, bs = None, "see W3"
            if pv and iv:
                ratio = f"**{(iv / pv if higher else pv / iv):.1f}×**"
            else:
                ratio = "n/a"
            print(f"| {title} | {unit} | {peer} | {ps} | {is_} | {im.split('-')[1]} | {ratio} | {bs} |")
    # W5
    w5 = [(s, by.get((s, "W5"), [])) for s in ("ejabberd", "prosody", "mosquitto", "imengine-full", "imengine-none")]
    if any(v for _, v in w5):
        print("\n| W5 SIGKILL after 2,000 server-acked msgs | server ack used | acked | survived restart | lost | run(s) |")
        print("|---|---|---|---|---|---|")
        ack = {"ejabberd": "XEP-0198 `<a h>`", "prosody": "XEP-0198 `<a h>`", "mosquitto": "QoS1 PUBACK",
               "imengine-full": "`ack` (after fsync'd commit)", "imengine-none": "`ack` (after commit, no fsync)"}
        for s, runs in w5:
            if not runs:
                continue
            acked, surv, lost, notes = [], [], [], []
            for r in runs:
                res = r.get("result") or {}
                rv = res.get("recv") if isinstance(res, dict) else None
                if r.get("rc") == 0 and rv:
                    acked.append(rv["acked"]); surv.append(rv["survived"]); lost.append(rv["lost"])
                else:
                    notes.append(r.get("note") or f"rc {r.get('rc')}")
            cell = lambda xs: ", ".join(str(x) for x in xs) if xs else "—"
            status = f"{len(acked)} ok" + (f"; failed: {'; '.join(notes)}" if notes else "")
            print(f"| {s} | {ack[s]} | {cell(acked)} | {cell(surv)} | {cell(lost)} | {status} |")


if __name__ == "__main__":
    main(sys.argv[1])
