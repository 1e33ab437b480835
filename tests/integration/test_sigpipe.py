"""test_sigpipe: a peer that vanishes mid-transfer must end one connection, never the proxy.

splice(2) toward a socket whose peer reset raises SIGPIPE (there is no MSG_NOSIGNAL for splice);
linesman must take the EPIPE/ECONNRESET as that side's end and keep serving. Found by the
benchmark harness: linesman died of signal 13 when iperf3 tore its connections down. The two
transfer tests are smoke tests (on loopback they did not reproduce the crash with the old binary);
the disposition check is the one that failed before the fix.
"""
import socket
import threading

import lsm


def _blast(port: int, n_bytes: int) -> None:
    """_blast: send n_bytes toward an upstream that resets after its first read; errors expected."""
    s = lsm.connect(port)
    chunk = b"x" * 65536
    sent = 0
    try:
        while sent < n_bytes:
            sent += s.send(chunk)
    except OSError:
        pass
    finally:
        s.close()


def test_upstream_reset_mid_upload_does_not_kill_linesman(reg):
    rst = lsm.start_peer(reg, "rst")
    echo = lsm.start_peer(reg, "echo")
    for extra in ([], ["--no-splice"]):
        ls = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{rst.port}", "--idle-timeout", "5s",
                                *extra], name=f"linesman{len(extra)}")
        threads = [threading.Thread(target=_blast, args=(ls.port, 8 << 20)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        recs = ls.records(8, timeout=15)
        assert ls.proc.alive(), f"linesman died: exit {ls.proc.popen.returncode}\n{ls.stderr()}"
        assert all(r["stop"]["by"] in ("upstream", "client") for r in recs), recs
        assert ls.stop() == 0
    # And the proxy still forwards afterwards (a fresh one in front of an echo server).
    ls = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}"], name="linesman-echo")
    s = ls.connect()
    s.sendall(b"ping")
    s.shutdown(socket.SHUT_WR)
    assert lsm.recv_all(s) == b"ping"
    s.close()


def test_client_reset_while_upstream_streams_does_not_kill_linesman(reg):
    # The upstream answers a 100 kB reply; the client resets after the first bytes, while
    # linesman is splicing toward it.
    big = "A" * 100_000
    up = lsm.start_peer(reg, "reply", "--banner", big, "--hold", "1")
    ls = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "5s"])
    for _ in range(8):
        s = ls.connect()
        s.sendall(b"go")
        s.recv(1024)
        lsm.close_rst(s)
    ls.records(8, timeout=15)
    assert ls.proc.alive(), f"linesman died: exit {ls.proc.popen.returncode}\n{ls.stderr()}"
    assert ls.stop() == 0


def test_linesman_ignores_sigpipe(reg):
    # The loopback cases above do not always reach a second write after the reset, so check the
    # disposition itself: SigIgn in /proc/PID/status must include SIGPIPE (signal 13, bit 12).
    # subprocess restores SIGPIPE to its default in the child, so this is linesman's own doing.
    up = lsm.start_peer(reg, "echo")
    ls = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    status = open(f"/proc/{ls.pid}/status").read()
    sig_ign = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("SigIgn:")), 16)
    assert sig_ign & (1 << 12), f"SIGPIPE is not ignored (SigIgn {sig_ign:#x})"
