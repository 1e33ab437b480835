"""hostile: helpers shared by the test_hostile_*.py files: linesman with its admin endpoint in
front of a silent upstream, raw and urllib requests to that endpoint, and a process's RSS."""
import socket
import time
import urllib.error
import urllib.request

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
