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

from hostile import get, kAdminRx, raw_request, rss_kib, start_admin  # noqa: F401


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
