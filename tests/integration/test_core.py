"""test_core: the connection core's promises that no stop-reason row shows.

- Inline, linesman must not turn a refused port into a hang: when the upstream refuses, the
  client is reset as soon as its first flight stopped arriving (a pause of about 75 ms), never
  after the whole peek timeout. A client that waits for a banner (SSH, SMTP, MySQL) sends
  nothing at all, and must see the refusal at once, as it would without linesman.
- A connect is decided by the client's first send when its bytes are already there (no poll):
  the refusal still reaches the client at once, and an accepted connect gets every byte once.
- The live view is current: SNI and upstream show in /api/connections as soon as they are
  known, not only at the next phase change.
"""
import hashlib
import json
import os
import signal
import socket
import time
import urllib.request

import lsm

kPeek = "10s"  # long on purpose: a test that waited for it would take 10 s and fail the bound
kBound = 2.0   # seconds within which the refusal must reach the client


def refused(reg):
    return lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{lsm.closed_port()}",
                              "--peek-timeout", kPeek])


def wait_for_reset(s: socket.socket) -> float:
    """wait_for_reset: seconds until the client saw the reset (fails on bytes or EOF)."""
    t0 = time.monotonic()
    s.settimeout(15)
    try:
        data = s.recv(100)
        raise AssertionError(f"client got {data[:40]!r} instead of a reset")
    except ConnectionResetError:
        return time.monotonic() - t0


def test_refused_reaches_a_silent_client_at_once(reg):
    lm = refused(reg)
    s = lm.connect()
    took = wait_for_reset(s)
    s.close()
    assert took < kBound, f"the refusal took {took:.2f} s to reach a silent client"
    rec = lm.record(timeout=5)
    lsm.assert_stop(rec, "connect", "upstream_refused", "upstream", "ECONNREFUSED")
    assert rec["bytes"]["from_client"] == 0, lsm.brief(rec)


def test_refused_reaches_an_unfinished_plaintext_client_at_once(reg):
    # Plaintext that is not yet a whole first flight (a request line, headers still to come):
    # inspection could wait for more, the refusal must not.
    lm = refused(reg)
    s = lm.connect()
    s.sendall(b"GET /health HTTP/1.")
    took = wait_for_reset(s)
    s.close()
    assert took < kBound, f"the refusal took {took:.2f} s"
    rec = lm.record(timeout=5)
    lsm.assert_stop(rec, "connect", "upstream_refused", "upstream", "ECONNREFUSED")
    assert rec["bytes"]["from_client"] == 19, lsm.brief(rec)
    assert rec["client_first"]["bytes"] == 19, lsm.brief(rec)


def test_refused_still_reads_a_hello_split_in_two(reg):
    # The hello arrives in two segments 20 ms apart: linesman reads both (the record names the
    # SNI) and still resets the client right after the second.
    lm = refused(reg)
    hello = lsm.client_hello("split.example.test")
    s = lm.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(hello[:100])
    time.sleep(0.02)
    s.sendall(hello[100:])
    took = wait_for_reset(s)
    s.close()
    assert took < kBound, f"the refusal took {took:.2f} s"
    rec = lm.record(timeout=5)
    lsm.assert_stop(rec, "connect", "upstream_refused", "upstream", "ECONNREFUSED")
    assert rec["tls"]["sni"] == "split.example.test", lsm.brief(rec)
    assert rec["tls"]["complete"] is True, lsm.brief(rec)
    assert rec["tls"]["hello_reads"] == 2, lsm.brief(rec)


def connect_with_bytes_queued(lm, data: bytes) -> socket.socket:
    """connect_with_bytes_queued: a client whose bytes wait in the kernel before linesman accepts
    (linesman is stopped meanwhile), so they are read before the upstream connect and decide it
    by their send (proxy/connection_connect.cpp, connect_by_sending)."""
    os.kill(lm.pid, signal.SIGSTOP)
    try:
        s = lm.connect()
        s.sendall(data)
        time.sleep(0.05)
    finally:
        os.kill(lm.pid, signal.SIGCONT)
    return s


def test_refused_send_of_the_first_bytes_resets_the_client_at_once(reg):
    lm = refused(reg)
    request = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
    s = connect_with_bytes_queued(lm, request)
    took = wait_for_reset(s)
    s.close()
    assert took < kBound, f"the refusal took {took:.2f} s"
    rec = lm.record(timeout=5)
    lsm.assert_stop(rec, "connect", "upstream_refused", "upstream", "ECONNREFUSED")
    assert rec["bytes"]["from_client"] == len(request), lsm.brief(rec)
    assert rec["bytes"]["to_upstream"] == 0, lsm.brief(rec)


def test_first_bytes_sent_with_the_connect_arrive_once(reg):
    peer = lsm.start_peer(reg, "hash")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{peer.port}"])
    data = lsm.peer_payload(3000)
    s = connect_with_bytes_queued(lm, data)
    s.shutdown(socket.SHUT_WR)
    answer = lsm.recv_all(s)
    s.close()
    assert answer.split(b"\n")[0].decode() == hashlib.sha256(data).hexdigest()
    rec = lm.record(timeout=5)
    assert rec["bytes"]["from_client"] == len(data), lsm.brief(rec)
    assert rec["bytes"]["to_upstream"] == len(data), lsm.brief(rec)
    assert rec["stop"]["reason"] == "completed", lsm.brief(rec)


def test_live_view_shows_an_sni_that_came_after_the_connect(reg):
    # Without routes linesman connects at once; this client sends its hello 300 ms later, to an
    # upstream that accepts and never answers. While it hangs, /api/connections names its SNI.
    up = lsm.start_peer(reg, "silent")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--admin", "127.0.0.1:0"])
    m = lm.proc.wait_line(r"linesman: admin on (\S+):(\d+)", 10, stream="err")
    admin = f"http://127.0.0.1:{int(m.group(2))}/api/connections"

    def conns():
        with urllib.request.urlopen(admin, timeout=5) as r:
            return json.loads(r.read())

    s = lm.connect()
    lsm.wait_until(lambda: [c for c in conns() if c["phase"] == "first_reply"], 5,
                   "the connection in first_reply")
    time.sleep(0.3)
    s.sendall(lsm.client_hello("late.example.test"))
    seen = lsm.wait_until(lambda: [c for c in conns() if c.get("sni") == "late.example.test"], 2,
                          "the SNI on /api/connections")
    assert seen[0]["phase"] == "first_reply", seen
    assert seen[0]["upstream"] == f"127.0.0.1:{up.port}", seen
    s.close()
