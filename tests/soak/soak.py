#!/usr/bin/python3
"""soak.py: a bounded soak of one linesman process (run it through tools/soak.sh).

For --minutes N, on loopback, all at once:
  - short connections at the highest rate two client processes reach (listener `churn`);
  - 5,000 held idle connections (listener `idle`, a stable upstream);
  - 2,000 slow clients sending one byte of their hello every 2 s; the `slow` listener routes on
    SNI, so its peek timeout (5 s) ends each of them, with a record;
  - the churn listener's upstream killed every 15 s and started again 2 s later;
  - a SIGHUP every 20 s that alternates two configurations (the churn upstream, the slow
    listener's routes, and a listener added in one and removed in the other), rotating the
    access log first (rename, then the SIGHUP reopens it);
  - the access log on a 64 MiB tmpfs mounted in a private mount namespace (tools/soak.sh runs
    this under `unshare -m`), filled up with a filler file for 10 s of every 30 and emptied
    again. Where the namespace is refused, one of the two configurations logs to /dev/full
    (ENOSPC) instead.
Sampled every second into soak.csv (and soak.png): RSS, open descriptors, open connections,
connections opened by the clients and accepted, records written and dropped.

It passes when: connections counted at the clients == accepted == records written + dropped;
the final RSS is within 10% of the RSS after warm-up; the descriptor count returns to its
baseline (plus the worker pipe pools, a bounded cache); no record and no counter has stop
reason proxy_error; the linesman process is the same one from start to end and exits 0.
Exit status 0 on pass, 1 on fail; the verdict and the figures are in summary.json.
"""
import argparse
import json
import multiprocessing
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import loads  # noqa: E402

kHere = pathlib.Path(__file__).resolve().parent
kIdle, kSlow = 5000, 2000
kPoolFds = 2 * 2 * 64  # per worker: pipe_pool::kMaxPooled pipes of two descriptors, both ways
kThreads = 2
# kLoads: the loads --loads can pick (all by default); switching some off tells which one drives a
# figure (docs/reload-and-soak.md).
kLoads = ("churn", "idle", "slow", "flap", "reload", "fill")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_echo(port: int, out: pathlib.Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, str(kHere / "echo_server.py"), str(port)],
                         stdout=subprocess.PIPE, stderr=open(out / "echo.err", "a"), text=True)
    line = p.stdout.readline()
    if not line.startswith("port "):
        raise SystemExit(f"soak: the echo server on {port} did not start")
    return p


def config_text(set_b: bool, ports: dict, log: str) -> str:
    churn_up = ports["stable"] if set_b else ports["flap"]
    slow_up = ports["flap"] if set_b else ports["stable"]
    lines = [
        "defaults:",
        "  timeouts: {peek: 5s, connect: 2s, idle: 1h, drain: 5s}",
        "listeners:",
        f"  - {{name: idle, listen: '127.0.0.1:{ports['idle']}', "
        f"upstream: '127.0.0.1:{ports['stable']}', access_log: '{log}'}}",
        f"  - {{name: churn, listen: '127.0.0.1:{ports['churn']}', "
        f"upstream: '127.0.0.1:{churn_up}', access_log: '{log}'}}",
        f"  - name: slow",
        f"    listen: '127.0.0.1:{ports['slow']}'",
        f"    access_log: '{log}'",
        "    routes:",
        f"      - {{sni: '{'b' if set_b else 'a'}.soak.test', upstream: '127.0.0.1:{slow_up}'}}",
    ]
    if set_b:
        lines.append(f"  - {{name: extra, listen: '127.0.0.1:{ports['extra']}', "
                     f"upstream: '127.0.0.1:{ports['stable']}', access_log: '{log}'}}")
    return "\n".join(lines) + "\n"


def write_atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def scrape(admin: str) -> dict:
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        m[name] = float(value)

    def total(prefix):
        return int(sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{")))
    return {
        "accepted": total("linesman_connections_accepted_total"),
        "written": total("linesman_records_written_total"),
        "dropped": total("linesman_records_dropped_total"),
        "open": total("linesman_open_connections"),
        "proxy_error": int(sum(v for k, v in m.items() if "linesman_connections_ended_total" in k
                               and 'reason="proxy_error"' in k)),
        "reload_ok": int(m.get('linesman_config_reloads_total{result="success"}', 0)),
        "reload_failed": int(m.get('linesman_config_reloads_total{result="failure"}', 0)),
    }


def proc_figures(pid: int) -> tuple[int, int]:
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class LogFiles:
    """LogFiles: the access log and its rotations; counts the complete lines written and the
    proxy_error records, then deletes each rotated file."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self.lines = 0
        self.proxy_errors = 0
        self.rotations = 0

    def rotate(self) -> pathlib.Path:
        self.rotations += 1
        old = self.path.with_name(f"{self.path.name}.{self.rotations}")
        if self.path.exists():
            os.replace(self.path, old)
        return old

    def count(self, p: pathlib.Path) -> None:
        if not p.exists():
            return
        with open(p, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    self.lines += 1
                    self.proxy_errors += b'"reason":"proxy_error"' in line
        p.unlink()


class Filler:
    """Filler: fills the tmpfs holding the access log with one file, and removes it."""

    def __init__(self, dir: pathlib.Path):
        self.path = dir / "filler"
        self.cycles = 0

    def fill(self) -> None:
        self.cycles += 1
        block = b"\0" * (1 << 20)
        try:
            with open(self.path, "ab") as f:
                for _ in range(96):  # bounded: the tmpfs is 64 MiB
                    f.write(block)
                    f.flush()
        except OSError:
            pass  # ENOSPC: full

    def empty(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tmpfs", action="store_true",
                    help="mount a tmpfs for the log (needs a private mount namespace)")
    ap.add_argument("--loads", default=",".join(kLoads),
                    help="comma-separated loads to run (default: all of " + ",".join(kLoads) + ")")
    a = ap.parse_args()
    on = set(a.loads.split(",")) if a.loads else set()
    if not on <= set(kLoads):
        ap.error(f"--loads: unknown {','.join(sorted(on - set(kLoads)))} (known: {','.join(kLoads)})")
    out = pathlib.Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    loads.raise_nofile()
    duration = a.minutes * 60
    warmup = min(60.0, duration / 4)

    mode = "dev_full"
    logdir = out / "logs"
    logdir.mkdir(exist_ok=True)
    if a.tmpfs:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "soak", str(logdir)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            mode = "tmpfs"
        else:
            print(f"soak: cannot mount a tmpfs ({r.stderr.strip()}): using /dev/full", flush=True)
    log = logdir / "access.jsonl"
    if "reload" not in on:
        # Without the reloads nothing rotates the log: it goes to the output directory's disk,
        # which it would fill no faster than a normal run, and the tmpfs (and "fill") is unused.
        log = out / "access.jsonl"
    ports = {k: free_port() for k in ("idle", "churn", "slow", "extra", "stable", "flap")}
    children: list = []
    stable = start_echo(ports["stable"], out)
    flap = start_echo(ports["flap"], out)
    cfg = out / "soak.yaml"

    def log_of(set_b: bool) -> str:
        return "/dev/full" if mode == "dev_full" and not set_b else str(log)

    set_b = False
    write_atomic(cfg, config_text(set_b, ports, log_of(set_b)))
    err = open(out / "linesman.err", "w")
    lm = subprocess.Popen([a.bin, "run", "--config", str(cfg), "--admin", "127.0.0.1:0",
                           "--threads", str(kThreads)], stdout=subprocess.DEVNULL, stderr=err)
    admin = None
    deadline = time.monotonic() + 15
    while admin is None and time.monotonic() < deadline:
        time.sleep(0.1)
        m = re.search(r"linesman: admin on (\S+)", (out / "linesman.err").read_text())
        admin = m.group(1) if m else None
    if admin is None or lm.poll() is not None:
        print((out / "linesman.err").read_text())
        return 1
    time.sleep(1)
    base_rss, base_fds = proc_figures(lm.pid)

    stop = multiprocessing.Event()
    opened = multiprocessing.Value("Q", 0)
    failed = multiprocessing.Value("Q", 0)
    t0 = time.monotonic()
    end = t0 + duration
    if "churn" in on:
        children += [loads.start(loads.churn, ports["churn"], opened, failed, stop, end)
                     for _ in range(2)]
    if "idle" in on or "slow" in on:
        children.append(loads.start(loads.idle_and_slow, ports["idle"],
                                    kIdle if "idle" in on else 0, ports["slow"],
                                    kSlow if "slow" in on else 0, opened, stop, end))
    files = LogFiles(log)
    filler = Filler(logdir) if mode == "tmpfs" and {"fill", "reload"} <= on else None
    rows = []
    warm_rss = None
    flap_down_at = None
    next_tick = t0
    second = 0
    while time.monotonic() < end:
        next_tick += 1
        time.sleep(max(0.0, next_tick - time.monotonic()))
        second += 1
        if lm.poll() is not None:
            break
        if "reload" in on and second % 20 == 0:  # rotate, then reload with the other configuration
            set_b = not set_b
            write_atomic(cfg, config_text(set_b, ports, log_of(set_b)))
            rotated = files.rotate()
            lm.send_signal(signal.SIGHUP)
            time.sleep(1.5)  # the writer reopens within its 1 s wait
            files.count(rotated)
        if "flap" in on and second % 15 == 0:
            flap.kill()
            flap.wait(5)
            flap_down_at = second
        if flap_down_at is not None and second == flap_down_at + 2:
            flap = start_echo(ports["flap"], out)
            flap_down_at = None
        if filler and second % 30 == 5:
            filler.fill()
        if filler and second % 30 == 15:
            filler.empty()
        rss, fds = proc_figures(lm.pid)
        m = scrape(admin)
        rows.append({"t": round(time.monotonic() - t0, 1), "rss_kb": rss, "fds": fds,
                     "open": m["open"], "clients": opened.value, "accepted": m["accepted"],
                     "written": m["written"], "dropped": m["dropped"]})
        if warm_rss is None and time.monotonic() - t0 >= warmup:
            warm_rss = rss
    alive_throughout = lm.poll() is None
    final_rss = rows[-1]["rss_kb"] if rows else 0

    # Wind down: the loads stop and close what they hold; every connection must end in a record.
    stop.set()
    for c in children:
        c.join(60)
    if filler:
        filler.empty()
    settled = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and alive_throughout:
        m = scrape(admin)
        settled = m
        if m["open"] == 0 and m["accepted"] == opened.value and \
                m["written"] + m["dropped"] == m["accepted"]:
            break
        time.sleep(0.5)
    time.sleep(2.5)  # the reload sweep (once a second) frees retired configurations
    end_rss, end_fds = proc_figures(lm.pid) if lm.poll() is None else (0, 0)
    if lm.poll() is None:
        settled = scrape(admin)
    lm.send_signal(signal.SIGTERM)
    try:
        rc = lm.wait(60)
    except subprocess.TimeoutExpired:
        lm.kill()
        rc = "hung"
    files.count(files.rotate())
    for p in (stable, flap):
        p.kill()
        p.wait(5)
    if mode == "tmpfs":
        subprocess.run(["umount", str(logdir)], check=False)

    with open(out / "soak.csv", "w") as f:
        keys = ["t", "rss_kb", "fds", "open", "clients", "accepted", "written", "dropped"]
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r[k]) for k in keys) + "\n")
    checks = {
        "clients == accepted": opened.value == settled.get("accepted"),
        "accepted == written + dropped":
            settled.get("accepted") == settled.get("written", 0) + settled.get("dropped", 0),
        "lines in the log == written": files.lines == settled.get("written"),
        "final RSS within 10% of warm-up": warm_rss is not None and
            abs(final_rss - warm_rss) <= 0.10 * warm_rss,
        "fds back to baseline (+ pipe pools)": base_fds <= end_fds <= base_fds + kThreads * kPoolFds
            if end_fds else False,
        "no proxy_error": settled.get("proxy_error") == 0 and files.proxy_errors == 0,
        "never restarted, exit 0": alive_throughout and rc == 0,
        "reloads all succeeded": settled.get("reload_failed") == 0 and
            settled.get("reload_ok", 0) >= (int(duration // 20) - 1 if "reload" in on else 0),
    }
    summary = {
        "minutes": a.minutes, "loads": sorted(on), "log_mode": mode, "threads": kThreads, "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "clients_opened": opened.value, "client_connect_failures": failed.value,
        "accepted": settled.get("accepted"), "written": settled.get("written"),
        "dropped": settled.get("dropped"), "log_lines": files.lines,
        "reloads_ok": settled.get("reload_ok"), "reloads_failed": settled.get("reload_failed"),
        "rss_kb": {"baseline": base_rss, "warm_up": warm_rss, "final_under_load": final_rss,
                   "after_wind_down": end_rss},
        "fds": {"baseline": base_fds, "peak": max((r["fds"] for r in rows), default=0),
                "after_wind_down": end_fds},
        "peak_open": max((r["open"] for r in rows), default=0),
        "fill_cycles": filler.cycles if filler else 0, "exit_code": rc,
        "checks": checks, "pass": all(checks.values()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    try:
        subprocess.run([sys.executable, str(kHere / "chart.py"), str(out / "soak.csv"),
                        str(out / "soak.png")], check=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as e:
        print(f"soak: no chart: {e}")
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
