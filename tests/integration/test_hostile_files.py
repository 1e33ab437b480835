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

from hostile import get, kAdminRx, raw_request, rss_kib, start_admin  # noqa: F401


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
            if line.startswith('linesman_records_dropped_total{reason="write_error"} '):
                v = float(line.split()[1])
                return v if v >= 5 else None
        return None
    lsm.wait_until(dropped, 5, "linesman_records_dropped_total >= 5")
    lines = [x for x in lm.proc.err_lines if "/dev/full" in x]
    assert len(lines) <= 1, "\n".join(lines)
