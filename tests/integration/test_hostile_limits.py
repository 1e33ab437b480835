"""test_hostile_limits: the connection limit derived from RLIMIT_NOFILE: raised
soft limit, a usable limit at a low ulimit, and no overshoot when several workers accept."""
import json
import resource
import socket
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


# ---- item 6: the default connection limit -----------------------------------------------------

def test_low_nofile_still_serves_many_clients_and_says_so(reg):
    """At RLIMIT_NOFILE 300 (soft = hard) the derived limit serves dozens of clients at once and
    the start-up log names the limit and warns that it is low."""
    up = lsm.start_peer(reg, "silent")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--threads", "1",
                            "--admin", "127.0.0.1:0"], preexec_fn=lsm.limit_nofile(300))
    m = lm.proc.wait_line(kAdminRx, 10, stream="err")
    admin = int(m.group(2))
    clients = [lm.connect() for _ in range(40)]
    try:
        for c in clients:
            c.sendall(b"hello\n")

        def open_count():
            status, _, body = get(admin, "/api/connections")
            n = len(json.loads(body)) if status == 200 else 0
            return n if n >= 40 else None
        try:
            lsm.wait_until(open_count, 5, "40 open connections")
        except BaseException:
            status, _, body = get(admin, "/api/connections")
            pytest.fail(f"only {len(json.loads(body))} of 40 clients served at nofile 300")
    finally:
        for c in clients:
            c.close()
    err = lm.stderr()
    assert "max connections" in err and "RLIMIT_NOFILE" in err, err


def test_soft_nofile_is_raised_to_hard_and_logged(reg):
    up = lsm.start_peer(reg, "silent")

    def limits():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"], preexec_fn=limits)
    soft = None
    for line in open(f"/proc/{lm.pid}/limits"):
        if line.startswith("Max open files"):
            soft = int(line.split()[3])
    assert soft == 4096
    lsm.wait_until(lambda: "max connections" in lm.stderr(), 5, "the limit in the start-up log")


def test_connection_limit_is_never_overshot(reg):
    """--max-connections 1 with four workers: never more than one upstream connection."""
    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(64)
    up.settimeout(0.2)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.getsockname()[1]}", "--threads", "4",
                            "--max-connections", "1"])
    time.sleep(0.3)  # every worker's accept loop is waiting
    clients = []
    accepted = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.connect((lm.host, lm.port))  # new source port: spread over the workers
            c.sendall(b"x")
            clients.append(c)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                accepted.append(up.accept()[0])
            except socket.timeout:
                pass
        assert len(accepted) == 1, f"{len(accepted)} upstream connections with a limit of 1"
    finally:
        for s in clients + accepted:
            s.close()
        up.close()
