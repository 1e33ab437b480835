"""test_faults: injected faults (`linesman run --fault`, YAML `faults:`, /api/faults) against real
peers on loopback: HAProxy 2.6 routing on req.ssl_sni with an inspect-delay (standing in for a
Traefik entrypoint with HostSNI TCP routers), openssl s_server and s_client, and peer.py servers
as measuring instruments. Every timed figure has a floor (the fault did act) and a ceiling with
room for a loaded machine (the fault did not hang the connection)."""
import json
import signal
import socket
import time
import urllib.error
import urllib.request

import lsm
from test_replay_corpus import replay, start_tls_backend, stop_of

kHello = lsm.kCorpus / "curl_https_default.bin"  # SNI www.example.test
kSni = "www.example.test"
kAdminRx = r"linesman: admin on (\S+):(\d+)"


def send_hello(port: int, hello: bytes, wait: float = 3.0):
    """send_hello: send `hello`, read until close/reset or `wait`; (bytes got, how it ended)."""
    s = lsm.connect(port)
    s.sendall(hello)
    got, end = lsm.read_until_end(s, wait, limit=1 << 24)
    s.close()
    return got, end


def stop(rec):
    return rec["stop"]["phase"], rec["stop"]["reason"], rec["stop"]["by"]


def haproxy_chain(reg):
    backend = start_tls_backend(reg)
    return lsm.start_haproxy(reg, {kSni: backend.port}, inspect_delay="2s")


def test_haproxy_split_records_is_not_routed_and_the_record_says_why(reg):
    hap = haproxy_chain(reg)
    hello = kHello.read_bytes()
    # Without a fault the same hello is routed: the backend's ServerHello comes back.
    plain = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}"], name="plain")
    got, _ = send_hello(plain.port, hello)
    assert got[:1] == b"\x16", got[:20]
    rec = plain.record()
    assert "fault" not in rec
    # The handshake header split by the first record: HAProxy 2.6 does not route it, and closes.
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}",
                            "--fault", "split_hello:records=2,first=3"], name="split")
    got, end = send_hello(lm.port, hello)
    assert got == b"" and end == "fin", (got[:20], end)
    rec = lm.record()
    assert rec["fault"] == {"name": "split_hello", "params": {"records": 2, "first": 3}}, rec
    assert stop(rec) == ("first_reply", "upstream_closed_silently", "upstream"), lsm.brief(rec)
    assert rec["bytes"]["to_upstream"] == len(hello) + 5  # one more record header on the wire
    assert rec["tls"]["sni"] == kSni
    assert rec["hint"].startswith("linesman injected the fault split_hello"), rec["hint"]
    # probability=0 never applies: routed, and no record carries `fault`.
    zero = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}", "--fault",
                              "split_hello:records=2,first=3,probability=0"], name="zero")
    for _ in range(3):
        got, _ = send_hello(zero.port, hello)
        assert got[:1] == b"\x16"
    assert all("fault" not in r for r in zero.records(3))


def test_replay_split_records_and_segments_against_haproxy(reg):
    hap = haproxy_chain(reg)
    target = f"127.0.0.1:{hap.port}"
    rc, v, err = replay(str(kHello), "--target", target, "--split-records", "2,first=3")
    assert rc == 1 and stop_of(v) == ("first_reply", "upstream_closed_silently"), (err, v)
    assert v["sent"]["bytes"] == kHello.stat().st_size + 5
    # Segments with gaps inside the inspect-delay are reassembled by HAProxy: routed.
    rc, v, err = replay(str(kHello), "--target", target, "--split-segments", "3", "--gap", "50ms")
    assert rc == 0 and v["sent"]["writes"] == 3, (err, v)
    # Measured: HAProxy 2.6's req.ssl_sni reads the first record only, so a hello whose
    # server_name extension lands in a later record is not routed either.
    rc, v, err = replay(str(kHello), "--target", target, "--split-records", "4")
    assert rc == 1 and stop_of(v) == ("first_reply", "upstream_closed_silently"), (err, v)
    assert v["sent"]["bytes"] == kHello.stat().st_size + 3 * 5
    rc, _, err = replay(str(kHello), "--target", target, "--split-records", "2,first=0")
    assert rc == 2 and "--split-records" in err, err


def test_s_client_handshake_completes_through_split_records(reg):
    lsm.need("openssl")
    backend = lsm.start_s_server(reg, "tls1_3")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}",
                            "--fault", "split_hello:records=4"])
    r = lsm.s_client(lm.port, "app.example.test")
    assert b"HTTP/1.0 200" in r.stdout, r.stderr[-500:]
    rec = lm.record()
    assert rec["fault"]["name"] == "split_hello" and rec["fault"]["params"] == {"records": 4}
    assert rec["outcome"] == "ok", lsm.brief(rec)
    assert rec["bytes"]["to_upstream"] == rec["bytes"]["from_client"] + 3 * 5


def echo_rtt(port: int, rounds: int = 3) -> float:
    """echo_rtt: the smallest time of `rounds` one-byte round trips through an echo peer."""
    s = lsm.connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    best = 1e9
    for _ in range(rounds):
        t0 = time.monotonic()
        s.sendall(b"x")
        assert lsm.recv_some(s, 10) == b"x"
        best = min(best, time.monotonic() - t0)
    s.shutdown(socket.SHUT_WR)
    lsm.recv_all(s, 10)
    s.close()
    return best


def test_latency_is_added_each_way(reg):
    echo = lsm.start_peer(reg, "echo")
    base = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}"], name="base")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}",
                            "--fault", "latency:ms=150,jitter=20"], name="lat")
    baseline = echo_rtt(base.port)
    rtt = echo_rtt(lm.port)
    # Two directions of 150 +- 20 ms: at least 260 ms; the ceiling leaves a loaded box 1 s.
    assert 0.26 <= rtt <= 0.34 + baseline + 1.0, (rtt, baseline)
    rec = lm.record()
    assert rec["fault"]["params"] == {"ms": 150, "jitter": 20}
    assert stop(rec)[:2] == ("stream", "completed"), lsm.brief(rec)


def test_bandwidth_limits_one_direction(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}",
                            "--fault", "bandwidth:kbps=800,direction=down"])
    data = lsm.peer_payload(100_000)  # 800 kbit/s = 100 kB/s: about 1 s back
    s = lsm.connect(lm.port)
    t0 = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = lsm.recv_all(s, 20)
    took = time.monotonic() - t0
    s.close()
    assert got == data
    assert 0.85 <= took <= 4.0, took
    rec = lm.record()
    assert rec["bytes"]["to_client"] == len(data)
    assert stop(rec)[:2] == ("stream", "completed"), lsm.brief(rec)


def test_a_shaped_transfer_longer_than_the_idle_timeout_is_not_idle(reg):
    # 15 kB back at 80 kbit/s (10 kB/s) takes 1.5 s, past a 1 s idle timeout, with no read
    # in between: the held bytes count as activity, so the transfer completes.
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--idle-timeout", "1s",
                            "--fault", "bandwidth:kbps=80,direction=down"])
    data = lsm.peer_payload(15_000)
    s = lsm.connect(lm.port)
    t0 = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = lsm.recv_all(s, 20)
    took = time.monotonic() - t0
    s.close()
    assert got == data and took >= 1.2, (len(got), took)
    rec = lm.record()
    assert stop(rec)[:2] == ("stream", "completed"), lsm.brief(rec)


def test_reset_after_hello_and_after_first_reply(reg):
    backend = lsm.start_s_server(reg, "tls1_3")
    hello = lsm.client_hello("app.example.test")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}",
                            "--fault", "reset:after=hello"], name="hello")
    got, end = send_hello(lm.port, hello)
    assert got == b"" and end == "rst", (got[:10], end)
    rec = lm.record()
    assert stop(rec) == ("first_reply", "upstream_reset", "proxy"), lsm.brief(rec)
    assert rec["fault"] == {"name": "reset", "params": {"after": "hello"}}
    assert rec["bytes"]["to_upstream"] == len(hello)
    assert rec["close"]["client"] == "proxy"
    lm2 = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}",
                             "--fault", "reset:after=first_reply"], name="reply")
    got, end = send_hello(lm2.port, hello)
    assert end == "rst", end
    rec = lm2.record()
    assert stop(rec) == ("stream", "upstream_reset", "proxy"), lsm.brief(rec)
    assert rec["bytes"]["from_upstream"] > 0
    # after=bytes=N: exactly N bytes forwarded (both directions together), then the reset.
    echo = lsm.start_peer(reg, "echo")
    lm3 = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}",
                             "--fault", "reset:after=bytes=1000,direction=down"], name="bytes")
    s = lsm.connect(lm3.port)
    s.sendall(lsm.peer_payload(5000))
    got = b""
    with_rst = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            with_rst = True
            break
        if not chunk:
            break
        got += chunk
    s.close()
    rec = lm3.record()
    assert with_rst
    assert rec["bytes"]["to_upstream"] + rec["bytes"]["to_client"] == 1000, rec["bytes"]


def test_blackhole_is_upstream_silent_at_the_idle_timeout(reg):
    backend = lsm.start_s_server(reg, "tls1_3")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}", "--idle-timeout", "1s",
                            "--fault", "blackhole"])
    hello = lsm.client_hello("app.example.test")
    t0 = time.monotonic()
    got, end = send_hello(lm.port, hello, wait=6)
    took = time.monotonic() - t0
    assert got == b"" and end in ("fin", "rst"), end
    assert 0.9 <= took <= 4.0, took
    rec = lm.record()
    assert stop(rec) == ("first_reply", "upstream_silent", "upstream"), lsm.brief(rec)
    assert rec["bytes"]["from_client"] == len(hello) and rec["bytes"]["to_upstream"] == 0


def test_slow_close_holds_the_fin(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}",
                            "--fault", "slow_close:delay=600ms,direction=up"])
    s = lsm.connect(lm.port)
    s.sendall(b"ping")
    assert lsm.recv_some(s, 5) == b"ping"
    t0 = time.monotonic()
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s, 10) == b""  # the echo's FIN comes after ours reached it
    took = time.monotonic() - t0
    s.close()
    assert 0.55 <= took <= 3.0, took
    rec = lm.record()
    assert stop(rec)[:2] == ("stream", "completed"), lsm.brief(rec)
    assert rec["fault"]["params"] == {"delay": "600ms", "direction": "up"}


def test_truncate_hello_is_closed_silently_by_the_upstream(reg):
    backend = lsm.start_s_server(reg, "tls1_3")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}",
                            "--fault", "truncate_hello:bytes=100"])
    hello = lsm.client_hello("app.example.test")
    got, end = send_hello(lm.port, hello, wait=5)
    assert got[:1] != b"\x16" and end in ("fin", "rst"), (got[:10], end)
    rec = lm.record()
    assert rec["bytes"]["to_upstream"] == 100 and rec["bytes"]["from_client"] == len(hello)
    assert rec["stop"]["phase"] == "first_reply", lsm.brief(rec)
    assert rec["stop"]["reason"] in ("upstream_closed_silently", "upstream_tls_alert"), \
        lsm.brief(rec)


def admin(port, method, path, body=None, token="t0ken"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_admin_add_see_delete(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--admin", "127.0.0.1:0",
                            "--admin-token", "t0ken", "--admin-faults"])
    port = int(lm.proc.wait_line(kAdminRx, 10, stream="err").group(2))
    assert admin(port, "GET", "/api/faults") == (200, [])
    # The token rule: no change without it.
    code, _ = admin(port, "POST", "/api/faults", {"spec": "reset:after=hello"}, token=None)
    assert code == 401
    # A bad spec: 400 naming the key, nothing added.
    code, body = admin(port, "POST", "/api/faults", {"spec": "latency:ms=fast"})
    assert code == 400 and "key 'ms'" in body["error"], body
    code, body = admin(port, "POST", "/api/faults", {"spec": "blackhole", "colour": 1})
    assert code == 400 and "colour" in body["error"], body
    code, body = admin(port, "POST", "/api/faults", {"spec": "blackhole", "listener": "nope"})
    assert code == 400 and "listener" in body["error"], body
    code, body = admin(port, "POST", "/api/faults", {"spec": 7})
    assert code == 400 and "spec" in body["error"], body
    assert admin(port, "GET", "/api/faults") == (200, [])
    # Add: the next connection is reset after its first bytes.
    code, body = admin(port, "POST", "/api/faults", {"spec": "reset:after=bytes=1"})
    assert code == 201 and body["name"] == "reset" and body["source"] == "admin", body
    fid = body["id"]
    assert [f["id"] for f in admin(port, "GET", "/api/faults")[1]] == [fid]
    got, end = send_hello(lm.port, b"hello")
    assert end == "rst", (got, end)
    rec = lm.records(1)[0]
    assert rec["fault"] == {"name": "reset", "params": {"after": "bytes=1"}}
    metrics = urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                               headers={"Authorization": "Bearer t0ken"}), timeout=5).read()
    assert b'linesman_faults_applied_total{fault="reset"} 1' in metrics
    # Delete: the next connection is left alone.
    assert admin(port, "DELETE", f"/api/faults/{fid}") == (200, {"deleted": fid})
    assert admin(port, "DELETE", f"/api/faults/{fid}")[0] == 404
    assert admin(port, "GET", "/api/faults") == (200, [])
    s = lsm.connect(lm.port)
    s.sendall(b"hello")
    assert lsm.recv_some(s, 5) == b"hello"
    s.shutdown(socket.SHUT_WR)
    lsm.recv_all(s, 5)
    s.close()
    recs = lm.records(2)
    assert "fault" not in recs[1], recs[1]


def test_admin_faults_off_by_default(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--admin", "127.0.0.1:0"])
    port = int(lm.proc.wait_line(kAdminRx, 10, stream="err").group(2))
    assert admin(port, "GET", "/api/faults", token=None)[0] == 404
    code, _ = admin(port, "POST", "/api/faults", {"spec": "blackhole"}, token=None)
    assert code in (404, 413)


def test_yaml_faults_and_bad_specs_exit_2(reg):
    echo = lsm.start_peer(reg, "echo")
    cfg = reg.tmp / "faults.yaml"
    port = lsm.free_port()
    log = reg.tmp / "yaml.jsonl"
    cfg.write_text(f"listeners:\n  - listen: 127.0.0.1:{port}\n"
                   f"    upstream: 127.0.0.1:{echo.port}\n    access_log: {log}\n"
                   "    faults:\n      - reset:after=bytes=1\n")
    proc = reg.add(lsm.Proc("linesman-yaml", [lsm.linesman_bin(), "run", "--config", str(cfg)],
                            reg.tmp, stderr_pipe=True))
    lsm.wait_until(lambda: port in lsm.listening_ports(proc.pid), 10, "the YAML listener")
    _, end = send_hello(port, b"hi")
    assert end == "rst"
    lsm.wait_until(lambda: log.exists() and log.read_text().endswith("\n"), 10, str(log))
    rec = lsm.check_record(json.loads(log.read_text().splitlines()[0]))
    assert rec["fault"] == {"name": "reset", "params": {"after": "bytes=1"}}
    up = f"127.0.0.1:{echo.port}"
    for spec, key in [("latency:ms=abc", "key 'ms'"), ("split_hello:records=2,frist=3",
                                                       "key 'frist'"),
                      ("blackhole:probability=2", "key 'probability'"), ("nope", "'nope'")]:
        rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream", up,
                                       "--fault", spec])
        assert rc == 2 and key in err, (spec, rc, err)
    for argv, key in [(["--fault-seed", "x"], "--fault-seed"),
                      (["--admin-faults"], "--admin-faults")]:
        rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream", up, *argv])
        assert rc == 2 and key in err, (argv, rc, err)
    cfg.write_text("listeners:\n  - listen: 127.0.0.1:0\n"
                   f"    upstream: {up}\n    faults:\n      - latency:ms=1,jitter=x\n")
    rc, _, err = lsm.run_linesman(["run", "--config", str(cfg)])
    assert rc == 2 and "faults[0]" in err and "key 'jitter'" in err, err


def test_split_records_on_a_plaintext_flight_forwards_it_unchanged(reg):
    echo = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}",
                            "--fault", "split_hello:records=2"])
    s = lsm.connect(lm.port)
    s.sendall(b"PING plain text\r\n")
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s, 10) == b"PING plain text\r\n"
    s.close()
    rec = lm.record()
    assert rec["fault"]["name"] == "split_hello"
    assert "fault_not_applied" in rec.get("warnings", []), rec
    assert stop(rec)[:2] == ("stream", "completed"), lsm.brief(rec)


def test_a_reload_adds_and_drops_yaml_faults(reg):
    echo = lsm.start_peer(reg, "echo")
    port = lsm.free_port()
    log = reg.tmp / "reload.jsonl"
    cfg = reg.tmp / "reload.yaml"

    def write(faults):
        text = (f"listeners:\n  - name: edge\n    listen: 127.0.0.1:{port}\n"
                f"    upstream: 127.0.0.1:{echo.port}\n    access_log: {log}\n")
        if faults:
            text += "    faults:\n" + "".join(f"      - {f}\n" for f in faults)
        tmp = cfg.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(cfg)

    def echoed():
        s = lsm.connect(port)
        s.sendall(b"hi")
        try:
            ok = lsm.recv_some(s, 5) == b"hi"
        except ConnectionResetError:
            ok = False
        s.close()
        return ok

    write([])
    proc = reg.add(lsm.Proc("linesman-reload", [lsm.linesman_bin(), "run", "--config", str(cfg)],
                            reg.tmp, stderr_pipe=True))
    lsm.wait_until(lambda: port in lsm.listening_ports(proc.pid), 10, "the YAML listener")
    assert echoed()
    write(["reset:after=bytes=1"])
    proc.signal(signal.SIGHUP)
    lsm.wait_until(lambda: not echoed(), 10, "the reloaded fault to apply")
    write([])
    proc.signal(signal.SIGHUP)
    lsm.wait_until(echoed, 10, "the fault to be gone after the second reload")


def splice_calls(reg, lm, name):
    """splice_calls: splice(2) calls linesman made while 200 kB went through it and back (an echo
    upstream), counted by strace attached to all its threads."""
    trace = reg.tmp / f"{name}.strace"
    st = reg.add(lsm.Proc(f"strace-{name}", [lsm.need("strace"), "-f", "-qq", "-e",
                                            "trace=splice", "-o", str(trace), "-p", str(lm.pid)],
                          reg.tmp, stderr_pipe=True))
    time.sleep(0.5)  # attached to every thread before the first byte
    data = lsm.peer_payload(200_000)
    s = lsm.connect(lm.port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s, 20) == data
    s.close()
    lm.records(1)
    st.stop()
    return sum("splice(" in line for line in trace.read_text().splitlines())


def test_a_faulted_connection_never_splices(reg):
    echo = lsm.start_peer(reg, "echo")
    plain = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--threads", "1"],
                         name="plain")
    faulted = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--threads", "1",
                                 "--fault", "latency:ms=1"], name="faulted")
    assert splice_calls(reg, plain, "plain") > 0  # the check can see splice at all
    assert splice_calls(reg, faulted, "faulted") == 0
