"""test_hostile_admin: issue 20 items 2, 5 and 7, the admin endpoint under hostile input: big
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

kAdminRx = r"linesman: admin on (\S+):(\d+)"


def start_admin(reg, *extra, preexec_fn=None):
    up = lsm.start_peer(reg, "silent")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--admin", "127.0.0.1:0",
                            *extra], preexec_fn=preexec_fn)
    m = lm.proc.wait_line(kAdminRx, 10, stream="err")
    lm.admin_port = int(m.group(2))
    return lm


def raw_request(port, data, timeout=5.0):
    """raw_request: send `data` to the admin port, return the status line's code (0 on no
    answer) and the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and b"\r\n\r\n" not in got:
            try:
                chunk = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
    if not got.startswith(b"HTTP/1.1 "):
        return 0, got
    return int(got[9:12]), got


def get(port, path, token=None, timeout=5.0):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


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
