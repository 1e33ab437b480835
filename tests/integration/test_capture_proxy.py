"""test_capture_proxy: `linesman run --capture DIR` (docs/capture-replay.md) read back by tshark and replayed.

Real peers only: openssl s_server, peer.py servers (echo, close, http400). tshark is the
independent reader of the capture files; `linesman replay` sends a capture's first flight again
and must reach the original record's stop reason. Also `linesman inspect` on the corpus pcaps.
"""
from __future__ import annotations

import json
import os
import pathlib
import socket
import stat
import subprocess
import tempfile
import threading

import pytest

import lsm
from test_capture_tshark import follow_raw, tshark

kKiB = 1024


def capture_file(cap_dir: pathlib.Path, rec: dict) -> pathlib.Path:
    """capture_file: the file the record names (relative to the capture directory)."""
    assert "capture" in rec, f"record has no capture field: {lsm.brief(rec)}"
    name = rec["capture"]
    assert "/" not in name and name.endswith(".pcapng"), name
    path = cap_dir / name
    assert path.is_file(), f"{path} missing; dir holds {sorted(os.listdir(cap_dir))}"
    return path


def echo_through(lm: lsm.Linesman, data: bytes) -> bytes:
    """echo_through: send `data` through linesman to an echo server (a thread writes, then
    half-closes) while this thread reads everything that comes back until EOF."""
    with lm.connect(timeout=10) as s:
        s.settimeout(30)

        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        got = lsm.recv_all(s, timeout=30)
        t.join(30)
        assert not t.is_alive(), "sender thread still blocked"
        return got


def replay_json(path: pathlib.Path, port: int) -> dict:
    r = subprocess.run([lsm.linesman_bin(), "replay", str(path), "--target", f"127.0.0.1:{port}",
                        "--json", "--timeout", "3s"], capture_output=True, text=True, timeout=60)
    assert r.stdout, f"replay printed nothing (rc {r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def test_tls_capture_sni_bytes_mode(reg, tmp_path):
    """s_client -> linesman --capture -> s_server: tshark's SNI is the record's, the streams it
    reassembles are exactly as long as what was forwarded, the file is 0600, and replaying the
    capture gets a ServerHello again (stream/completed, like the original)."""
    sni = "cap.example.test"
    backend = lsm.start_s_server(reg, version="tls1_3", cn=sni)
    cap = tmp_path / "cap"
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}", "--capture", str(cap)])
    r = lsm.s_client(lm.port, sni)
    assert r.returncode == 0 and b"HTTP/1.0 200 ok" in r.stdout, r.stdout[-500:]
    rec = lm.record()
    assert rec["outcome"] == "ok" and rec["stop"]["phase"] == "stream", lsm.brief(rec)
    path = capture_file(cap, rec)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cap).st_mode) == 0o700
    got_sni = tshark("-r", str(path), "-Y", "tls.handshake.type==1", "-T", "fields",
                     "-e", "tls.handshake.extensions_server_name").split()
    assert got_sni == [rec["tls"]["sni"]] == [sni]
    c2s, s2c = follow_raw(path)
    # Far below 64 KiB each way: the whole conversation is in the file.
    assert len(c2s) == rec["bytes"]["to_upstream"] == rec["bytes"]["from_client"]
    assert len(s2c) == rec["bytes"]["to_client"] == rec["bytes"]["from_upstream"]
    assert c2s[:1] == b"\x16" and s2c[:1] == b"\x16"
    v = replay_json(path, backend.port)
    assert v["stop"]["phase"] == "stream" and v["outcome"] == "ok", v
    assert v["server_tls"]["version"] == rec["server_tls"]["version"] == "1.3", v
    assert v["upstream_first"]["protocol"] == rec["upstream_first"]["protocol"] == "tls"


@pytest.mark.parametrize("no_splice", [False, True])
def test_capture_bytes_all_keeps_whole_stream(reg, tmp_path, no_splice):
    """--capture-bytes all: 300 KiB each way through an echo server, every byte in the file in
    order (the stream phase copies while the recorder wants bytes)."""
    echo = lsm.start_peer(reg, "echo")
    cap = tmp_path / "cap"
    args = ["--upstream", f"127.0.0.1:{echo.port}", "--capture", str(cap),
            "--capture-bytes", "all"]
    if no_splice:
        args.append("--no-splice")
    lm = lsm.Linesman(reg, args)
    data = lsm.peer_payload(300 * kKiB)
    assert echo_through(lm, data) == data
    rec = lm.record()
    assert rec["stop"]["reason"] == "completed", lsm.brief(rec)
    path = capture_file(cap, rec)
    c2s, s2c = follow_raw(path)
    assert len(c2s) == len(data) and c2s == data
    assert len(s2c) == len(data) and s2c == data
    # FINs in both directions, from the right ends.
    flags = tshark("-r", str(path), "-Y", "tcp.flags.fin==1", "-T", "fields", "-e", "tcp.srcport")
    ports = flags.split()
    assert sorted(ports) == sorted([str(rec["client"]["port"]), str(rec["local"]["port"])]), ports
    # Each FIN right after the last byte (no phantom gap: a stream that ended while still being
    # recorded counts nothing as skipped).
    for port in (rec["client"]["port"], rec["local"]["port"]):
        fin_seq = tshark("-r", str(path), "-Y", f"tcp.flags.fin==1 && tcp.srcport=={port}",
                         "-T", "fields", "-e", "tcp.seq").split()
        assert fin_seq == [str(1 + len(data))], (port, fin_seq)


def test_capture_default_bound_first_64k(reg, tmp_path):
    """The default bound: exactly the first 64 KiB of each direction, though 200 KiB moved (the
    rest spliced and only counted, so the FIN's sequence number is honest)."""
    echo = lsm.start_peer(reg, "echo")
    cap = tmp_path / "cap"
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--capture", str(cap)])
    data = lsm.peer_payload(200 * kKiB)
    assert echo_through(lm, data) == data
    rec = lm.record()
    assert rec["bytes"]["from_client"] == len(data) == rec["bytes"]["from_upstream"]
    path = capture_file(cap, rec)
    lens = tshark("-r", str(path), "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.len")
    per_port: dict[str, int] = {}
    for line in lens.splitlines():
        port, n = line.split("\t")
        per_port[port] = per_port.get(port, 0) + int(n)
    assert per_port == {str(rec["client"]["port"]): 64 * kKiB,
                        str(rec["local"]["port"]): 64 * kKiB}, per_port
    c2s, s2c = follow_raw(path)
    assert c2s[:64 * kKiB] == data[:64 * kKiB] and s2c[:64 * kKiB] == data[:64 * kKiB]
    # The FIN sits where the whole stream ended: sequence number 1 + 200 KiB (relative).
    fin_seq = tshark("-r", str(path), "-Y", f"tcp.flags.fin==1 && tcp.srcport=={rec['client']['port']}",
                     "-T", "fields", "-e", "tcp.seq").split()
    assert fin_seq == [str(1 + len(data))], fin_seq


def test_capture_bytes_flag_small_bound(reg, tmp_path):
    """--capture-bytes 1000: the first 1000 bytes of each direction."""
    echo = lsm.start_peer(reg, "echo")
    cap = tmp_path / "cap"
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--capture", str(cap),
                            "--capture-bytes", "1000"])
    data = lsm.peer_payload(5000)
    assert echo_through(lm, data) == data
    path = capture_file(cap, lm.record())
    total = sum(int(x) for x in tshark("-r", str(path), "-T", "fields", "-e", "tcp.len").split())
    assert total == 2000
    c2s, s2c = follow_raw(path)
    assert c2s[:1000] == data[:1000] and s2c[:1000] == data[:1000]


@pytest.mark.parametrize("mode,extra,reason", [
    ("close", [], "upstream_closed_silently"),
    ("http400", [], "upstream_not_tls"),
    ("rst", [], "upstream_reset"),
])
def test_replay_reproduces_stop_reason(reg, tmp_path, mode, extra, reason):
    """A capture linesman made, replayed to the same kind of upstream, gets the same stop."""
    peer = lsm.start_peer(reg, mode, *extra)
    cap = tmp_path / "cap"
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{peer.port}", "--capture", str(cap)])
    with lm.connect() as s:
        s.sendall(lsm.client_hello(sni="replay.example.test"))
        lsm.recv_all(s, timeout=10)
    rec = lm.record()
    assert rec["stop"]["reason"] == reason, lsm.brief(rec)
    path = capture_file(cap, rec)
    v = replay_json(path, peer.port)
    assert (v["stop"]["phase"], v["stop"]["reason"]) == (rec["stop"]["phase"], reason), v
    # What was replayed is the client's ClientHello, whole, with its SNI.
    assert v["sent"]["protocol"] == "tls" and v["sent"]["sni"] == "replay.example.test", v
    assert v["sent"]["bytes"] == rec["bytes"]["from_client"], v
    # How the upstream ended reached the client, and the capture shows it the same way.
    ends = tshark("-r", str(path), "-Y", f"tcp.srcport=={rec['local']['port']}", "-T", "fields",
                  "-e", "tcp.flags.fin", "-e", "tcp.flags.reset").split("\n")
    flags = {tuple(x.split("\t")) for x in ends if x.strip()}
    if reason == "upstream_reset":
        assert any(f[1] in ("1", "True") for f in flags), flags
    else:
        assert any(f[0] in ("1", "True") for f in flags), flags


def test_capture_yaml_per_listener(reg, tmp_path):
    """YAML `capture: {dir, bytes}` on one listener; the other listener captures nothing."""
    echo = lsm.start_peer(reg, "echo")
    cap = tmp_path / "yamlcap"
    p1, p2 = lsm.free_port(), lsm.free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""listeners:
  - name: captured
    listen: 127.0.0.1:{p1}
    upstream: 127.0.0.1:{echo.port}
    access_log: {tmp_path / 'a.jsonl'}
    capture: {{dir: {cap}, bytes: 100, max_total_bytes: 10M}}
  - name: plain
    listen: 127.0.0.1:{p2}
    upstream: 127.0.0.1:{echo.port}
    access_log: {tmp_path / 'b.jsonl'}
""")
    proc = reg.add(lsm.Proc("linesman-yaml", [lsm.linesman_bin(), "run", "--config", str(cfg)],
                            reg.tmp, stderr_pipe=True))
    lsm.wait_until(lambda: {p1, p2} <= lsm.listening_ports(proc.pid), 10, "both listeners")
    data = lsm.peer_payload(500)
    for port in (p1, p2):
        with lsm.connect(port) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            assert lsm.recv_all(s) == data
    recs = {}
    for name in ("a", "b"):
        log = tmp_path / f"{name}.jsonl"
        lsm.wait_until(lambda: log.exists() and log.read_text().endswith("\n"), 10, str(log))
        recs[name] = lsm.check_record(json.loads(log.read_text().splitlines()[0]))
    assert "capture" not in recs["b"]
    path = capture_file(cap, recs["a"])
    c2s, s2c = follow_raw(path)
    assert c2s == data[:100] and s2c == data[:100]


def test_capture_dir_unusable_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, out, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream",
                                     "127.0.0.1:9", "--capture", str(blocker / "sub")])
    assert rc == 2 and str(blocker / "sub") in err, (rc, err)
    rc, out, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream",
                                     "127.0.0.1:9", "--capture", str(tmp_path),
                                     "--capture-bytes", "lots"])
    assert rc == 2 and "--capture-bytes" in err, (rc, err)


@pytest.fixture
def tiny_fs(tmp_path):
    """tiny_fs: a 256 KiB tmpfs (needs root and mount(2)); unmounted in teardown."""
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="lsm-tinyfs-", dir=tmp_path))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the full-disk test: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=10)


def test_full_disk_stops_capture_not_forwarding(reg, tiny_fs):
    """A full disk: one message, capture stops, every byte is still forwarded."""
    echo = lsm.start_peer(reg, "echo")
    cap = tiny_fs / "cap"
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{echo.port}", "--capture", str(cap),
                            "--capture-bytes", "all"])
    data = lsm.peer_payload(1024 * kKiB)
    for _ in range(3):
        assert echo_through(lm, data) == data
    recs = lm.records(3)
    assert all(r["bytes"]["to_client"] == len(data) for r in recs)
    lsm.wait_until(lambda: "capture" in lm.stderr().lower(), 5, "the capture-stopped message")
    stops = [line for line in lm.proc.err_lines if "forwarding continues" in line]
    assert len(stops) == 1, lm.stderr()
    assert str(cap) in stops[0], stops[0]
    # Later connections are not captured at all.
    assert "capture" not in recs[-1], lsm.brief(recs[-1])


def test_inspect_reads_corpus_pcaps():
    """`linesman inspect` on a corpus pcap says what it says on the matching .bin (SNI, JA4)."""
    pcaps = sorted((lsm.kData / "corpus" / "pcap").glob("*.pcap"))
    assert len(pcaps) >= 10
    compared = 0
    for pcap in pcaps:
        stem = pcap.name.removesuffix(".pcap").removesuffix(".synthetic")
        binf = lsm.kCorpus / f"{stem}.bin"
        if not binf.exists():
            continue
        out = subprocess.run([lsm.linesman_bin(), "inspect", "--json", str(pcap), str(binf)],
                             capture_output=True, text=True, timeout=30)
        lines = [json.loads(x) for x in out.stdout.splitlines()]
        assert len(lines) == 2, (pcap, out.stderr)
        from_pcap, from_bin = lines
        assert from_pcap["capture"]["format"] == "pcap", from_pcap
        if from_bin["status"] != "complete":
            continue
        assert from_pcap["status"] == "complete", (pcap.name, from_pcap)
        for key in ("sni", "ja4", "ja3"):
            assert from_pcap["tls"].get(key) == from_bin["tls"].get(key), (pcap.name, key)
        compared += 1
    assert compared >= 10, compared
