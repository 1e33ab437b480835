"""test_forwarding: linesman forwards every byte unchanged, both ways, and records what passed.

Real peers on loopback: peer.py servers (echo, hash, banner), Redis. Byte identity is checked
with SHA-256 over random payloads, through the splice path and through --no-splice.
"""
import hashlib
import os
import random
import socket
import threading
import time

import pytest

import lsm
from lsm import assert_stop

kMiB = 1 << 20


def pump_both_ways(s: socket.socket, payload: bytes, timeout: float = 60.0) -> bytes:
    """pump_both_ways: send `payload` on one thread while reading on this one (an echo peer sends
    it back as it arrives, so neither side may wait for the other); half-close when sent."""
    err: list = []

    def send():
        try:
            view = memoryview(payload)
            for i in range(0, len(view), 1 << 20):
                s.sendall(view[i:i + (1 << 20)])
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    got = lsm.recv_all(s, timeout=timeout, limit=len(payload) + 1)
    t.join(timeout)
    assert not err, f"sending through linesman failed: {err}"
    return got


@pytest.mark.parametrize("size,splice", [(64 * kMiB, True), (64 * kMiB, False),
                                         (1, True), (100_003, False), (3 * kMiB + 7, True)],
                         ids=["64MiB-splice", "64MiB-no-splice", "1B-splice",
                              "100003B-no-splice", "3MiB+7-splice"])
def test_byte_identical_both_ways(reg, size, splice):
    up = lsm.start_peer(reg, "echo")
    args = ["--upstream", f"127.0.0.1:{up.port}", "--threads", "1"]
    if not splice:
        args.append("--no-splice")
    lm = lsm.Linesman(reg, args)
    # Seeded, so a failure reproduces with the same bytes.
    payload = random.Random(size).randbytes(size)
    s = lm.connect(timeout=60)
    got = pump_both_ways(s, payload)
    s.close()
    assert len(got) == size, f"received {len(got)} of {size} bytes"
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
    rec = lm.record(timeout=10)
    assert rec["bytes"] == {"from_client": size, "to_upstream": size, "from_upstream": size,
                            "to_client": size}, lsm.brief(rec)
    assert_stop(rec, "stream", "completed", "client")
    assert rec["outcome"] == "ok"
    assert rec["close"] == {"first": "client", "client": "fin", "upstream": "fin"}, lsm.brief(rec)
    assert rec["upstream"]["port"] == up.port and rec["upstream"]["local_port"] > 0
    for k in ("client_first_byte", "upstream_connected", "upstream_first_byte"):
        assert rec["timing_ms"][k] is not None, lsm.brief(rec)


def test_single_byte_exchanges_complete_whatever_the_byte(reg):
    """Each of the 256 byte values, sent alone and echoed back, is a finished exchange:
    stream/completed, outcome ok. One byte is too little to name a protocol, so the first-byte
    detection must not turn a working exchange into a first_reply failure (e.g. 0x80..0xff read
    as an SSLv2 hello and the echo then called upstream_not_tls)."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--threads", "1"])
    byte_of_port = {}
    for b in range(256):
        s = lm.connect()
        byte_of_port[s.getsockname()[1]] = b
        s.sendall(bytes([b]))
        s.shutdown(socket.SHUT_WR)
        try:
            echoed = lsm.recv_all(s, timeout=5)
        except TimeoutError:
            pytest.fail(f"byte {b:#04x}: no echo and EOF within 5 s\n{lm.stderr()}")
        assert echoed == bytes([b]), f"byte {b:#04x} came back as {echoed!r}"
        s.close()
    recs = lm.records(256, timeout=20)
    wrong = {}
    for r in recs:
        st = r["stop"]
        if (st["phase"], st["reason"], r["outcome"]) != ("stream", "completed", "ok"):
            key = f"{st['phase']}/{st['reason']} client_first={r['client_first']['protocol']} " \
                  f"upstream_first={r.get('upstream_first', {}).get('protocol')}"
            wrong.setdefault(key, []).append(byte_of_port.get(r["client"]["port"], -1))
    assert not wrong, "single-byte exchanges misrecorded: " + "; ".join(
        f"{k}: {len(v)} byte values, e.g. {[hex(b) for b in sorted(v)[:6]]}"
        for k, v in wrong.items())


def test_several_connections_at_once_stay_apart(reg):
    """Eight concurrent connections with different payloads: none gets another's bytes."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--threads", "2"])
    results: dict = {}

    def one(i):
        payload = os.urandom(256 * 1024 + i)
        s = lm.connect(timeout=30)
        results[i] = (pump_both_ways(s, payload, timeout=30) == payload)
        s.close()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert results == {i: True for i in range(8)}
    recs = lm.records(8, timeout=10)
    assert len({r["id"] for r in recs}) == 8, "connection ids must be unique"
    assert sorted(r["bytes"]["from_client"] for r in recs) == [256 * 1024 + i for i in range(8)]


def test_half_close_client_still_gets_whole_answer(reg):
    """The client shuts its write side; the upstream answers only after that EOF, and all of the
    answer (the hash of what it got + 8 MiB) arrives."""
    answer = 8 * kMiB
    up = lsm.start_peer(reg, "hash", "--answer-bytes", str(answer))
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    request = os.urandom(kMiB + 5)
    s = lm.connect(timeout=30)
    s.sendall(request)
    s.shutdown(socket.SHUT_WR)
    got = lsm.recv_all(s, timeout=30)
    s.close()
    line, _, rest = got.partition(b"\n")
    assert line.decode() == hashlib.sha256(request).hexdigest(), "upstream got other bytes"
    assert len(rest) == answer, f"answer after half-close: {len(rest)} of {answer} bytes"
    assert rest == lsm.peer_payload(answer)
    rec = lm.record(timeout=10)
    assert_stop(rec, "stream", "completed", "client")
    assert rec["close"]["first"] == "client"
    assert rec["bytes"]["to_client"] == len(got)


@pytest.mark.parametrize("banner,protocol,needle", [
    ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\\r\\n", "ssh", "SSH-2.0-OpenSSH_9.2p1"),
    ("220 mail.example.test ESMTP Postfix (Debian/GNU)\\r\\n", "smtp", "220 mail.example.test"),
], ids=["ssh", "smtp"])
def test_server_speaks_first(reg, banner, protocol, needle):
    """Without routes linesman connects at once, so the greeting reaches a silent client."""
    up = lsm.start_peer(reg, "banner", "--banner", banner)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    t0 = time.monotonic()
    greeting = lsm.recv_some(s, timeout=3)
    assert greeting.decode().startswith(needle), f"greeting through linesman: {greeting!r}"
    assert time.monotonic() - t0 < 2, "the greeting must not wait for the client"
    s.sendall(b"QUIT\r\n")
    assert lsm.recv_some(s) == b"QUIT\r\n"
    s.shutdown(socket.SHUT_WR)
    lsm.recv_all(s, timeout=5)
    s.close()
    rec = lm.record(timeout=5)
    assert rec["upstream_first"]["protocol"] == protocol, lsm.brief(rec)
    assert needle in rec["upstream_first"].get("summary", ""), lsm.brief(rec)
    assert rec["timing_ms"]["upstream_first_byte"] <= (rec["timing_ms"]["client_first_byte"]
                                                      or float("inf")), lsm.brief(rec)
    assert_stop(rec, "stream", "completed", "client")


def test_client_sends_nothing_with_routes(reg):
    """With SNI routes linesman waits for a ClientHello; a silent client ends at the peek
    timeout as inspect/client_silent and no upstream is dialed."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--route", f"app.example.test=127.0.0.1:{up.port}",
                            "--peek-timeout", "400ms"])
    s = lm.connect()
    t0 = time.monotonic()
    assert lsm.recv_all(s, timeout=5) == b""
    assert time.monotonic() - t0 < 3
    s.close()
    rec = lm.record()
    assert_stop(rec, "inspect", "client_silent", "client")
    assert rec["client_first"]["protocol"] == "none"
    assert rec["bytes"]["from_client"] == 0
    assert rec["timing_ms"]["upstream_connected"] is None


def test_client_sends_half_a_hello_with_routes(reg):
    """The first 300 bytes of curl's ClientHello, then silence: inspect/hello_incomplete."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--route", f"www.example.test=127.0.0.1:{up.port}",
                            "--peek-timeout", "400ms"])
    s = lm.connect()
    s.sendall(lsm.corpus("curl_https_default")[:300])
    assert lsm.recv_all(s, timeout=5) == b""
    s.close()
    rec = lm.record()
    assert_stop(rec, "inspect", "hello_incomplete", "client")
    assert rec["client_first"]["protocol"] == "tls"
    assert rec["tls"]["complete"] is False


def test_sni_route_picks_upstream(reg):
    """Exact, wildcard and case/trailing-dot-insensitive SNI routes, and the default route."""
    a = lsm.start_peer(reg, "banner", "--banner", "A\\n", name="peer-a")
    b = lsm.start_peer(reg, "banner", "--banner", "B\\n", name="peer-b")
    d = lsm.start_peer(reg, "banner", "--banner", "D\\n", name="peer-d")
    lm = lsm.Linesman(reg, ["--route", f"app.example.test=127.0.0.1:{a.port}",
                            "--route", f"*.wild.example.test=127.0.0.1:{b.port}",
                            "--upstream", f"127.0.0.1:{d.port}", "--peek-timeout", "2s"])
    cases = [("app.example.test", b"A\n"), ("APP.Example.Test.", b"A\n"),
             ("x.wild.example.test", b"B\n"), ("other.example.test", b"D\n")]
    for sni, want in cases:
        s = lm.connect()
        s.sendall(lsm.client_hello(sni))
        got = lsm.recv_some(s, timeout=3)  # the banner, maybe with the echoed hello after it
        s.close()
        assert got[:2] == want, f"SNI {sni!r} went to {got[:2]!r}, want {want!r}"
    recs = lm.records(len(cases), timeout=10)
    by_sni = {r["tls"]["sni"].lower().rstrip("."): r for r in recs}
    assert by_sni["app.example.test"]["upstream"]["port"] == a.port
    assert by_sni["x.wild.example.test"]["upstream"]["port"] == b.port
    assert by_sni["other.example.test"]["upstream"]["port"] == d.port


def test_redis_through_linesman(reg):
    """A real Redis behind linesman: commands and replies pass unchanged, the record says redis."""
    rd = lsm.start_redis(reg)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{rd.port}"])
    s = lm.connect()
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert lsm.recv_some(s) == b"+PONG\r\n"
    value = os.urandom(200_000)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(value), value))
    assert lsm.recv_some(s) == b"+OK\r\n"
    s.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
    want = b"$%d\r\n%s\r\n" % (len(value), value)
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(want) and time.monotonic() < deadline:
        chunk = lsm.recv_some(s)
        if not chunk:
            break
        got += chunk
    assert got == want
    s.sendall(b"*1\r\n$4\r\nQUIT\r\n")
    assert lsm.recv_all(s, timeout=5) == b"+OK\r\n"
    s.close()
    rec = lm.record()
    assert rec["client_first"]["protocol"] == "redis", lsm.brief(rec)
    assert rec["upstream_first"]["protocol"] == "redis", lsm.brief(rec)
    assert rec["outcome"] == "ok"
    assert rec["stop"]["phase"] == "stream"


def test_ipv6_listen_and_upstream(reg):
    """IPv6 on both sides: --listen [::1]:0 and an upstream at [::1]:PORT."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"::1 is not configured here: {e}")
    up = lsm.start_peer(reg, "echo", "--host", "::1")
    lm = lsm.Linesman(reg, ["--upstream", f"[::1]:{up.port}"], listen="[::1]:0")
    assert lm.host == "::1"
    payload = random.Random(6).randbytes(300_000)
    s = lsm.connect(lm.port, host="::1")
    got = pump_both_ways(s, payload)
    s.close()
    assert got == payload
    rec = lm.record()
    assert rec["client"]["ip"] == "::1" and rec["local"]["ip"] == "::1", lsm.brief(rec)
    assert rec["upstream"]["ip"] == "::1" and rec["upstream"]["address"] == f"[::1]:{up.port}"
    assert_stop(rec, "stream", "completed", "client")
