#!/usr/bin/env python3
"""syscalls: system calls per short connection, linesman beside HAProxy, under the same load.

Each contender forwards to the same nginx backend (1 KiB file); `strace -c -f` is attached to the
forwarder while wrk makes short connections (`Connection: close`, 1 thread, 4 connections) for a
fixed time; the counts divided by the requests wrk completed are the calls per connection.
strace slows every call down, so the rates printed here mean nothing; the counts do.

Usage: bench/e2e/syscalls.py [--linesman PATH] [--seconds N] [--out bench/results/syscalls.md]
                             [--contenders haproxy-forced,linesman,ab-asio,ab-epoll]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contenders as cs  # noqa: E402
import loads  # noqa: E402
import procs  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def strace_counts(path):
    """strace_counts: {syscall: calls} from an `strace -c` summary file."""
    out = {}
    for line in open(path):
        m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m and m.group(2) != "total":
            out[m.group(2)] = int(m.group(1))
    return out


def measure(reg, c, work, http_port, seconds, tls=False):
    d = os.path.join(work, c.name)
    os.makedirs(d, exist_ok=True)
    s = c.start(reg, d, procs.free_port(), http_port, tls, 1)
    summary = os.path.join(d, "strace.txt")
    st = subprocess.Popen(["strace", "-c", "-f", "-o", summary, "-p", str(s.proc.pid)],
                          stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # strace attaches to every thread
    res = loads.wrk(f"http://127.0.0.1:{s.port}/{loads.SMALL_FILE}", seconds, 4, True)
    time.sleep(0.5)  # the last connections' records and closes
    st.terminate()
    st.wait(timeout=30)
    reg.stop(s.proc)
    counts = strace_counts(summary)
    return res["requests"], counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--linesman", default=os.path.join(REPO, "build/release/tools/linesman"))
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench/results/syscalls.md"))
    ap.add_argument("--contenders", default="haproxy-forced,linesman",
                    help="comma list (bench/e2e/contenders.py names; ab-asio and ab-epoll are "
                         "bench/reactor_ab)")
    a = ap.parse_args()
    reg = procs.registry()
    work = tempfile.mkdtemp(prefix="linesman-syscalls-")
    try:
        cert, key = loads.make_cert(work)
        bdir = os.path.join(work, "backend")
        os.makedirs(bdir)
        _, http_port, _ = loads.start_http_backend(reg, bdir, cert, key)
        rows = {}
        wanted = a.contenders.split(",")
        by_name = {c.name: c for c in cs.all_contenders(a.linesman)}
        for c in (by_name[n] for n in wanted if n in by_name):
            if c.available() is not None:
                print(f"{c.name}: {c.available()}", file=sys.stderr)
                continue
            n, counts = measure(reg, c, work, http_port, a.seconds)
            rows[c.name] = (n, counts)
            total = sum(counts.values())
            print(f"{c.name}: {n} connections, {total / max(n, 1):.1f} syscalls per connection")
    finally:
        reg.stop_all()
    names = sorted({k for _, counts in rows.values() for k in counts},
                   key=lambda k: -max(counts.get(k, 0) / max(n, 1) for n, counts in rows.values()))
    lines = [f"# System calls per short connection ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", f"Command: `bench/e2e/syscalls.py --seconds {a.seconds} --contenders {a.contenders}` (strace -c -f on the "
             "forwarder, wrk `Connection: close`, 1 worker thread, nginx backend).", "",
             "| syscall | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    for k in names:
        cells = [f"{counts.get(k, 0) / max(n, 1):.2f}" for n, counts in rows.values()]
        if max(float(x) for x in cells) >= 0.01:
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(
        f"**{sum(counts.values()) / max(n, 1):.1f}**" for n, counts in rows.values()) + " |")
    lines.append("| connections | " + " | ".join(str(n) for n, _ in rows.values()) + " |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
