"""test_proxy_protocol: PROXY protocol in and out (docs/transparent-and-proxy-protocol.md), with real HAProxy and nginx.

- out: linesman --proxy-protocol-out v2 in front of HAProxy `accept-proxy` (HAProxy's own log
  shows the original client), v1 in front of nginx stream `listen ... proxy_protocol`
  ($proxy_protocol_addr in its access log).
- in: HAProxy `send-proxy-v2` in front of linesman --proxy-protocol-in v2: the record shows the
  original client; strip delivers the bytes without the header; forward passes it unchanged.
- failures: untrusted source, malformed, truncated (timeout and close), missing, a backend that
  answers the header with an HTTP 400, and a header the listener does not expect.

The client binds 127.0.0.5 where it matters so that "the original client" cannot be confused
with linesman's or HAProxy's own 127.0.0.1 connections.
"""
import signal
import socket
import struct
import time

import lsm
from lsm import assert_stop

kClientIp = "127.0.0.5"
kSni = "app.example.test"


def client_from(port: int, src: str = kClientIp) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def v1_header(src=("192.0.2.7", 40123), dst=("198.51.100.9", 443)) -> bytes:
    return f"PROXY TCP4 {src[0]} {dst[0]} {src[1]} {dst[1]}\r\n".encode()


kV2Sig = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src=("192.0.2.7", 40123), dst=("198.51.100.9", 443), tlvs: bytes = b"") -> bytes:
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack("!HH", src[1], dst[1])
    body += tlvs
    return kV2Sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def tlv(t: int, v: bytes) -> bytes:
    return bytes([t]) + struct.pack("!H", len(v)) + v


def start_haproxy_raw(reg, name: str, lines: list[str], port: int) -> lsm.Proc:
    exe = lsm.need("haproxy")
    cfg = reg.tmp / f"{name}.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    p = reg.add(lsm.Proc(name, [exe, "-db", "-f", str(cfg)], reg.tmp, stop_signal=signal.SIGTERM,
                         stdout_pipe=True))
    lsm.wait_until(lambda: not p.alive() or port in lsm.listening_ports(p.pid), 10,
                   "haproxy to listen")
    assert p.alive(), f"haproxy exited:\n{p.output()}"
    p.port = port
    return p


kHaproxyHead = ["global", "  log stdout format raw local0 info", "defaults", "  mode tcp",
                "  log global", "  timeout connect 2s", "  timeout client 10s",
                "  timeout server 10s"]


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    return lsm.recv_all(sock, timeout=10)


# ---------------------------------------------------------------------------------------------
# out

def test_out_v2_haproxy_accept_proxy_logs_original_client(reg):
    echo = lsm.start_peer(reg, "echo")
    hport = lsm.free_port()
    hap = start_haproxy_raw(reg, "haproxy-accept", kHaproxyHead + [
        "frontend fe", f"  bind 127.0.0.1:{hport} accept-proxy",
        '  log-format "PPCLIENT %ci:%cp FE %fi:%fp"', "  default_backend be",
        "backend be", f"  server s 127.0.0.1:{echo.port}"], hport)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}", "--proxy-protocol-out", "v2"])
    c = client_from(lm.port)
    cport = c.getsockname()[1]
    payload = lsm.peer_payload(100_000)
    assert echo_roundtrip(c, payload) == payload
    c.close()
    rec = lm.record()
    assert rec["proxy_protocol_out"]["version"] == 2
    assert rec["proxy_protocol_out"]["source"] == {"ip": kClientIp, "port": cport}
    assert rec["stop"]["reason"] == "completed", lsm.brief(rec)
    m = hap.wait_line(r"PPCLIENT (\S+):(\d+) FE (\S+):(\d+)", 10)
    assert (m.group(1), int(m.group(2))) == (kClientIp, cport)
    # The destination HAProxy believes is the address the client dialled on linesman.
    assert int(m.group(4)) == lm.port


def test_out_v2_carries_sni_as_authority_and_id_as_unique_id(reg):
    # A small PROXY v2 reader stands in for the backend: peer.py's echo sends the header back.
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--proxy-protocol-out", "v2"])
    c = client_from(lm.port)
    hello = lsm.client_hello(kSni)
    c.sendall(hello)
    got = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (len(got) < 16 or len(got) < 16 + struct.unpack(
            "!H", got[14:16])[0] + len(hello)):
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    c.close()
    assert got[:12] == kV2Sig, got[:32]
    hlen = 16 + struct.unpack("!H", got[14:16])[0]
    assert got[hlen:] == hello  # the client's bytes follow the header unchanged
    body = got[16:hlen]
    assert socket.inet_ntoa(body[0:4]) == kClientIp
    tlvs, i = {}, 12
    while i + 3 <= len(body):
        t, n = body[i], struct.unpack("!H", body[i + 1:i + 3])[0]
        tlvs[t] = body[i + 3:i + 3 + n]
        i += 3 + n
    rec = lm.record()
    assert tlvs.get(0x02) == kSni.encode()
    assert tlvs.get(0x05) == rec["id"].encode()
    assert rec["proxy_protocol_out"]["authority"] == kSni


def test_out_v1_nginx_proxy_protocol_addr(reg):
    echo = lsm.start_peer(reg, "echo")
    port = lsm.free_port()
    prefix = reg.tmp / "nginx-pp"
    lsm.start_nginx_stream(reg, port, f"""  log_format pp "PPADDR $proxy_protocol_addr:$proxy_protocol_port REMOTE $remote_addr";
  server {{
    listen 127.0.0.1:{port} proxy_protocol;
    access_log {prefix}/access.log pp;
    proxy_pass 127.0.0.1:{echo.port};
  }}
""", name="nginx-pp")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{port}", "--proxy-protocol-out", "v1"])
    c = client_from(lm.port)
    cport = c.getsockname()[1]
    # No half-close: nginx stream (proxy_half_close off) would drop the echo's answer.
    c.sendall(b"hello through nginx\n")
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < 20 and time.monotonic() < deadline:
        chunk = c.recv(100)
        if not chunk:
            break
        got += chunk
    assert got == b"hello through nginx\n"
    c.close()
    rec = lm.record()
    assert rec["proxy_protocol_out"]["version"] == 1
    log = prefix / "access.log"
    lsm.wait_until(lambda: log.exists() and "PPADDR" in log.read_text(), 10, "nginx access log")
    assert f"PPADDR {kClientIp}:{cport} " in log.read_text(), log.read_text()


def test_out_backend_rejecting_header_hint(reg):
    http = lsm.start_peer(reg, "http400")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{http.port}", "--proxy-protocol-out", "v1"])
    c = lm.connect()
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    lsm.recv_all(c, timeout=5)
    c.close()
    rec = lm.record()
    # The 400 answer ends an HTTP exchange normally as far as the stop taxonomy goes; the hint
    # is what names the PROXY header.
    assert rec["upstream_first"]["summary"].startswith("HTTP/1.1 400"), lsm.brief(rec)
    assert "may not speak PROXY protocol" in rec["hint"], rec["hint"]


# ---------------------------------------------------------------------------------------------
# in

def haproxy_send_proxy_v2(reg, lm_port: int) -> lsm.Proc:
    hport = lsm.free_port()
    return start_haproxy_raw(reg, "haproxy-send", kHaproxyHead + [
        "frontend fe", f"  bind 127.0.0.1:{hport}", "  default_backend be", "backend be",
        f"  server s 127.0.0.1:{lm_port} send-proxy-v2"], hport)


def test_in_v2_from_haproxy_strip_records_original_client(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--proxy-protocol-in", "v2",
                            "--proxy-protocol-strip"])
    hap = haproxy_send_proxy_v2(reg, lm.port)
    c = client_from(hap.port)
    cport = c.getsockname()[1]
    payload = lsm.peer_payload(200_000)
    assert echo_roundtrip(c, payload) == payload  # byte-exact: no header reached the echo
    c.close()
    rec = lm.record()
    pp = rec["proxy_protocol"]
    assert pp["version"] == 2 and pp["command"] == "proxy"
    assert pp["source"] == {"ip": kClientIp, "port": cport}
    assert pp["destination"]["port"] == hap.port
    assert pp["forwarded"] is False
    assert rec["client"]["ip"] == "127.0.0.1" and rec["client"]["port"] != cport
    assert rec["bytes"]["to_upstream"] == len(payload)
    assert rec["bytes"]["from_client"] > len(payload)  # the header came from the client side
    assert rec["stop"]["reason"] == "completed", lsm.brief(rec)


def test_in_forward_unchanged_and_tlvs(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--proxy-protocol-in", "auto"])
    hdr = v2_header(tlvs=tlv(0x01, b"h2") + tlv(0x02, b"api.example") + tlv(0x05, b"req-42"))
    c = lm.connect()
    assert echo_roundtrip(c, hdr + b"payload") == hdr + b"payload"
    c.close()
    pp = lm.record()["proxy_protocol"]
    assert pp["source"] == {"ip": "192.0.2.7", "port": 40123}
    assert pp["destination"] == {"ip": "198.51.100.9", "port": 443}
    assert pp["tlvs"] == {"alpn": "h2", "authority": "api.example", "unique_id": "req-42"}
    assert pp["forwarded"] is True


def test_in_auto_without_header_passes_through(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--proxy-protocol-in", "auto"])
    c = lm.connect()
    assert echo_roundtrip(c, b"hi") == b"hi"  # shorter than the 12-byte signature
    c.close()
    rec = lm.record()
    assert "proxy_protocol" not in rec
    assert rec["stop"]["reason"] == "completed", lsm.brief(rec)


def test_in_v1_strip_and_route_to_sni(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--route", f"{kSni}=127.0.0.1:{echo.port}", "--proxy-protocol-in",
                            "v1", "--proxy-protocol-strip"])
    hello = lsm.client_hello(kSni)
    c = lm.connect()
    assert echo_roundtrip(c, v1_header() + hello) == hello
    c.close()
    rec = lm.record()
    assert rec["route"] == kSni and rec["tls"]["sni"] == kSni
    assert rec["proxy_protocol"]["version"] == 1


def fail_case(reg, args, send: bytes, close: bool = False, wait: float = 0.0) -> dict:
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", *args])
    c = lm.connect()
    if send:
        c.sendall(send)
    if close:
        c.shutdown(socket.SHUT_WR)
    got = lsm.recv_all(c, timeout=5 + wait)
    c.close()
    assert got == b""  # nothing reached the echo backend
    return lm.record()


def test_in_untrusted_source(reg):
    rec = fail_case(reg, ["--proxy-protocol-in", "v1", "--proxy-trusted", "10.0.0.0/8"],
                    v1_header() + b"data")
    assert_stop(rec, "inspect", "hello_malformed", "client")
    assert rec["proxy_protocol"]["error"] == "untrusted_source"
    assert "not in the listener's trusted networks" in rec["hint"], rec["hint"]
    assert rec["upstream"] is None


def test_in_malformed(reg):
    rec = fail_case(reg, ["--proxy-protocol-in", "auto"], b"PROXY TCP4 192.0.2.1 x 1 2\r\nzz")
    assert_stop(rec, "inspect", "hello_malformed", "client")
    assert rec["proxy_protocol"]["error"] == "malformed"
    assert "malformed PROXY protocol header" in rec["hint"]


def test_in_truncated_times_out(reg):
    rec = fail_case(reg, ["--proxy-protocol-in", "v2", "--peek-timeout", "500ms"],
                    v2_header()[:20])
    assert_stop(rec, "inspect", "hello_incomplete", "client")
    assert rec["proxy_protocol"]["error"] == "incomplete"
    assert "never completed" in rec["hint"]
    assert rec["duration_ms"] >= 450


def test_in_truncated_then_close(reg):
    rec = fail_case(reg, ["--proxy-protocol-in", "v1"], b"PROXY TCP4 192.0.2.1 ", close=True)
    assert_stop(rec, "inspect", "client_closed", "client")
    assert rec["proxy_protocol"]["error"] == "incomplete"


def test_in_missing_and_version_mismatch(reg):
    rec = fail_case(reg, ["--proxy-protocol-in", "v2"], b"GET / HTTP/1.1\r\n\r\n")
    assert_stop(rec, "inspect", "hello_malformed", "client")
    assert rec["proxy_protocol"]["error"] == "missing"
    assert "no PROXY protocol header" in rec["hint"]


def test_in_version_mismatch(reg):
    rec = fail_case(reg, ["--proxy-protocol-in", "v1"], v2_header())
    assert rec["proxy_protocol"]["error"] == "version_mismatch"
    assert rec["proxy_protocol"]["version"] == 2


def test_unexpected_header_hint(reg):
    http = lsm.start_peer(reg, "http400")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{http.port}"])
    c = lm.connect()
    c.sendall(v1_header() + b"GET / HTTP/1.1\r\n\r\n")
    lsm.recv_all(c, timeout=5)
    c.close()
    rec = lm.record()
    assert rec["client_first"]["protocol"] == "proxy_v1"
    assert "does not expect" in rec["hint"], rec["hint"]


def test_bad_flags():
    rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1",
                                   "--proxy-protocol-in", "v3"])
    assert rc == 2 and "--proxy-protocol-in" in err
    rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1",
                                   "--proxy-protocol-in", "v1", "--proxy-trusted", "10.0.0.0/33"])
    assert rc == 2 and "--proxy-trusted" in err


def test_out_per_route_from_yaml(reg):
    # The route's proxy_protocol_out (v1) beats the listener's (off): nginx sees the client.
    echo = lsm.start_peer(reg, "echo")
    cfg = reg.tmp / "pp.yaml"
    cfg.write_text(f"""listeners:
  - listen: 127.0.0.1:0
    name: pp
    access_log: {reg.tmp / 'yaml.jsonl'}
    routes:
      - sni: {kSni}
        upstream: 127.0.0.1:{echo.port}
        proxy_protocol_out: v1
""")
    p = reg.add(lsm.Proc("linesman-yaml", [lsm.linesman_bin(), "run", "--config", str(cfg)],
                         reg.tmp, stderr_pipe=True))
    port = int(p.wait_line(lsm.kListenRx, 10, stream="err").group(2))
    hello = lsm.client_hello(kSni)
    c = client_from(port)
    cport = c.getsockname()[1]
    c.sendall(hello)
    want = f"PROXY TCP4 {kClientIp} 127.0.0.1 {cport} {port}\r\n".encode() + hello
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(want) and time.monotonic() < deadline:
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    c.close()
    assert got == want


def test_out_v1_to_redis_hint(reg):
    redis = lsm.start_redis(reg)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{redis.port}", "--proxy-protocol-out", "v1"])
    c = lm.connect()
    c.sendall(b"PING\r\n")
    got = b""
    deadline = time.monotonic() + 5
    while b"PONG" not in got and time.monotonic() < deadline:
        chunk = c.recv(4096)
        if not chunk:
            break
        got += chunk
    c.close()
    assert got.startswith(b"-ERR"), got  # Redis read the PROXY line as a command
    rec = lm.record()
    assert "may not speak PROXY protocol" in rec["hint"], lsm.brief(rec)
