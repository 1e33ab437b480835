"""test_stop_reasons: every (phase, reason) pair of the stop table (docs/access-log.md), produced for real.

One scenario per pair (a table at the bottom), each with real peers on loopback or in a network
namespace the test creates, asserting stop.phase, stop.reason, stop.by (and stop.errno where the
OS gives one). The last test checks that the records this file produced cover all 28 pairs.

Choices where the taxonomy leaves room (documented so the proxy can be held to them):
- `by` names the side whose behaviour the stop is about: the client for inspect stops and for
  client_gave_up, the upstream for refused/timeout/unreachable and first-reply stops, the proxy
  for what happened inside linesman (no_route, a name its resolver could not resolve, an
  unexpected local connect error, idle_timeout, proxy_shutdown, proxy_error).
- stream stops: `completed` = both directions ended with a FIN after both sides sent data;
  `client_closed` / `upstream_closed` = an orderly close where only the upstream spoke (a
  server-speaks-first greeting), named after the side that closed first; resets are `*_reset`;
  `proxy_error` = an OS error on an established socket that is neither FIN nor reset.
- A client that gives up during first_reply is modelled with an abortive close (RST), because a
  FIN there is a legal half-close (the half-close test needs the upstream's answer after it).
"""
import socket
import time

import pytest

import lsm
from lsm import assert_stop

kSni = "app.example.test"
kHello = lsm.client_hello(kSni)


def routes_to(port: int, sni: str = kSni) -> list[str]:
    return ["--route", f"{sni}=127.0.0.1:{port}"]


# ----------------------------------------------------------------------------------- inspect

def inspect_client_silent(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port) + ["--peek-timeout", "500ms"])
    s = lm.connect()
    rec = lm.record(timeout=5)
    s.close()
    assert rec["close"]["upstream"] in ("never", None), lsm.brief(rec)
    assert rec["upstream"] is None or rec["timing_ms"]["upstream_connected"] is None
    return rec


def inspect_client_closed(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port) + ["--peek-timeout", "5s"])
    s = lm.connect()
    s.sendall(kHello[:40])
    time.sleep(0.1)
    s.close()
    rec = lm.record(timeout=4)
    assert rec["close"]["client"] == "fin", lsm.brief(rec)
    return rec


def inspect_client_reset(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port) + ["--peek-timeout", "5s"])
    s = lm.connect()
    s.sendall(kHello[:40])
    time.sleep(0.1)
    lsm.close_rst(s)
    rec = lm.record(timeout=4)
    assert rec["close"]["client"] == "rst", lsm.brief(rec)
    return rec


def inspect_hello_incomplete(reg):
    # Half a real hello (curl's first 300 bytes), then the client waits: the peek timeout ends it.
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port) + ["--peek-timeout", "500ms"])
    s = lm.connect()
    s.sendall(lsm.corpus("curl_https_default")[:300])
    rec = lm.record(timeout=5)
    s.close()
    assert rec["client_first"]["protocol"] == "tls", lsm.brief(rec)
    assert rec["tls"]["complete"] is False, lsm.brief(rec)
    assert rec["bytes"]["from_client"] == 300, lsm.brief(rec)
    assert rec["bytes"]["to_upstream"] == 0, lsm.brief(rec)
    return rec


def inspect_hello_malformed(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port) + ["--peek-timeout", "2s"])
    s = lm.connect()
    s.sendall(lsm.corpus("edge_badlen_extensions_overrun"))
    rec = lm.record(timeout=4)
    s.close()
    return rec


def inspect_hello_too_large(reg):
    # A 40 KB hello (padding extension) spanning three records: larger than the 16 KiB buffer.
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port) + ["--peek-timeout", "2s"])
    s = lm.connect()
    try:
        s.sendall(lsm.client_hello(kSni, pad_to=40000))
    except (BrokenPipeError, ConnectionResetError):
        pass  # linesman may close while we still send: that is the point
    rec = lm.record(timeout=4)
    s.close()
    return rec


# ------------------------------------------------------------------------------------- route

def route_no_route(reg):
    # SNI routes only, no default (--upstream): an SNI nobody routes. Traefik: no HostSNI match.
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, routes_to(up.port))
    s = lm.connect()
    s.sendall(lsm.client_hello("other.example.test"))
    rec = lm.record(timeout=4)
    s.close()
    assert rec["tls"]["sni"] == "other.example.test", lsm.brief(rec)
    assert "other.example.test" in rec["hint"], lsm.brief(rec)
    assert rec["route"] is None, lsm.brief(rec)
    return rec


# ----------------------------------------------------------------------------------- connect

def connect_upstream_refused(reg):
    # Traefik: the entrypoint is missing from the static config (or failed to bind), so nothing
    # listens on its port. linesman still reads the client's first flight (SNI in the record) and
    # then resets the client, as the refused connection would have.
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{lsm.closed_port()}",
                            "--peek-timeout", "2s"])
    s = lm.connect()
    s.sendall(lsm.corpus("curl_https_default"))
    s.settimeout(4)
    with pytest.raises(ConnectionResetError):
        data = s.recv(100)
        assert False, f"client got EOF/bytes {data[:40]!r} instead of a reset"
    s.close()
    rec = lm.record(timeout=4)
    assert rec["tls"]["sni"] == "www.example.test", lsm.brief(rec)
    return rec


def connect_upstream_timeout(reg, netns):
    # A firewall drops the SYN (nft in a namespace of our own): the connect timeout ends it.
    port = lsm.free_port()
    netns.drop_syn(port)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{port}", "--connect-timeout", "500ms"],
                      netns=netns)
    s = netns.connect(lm.port)
    s.sendall(kHello)
    rec = lm.record(timeout=5)
    s.close()
    assert rec["duration_ms"] >= 400, lsm.brief(rec)
    return rec


def connect_upstream_unreachable(reg, netns):
    # Traefik: a backend on a network the host has no route to. The namespace's route table says
    # `unreachable` for 198.51.100.0/24 (TEST-NET-2): EHOSTUNREACH without a packet leaving.
    netns.sh("ip", "route", "add", "unreachable", "198.51.100.0/24")
    lm = lsm.Linesman(reg, ["--upstream", "198.51.100.1:443"], netns=netns)
    s = netns.connect(lm.port)
    s.sendall(kHello)
    rec = lm.record(timeout=5)
    s.close()
    return rec


def connect_upstream_resolve_failed(reg, netns):
    # A host name under .invalid (RFC 6761) never resolves; inside the namespace the resolver is
    # unreachable too, so the lookup fails without any query leaving the machine.
    lm = lsm.Linesman(reg, ["--upstream", "backend.nonexistent.invalid:443"], netns=netns)
    s = netns.connect(lm.port)
    s.sendall(kHello)
    rec = lm.record(timeout=10)
    s.close()
    return rec


def connect_upstream_error(reg, netns):
    # A `blackhole` route makes connect(2) fail with EINVAL: an error none of the specific
    # reasons names, so it must come out as upstream_error with the errno.
    netns.sh("ip", "route", "add", "blackhole", "203.0.113.0/24")
    lm = lsm.Linesman(reg, ["--upstream", "203.0.113.1:443"], netns=netns)
    s = netns.connect(lm.port)
    s.sendall(kHello)
    rec = lm.record(timeout=5)
    s.close()
    return rec


def connect_client_gave_up(reg, netns):
    # The SYN is dropped and the connect timeout is long; the client closes after 300 ms without
    # having sent anything: linesman must notice at once and say the client gave up.
    port = lsm.free_port()
    netns.drop_syn(port)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{port}", "--connect-timeout", "5s"],
                      netns=netns)
    s = netns.connect(lm.port)
    time.sleep(0.3)
    s.close()
    rec = lm.record(timeout=3)
    assert rec["duration_ms"] < 4000, lsm.brief(rec)
    return rec


# ------------------------------------------------------------------------------- first_reply

def first_reply_upstream_closed_silently(reg):
    # Traefik: a router rule that never matches (Host() on a TCP router, or a domain HostSNI
    # without tls): the entrypoint reads the ClientHello and closes without a byte. HAProxy with
    # req.ssl_sni routing and no default backend does exactly that for an unknown SNI.
    backend = lsm.start_s_server(reg)
    hap = lsm.start_haproxy(reg, {kSni: backend.port})
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}"])
    s = lm.connect()
    s.sendall(lsm.client_hello("unknown.example.test"))
    data = lsm.recv_all(s, timeout=5)
    s.close()
    assert data == b""
    rec = lm.record(timeout=5)
    assert "unknown.example.test" in rec["hint"], lsm.brief(rec)
    assert rec["bytes"]["from_upstream"] == 0, lsm.brief(rec)
    return rec


def first_reply_upstream_reset(reg):
    up = lsm.start_peer(reg, "rst")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    s.sendall(kHello)
    try:
        lsm.recv_all(s, timeout=5)
    except OSError:
        pass
    s.close()
    return lm.record(timeout=5)


def first_reply_upstream_silent(reg):
    up = lsm.start_peer(reg, "silent")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "1s"])
    s = lm.connect()
    s.sendall(kHello)
    rec = lm.record(timeout=6)
    s.close()
    assert rec["bytes"]["from_upstream"] == 0, lsm.brief(rec)
    return rec


def first_reply_upstream_tls_alert(reg):
    # A TLS-1.3-only server gets a TLS-1.2-only hello (curl --tls-max 1.2): protocol_version.
    backend = lsm.start_s_server(reg, version="tls1_3")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}"])
    s = lm.connect()
    s.sendall(lsm.corpus("curl_tls12_max"))
    lsm.recv_all(s, timeout=5)
    s.close()
    rec = lm.record(timeout=5)
    alert = rec.get("server_tls", {}).get("alert")
    assert alert == {"level": "fatal", "description": "protocol_version", "code": 70}, \
        lsm.brief(rec)
    return rec


def first_reply_upstream_not_tls(reg):
    # Traefik: tls.passthrough to a backend that speaks plain HTTP; it answers the ClientHello
    # with an HTTP 400.
    up = lsm.start_peer(reg, "http400")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    s.sendall(lsm.corpus("curl_https_default"))
    data = lsm.recv_all(s, timeout=5)
    s.close()
    assert data.startswith(b"HTTP/1.1 400"), data[:60]
    rec = lm.record(timeout=5)
    assert rec["upstream_first"]["protocol"] == "http1", lsm.brief(rec)
    assert "HTTP/1.1 400" in rec["upstream_first"].get("summary", ""), lsm.brief(rec)
    return rec


def first_reply_upstream_error_reply(reg):
    # Traefik: a TCP router without TLS in front of a PostgreSQL that requires TLS (hostssl-only
    # pg_hba.conf): the plaintext StartupMessage gets an ErrorResponse.
    pg = lsm.Postgres(reg)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{pg.port}"])
    s = lm.connect()
    s.sendall(lsm.pg_startup())
    data = lsm.recv_all(s, timeout=5)
    s.close()
    assert data[:1] == b"E" and b"no pg_hba.conf entry" in data, data[:200]
    rec = lm.record(timeout=5)
    assert rec["client_first"]["protocol"] == "postgres", lsm.brief(rec)
    assert rec["upstream_first"]["protocol"] == "postgres", lsm.brief(rec)
    assert "no pg_hba.conf entry" in rec["upstream_first"].get("summary", ""), lsm.brief(rec)
    return rec


def first_reply_client_gave_up(reg):
    up = lsm.start_peer(reg, "silent")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "10s"])
    s = lm.connect()
    s.sendall(kHello)
    time.sleep(0.3)
    lsm.close_rst(s)
    rec = lm.record(timeout=4)
    assert rec["close"]["client"] == "rst", lsm.brief(rec)
    return rec


# ------------------------------------------------------------------------------------ stream

def exchange(s: socket.socket, msg: bytes = b"ping\n") -> None:
    s.sendall(msg)
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(msg) and time.monotonic() < deadline:
        chunk = lsm.recv_some(s, timeout=max(0.05, deadline - time.monotonic()))
        if not chunk:
            break
        got += chunk
    assert got == msg, f"echo through linesman: sent {msg!r}, got {got!r}"


def stream_completed(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    exchange(s)
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s, timeout=5) == b""
    s.close()
    rec = lm.record(timeout=5)
    assert rec["outcome"] == "ok", lsm.brief(rec)
    assert rec["close"] == {"first": "client", "client": "fin", "upstream": "fin"}, lsm.brief(rec)
    return rec


def stream_client_closed(reg):
    # Only the upstream spoke (an SSH greeting); the client reads it and closes.
    up = lsm.start_peer(reg, "banner")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    assert lsm.recv_some(s).startswith(b"SSH-2.0-")
    s.close()
    rec = lm.record(timeout=5)
    assert rec["close"] == {"first": "client", "client": "fin", "upstream": "fin"}, lsm.brief(rec)
    return rec


def stream_upstream_closed(reg):
    # Only the upstream spoke: it greets (SSH) and closes at once; the client reads to EOF and
    # closes. (Not an SMTP 421 greeting: that is a refusal, first_reply/upstream_error_reply.)
    up = lsm.start_peer(reg, "greet", "--banner", "SSH-2.0-OpenSSH_9.2p1\\r\\n")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    assert lsm.recv_all(s, timeout=5) == b"SSH-2.0-OpenSSH_9.2p1\r\n"
    s.close()
    rec = lm.record(timeout=5)
    assert rec["close"]["first"] == "upstream", lsm.brief(rec)
    assert rec["close"]["upstream"] == "fin", lsm.brief(rec)
    return rec


def stream_client_reset(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    exchange(s)
    lsm.close_rst(s)
    rec = lm.record(timeout=5)
    assert rec["close"]["client"] == "rst", lsm.brief(rec)
    return rec


def stream_upstream_reset(reg):
    up = lsm.start_peer(reg, "reply", "--banner", "pong\\n", "--hold", "0.2", "--end", "rst")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    s = lm.connect()
    s.sendall(b"ping\n")
    assert lsm.recv_some(s) == b"pong\n"
    with pytest.raises(ConnectionResetError):
        s.settimeout(5)
        data = s.recv(100)
        assert False, f"client got {data!r} instead of the reset passed on"
    s.close()
    rec = lm.record(timeout=5)
    assert rec["close"]["upstream"] == "rst", lsm.brief(rec)
    return rec


def stream_idle_timeout(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "1s"])
    s = lm.connect()
    exchange(s)
    t0 = time.monotonic()
    rec = lm.record(timeout=6)
    s.close()
    assert rec["duration_ms"] >= 900, lsm.brief(rec)
    assert time.monotonic() - t0 < 5
    return rec


def stream_proxy_shutdown(reg):
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--drain-timeout", "500ms"])
    s = lm.connect()
    exchange(s)
    lm.proc.signal(15)
    rc = lm.proc.wait(8)
    assert rc == 0, f"linesman exit code after SIGTERM: {rc}\n{lm.stderr()}"
    rec = lm.records(1, timeout=2)[0]
    s.close()
    return rec


def stream_proxy_error(reg, netns):
    # An OS error on an established socket that is neither a FIN nor a reset: the upstream
    # vanishes (an nft rule drops everything toward it once the stream runs) and, with
    # tcp_retries2=2 in this namespace, the kernel gives up retransmitting after about 1.4 s and
    # the socket fails with ETIMEDOUT. linesman names it proxy_error with the errno.
    up = lsm.start_peer(reg, "echo", netns=netns)
    netns.sh("sysctl", "-q", "-w", "net.ipv4.tcp_retries2=2")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "20s"],
                      netns=netns)
    s = netns.connect(lm.port)
    exchange(s)
    netns.sh("nft", "-f", "-", input=(
        "table inet lsm_cut {\n chain out {\n  type filter hook output priority 0;\n"
        f"  tcp dport {up.port} drop\n }}\n}}\n"))
    s.sendall(b"this never arrives\n")
    rec = lm.record(timeout=15)
    s.close()
    assert rec["close"]["upstream"] == "error", lsm.brief(rec)
    return rec


# ------------------------------------------------------------------------------------- table

# (phase, reason, by, errno or None, scenario, needs a namespace)
kScenarios = [
    ("inspect", "client_silent", "client", None, inspect_client_silent, False),
    ("inspect", "client_closed", "client", None, inspect_client_closed, False),
    ("inspect", "client_reset", "client", None, inspect_client_reset, False),
    ("inspect", "hello_incomplete", "client", None, inspect_hello_incomplete, False),
    ("inspect", "hello_malformed", "client", None, inspect_hello_malformed, False),
    ("inspect", "hello_too_large", "client", None, inspect_hello_too_large, False),
    ("route", "no_route", "proxy", None, route_no_route, False),
    ("connect", "upstream_refused", "upstream", "ECONNREFUSED", connect_upstream_refused, False),
    ("connect", "upstream_timeout", "upstream", None, connect_upstream_timeout, True),
    ("connect", "upstream_unreachable", "upstream", "EHOSTUNREACH", connect_upstream_unreachable,
     True),
    ("connect", "upstream_resolve_failed", "proxy", None, connect_upstream_resolve_failed, True),
    ("connect", "upstream_error", "proxy", "EINVAL", connect_upstream_error, True),
    ("connect", "client_gave_up", "client", None, connect_client_gave_up, True),
    ("first_reply", "upstream_closed_silently", "upstream", None,
     first_reply_upstream_closed_silently, False),
    ("first_reply", "upstream_reset", "upstream", "ECONNRESET", first_reply_upstream_reset,
     False),
    ("first_reply", "upstream_silent", "upstream", None, first_reply_upstream_silent, False),
    ("first_reply", "upstream_tls_alert", "upstream", None, first_reply_upstream_tls_alert,
     False),
    ("first_reply", "upstream_not_tls", "upstream", None, first_reply_upstream_not_tls, False),
    ("first_reply", "upstream_error_reply", "upstream", None, first_reply_upstream_error_reply,
     False),
    ("first_reply", "client_gave_up", "client", None, first_reply_client_gave_up, False),
    ("stream", "completed", "client", None, stream_completed, False),
    ("stream", "client_closed", "client", None, stream_client_closed, False),
    ("stream", "upstream_closed", "upstream", None, stream_upstream_closed, False),
    ("stream", "client_reset", "client", None, stream_client_reset, False),
    ("stream", "upstream_reset", "upstream", None, stream_upstream_reset, False),
    ("stream", "idle_timeout", "proxy", None, stream_idle_timeout, False),
    ("stream", "proxy_shutdown", "proxy", None, stream_proxy_shutdown, False),
    ("stream", "proxy_error", "proxy", "ETIMEDOUT", stream_proxy_error, True),
]


def test_table_covers_taxonomy():
    pairs = {(p, r) for p, r, *_ in kScenarios}
    assert len(pairs) == len(kScenarios), "duplicate rows"
    assert pairs == lsm.kAllPairs, f"missing {lsm.kAllPairs - pairs}, extra {pairs - lsm.kAllPairs}"


@pytest.mark.parametrize("phase,reason,by,errno_name,scenario,ns", kScenarios,
                         ids=[f"{p}-{r}" for p, r, *_ in kScenarios])
def test_stop_reason(request, reg, phase, reason, by, errno_name, scenario, ns):
    if ns:
        rec = scenario(reg, request.getfixturevalue("netns"))
    else:
        rec = scenario(reg)
    assert_stop(rec, phase, reason, by, errno_name)
    failed = phase != "stream" or reason in ("client_reset", "upstream_reset", "idle_timeout",
                                             "proxy_shutdown", "proxy_error")
    if not failed:
        assert rec["outcome"] == "ok", lsm.brief(rec)
    elif phase != "stream":
        assert rec["outcome"] == "failed", lsm.brief(rec)


def test_zz_all_reasons_produced():
    """The union of (phase, reason) pairs seen in this file's validated records is the taxonomy."""
    missing = sorted(lsm.kAllPairs - lsm.produced_pairs)
    assert not missing, f"{len(missing)} of 28 pairs never produced: {missing}"


@pytest.mark.parametrize("client_leaves", [False, True], ids=["timeout", "client_gave_up"])
def test_connect_by_name_ends_on_time(reg, netns, client_leaves):
    """An upstream given by name goes through the resolver and asio's connect over the resolved
    addresses, where the connect phase's deadline and the client leaving must end the attempt
    as they do for a numeric address (a plain cancel would only move on to the next address)."""
    port = lsm.free_port()
    netns.drop_syn(port)
    timeout = "5s" if client_leaves else "500ms"
    lm = lsm.Linesman(reg, ["--upstream", f"localhost:{port}", "--connect-timeout", timeout],
                      netns=netns)
    s = netns.connect(lm.port)
    if client_leaves:
        time.sleep(0.3)
        s.close()
    else:
        s.sendall(kHello)
    rec = lm.record(timeout=4)
    s.close()
    if client_leaves:
        assert_stop(rec, "connect", "client_gave_up", "client", None)
        assert rec["duration_ms"] < 2000, lsm.brief(rec)
    else:
        assert_stop(rec, "connect", "upstream_timeout", "upstream", None)
        assert 400 <= rec["duration_ms"] < 2000, lsm.brief(rec)
