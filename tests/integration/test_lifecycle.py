"""test_lifecycle: linesman as a process: signals (SIGTERM drain, SIGHUP log reopen), a listen
port that is already taken, bad flags, running out of file descriptors, the listener name.
"""
import json
import os
import re
import signal
import socket
import time

import pytest

import lsm
from lsm import assert_stop


def echo_once(lm: lsm.Linesman, msg: bytes = b"hello\n") -> None:
    s = lm.connect()
    s.sendall(msg)
    assert lsm.recv_some(s) == msg
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s, timeout=5) == b""
    s.close()


def test_sigterm_drains_open_connections(reg):
    """SIGTERM: the listener stops accepting, an open connection keeps working and finishes
    normally, then linesman exits 0 without waiting out the drain timeout."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--drain-timeout", "8s"])
    s = lm.connect()
    s.sendall(b"before\n")
    assert lsm.recv_some(s) == b"before\n"
    t0 = time.monotonic()
    lm.proc.signal(signal.SIGTERM)
    # New connections are refused once the listener is closed (bounded poll).
    def refused():
        try:
            c = socket.create_connection((lm.host, lm.port), timeout=1)
        except (ConnectionRefusedError, ConnectionResetError):
            return True  # refused, or reset while queued on the listener being closed
        c.close()
        return False
    lsm.wait_until(refused, 3, "the listener to close after SIGTERM")
    assert lm.proc.alive(), "linesman exited while a connection was still open"
    s.sendall(b"after SIGTERM\n")
    assert lsm.recv_some(s) == b"after SIGTERM\n"
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s, timeout=5) == b""
    s.close()
    rc = lm.proc.wait(5)
    assert rc == 0, f"exit code {rc}\n{lm.stderr()}"
    assert time.monotonic() - t0 < 6, "linesman waited for the drain timeout with nothing open"
    recs = [r for r in lm.records(1, timeout=2)]
    drained = [r for r in recs if r["bytes"]["from_client"] > 0]
    assert len(drained) == 1, recs
    assert_stop(drained[0], "stream", "completed", "client")


def test_sigterm_cuts_connections_after_drain_timeout(reg):
    """Connections still open when the drain timeout ends are cut and recorded as proxy_shutdown;
    the exit code is 0 and every open connection has its record (flushed on exit)."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--drain-timeout", "500ms"])
    socks = []
    for i in range(3):
        s = lm.connect()
        s.sendall(b"x%d\n" % i)
        assert lsm.recv_some(s) == b"x%d\n" % i
        socks.append(s)
    t0 = time.monotonic()
    lm.proc.signal(signal.SIGTERM)
    rc = lm.proc.wait(8)
    took = time.monotonic() - t0
    assert rc == 0, f"exit code {rc}\n{lm.stderr()}"
    assert 0.4 <= took < 4, f"exit {took:.2f}s after SIGTERM with a 500ms drain timeout"
    recs = lm.records(3, timeout=2)
    assert len(recs) == 3
    for rec in recs:
        assert_stop(rec, "stream", "proxy_shutdown", "proxy")
        assert rec["close"]["first"] == "proxy", lsm.brief(rec)
    for s in socks:
        try:
            assert lsm.recv_all(s, timeout=3) == b""
        except ConnectionResetError:
            pass
        s.close()


def test_sighup_reopens_access_log(reg):
    """logrotate: rename the file, SIGHUP, and new records go to a new file at the old path."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    echo_once(lm, b"one\n")
    lm.records(1)
    rotated = lm.log_path.with_suffix(".jsonl.1")
    os.rename(lm.log_path, rotated)
    lm.proc.signal(signal.SIGHUP)
    lsm.wait_until(lm.log_path.exists, 3, f"{lm.log_path} to be created again after SIGHUP")
    assert lm.proc.alive(), "SIGHUP must not stop linesman"
    echo_once(lm, b"two\n")
    echo_once(lm, b"three\n")
    recs = lm.records(2, timeout=5)
    assert [r["bytes"]["from_client"] for r in recs] == [4, 6]
    old = [json.loads(line) for line in rotated.read_text().splitlines() if line.strip()]
    assert [r["bytes"]["from_client"] for r in old] == [4], "the rotated file got new records"
    assert lm.stop() == 0


def holder_message_ok(stderr: str, addr: str, names: tuple, pids: set) -> bool:
    return (addr in stderr and any(n in stderr for n in names) and
            any(re.search(rf"\b{p}\b", stderr) for p in pids))


def test_listen_port_taken_by_python(reg):
    """The listen address is taken: exit 1, and the message names the address and the holder
    (program and pid, found through /proc like `ss -tlnp`)."""
    holder = lsm.start_peer(reg, "echo")
    rc, out, err = lsm.run_linesman(["run", "--listen", f"127.0.0.1:{holder.port}",
                                     "--upstream", "127.0.0.1:9", "--access-log", "-"])
    assert rc == 1, f"exit code {rc}: {err}"
    addr = f"127.0.0.1:{holder.port}"
    assert holder_message_ok(err, addr, ("python3", "python"), {holder.pid}), err
    assert out == "", "no access-log output from a run that never started"


def test_listen_port_taken_by_nginx(reg):
    """The same with nginx holding the port (master and worker both hold the socket)."""
    ng = lsm.start_nginx(reg, {})
    pids = {ng.pid} | {int(p) for p in os.popen(f"pgrep -P {ng.pid}").read().split()}
    rc, _, err = lsm.run_linesman(["run", "--listen", f"127.0.0.1:{ng.port}",
                                   "--upstream", "127.0.0.1:9", "--access-log", "-"])
    assert rc == 1, f"exit code {rc}: {err}"
    assert holder_message_ok(err, f"127.0.0.1:{ng.port}", ("nginx",), pids), err


@pytest.mark.parametrize("args,flag", [
    (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--peek-timeout", "5 parsecs"],
     "--peek-timeout"),
    (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--idle-timeout", "-1s"],
     "--idle-timeout"),
    (["--listen", "not-an-address", "--upstream", "127.0.0.1:9"], "--listen"),
    (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1"], "--upstream"),
    (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--route", "no-equals-sign"],
     "--route"),
    (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--threads", "many"], "--threads"),
    (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--frobnicate"], "--frobnicate"),
], ids=["peek-timeout", "idle-timeout", "listen", "upstream-no-port", "route", "threads",
        "unknown-flag"])
def test_bad_flags_exit_2_naming_the_flag(args, flag):
    rc, out, err = lsm.run_linesman(["run", *args, "--access-log", "-"], timeout=10)
    assert rc == 2, f"exit code {rc} for {args}: {err}"
    assert flag in err, f"message does not name {flag}: {err!r}"


@pytest.mark.skipif(lsm.kSanitized, reason="out of descriptors, UBSan's vptr check cannot open "
                    "the pipe it probes memory with and reports every virtual call")
def test_emfile_backs_off_without_spinning(reg):
    """With RLIMIT_NOFILE 64 and 120 clients, accept runs out of descriptors: linesman keeps
    running, does not spin the CPU (utime+stime over 2 s stays low), logs EMFILE at most about
    once a second, and serves again once the clients are gone."""
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--threads", "1",
                            "--max-connections", "100000"], preexec_fn=lsm.limit_nofile(64))
    clients = []
    for _ in range(120):
        try:
            clients.append(socket.create_connection((lm.host, lm.port), timeout=2))
        except OSError:
            break  # the backlog is full: enough pressure
    assert len(clients) >= 64, f"only {len(clients)} client connections"
    time.sleep(0.5)
    assert lm.proc.alive(), f"linesman died under EMFILE:\n{lm.stderr()}"
    # The pressure is real: its descriptor table is (nearly) full, so accept() gets EMFILE.
    nfds = len(os.listdir(f"/proc/{lm.pid}/fd"))
    assert nfds >= 60, f"only {nfds} of 64 descriptors in use: EMFILE was not reached"
    cpu0, t0 = lsm.cpu_seconds(lm.pid), time.monotonic()
    time.sleep(2.0)
    cpu = lsm.cpu_seconds(lm.pid) - cpu0
    wall = time.monotonic() - t0
    assert cpu < 0.25 * wall, f"linesman used {cpu:.2f}s CPU in {wall:.2f}s while out of fds"
    assert lm.proc.alive()
    emfile_lines = [line for line in lm.proc.err_lines
                    if "EMFILE" in line or "Too many open files" in line]
    assert len(emfile_lines) <= 6, f"{len(emfile_lines)} EMFILE log lines in ~3 s"
    print(f"emfile: {len(clients)} clients, {nfds} fds, {cpu:.3f}s CPU in {wall:.2f}s, "
          f"{len(emfile_lines)} EMFILE log lines")
    for c in clients:
        c.close()
    # Every accepted client ends with a record; then a new connection is served.
    def served():
        try:
            echo_once(lm, b"again\n")
            return True
        except (OSError, AssertionError):
            return False
    lsm.wait_until(served, 10, "linesman to serve again after the clients closed", step=0.2)
    assert lm.stop() == 0


def test_listener_name_and_stdout_log(reg):
    """--listener-name appears in the listening line and the records; --access-log - writes the
    records to stdout (operator messages stay on stderr)."""
    up = lsm.start_peer(reg, "echo")
    argv = [lsm.linesman_bin(), "run", "--listen", "127.0.0.1:0", "--upstream",
            f"127.0.0.1:{up.port}", "--access-log", "-", "--listener-name", "edge"]
    p = reg.add(lsm.Proc("linesman-stdout", argv, reg.tmp, stdout_pipe=True, stderr_pipe=True))
    m = p.wait_line(lsm.kListenRx, 10, stream="err")
    assert m.group(3) == "edge"
    s = lsm.connect(int(m.group(2)))
    s.sendall(b"hi\n")
    assert lsm.recv_some(s) == b"hi\n"
    s.shutdown(socket.SHUT_WR)
    lsm.recv_all(s)
    s.close()
    line = p.wait_line(r"^\{", 10, stream="out").string
    rec = lsm.check_record(json.loads(line))
    assert rec["listener"] == "edge"
    assert p.stop() == 0


def test_yaml_config_two_listeners_with_own_logs_and_timeouts(reg):
    """--config: two named listeners from YAML, each with its own access log; per-listener
    timeouts override `defaults`; a named SNI route shows up as the record's route."""
    echo = lsm.start_peer(reg, "echo")
    silent = lsm.start_peer(reg, "silent")
    log_a, log_b = reg.tmp / "a.jsonl", reg.tmp / "b.jsonl"
    cfg = reg.tmp / "linesman.yaml"
    cfg.write_text(f"""
defaults:
  timeouts:
    idle: 30s
listeners:
  - name: web
    listen: 127.0.0.1:0
    access_log: {log_a}
    routes:
      - name: app
        sni: app.example.test
        upstream: 127.0.0.1:{echo.port}
  - name: quiet
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:{silent.port}
    access_log: {log_b}
    timeouts:
      idle: 700ms
""")
    p = reg.add(lsm.Proc("linesman-yaml", [lsm.linesman_bin(), "run", "--config", str(cfg)],
                         reg.tmp, stderr_pipe=True))
    lsm.wait_until(lambda: len([l for l in p.err_lines if re.search(lsm.kListenRx, l)]) >= 2
                   or not p.alive(), 10, "two listening lines")
    ports = {re.search(lsm.kListenRx, l).group(3): int(re.search(lsm.kListenRx, l).group(2))
             for l in p.err_lines if re.search(lsm.kListenRx, l)}
    assert set(ports) == {"web", "quiet"}, p.err_lines
    s = lsm.connect(ports["web"])
    s.sendall(lsm.client_hello("app.example.test"))
    assert lsm.recv_some(s)[:1] == b"\x16"  # the echoed hello
    s.close()
    q = lsm.connect(ports["quiet"])
    q.sendall(b"hello?\n")
    t0 = time.monotonic()
    assert lsm.recv_all(q, timeout=5) == b""
    assert time.monotonic() - t0 < 3, "the listener's own 700ms idle timeout did not apply"
    q.close()

    def recs(path):
        return [lsm.check_record(json.loads(l)) for l in path.read_text().splitlines()
                if l.strip()] if path.exists() else []
    lsm.wait_until(lambda: recs(log_a) and recs(log_b), 5, "a record in each listener's log")
    a, b = recs(log_a)[0], recs(log_b)[0]
    assert a["listener"] == "web" and a["route"] == "app", lsm.brief(a)
    assert b["listener"] == "quiet", lsm.brief(b)
    assert_stop(b, "first_reply", "upstream_silent", "upstream")
    assert p.stop() == 0


def test_yaml_config_unknown_key_names_file_and_key(reg):
    cfg = reg.tmp / "bad.yaml"
    cfg.write_text("listeners:\n  - listen: 127.0.0.1:0\n    upstream: 127.0.0.1:9\n"
                   "    idle_timeout: 5s\n")
    rc, _, err = lsm.run_linesman(["run", "--config", str(cfg)])
    assert rc == 2, f"exit code {rc}: {err}"
    assert "bad.yaml" in err and "idle_timeout" in err, err
