"""test_capture_tshark: tshark (Wireshark's dissectors, an independent reader) opens the pcapng
files linesman writes: checksums verify, the TLS SNI it dissects is the one sent, and the bytes it
reassembles with `follow,tcp,raw` are the bytes that crossed the wire, both directions.

The files come from `linesman replay --capture`, which records the replayed conversation with the
same recorder the proxy's `--capture DIR` uses (capture/pcapng_writer).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess

import lsm

kCases = lsm.kCorpus


def tshark(*args: str) -> str:
    exe = lsm.need("tshark")
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def follow_raw(path) -> tuple[bytes, bytes]:
    """follow_raw: tshark's reassembled TCP stream 0 as (client->server, server->client) bytes.
    In `follow,tcp,raw` output node-1 lines are indented with a tab."""
    out = tshark("-r", str(path), "-qz", "follow,tcp,raw,0")
    c2s, s2c = bytearray(), bytearray()
    body = out.split("Node 1:", 1)[1].split("\n", 1)[1]
    for line in body.splitlines():
        if line.startswith("====="):
            break
        if not line.strip():
            continue
        if line.startswith("\t"):
            s2c += bytes.fromhex(line.strip())
        else:
            c2s += bytes.fromhex(line.strip())
    return bytes(c2s), bytes(s2c)


def replay_capture(target_port: int, flight, path, *extra: str) -> dict:
    r = subprocess.run([lsm.linesman_bin(), "replay", str(flight), "--target",
                        f"127.0.0.1:{target_port}", "--capture", str(path), "--json", *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout, r.stderr
    v = json.loads(r.stdout)
    assert v.get("capture") == str(path), v
    return v


def check_checksums_and_flags(path) -> int:
    """Every packet's IPv4 and TCP checksum verifies and tshark's TCP analysis flags nothing
    (no lost segment, retransmission or out-of-order). Returns the packet count."""
    out = tshark("-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                 "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
                 "-e", "tcp.analysis.flags")
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert rows
    for ip_status, tcp_status, flags in rows:
        assert ip_status == "1", rows  # 1 = Good
        assert tcp_status == "1", rows
        assert flags == "", rows
    return len(rows)


def test_tls_capture_sni_and_stream_bytes(reg, tmp_path):
    backend = lsm.start_s_server(reg, version="tls1_3", cn="app.example.test")
    for name, sni in [("python_ssl_sni", "py.example.test"),
                      ("edge_split_2records_curl", "www.example.test")]:
        path = tmp_path / f"{name}.pcapng"
        v = replay_capture(backend.port, kCases / f"{name}.bin", path)
        assert v["stop"]["reason"] == "completed", v
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        got_sni = tshark("-r", str(path), "-Y", "tls.handshake.type==1", "-T", "fields",
                         "-e", "tls.handshake.extensions_server_name").split()
        assert got_sni == [sni]
        c2s, s2c = follow_raw(path)
        assert c2s == (kCases / f"{name}.bin").read_bytes()
        # The server direction: what linesman read from s_server, as many bytes as it reported,
        # starting with the ServerHello record.
        assert len(s2c) == v["upstream_first"]["bytes"] > 0
        assert s2c[:1] == b"\x16" and s2c[5:6] == b"\x02"
        version = tshark("-r", str(path), "-Y", "tls.handshake.type==2", "-T", "fields",
                         "-e", "tls.handshake.extensions.supported_version").split()
        assert version == ["0x0304"]
        check_checksums_and_flags(path)


def test_sni_rewrite_is_what_tshark_dissects(reg, tmp_path):
    backend = lsm.start_s_server(reg, version="tls1_3")
    path = tmp_path / "rewritten.pcapng"
    replay_capture(backend.port, kCases / "curl_https_default.bin", path, "--sni",
                   "other.example.test")
    got = tshark("-r", str(path), "-Y", "tls.handshake.type==1", "-T", "fields",
                 "-e", "tls.handshake.extensions_server_name", "-e", "tls.record.length",
                 "-e", "tls.handshake.length").split()
    # Name, record length and handshake length: tshark found the lengths consistent (517 - 5,
    # 512 - 4) with the padding extension absorbing the longer name.
    assert got == ["other.example.test", "512", "508"]
    assert "_ws.malformed" not in tshark("-r", str(path), "-T", "fields", "-e", "_ws.malformed",
                                         "-Y", "_ws.malformed")


def test_large_plaintext_both_directions_segmented(reg, tmp_path):
    """100 KB each way through the echo peer: many 16 KiB segments in both directions; tshark
    reassembles exactly the bytes (server bytes are the echo, i.e. a prefix of what was sent)."""
    peer = lsm.start_peer(reg, "echo")
    flight = tmp_path / "big.bin"
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + lsm.peer_payload(100_000)
    flight.write_bytes(data)
    path = tmp_path / "big.pcapng"
    v = replay_capture(peer.port, flight, path, "--chunks", "30000")
    assert v["sent"]["bytes"] == len(data)
    c2s, s2c = follow_raw(path)
    assert c2s == data
    assert 0 < len(s2c) == v["upstream_first"]["bytes"]
    assert data.startswith(s2c)
    n = check_checksums_and_flags(path)
    assert n >= 3 + len(data) // 16384  # handshake plus at least one packet per 16 KiB


def test_reset_and_fin_packets(reg, tmp_path):
    peer = lsm.start_peer(reg, "rst")
    path = tmp_path / "rst.pcapng"
    v = replay_capture(peer.port, kCases / "curl_https_default.bin", path)
    assert v["stop"]["reason"] == "upstream_reset"
    flags = tshark("-r", str(path), "-T", "fields", "-e", "tcp.flags.str").splitlines()
    assert "S" in flags[0]  # the synthesized SYN comes first
    assert any("R" in f for f in flags), flags
    check_checksums_and_flags(path)

    peer2 = lsm.start_peer(reg, "close")
    path2 = tmp_path / "fin.pcapng"
    v = replay_capture(peer2.port, kCases / "curl_https_default.bin", path2)
    assert v["stop"]["reason"] == "upstream_closed_silently"
    fins = tshark("-r", str(path2), "-Y", "tcp.flags.fin==1", "-T", "fields", "-e", "tcp.srcport")
    assert str(peer2.port) in fins.split()
    check_checksums_and_flags(path2)


def test_ipv6_capture(reg, tmp_path):
    """An IPv6 target: the capture carries IPv6 headers and tshark still follows the stream."""
    peer = lsm.start_peer(reg, "http400", "--host", "::1")
    path = tmp_path / "v6.pcapng"
    r = subprocess.run([lsm.linesman_bin(), "replay", str(kCases / "plain_curl_http11_get.bin"),
                        "--target", f"[::1]:{peer.port}", "--capture", str(path), "--json"],
                       capture_output=True, text=True, timeout=60)
    v = json.loads(r.stdout)
    assert r.returncode == 0, (r.stderr, v)
    assert v["upstream"]["ip"] == "::1"
    srcs = set(tshark("-r", str(path), "-T", "fields", "-e", "ipv6.src").split())
    assert srcs == {"::1"}
    c2s, s2c = follow_raw(path)
    assert c2s == (kCases / "plain_curl_http11_get.bin").read_bytes()
    assert s2c.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert len(s2c) == v["upstream_first"]["bytes"]
    out = tshark("-r", str(path), "-o", "tcp.check_checksum:TRUE", "-T", "fields",
                 "-e", "tcp.checksum.status")
    assert set(out.split()) == {"1"}
