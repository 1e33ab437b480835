"""report: medians, ratios and goal checks over the samples; writes results.md, results.json,
chart.dat and chart.png (gnuplot) into the output folder.

Ratios are computed per round (a figure divided by the direct baseline, or by HAProxy with forced
splice at the same thread count, measured in the same round) and the median of those per-round
ratios is shown, so a slow round moves numerator and denominator together.
"""

import json
import os
import statistics
import subprocess

# metric, label, unit, lower is better, ratio to direct meaningful
METRICS = [
    ("bulk1_gbps", "bulk, 1 stream", "Gbit/s", False, True),
    ("bulk1_cpu_s_per_gb", "bulk, 1 stream: CPU", "s/GB", True, False),
    ("bulk4_gbps", "bulk, 4 streams", "Gbit/s", False, True),
    ("bulk4_cpu_s_per_gb", "bulk, 4 streams: CPU", "s/GB", True, False),
    ("close_conns_per_s", "short connections", "conn/s", False, True),
    ("close_cpu_us_per_conn", "short connections: CPU", "us/conn", True, False),
    ("ka_req_per_s", "keep-alive", "req/s", False, True),
    ("ka_p50_ms", "keep-alive p50", "ms", True, True),
    ("ka_p99_ms", "keep-alive p99 (noisy)", "ms", True, True),
    ("ka_cpu_us_per_req", "keep-alive: CPU", "us/req", True, False),
    ("idle_rss_b_per_conn", "idle connection RSS", "B/conn", True, False),
    ("idle_pss_b_per_conn", "idle connection Pss", "B/conn", True, False),
    ("tls_close_conns_per_s", "TLS short connections", "conn/s", False, True),
    ("tls_close_cpu_us_per_conn", "TLS short connections: CPU", "us/conn", True, False),
    ("tls_ka_req_per_s", "TLS keep-alive", "req/s", False, True),
    ("tls_ka_p50_ms", "TLS keep-alive p50", "ms", True, True),
    ("tls_ka_p99_ms", "TLS keep-alive p99 (noisy)", "ms", True, True),
    ("tls_ka_cpu_us_per_req", "TLS keep-alive: CPU", "us/req", True, False),
    ("tls_idle_rss_b_per_conn", "TLS idle connection RSS", "B/conn", True, False),
    ("tls_idle_pss_b_per_conn", "TLS idle connection Pss", "B/conn", True, False),
]

CHART = [
    ("bulk1_cpu_s_per_gb", "bulk 1 stream: forwarder CPU s per GB (log, lower is better)"),
    ("bulk1_gbps", "bulk 1 stream: Gbit/s (higher is better)"),
    ("close_cpu_us_per_conn", "short connections: CPU us per conn (log, lower is better)"),
    ("close_conns_per_s", "short connections per second (higher is better)"),
    ("idle_pss_b_per_conn", "idle connection: Pss bytes per conn (log, lower is better)"),
    ("tls_close_cpu_us_per_conn", "TLS short connections: CPU us per conn (log, lower is better)"),
]


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class table:
    """table: samples indexed by (contender, threads, metric) -> {round: value}."""

    def __init__(self, samples, contenders):
        self.per_thread = {c["name"]: c["per_thread"] for c in contenders}
        self.by = {}
        for s in samples:
            self.by.setdefault((s["contender"], s["threads"], s["metric"]), {})[s["round"]] = \
                s["value"]

    def key(self, name, t):
        return (name, t if self.per_thread.get(name, True) else 0)

    def rounds(self, name, t, metric):
        n, tt = self.key(name, t)
        return self.by.get((n, tt, metric), {})

    def median(self, name, t, metric):
        return _median(self.rounds(name, t, metric).values())

    def ratio(self, name, t, metric, ref):
        num, den = self.rounds(name, t, metric), self.rounds(ref, t, metric)
        rs = [num[r] / den[r] for r in num if r in den and num[r] is not None and den[r]]
        return _median(rs)


def _fmt(v):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _cell(tb, name, t, metric, vs_direct, ref):
    v = tb.median(name, t, metric)
    if v is None:
        return "-"
    parts = []
    rd = tb.ratio(name, t, metric, "direct") if vs_direct else None
    rh = tb.ratio(name, t, metric, ref)
    parts.append(f"{rd:.2f}" if rd is not None else "-")
    parts.append(f"{rh:.2f}" if rh is not None else "-")
    return f"{_fmt(v)} ({' / '.join(parts)})"


def goals(tb, t, ref, names, errors):
    """goals: the targets for linesman at thread count T, as (goal, figure, met) rows."""
    L = "linesman"
    if L not in names or ref not in names:
        return []
    rows = []

    def add(goal, fig, ok):
        rows.append((goal, fig, "-" if ok is None else ("met" if ok else "NOT met")))

    for pre, tag in (("", ""), ("tls_", "TLS ")):
        if not pre:
            v, h = tb.median(L, t, "bulk1_cpu_s_per_gb"), tb.median(ref, t, "bulk1_cpu_s_per_gb")
            add("CPU per GB <= 0.8x HAProxy forced splice",
                f"{_fmt(v)} vs {_fmt(h)} s/GB",
                None if v is None or h is None else v <= 0.8 * h)
            v, h = tb.ratio(L, t, "bulk1_gbps", "direct"), tb.ratio(ref, t, "bulk1_gbps", "direct")
            add("bulk 1-stream ratio to direct >= HAProxy's",
                f"{_fmt(v)} vs {_fmt(h)}", None if v is None or h is None else v >= h)
        best = [tb.median(n, t, f"{pre}close_cpu_us_per_conn") for n in names
                if n.startswith("haproxy") or n == "nginx"]
        best = [b for b in best if b is not None]
        v = tb.median(L, t, f"{pre}close_cpu_us_per_conn")
        h = tb.median(ref, t, f"{pre}close_cpu_us_per_conn")
        add(f"{tag}CPU per short connection <= 1.0x HAProxy forced splice"
            + (" (SNI routing)" if pre else ""),
            f"{_fmt(v)} vs {_fmt(h)} us", None if v is None or h is None else v <= h)
        b = min(best) if best else None
        add(f"{tag}CPU per short connection <= 0.8x best of HAProxy/nginx",
            f"{_fmt(v)} vs {_fmt(b)} us", None if v is None or b is None else v <= 0.8 * b)
        v, h = tb.median(L, t, f"{pre}ka_req_per_s"), tb.median(ref, t, f"{pre}ka_req_per_s")
        add(f"{tag}keep-alive req/s within 10% of HAProxy",
            f"{_fmt(v)} vs {_fmt(h)}", None if v is None or h is None else v >= 0.9 * h)
        v, h = tb.median(L, t, f"{pre}ka_p50_ms"), tb.median(ref, t, f"{pre}ka_p50_ms")
        add(f"{tag}keep-alive p50 within 10% of HAProxy",
            f"{_fmt(v)} vs {_fmt(h)} ms", None if v is None or h is None else v <= 1.1 * h)
        v = tb.median(L, t, f"{pre}idle_pss_b_per_conn")
        failed = [e for e in errors if e["contender"] == L and e["threads"] == t
                  and e["test"] == f"{pre}idle"]
        if v is None and failed:
            add(f"{tag}idle connection Pss <= 3 KB (3000 B)",
                "could not hold them all: " + failed[0]["error"][:160], False)
        else:
            add(f"{tag}idle connection Pss <= 3 KB (3000 B)", f"{_fmt(v)} B",
                None if v is None else v <= 3000)
    return rows


def write(out, meta, samples, errors, logs):
    os.makedirs(out, exist_ok=True)
    tb = table(samples, meta["contenders"])
    ref = meta["reference"]
    names = [c["name"] for c in meta["contenders"]]
    labels = {c["name"]: c["label"] for c in meta["contenders"]}
    threads = meta["params"]["threads"]

    summary = {}
    for t in threads:
        for n in names:
            for m, *_ in METRICS:
                v = tb.median(n, t, m)
                if v is None:
                    continue
                summary.setdefault(str(t), {}).setdefault(n, {})[m] = {
                    "median": v,
                    "rounds": [tb.rounds(n, t, m)[r] for r in sorted(tb.rounds(n, t, m))],
                    "vs_direct": tb.ratio(n, t, m, "direct"),
                    "vs_" + ref: tb.ratio(n, t, m, ref),
                }

    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "summary": summary, "samples": samples, "errors": errors,
                   "logs": logs}, f, indent=1, default=str)

    md = []
    p = meta["params"]
    md.append("# linesman end-to-end benchmark: results\n")
    md.append(f"- date: {meta['date']} (run took {meta['duration_s']} s)")
    md.append(f"- command: `{meta['command']}`")
    md.append(f"- machine: {meta['machine']}; load average before the run "
              f"{' '.join(meta['load_before'])}")
    md.append(f"- rounds: {meta['rounds_done']} of {p['rounds']} interleaved (medians); iperf3 {p['bulk_seconds']} s per "
              f"run, wrk {p['wrk_seconds']} s per run ({p['close_conns']} connections with "
              f"`Connection: close`, {p['ka_conns']} keep-alive, 1 wrk thread); idle: "
              f"{p['idle']} plain and {p['idle_tls']} TLS connections ({p['idle_socat']} for "
              f"socat), in {p['mem_rounds']} round(s)")
    if p.get("perf"):
        md.append(f"- profiled with `perf record` during bulk and HTTP tests: {p['perf']} (their "
                  "figures include perf's overhead; flat profiles in `perf/`)")
    if p.get("quick"):
        md.append("- **--quick run: 1 round, short durations: figures are indicative only**")
    md.append("")
    md.append("Versions:\n")
    md.append("| component | version |\n|---|---|")
    for k, v in meta["versions"].items():
        md.append(f"| {k} | {v} |")
    if meta["skipped"]:
        md.append("\nSkipped contenders:\n")
        for k, v in meta["skipped"].items():
            md.append(f"- {k}: {v}")
    md.append("")
    md.append(f"Each cell: median (ratio to direct / ratio to {labels.get(ref, ref)}), ratios "
              "are medians of per-round ratios; `-` = not applicable or not measured. CPU is the "
              "forwarder's utime+stime (all its processes and threads); socat and direct do not "
              "depend on the thread count and appear in both tables with the same figures.\n")
    for t in threads:
        md.append(f"## {t} worker thread{'s' if t > 1 else ''}\n")
        md.append("| figure | " + " | ".join(labels[n] for n in names) + " |")
        md.append("|---|" + "---|" * len(names))
        for m, label, unit, _lower, vs_direct in METRICS:
            if all(tb.median(n, t, m) is None for n in names):
                continue
            md.append(f"| {label} ({unit}) | "
                      + " | ".join(_cell(tb, n, t, m, vs_direct, ref) for n in names) + " |")
        md.append("")
        g = goals(tb, t, ref, names, errors)
        if g:
            md.append(f"Goals for linesman at {t} thread(s) (only differences above "
                      "20% are meaningful on this machine):\n")
            md.append("| goal | linesman vs reference | status |\n|---|---|---|")
            for goal, fig, ok in g:
                md.append(f"| {goal} | {fig} | {ok} |")
            md.append("")
    md.append("## Per-connection logging check\n")
    md.append("Lines each contender wrote to its connection log, summed over all tests and "
              "rounds (0 would mean logging was off):\n")
    tot = {}
    for x in logs:
        if x["log_lines"] is not None:
            tot[x["contender"]] = tot.get(x["contender"], 0) + x["log_lines"]
    for n, v in tot.items():
        md.append(f"- {labels.get(n, n)}: {v:,}")
    if errors:
        md.append("\n## Errors during the run\n")
        for e in errors:
            md.append(f"- round {e['round'] + 1}, {e['contender']}, threads {e['threads']}, "
                      f"{e['test']}: {e['error'][:300]}")
    md.append("\n![chart](chart.png)\n")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))

    _chart(out, tb, names, threads, meta)
    return os.path.join(out, "results.md")


def _chart(out, tb, names, threads, meta):
    dat = os.path.join(out, "chart.dat")
    with open(dat, "w") as f:
        f.write("# contender " + " ".join(f"{m}_t{t}" for m, _ in CHART for t in threads) + "\n")
        for n in names:
            vals = []
            for m, _ in CHART:
                for t in threads:
                    v = tb.median(n, t, m)
                    vals.append("?" if v is None else f"{v:.6g}")
            f.write(n + " " + " ".join(vals) + "\n")
    plots = []
    col = 2
    for m, title in CHART:
        if all(tb.median(n, t, m) is None for n in names for t in threads):
            col += len(threads)  # nothing measured: leave the panel out
            continue
        series = []
        for i, t in enumerate(threads):
            src = "'chart.dat'" if i == 0 else "''"
            xt = ":xtic(1)" if i == 0 else ""
            series.append(f"{src} using {col}{xt} title '{t} thread{'s' if t > 1 else ''}'")
            col += 1
        # Costs span two orders of magnitude (socat forks per connection): log scale, key over
        # the empty direct column; rates: linear from 0, key on the right.
        scale = ("set logscale y\nset yrange [*:*]\nset key top left" if "lower is better" in title
                 else "unset logscale y\nset yrange [0:*]\nset key top right")
        plots.append(f"{scale}\nset title \"{title}\"\nplot " + ", ".join(series))
    rounds = meta["rounds_done"]
    gp = "\n".join([
        "set terminal pngcairo size 1600,950 font 'sans,9'",
        "set output 'chart.png'",
        "set datafile missing '?'",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.8 border -1",
        "set boxwidth 0.9",
        "set xtics rotate by -30 nomirror",
        "set grid ytics",
        "set key inside opaque",
        f"set multiplot layout 2,3 title \"linesman e2e benchmark, {meta['date']}, medians of "
        f"{rounds} round(s), loopback, {os.cpu_count()} CPUs\"",
        *plots,
        "unset multiplot",
    ])
    with open(os.path.join(out, "chart.gp"), "w") as f:
        f.write(gp + "\n")
    r = subprocess.run(["gnuplot", "chart.gp"], cwd=out, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"gnuplot failed: {r.stderr[-500:]}")
