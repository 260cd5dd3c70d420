"""gnuplot SVGs from grouped imbench summaries (see report.py).

Each plot is one gnuplot script with its data inline (datablocks), fed to
gnuplot on stdin: nothing but the summaries goes in, so a plot is
reproducible from a kept results directory.
"""
import os
import statistics
import subprocess

TERMINAL = "set terminal svg size 1000,460 dynamic noenhanced font 'sans,11' background rgb 'white'"
# gnuplot's default 5th colour is a pale yellow, unreadable on white.
COLOURS = "set linetype 5 lc rgb '#a07800'"
# imbench before the "cdf" field kept only these quantiles; a CDF through
# them is coarse, and the plot says so.
PERCENTILES = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)]


LOG_TICS = ", ".join(f"{m * 10.0 ** e:g}" for e in range(-2, 6) for m in (1, 2, 5))


def quote(s):
    return "'" + str(s).replace("'", "''") + "'"


def gnuplot(path, script):
    subprocess.run(["gnuplot"], input=f"{TERMINAL}\n{COLOURS}\nset output {quote(path)}\n{script}",
                   text=True, check=True)


def datablock(name, rows):
    body = "\n".join(" ".join(str(v) for v in r) for r in rows)
    return f"${name} << EOD\n{body}\nEOD\n"


def latency(d, kind):
    """The latency summary of `kind` (delivery, spread) in a run, or None."""
    lat = d.get("latency_ms", {}).get(kind) or d.get(f"{kind}_ms")
    return lat if isinstance(lat, dict) and lat.get("n") else None


def cdf_points(lat):
    """([(ms, fraction)], exact): exact is False when only percentiles exist."""
    if "cdf" in lat:
        pts, exact = [tuple(p) for p in lat["cdf"]], True
    else:
        pts, exact = [(lat[p], f) for p, f in PERCENTILES if p in lat], False
    return [(ms, f) for ms, f in pts if ms > 0], exact   # log x axis: no 0 ms


def latency_cdf(path, scenario, kind, series):
    """series: [(label, [[(ms, fraction)] per run])]. Left: the CDF; right:
    1 − CDF on a log axis, where p99 and p99.9 are readable."""
    blocks, lines, tails, coarse = "", [], [], False
    for i, (label, runs) in enumerate(series):
        for j, (pts, exact) in enumerate(runs):
            coarse |= not exact
            name = f"d{i}_{j}"
            blocks += datablock(name, pts)
            style = "lines lw 1.5" if exact else "linespoints pt 7 ps 0.5"
            title = f"title {quote(label)}" if j == 0 else "notitle"
            lines.append(f"${name} using 1:2 with {style} lc {i + 1} {title}")
            tails.append(f"${name} using 1:(1 - $2 > 0 ? 1 - $2 : NaN) with {style} lc {i + 1} notitle")
    note = " (these summaries hold p50/p90/p99/p99.9/max only: points joined by lines)" if coarse else ""
    gnuplot(path, f"""{blocks}
set multiplot layout 1,2 title {quote(f"{scenario}: {kind} latency, one line per run{note}")}
set logscale x
set xtics ({LOG_TICS})   # 1-2-5: a decade alone would often get no tic
set grid
set xlabel {quote(f"{kind} latency, ms (log scale)")}
set ylabel 'fraction of messages within x'
set yrange [0:1]
set key bottom right   # CDFs rise to the right: that corner stays empty
plot {", ".join(lines)}
set logscale y
set yrange [1e-4:1]
set format y '%g'
set ylabel 'fraction slower than x (1 − CDF)'
unset key
plot {", ".join(tails)}
unset multiplot
""")


def latency_plots(groups, out, labels):
    written = []
    for scenario, configs in sorted(groups.items()):
        for kind in ("delivery", "spread"):
            series = []
            for k in sorted(configs, key=lambda k: labels[(scenario, k)]):
                runs = [cdf_points(lat) for d in configs[k]
                        if d.get("ok") and (lat := latency(d, kind))]
                if runs:
                    series.append((labels[(scenario, k)], runs))
            if series:
                path = os.path.join(out, f"latency-cdf-{scenario}-{kind}.svg")
                latency_cdf(path, scenario, kind, series)
                written.append(path)
    return written


def throughput_dm(groups, out):
    """msgs/s against messages in flight (pairs × window), one line per sync
    mode (and per encoding other than json): median, bars for min–max."""
    lines = {}
    for k, runs in groups.get("dm", {}).items():
        c = dict(k)
        rates = [d["throughput"]["msgs_per_s"] for d in runs
                 if d.get("ok") and "msgs_per_s" in d.get("throughput", {})]
        if not rates or "pairs" not in c or "window" not in c:
            continue
        name = f"sync={c.get('sync')}" + ("" if c.get("encoding", "json") == "json" else f", {c['encoding']}")
        lines.setdefault(name, []).append(
            (c["pairs"] * c["window"], statistics.median(rates), min(rates), max(rates),
             f'"{c["pairs"]}×{c["window"]}"'))
    if not lines:
        return []
    # Room on the right for the last point's label.
    xmax = 4 * max(p[0] for pts in lines.values() for p in pts)
    blocks, plots = "", []
    for i, (name, pts) in enumerate(sorted(lines.items())):
        blocks += datablock(f"t{i}", sorted(pts))
        plots.append(f"$t{i} using 1:2:3:4 with yerrorlines lc {i + 1} pt 7 title {quote(name)}")
        plots.append(f"$t{i} using 1:2:5 with labels left offset char 0.8,0.6 tc lt {i + 1} notitle")
    path = os.path.join(out, "throughput-dm.svg")
    gnuplot(path, f"""{blocks}
set title 'dm: acked msgs/s against messages in flight; median of the runs, bars min–max, labels pairs×window'
set logscale x
set xrange [0.5:{xmax}]
set yrange [0:*]
set grid
set xlabel 'pairs × window (messages in flight, log scale)'
set ylabel 'msgs/s'
set key top left
plot {", ".join(plots)}
""")
    return [path]


def draw_all(groups, out, labels):
    os.makedirs(out, exist_ok=True)
    return latency_plots(groups, out, labels) + throughput_dm(groups, out)
