"""test_hostile_admin: the admin endpoint under hostile input: big
bodies, a missing token, slowloris clients, a port shared through SO_REUSEPORT, non-UTF-8 queries
and names. Every process is started through the per-test registry and stopped by PID."""
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import lsm

from hostile import get, kAdminRx, raw_request, rss_kib, start_admin  # noqa: F401


# ---- item 2: the admin port buffers request bodies --------------------------------------------

def test_admin_big_body_is_refused_without_buffering(reg):
    """POST /healthz announcing 512 MiB: 413 at once, and RSS does not follow the body."""
    lm = start_admin(reg)
    rss0 = rss_kib(lm.pid)
    with socket.create_connection(("127.0.0.1", lm.admin_port), timeout=5) as s:
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 536870912\r\n\r\n")
        chunk = b"x" * 65536
        sent = 0
        answer = b""
        s.settimeout(0.05)
        deadline = time.monotonic() + 4
        # Stream up to 64 MiB while watching for the answer (bounded in bytes and time).
        while sent < (64 << 20) and time.monotonic() < deadline:
            try:
                s.sendall(chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            try:
                answer += s.recv(4096)
            except (socket.timeout, BlockingIOError):
                pass
            except ConnectionResetError:
                break
            if b"\r\n\r\n" in answer:
                break
        rss1 = rss_kib(lm.pid)
    assert answer.startswith(b"HTTP/1.1 413"), f"answer {answer[:80]!r} after {sent} bytes"
    assert rss1 - rss0 < 16 * 1024, f"RSS grew {rss0} -> {rss1} KiB while the body streamed"


def test_admin_token_is_checked_before_the_body(reg):
    """With a token, a request without it gets 401 before any body byte is read; /healthz
    answers GET and HEAD only."""
    lm = start_admin(reg, "--admin-token", "s3cret")
    code, _ = raw_request(lm.admin_port, b"POST /api/connections HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 536870912\r\n\r\n")
    assert code == 401
    code, _ = raw_request(lm.admin_port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n")
    assert code == 401
    code, _ = raw_request(lm.admin_port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert code == 200
    code, _ = raw_request(lm.admin_port, b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 4\r\n\r\nabcd")
    assert code in (405, 413)
    code, _ = raw_request(lm.admin_port, b"GET /healthz?" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
    assert code in (0, 400, 414), code
    assert get(lm.admin_port, "/healthz")[0] == 200
    assert get(lm.admin_port, "/metrics", token="s3cret")[0] == 200


def test_admin_slowloris_does_not_starve_healthz(reg):
    """Ten clients that trickle a header byte every 200 ms: /healthz still answers quickly."""
    lm = start_admin(reg)
    stop = threading.Event()
    socks = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", lm.admin_port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        socks.append(s)

    def trickle():
        for _ in range(50):  # at most 10 s
            if stop.wait(0.2):
                return
            for s in socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        status, _, _ = get(lm.admin_port, "/healthz", timeout=3)
        took = time.monotonic() - t0
    except OSError as e:
        status, took = f"error {e}", time.monotonic() - t0
    finally:
        stop.set()
        t.join(5)
        for s in socks:
            s.close()
    assert status == 200 and took < 2, f"/healthz: {status} after {took:.2f}s"


# ---- item 5: --admin shares a port through SO_REUSEPORT ---------------------------------------

def test_admin_port_taken_by_reuseport_socket_exits_1_naming_holder(reg):
    """A socket holding the port with SO_REUSEPORT (as another linesman's listener does): --admin
    on the same port must not share it."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    port = holder.getsockname()[1]
    try:
        up = lsm.start_peer(reg, "silent")
        try:
            rc, _, err = lsm.run_linesman(
                ["run", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{up.port}",
                 "--access-log", "-", "--admin", f"127.0.0.1:{port}"], timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("linesman kept running on an admin port another socket holds")
        assert rc == 1, err
        assert f"127.0.0.1:{port}" in err and "--admin" in err, err
        assert "python" in err, f"the holder is not named: {err}"
    finally:
        holder.close()


# ---- item 7: non-UTF-8 input --------------------------------------------------------------------

def test_non_utf8_query_is_400_without_exception_text(reg):
    lm = start_admin(reg)
    for q in ("older_than=%ff", "sni=%ff%fe", "phase=%ff", "older_than=5%ffs"):
        status, headers, body = get(lm.admin_port, "/api/connections?" + q)
        assert status in (200, 400), (q, status, body)
        assert "EXCEPTION_WHAT" not in headers, (q, dict(headers))
        json.loads(body)  # valid JSON (bytes escaped)
    assert get(lm.admin_port, "/api/connections?older_than=%ff")[0] == 400


def test_non_utf8_listener_name_is_rejected_at_start(reg):
    up = lsm.start_peer(reg, "silent")
    argv = [lsm.linesman_bin().encode(), b"run", b"--listen", b"127.0.0.1:0", b"--upstream",
            f"127.0.0.1:{up.port}".encode(), b"--access-log", b"-", b"--listener-name",
            b"edge\xff", b"--admin", b"127.0.0.1:0"]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("linesman started with a non-UTF-8 listener name")
    assert r.returncode == 2, r.stderr  # a config error, like every bad flag
    assert b"--listener-name" in r.stderr and b"UTF-8" in r.stderr, r.stderr
