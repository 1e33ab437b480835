"""test_hostile: defects found by probing linesman as a hostile user would (connection core).

- A client that resets right after connecting, while linesman's upstream connect completes in
  the same turn, must be recorded at once as a reset (close.client "rst"), not held until the
  idle timeout and recorded as a silent client.
- A forwarding loop (an upstream that is linesman's own listener, directly or through another
  listener) must end at once as route/no_route with the warning forwarding_loop, and a loop in
  the configuration is a start-up error.
"""
import socket
import struct
import threading
import time

import lsm


def _rst_or_echo(port: int, n: int, rst: bool, errors: list) -> None:
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if rst:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                continue
            s.sendall(b"ping\n")
            got = b""
            while len(got) < 5:
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            s.close()
        except OSError as e:  # counted; the test fails on records, not on client noise
            errors.append(e)


def test_client_reset_right_after_connect_is_seen(reg):
    # Half the clients connect and reset at once, half echo: 5,000 connections in 4 threads.
    # Each reset client must get its record well before the idle timeout, as a reset.
    up = lsm.start_peer(reg, "echo")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "30s",
                            "--threads", "2"])
    per_thread, threads, errors = 1250, [], []
    for i in range(4):
        t = threading.Thread(target=_rst_or_echo, args=(lm.port, per_thread, i % 2 == 0, errors))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=120)
    total = per_thread * 4
    recs = lm.records(total, timeout=20)
    silent = [r for r in recs if r["close"]["client"] == "timeout"]
    assert not silent, f"{len(silent)} connections held to the idle timeout: {lsm.brief(silent[0])}"
    resets = [r for r in recs if r["close"]["client"] == "rst"]
    assert len(resets) >= total // 2 - len(errors), (len(resets), len(errors))
    for r in resets:
        assert r["stop"]["reason"] in ("client_reset", "client_gave_up"), lsm.brief(r)
        assert r["stop"]["by"] == "client", lsm.brief(r)
        assert r["duration_ms"] < 5000, lsm.brief(r)
