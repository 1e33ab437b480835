"""test_dribble_memory: a client that dribbles its ClientHello costs linesman a few KB, not the
whole 16.7 KB first-flight buffer (proxy/flight_buffer.hpp). 2,000 such clients, all starting
again every 5 s, made the soak's RSS rise for its whole run (bench/results/2026-12-03-soak20b)."""
import resource
import time

import pytest

import lsm

from hostile import rss_kib

kClients = 1000
# kMaxPerClient: RSS per dribbling client. 5.5 KB with a buffer of the bytes held; 12.1 KB when
# each took the full buffer on its first byte (the pages it touched of it, in a fresh heap).
kMaxPerClient = 8 * 1024


@pytest.mark.skipif(lsm.kSanitized, reason="ASan's allocator and shadow memory change every figure")
def test_a_client_dribbling_its_hello_holds_no_full_flight_buffer(reg):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < kClients + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, kClients + 200), hard))
    # SNI routes: linesman must wait for the whole hello (60 s peek timeout) before it connects.
    lm = lsm.Linesman(reg, ["--route", f"app.example.test=127.0.0.1:{lsm.closed_port()}",
                            "--peek-timeout", "60s", "--threads", "1"])
    time.sleep(0.3)
    before = rss_kib(lm.pid)
    clients = []
    try:
        for _ in range(kClients):
            c = lm.connect()
            c.sendall(b"\x16")  # the first byte of a TLS record, and nothing more
            clients.append(c)
        # Until linesman has read them all: RSS stops growing (bounded: 50 looks, 10 s).
        last, still = -1, 0
        for _ in range(50):
            time.sleep(0.2)
            now = rss_kib(lm.pid)
            still = still + 1 if now == last else 0
            last = now
            if still >= 5:
                break
        per_client = (last - before) * 1024 / kClients
        assert per_client < kMaxPerClient, (
            f"{kClients} clients that sent 1 byte each: RSS {before} -> {last} KiB, "
            f"{per_client:.0f} B each")
    finally:
        for c in clients:
            c.close()
