#!/usr/bin/python3
"""run.py: the end-to-end comparative benchmark of linesman against HAProxy, nginx and socat.

Each contender runs as a plain TCP forwarder on 127.0.0.1, one at a time, with per-connection
logging on, with 1 then 2 worker threads, next to a direct (no proxy) baseline. Rounds are
interleaved (round-robin across contenders, the order rotated every round) and every figure is
the median over rounds. Writes results.md, results.json, chart.dat and chart.png into --out.

Usage: bench/e2e/run.py [--quick] [--rounds N] [--threads 1,2] [--contenders a,b] ...
"""

import argparse
import datetime
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import contenders as cs  # noqa: E402
import loads  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REFERENCE = "haproxy-forced"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="development mode: 1 round, short durations, fewer TLS idle connections")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    ap.add_argument("--threads", default="1,2", help="worker thread counts (default 1,2)")
    ap.add_argument("--contenders", default=None,
                    help="comma list of contender names (default: all available)")
    ap.add_argument("--bulk-seconds", type=int, default=None, help="iperf3 run length (default 3)")
    ap.add_argument("--wrk-seconds", type=int, default=None, help="wrk run length (default 2)")
    ap.add_argument("--close-conns", type=int, default=16, help="wrk connections, short test")
    ap.add_argument("--ka-conns", type=int, default=16, help="wrk connections, keep-alive test")
    ap.add_argument("--idle", type=int, default=9000, help="idle connections held (default 9000)")
    ap.add_argument("--idle-tls", type=int, default=None,
                    help="idle TLS connections held, each after a full handshake "
                         "(default 3000, --quick 1000)")
    ap.add_argument("--idle-socat", type=int, default=1000,
                    help="idle connections for socat, which forks a process each (default 1000)")
    ap.add_argument("--mem-rounds", type=int, default=1,
                    help="rounds that also run the idle-memory tests (default 1: they are stable)")
    ap.add_argument("--budget-minutes", type=float, default=13.0,
                    help="start no further round when it would end past this (default 13)")
    ap.add_argument("--linesman", default=os.path.join(REPO, "build/release/tools/linesman"),
                    help="linesman binary")
    ap.add_argument("--out", default=os.path.join(REPO, "bench/results"), help="output folder")
    ap.add_argument("--perf", default="",
                    help="comma list of contenders to profile with `perf record` during their "
                         "bulk and HTTP tests (their figures then include perf's overhead); flat "
                         "profiles go to OUT/perf/")
    ap.add_argument("--keep-workdir", action="store_true", help="keep configs and logs")
    a = ap.parse_args(argv)
    if a.rounds is None:
        a.rounds = 1 if a.quick else 3
    if a.bulk_seconds is None:
        a.bulk_seconds = 1 if a.quick else 3
    if a.wrk_seconds is None:
        a.wrk_seconds = 1 if a.quick else 2
    if a.idle_tls is None:
        a.idle_tls = 1000 if a.quick else 3000
    a.threads = [int(x) for x in a.threads.split(",") if x]
    return a


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def count_lines(path):
    if not path or not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return sum(1 for _ in f)


class bench:
    """bench: one harness run. Owns the process registry, the work folder and the samples."""

    def __init__(self, args):
        self.a = args
        self.reg = procs.registry()
        self.work = tempfile.mkdtemp(prefix="linesman-e2e-")
        self.samples = []  # dicts: round, contender, threads, metric, value
        self.errors = []  # dicts: round, contender, threads, test, error
        self.logs = []  # dicts: contender, threads, test, log lines

    def log(self, msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def add(self, rnd, c, t, metric, value):
        self.samples.append({"round": rnd, "contender": c.name, "threads": t, "metric": metric,
                             "value": value})

    def fail(self, rnd, c, t, test, err):
        self.errors.append({"round": rnd, "contender": c.name, "threads": t, "test": test,
                            "error": str(err)})
        self.log(f"  ERROR {c.name} t={t} {test}: {err}")

    def forwarded(self, c, t, rnd, test, upstream, tls, body):
        """forwarded: starts C in front of UPSTREAM, runs BODY(started), stops C, counts its log."""
        d = os.path.join(self.work, f"r{rnd}-{c.name}-t{t}-{test}")
        os.makedirs(d, exist_ok=True)
        s = None
        prof = None
        try:
            s = c.start(self.reg, d, procs.free_port(), upstream, tls, t)
            if c.name in self.a.perf.split(",") and s.proc is not None and "idle" not in test:
                prof = self.reg.start(["perf", "record", "-F", "999", "-g", "-p",
                                       str(s.proc.pid), "-o", os.path.join(d, "perf.data")],
                                      stderr_path=os.path.join(d, "perf.log"))
                time.sleep(0.3)
            body(s)
        except Exception as e:  # one failing test must not stop the run
            self.fail(rnd, c, t, test, e if str(e) else traceback.format_exc(limit=2))
        finally:
            if prof is not None:
                self.reg.stop(prof, grace=20.0)  # SIGTERM: perf writes its file and exits
                self.perf_report(os.path.join(d, "perf.data"), f"r{rnd}-{c.name}-t{t}-{test}")
            if s is not None and s.proc is not None:
                rc = s.proc.poll()
                if rc is not None:
                    why = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
                    self.fail(rnd, c, t, test, f"{c.name} died during the test ({why})")
                self.reg.stop(s.proc)
            if s is not None and s.log_path:
                self.logs.append({"round": rnd, "contender": c.name, "threads": t, "test": test,
                                  "log_lines": count_lines(s.log_path)})

    def perf_report(self, data, name):
        out = os.path.join(self.a.out, "perf")
        os.makedirs(out, exist_ok=True)
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g",
                            "none", "--percent-limit", "0.5", "--sort", "dso,symbol"],
                           capture_output=True, text=True, timeout=120)
        with open(os.path.join(out, f"{name}.txt"), "w") as f:
            f.write(r.stdout if r.returncode == 0 else r.stderr)

    def cpu(self, s):
        return procs.cpu_seconds(s.proc.pid) if s.proc is not None else None

    def run_bulk(self, c, t, rnd):
        def body(s):
            for streams in (1, 4):
                c0 = self.cpu(s)
                nbytes, gbps = loads.iperf(s.port, self.a.bulk_seconds, streams)
                c1 = self.cpu(s)
                self.add(rnd, c, t, f"bulk{streams}_gbps", gbps)
                if c0 is not None:
                    self.add(rnd, c, t, f"bulk{streams}_cpu_s_per_gb", (c1 - c0) / (nbytes / 1e9))
                time.sleep(0.3)  # let the iperf3 server return to listening
        self.forwarded(c, t, rnd, "bulk", self.iperf_port, False, body)

    def run_http(self, c, t, rnd, tls):
        pre = "tls_" if tls else ""
        upstream = self.https_port if tls else self.http_port

        def body(s):
            host = cs.SNI if tls else "127.0.0.1"
            url = f"{'https' if tls else 'http'}://{host}:{s.port}/{loads.SMALL_FILE}"
            for kind, close, conns in (("close", True, self.a.close_conns),
                                       ("ka", False, self.a.ka_conns)):
                c0 = self.cpu(s)
                res = loads.wrk(url, self.a.wrk_seconds, conns, close)
                c1 = self.cpu(s)
                if res["requests"] == 0:
                    raise RuntimeError(f"wrk {kind}: no request completed")
                if res["errors"] > 0.01 * res["requests"]:
                    self.fail(rnd, c, t, f"{pre}{kind}",
                              f"{res['errors']} errors in {res['requests']} requests")
                if close:
                    self.add(rnd, c, t, f"{pre}close_conns_per_s", res["rate"])
                    if c0 is not None:
                        self.add(rnd, c, t, f"{pre}close_cpu_us_per_conn",
                                 (c1 - c0) * 1e6 / res["requests"])
                else:
                    self.add(rnd, c, t, f"{pre}ka_req_per_s", res["rate"])
                    self.add(rnd, c, t, f"{pre}ka_p50_ms", res["p50_ms"])
                    self.add(rnd, c, t, f"{pre}ka_p99_ms", res["p99_ms"])
                    if c0 is not None:
                        self.add(rnd, c, t, f"{pre}ka_cpu_us_per_req",
                                 (c1 - c0) * 1e6 / res["requests"])
        self.forwarded(c, t, rnd, f"{pre}http", upstream, tls, body)

    def run_idle(self, c, t, rnd, tls):
        pre = "tls_" if tls else ""
        n = self.a.idle_socat if c.name == "socat" else (self.a.idle_tls if tls else self.a.idle)
        if n <= 0:
            return
        hold = loads.holder(self.server_ctx if tls else None)
        client_ctx = self.client_ctx if tls else None
        socks = []

        def body(s):
            # Warm-up: a few connections opened and closed so lazy set-up is in the baseline.
            warm, err = loads.open_idle(s.port, 8, hold, client_ctx, timeout=5)
            for x in warm:
                x.close()
            if err:
                raise RuntimeError(f"warm-up: {err}")
            time.sleep(0.5)
            for x in hold.held:
                x.close()
            hold.held = []
            rss0, pss0 = procs.memory_bytes(s.proc.pid)
            t0 = time.monotonic()
            opened, err = loads.open_idle(s.port, n, hold, client_ctx)
            socks.extend(opened)
            if err:
                held = len(hold.held)
                if held >= 100:  # still say what the connections that did get through cost
                    rss1, pss1 = procs.memory_bytes(s.proc.pid)
                    err += (f" (with {held} held: Pss {(pss1 - pss0) / held:.0f} B/conn, "
                            f"RSS {(rss1 - rss0) / held:.0f} B/conn)")
                raise RuntimeError(err)
            time.sleep(0.5)  # settle: the forwarder finishes its per-connection set-up
            rss1, pss1 = procs.memory_bytes(s.proc.pid)
            dropped = loads.count_dropped(socks)
            # Clients close first, so the forwarder sees ordinary closes (and logs them) and
            # does not have 9,000 connections to drain when it is stopped.
            for x in socks:
                x.close()
            socks.clear()
            time.sleep(0.5)
            if dropped:
                raise RuntimeError(f"{dropped} of {n} idle connections were closed by the path")
            self.add(rnd, c, t, f"{pre}idle_rss_b_per_conn", (rss1 - rss0) / n)
            self.add(rnd, c, t, f"{pre}idle_pss_b_per_conn", (pss1 - pss0) / n)
            self.add(rnd, c, t, f"{pre}idle_conns", n)
            self.log(f"  {c.name} t={t} {pre}idle: {n} held in {time.monotonic() - t0:.1f}s, "
                     f"Pss {(pss1 - pss0) / n:.0f} B/conn")

        try:
            self.forwarded(c, t, rnd, f"{pre}idle", hold.port, tls, body)
        finally:
            for x in socks:
                x.close()
            hold.close()

    def run_config(self, c, t, rnd):
        t0 = time.monotonic()
        self.run_bulk(c, t, rnd)
        self.run_http(c, t, rnd, False)
        self.run_http(c, t, rnd, True)
        if rnd < self.a.mem_rounds and c.name != "direct":
            self.run_idle(c, t, rnd, False)
            self.run_idle(c, t, rnd, True)
        got = {x["metric"]: x["value"] for x in self.samples
               if x["round"] == rnd and x["contender"] == c.name and x["threads"] == t}
        brief = ", ".join(f"{k}={v:.3g}" for k, v in got.items()
                          if k in ("bulk1_gbps", "bulk1_cpu_s_per_gb", "close_conns_per_s",
                                   "close_cpu_us_per_conn", "ka_p50_ms") and v is not None)
        self.log(f"round {rnd + 1} {c.name} t={t} ({time.monotonic() - t0:.0f}s): {brief}")

    def run(self):
        a = self.a
        started_at = datetime.datetime.now(datetime.timezone.utc)
        nofile = raise_nofile()
        all_cs = cs.all_contenders(a.linesman)
        if not a.contenders:
            all_cs = [c for c in all_cs if c.name in cs.DEFAULT]
        else:
            want = a.contenders.split(",")
            unknown = set(want) - {c.name for c in all_cs}
            if unknown:
                raise SystemExit(f"unknown contender(s): {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(c.name for c in all_cs)}")
            all_cs = [c for c in all_cs if c.name in want]
        chosen, skipped = [], {}
        for c in all_cs:
            why = c.available()
            if why:
                skipped[c.name] = why
                self.log(f"skipping {c.name}: {why}")
            else:
                chosen.append(c)
        versions = {}
        for c in chosen:
            prog = c.name.split("-")[0]
            if c.name != "direct" and prog not in versions:
                versions[prog] = c.version()
        if "linesman" in versions:
            rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
            versions["linesman"] += f" (repo commit {rev or 'unknown'}, binary {a.linesman})"
        versions["iperf3"] = cs._first_line(["iperf3", "-v"])
        versions["wrk"] = cs._first_line(["wrk", "-v"])
        versions["openssl"] = cs._first_line(["openssl", "version"])
        versions["python"] = platform.python_version()
        versions["kernel"] = platform.release()

        cert, key = loads.make_cert(self.work)
        self.server_ctx = loads.server_context(cert, key)
        self.client_ctx = loads.client_context()
        bdir = os.path.join(self.work, "backend")
        os.makedirs(bdir)
        _, self.iperf_port = loads.start_iperf_server(self.reg, bdir)
        _, self.http_port, self.https_port = loads.start_http_backend(self.reg, bdir, cert, key)

        t_start = time.monotonic()
        round_s = []
        self.rounds_done = 0
        for rnd in range(a.rounds):
            elapsed = time.monotonic() - t_start
            # The first round also runs the memory tests, so later rounds are shorter than it.
            if round_s and elapsed + max(round_s[1:] or round_s) > a.budget_minutes * 60:
                self.log(f"time budget: stopping after {rnd} of {a.rounds} rounds")
                break
            r0 = time.monotonic()
            k = rnd % max(1, len(chosen))
            order = chosen[k:] + chosen[:k]
            for t in a.threads:
                for c in order:
                    if not c.per_thread and t != a.threads[0]:
                        continue
                    self.run_config(c, t if c.per_thread else 0, rnd)
            round_s.append(time.monotonic() - r0)
            self.rounds_done = rnd + 1

        finished = datetime.datetime.now(datetime.timezone.utc)
        meta = {
            "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
            "duration_s": round((finished - started_at).total_seconds()),
            "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
            "machine": f"{os.cpu_count()} CPUs, Linux {platform.release()}, "
                       f"RLIMIT_NOFILE {nofile[0]}",
            "load_before": open("/proc/loadavg").read().split()[:3],
            "params": {k: v for k, v in vars(a).items()},
            "versions": versions,
            "contenders": [{"name": c.name, "label": c.label, "per_thread": c.per_thread}
                           for c in chosen],
            "skipped": skipped,
            "reference": REFERENCE,
            "rounds_done": self.rounds_done,
        }
        return report.write(a.out, meta, self.samples, self.errors, self.logs)


README = os.path.join(REPO, "bench/README.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def embed_in_readme(results_md):
    """embed_in_readme: copies results.md between the results markers of bench/README.md."""
    with open(results_md) as f:
        body = f.read()
    # Headings one level down and the chart path relative to bench/.
    lines = body.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]  # the README has its own title
    body = "\n".join(("#" + l if l.startswith("#") else l) for l in lines)
    body = body.replace("](chart.png)", "](results/chart.png)")
    with open(README) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(README, "w") as f:
        f.write(f"{head}{BEGIN}\n{body}\n{END}{tail}")


def main(argv):
    a = parse_args(argv)
    b = bench(a)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        out = b.run()
        b.log(f"wrote {out}")
        if os.path.abspath(a.out) == os.path.join(REPO, "bench/results"):
            embed_in_readme(out)
        return 0
    finally:
        b.reg.stop_all()
        if a.keep_workdir:
            b.log(f"work folder kept: {b.work}")
        else:
            shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
