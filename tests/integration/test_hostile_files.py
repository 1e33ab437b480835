"""test_hostile_files: files that are not files (--config and --access-log given a
directory, a FIFO or /dev/zero), the access log's mode and a full disk (/dev/full)."""
import os
import resource
import socket
import subprocess
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


# ---- also: files that are not files, the access log's mode and /dev/full ----------------------

@pytest.mark.parametrize("kind", ["fifo", "dir", "zero"])
@pytest.mark.parametrize("flag", ["--config", "--access-log"])
def test_config_and_log_must_be_regular_files(reg, tmp_path, kind, flag):
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif kind == "dir":
        path = tmp_path / "adir"
        path.mkdir()
    else:
        if flag == "--access-log":
            pytest.skip("/dev/zero accepts writes; the /dev/full test covers a device sink")
        path = "/dev/zero"
    if flag == "--config":
        args = ["run", "--config", str(path)]
    else:
        args = ["run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
                "--access-log", str(path)]

    def bounded():  # /dev/zero read whole would take all memory: cap it for the old behaviour
        if not lsm.kSanitized:  # (ASan reserves terabytes of address space for its shadow)
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    try:
        r = subprocess.run([lsm.linesman_bin(), *args], capture_output=True, text=True,
                           timeout=5, preexec_fn=bounded)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{flag} {kind}: linesman hung")
    assert r.returncode == 2, (r.returncode, r.stderr)  # a config error, like a bad flag
    word = "cannot read" if flag == "--config" else "cannot write"
    assert word in r.stderr and flag in r.stderr and str(path) in r.stderr, r.stderr


def test_access_log_is_created_0640(reg, tmp_path):
    up = lsm.start_peer(reg, "echo")
    log = tmp_path / "access.jsonl"

    def umask022():
        os.umask(0o022)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"], access_log=log,
                      preexec_fn=umask022)
    assert lm.proc.alive()
    assert oct(os.stat(log).st_mode & 0o777) == oct(0o640)


def test_dev_full_warns_once_and_counts(reg):
    """Records lost to ENOSPC are counted in linesman_records_dropped_total; the warning comes
    at most once a minute, not once per batch."""
    up = lsm.start_peer(reg, "close")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--admin", "127.0.0.1:0"],
                      access_log="/dev/full")
    admin = int(lm.proc.wait_line(kAdminRx, 10, stream="err").group(2))
    for _ in range(5):
        c = lm.connect()
        c.sendall(b"x")
        lsm.recv_all(c, timeout=5)
        c.close()
        time.sleep(0.15)  # each record in its own batch

    def dropped():
        _, _, body = get(admin, "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("linesman_records_dropped_total "):
                v = float(line.split()[1])
                return v if v >= 5 else None
        return None
    lsm.wait_until(dropped, 5, "linesman_records_dropped_total >= 5")
    lines = [x for x in lm.proc.err_lines if "/dev/full" in x]
    assert len(lines) <= 1, "\n".join(lines)
