#!/usr/bin/env python3
"""dribble_cpu: linesman's CPU for a ClientHello that arrives one byte per segment.

Starts `linesman run` (1 worker thread) in front of a backend that accepts and stays silent, then
N clients (TCP_NODELAY) send a ClientHello of SIZE bytes one byte per send, all at once; prints
linesman's CPU (utime+stime from /proc) per connection. The inspection looks at the whole flight
after every read: this says whether that costs more than the reads themselves (it grows with
SIZE squared if it does, linearly if not). --records splits the hello into 64-byte TLS records.
Loopback only; every loop is bounded.

    python3 bench/e2e/dribble_cpu.py --linesman build/release/tools/linesman --size 16000
"""
import argparse
import json
import tempfile
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loads  # noqa: E402
import procs  # noqa: E402


def client_hello(size, records):
    body = b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    pad = size - len(body) - 4 - 2 - 4
    ext = struct.pack(">HH", 21, pad) + b"\x00" * pad  # padding extension (RFC 7685)
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    step = 64 if records else len(hs)
    return b"".join(b"\x16\x03\x01" + struct.pack(">H", len(hs[i:i + step])) + hs[i:i + step]
                    for i in range(0, len(hs), step))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--linesman", required=True)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--size", type=int, default=16000, help="ClientHello bytes (default 16000)")
    ap.add_argument("--records", action="store_true", help="64-byte TLS records")
    a = ap.parse_args()
    hold = loads.holder()  # accepts and stays silent
    port = procs.free_port()
    log = os.path.join(tempfile.mkdtemp(prefix="linesman-dribble-"), "access.log")
    reg = procs.registry()
    try:
        proc = reg.start([a.linesman, "run", "--listen", f"127.0.0.1:{port}", "--upstream",
                          f"127.0.0.1:{hold.port}", "--threads", "1", "--access-log", log])
        reg.wait_listening(proc, port)
        hello = client_hello(a.size, a.records)
        cpu0 = procs.cpu_seconds(proc.pid)
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5)
                 for _ in range(a.clients)]
        for c in socks:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(hello)):
            for c in socks:
                c.send(hello[i:i + 1])
            if i % 256 == 0:
                time.sleep(0.001)  # let linesman read: one byte per read, not coalesced
        time.sleep(1)
        ms = (procs.cpu_seconds(proc.pid) - cpu0) * 1000
        for c in socks:
            c.close()
        hold.close()  # both ends gone: every connection ends and is logged before the stop
        reg.stop(proc, grace=30)
    finally:
        reg.stop_all()
        hold.close()
    with open(log) as f:
        reads = [r.get("tls", {}).get("hello_reads", 0) for r in map(json.loads, f)
                 if r.get("tls", {}).get("complete")]
    n = sum(reads)
    print(f"hello of {len(hello)} B ({'64-byte records' if a.records else 'one record'}), "
          f"{a.clients} clients, 1 byte per send: {len(reads)} hellos complete in {n} reads; "
          f"linesman CPU {ms:.0f} ms: {ms / a.clients:.1f} ms per connection, "
          + (f"{ms * 1000 / n:.2f} us per read" if n else "no hello completed (past the limits)"))


if __name__ == "__main__":
    main()
