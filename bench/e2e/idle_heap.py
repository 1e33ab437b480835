#!/usr/bin/env python3
"""idle_heap: what one idle connection holds on linesman's heap, by block size.

Starts `linesman run` (1 worker thread) with bench/e2e/heap_count.c preloaded, opens N idle
connections through it (plain: to a holder backend; --tls: a full handshake with SNI localhost,
routed by SNI, like bench/e2e/run.py's idle tests), and prints the live heap blocks that N
connections added, per connection, by usable size. Pss (run.py) is the figure that counts; this
says what it is made of. Loopback only; every wait is bounded.

    python3 bench/e2e/idle_heap.py --linesman build/release/tools/linesman --tls -n 2000
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loads  # noqa: E402
import procs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def snapshot(proc, out):
    proc.send_signal(signal.SIGUSR2)
    for _ in range(50):
        time.sleep(0.1)
        if os.path.exists(out):
            break
    time.sleep(0.2)
    with open(out) as f:
        rows = {int(a): int(b) for a, b, _ in (line.split() for line in f)}
    os.unlink(out)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--linesman", required=True)
    ap.add_argument("-n", type=int, default=2000, help="idle connections (default 2000)")
    ap.add_argument("--tls", action="store_true", help="idle connections after a TLS handshake")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="linesman-idle-heap-")
    lib = os.path.join(work, "heap_count.so")
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", os.path.join(HERE, "heap_count.c"),
                    "-o", lib], check=True)
    cert, key = loads.make_cert(work)
    server_ctx = loads.server_context(cert, key) if a.tls else None
    client_ctx = loads.client_context() if a.tls else None
    hold = loads.holder(server_ctx)
    port = procs.free_port()
    target = (["--route", f"localhost=127.0.0.1:{hold.port}"] if a.tls else
              ["--upstream", f"127.0.0.1:{hold.port}"])
    out = os.path.join(work, "heap.out")
    env = dict(os.environ, LD_PRELOAD=lib, HEAP_COUNT_OUT=out)
    reg = procs.registry()
    socks = []
    try:
        proc = reg.start([a.linesman, "run", "--listen", f"127.0.0.1:{port}", *target,
                          "--access-log", os.path.join(work, "access.log"), "--threads", "1"],
                         env=env)
        reg.wait_listening(proc, port)
        warm, _ = loads.open_idle(port, 8, hold, client_ctx, timeout=10)
        socks += warm
        before = snapshot(proc, out)
        opened, err = loads.open_idle(port, a.n, hold, client_ctx)
        socks += opened
        if err:
            sys.exit(f"opening idle connections: {err}")
        time.sleep(1)
        after = snapshot(proc, out)
    finally:
        reg.stop_all()
        for c in socks:
            c.close()
        hold.close()
    total = 0
    print(f"{a.n} idle {'TLS ' if a.tls else ''}connections; live heap blocks added per connection")
    print("| usable size (B) | blocks | bytes |\n|---|---|---|")
    for size in sorted(set(before) | set(after)):
        blocks = (after.get(size, 0) - before.get(size, 0)) / a.n
        if abs(blocks) >= 0.05:
            print(f"| {size} | {blocks:.2f} | {blocks * size:.0f} |")
            total += blocks * size
    print(f"| total | | {total:.0f} |")


if __name__ == "__main__":
    main()
