"""test_hostile_hello: "too large" counts handshake bytes in both `run` and
`inspect`, and a separate bound on the number of records (warning hello_many_records)."""
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request


import lsm

from hostile import get, kAdminRx, raw_request, rss_kib, start_admin  # noqa: F401


# ---- item 8: "too large" counts handshake bytes, and the records are bounded ------------------

def inspect_json(path):
    r = subprocess.run([lsm.linesman_bin(), "inspect", "--json", str(path)], capture_output=True,
                       text=True, timeout=30)
    return json.loads(r.stdout.splitlines()[0])


def run_hello(reg, hello):
    """run_hello: the record of one connection that sends `hello` through `run`, routed on its
    SNI, so that linesman must read the whole hello before it connects."""
    up = lsm.start_peer(reg, "close")
    lm = lsm.Linesman(reg, ["--route", f"app.example.test=127.0.0.1:{up.port}"])
    c = lm.connect()
    try:
        for i in range(0, len(hello), 4096):  # several reads, as a real client's segments arrive
            c.sendall(hello[i:i + 4096])
        lsm.recv_all(c, timeout=5)
    except OSError:
        pass  # linesman may close (even reset) once it has decided, before all is sent
    finally:
        c.close()
    return lm.record()


def test_hello_under_the_handshake_bound_in_many_records_is_complete(reg, tmp_path):
    """A 16,300-byte handshake in 60 records is 16,600 bytes on the wire: more than one record's
    worth of buffer, but within both bounds. run and inspect both call it complete."""
    hello = lsm.client_hello(pad_to=16300, record_size=272)
    assert len(hello) > 16389
    path = tmp_path / "hello.bin"
    path.write_bytes(hello)
    line = inspect_json(path)
    assert line["status"] == "complete", line
    rec = run_hello(reg, hello)
    assert rec["tls"]["complete"] is True, lsm.brief(rec)
    assert rec["tls"]["hello_bytes"] == 16300, lsm.brief(rec)
    assert rec["stop"]["reason"] != "hello_too_large", lsm.brief(rec)


def test_hello_in_one_byte_records_hits_the_record_bound_in_run_and_inspect(reg, tmp_path):
    """A 3,000-byte ClientHello in 1-byte records (18,000 bytes on the wire): both run and
    inspect stop at the record bound, and both name it with the warning hello_many_records."""
    hello = lsm.client_hello(pad_to=3000, record_size=1)
    path = tmp_path / "hello.bin"
    path.write_bytes(hello)
    line = inspect_json(path)
    rec = run_hello(reg, hello)
    assert line["status"] == "too_large", line
    assert "hello_many_records" in line.get("warnings", []), line
    lsm.assert_stop(rec, "inspect", "hello_too_large", "client")
    assert "hello_many_records" in rec.get("warnings", []), lsm.brief(rec)
