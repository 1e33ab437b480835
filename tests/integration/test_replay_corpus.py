"""test_replay_corpus: `linesman replay` against real peers.

- openssl s_server stands in for a TLS backend (what Traefik passthrough routes to): every corpus
  first flight is replayed to it, and each gets the verdict its ClientHello deserves.
- HAProxy in mode tcp with req.ssl_sni routing stands in for a Traefik entrypoint with HostSNI
  routers: a known SNI reaches the backend, an unknown one is closed without a byte.
- peer.py servers stand in for the silent failures (close, reset, silence, plaintext 400).
"""
from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

import lsm

kCases = lsm.kCorpus
kPcaps = lsm.kData / "corpus" / "pcap"


def replay(*args: str, timeout: float = 30.0):
    """replay: run `linesman replay ... --json`; (rc, verdict dict or None, stderr)."""
    r = subprocess.run([lsm.linesman_bin(), "replay", *args, "--json"], capture_output=True,
                       text=True, timeout=timeout)
    verdict = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, verdict, r.stderr


def stop_of(v: dict) -> tuple[str, str]:
    return v["stop"]["phase"], v["stop"]["reason"]


def start_tls_backend(reg: lsm.Registry, cn: str = "backend.example.test") -> lsm.Proc:
    """start_tls_backend: `openssl s_server` offering TLS 1.2 and 1.3 (lsm.start_s_server pins one
    version; a replay must see each hello's own best version)."""
    lsm.need("openssl")
    cert, key = lsm.make_cert(reg.tmp, cn, [cn], name=f"backend-{cn}")
    port = lsm.free_port()
    p = reg.add(lsm.Proc(f"s_server-{port}",
                         ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert),
                          "-key", str(key), "-www", "-naccept", "1000"],
                         reg.tmp, stdout_pipe=True))
    p.wait_line(r"^ACCEPT", 10)
    p.port = port
    return p


def case_meta(name: str) -> dict:
    return json.loads((kCases / f"{name}.json").read_text())


def all_cases() -> list[str]:
    return sorted(p.stem for p in kCases.glob("*.json"))


def expected_vs_s_server(meta: dict) -> set[tuple[str, str, str | None]]:
    """expected_vs_s_server: the acceptable (phase, reason, TLS version) for a case replayed to an
    s_server offering TLS 1.2 and 1.3, from the case's ground truth (not from linesman)."""
    gt = meta["ground_truth"]
    expect = meta.get("expect") or {}
    outcome = gt["outcome"]
    if meta["kind"] == "plaintext" or meta.get("tls_offset", 0) > 0:
        # s_server reads a non-TLS first flight (a PostgreSQL SSLRequest too) and closes.
        return {("first_reply", "upstream_closed_silently", None),
                ("first_reply", "upstream_tls_alert", None)}
    if outcome == "incomplete":
        return {("first_reply", "upstream_silent", None)}
    if outcome in ("malformed", "not_client_hello"):
        return {("first_reply", "upstream_tls_alert", None)}
    assert outcome == "ok", outcome
    versions = gt.get("supported_versions") or []
    best = "1.3" if "0x0304" in versions else "1.2"
    ok = {("stream", "completed", best)}
    if expect.get("strict_reject_acceptable"):
        ok.add(("first_reply", "upstream_tls_alert", None))
    if not gt.get("extensions"):
        # A hello without extensions offers no groups or signature algorithms: OpenSSL 3 has
        # nothing it accepts to pair with its certificate and answers handshake_failure.
        ok.add(("first_reply", "upstream_tls_alert", None))
    return ok


def observed(v: dict) -> tuple[str, str, str | None]:
    phase, reason = stop_of(v)
    version = v.get("server_tls", {}).get("version") if reason == "completed" else None
    return phase, reason, version


def test_every_corpus_case_against_s_server_whole_and_byte_by_byte(reg):
    backend = start_tls_backend(reg)
    target = f"127.0.0.1:{backend.port}"
    seen_13 = seen_12 = 0
    for name in all_cases():
        meta = case_meta(name)
        want = expected_vs_s_server(meta)
        bin_path = str(kCases / f"{name}.bin")
        rc, whole, err = replay(bin_path, "--target", target, "--timeout", "1s",
                                "--chunks", "whole")
        assert whole is not None, f"{name}: {err}"
        got = observed(whole)
        assert got in want, f"{name}: whole -> {got}, expected one of {want}"
        assert rc == (0 if whole["outcome"] == "ok" else 1), name
        assert whole["sent"]["bytes"] == meta["bytes"]
        if got[1] == "completed":
            seen_13 += got[2] == "1.3"
            seen_12 += got[2] == "1.2"
            assert whole["server_tls"]["cipher"].startswith("TLS_")
            assert whole["upstream_first"]["protocol"] == "tls"
            if got[2] == "1.2":
                # TLS 1.2 shows the certificate in clear: s_server's.
                assert whole["server_tls"]["certificate"]["subject"] == "CN=backend.example.test"
        if got[1] == "upstream_tls_alert":
            assert whole["server_tls"]["alert"]["level"] == "fatal"
        # The same flight one byte per write gets the same verdict (the server reassembles).
        rc1, one, err = replay(bin_path, "--target", target, "--timeout", "1s", "--chunks", "1")
        assert one is not None, f"{name}: {err}"
        assert one["sent"]["writes"] == meta["bytes"]
        assert observed(one) == got, f"{name}: 1-byte writes -> {observed(one)}, whole -> {got}"
        assert rc1 == rc
    assert seen_13 >= 20 and seen_12 >= 4, (seen_13, seen_12)


def test_captures_replay_with_their_segmentation(reg):
    """The corpus pcaps as input: the crafted ones carry their chunks (1-byte writes, a split
    record header); the verdict equals the .bin's."""
    backend = start_tls_backend(reg)
    target = f"127.0.0.1:{backend.port}"
    for name in ("edge_tcp_1byte_openssl_alpn", "edge_tcp_split_record_header_curl",
                 "curl_https_default", "java_sslsocket_tls12"):
        meta = case_meta(name)
        rc, v, err = replay(str(lsm.kData / "corpus" / meta["pcap"]), "--target", target,
                            "--timeout", "2s")
        assert rc == 0, f"{name}: {err} {v}"
        assert v["input"]["format"] == "pcap"
        assert v["sent"]["writes"] == len(meta["chunks"]), name
        assert v["sent"]["bytes"] == meta["bytes"]
        assert observed(v) in expected_vs_s_server(meta)


def test_haproxy_entrypoint_routes_by_sni_and_sni_rewrite(reg):
    """HAProxy as a Traefik entrypoint with one HostSNI router: the captured SNI reaches the
    backend; --sni with a name no router has gets the silent close Traefik gives."""
    backend = start_tls_backend(reg)
    hap = lsm.start_haproxy(reg, {"www.example.test": backend.port})
    target = f"127.0.0.1:{hap.port}"
    bin_path = str(kCases / "curl_https_default.bin")  # SNI www.example.test
    rc, v, err = replay(bin_path, "--target", target)
    assert rc == 0, err
    assert stop_of(v) == ("stream", "completed")
    assert v["sent"]["sni"] == "www.example.test"

    rc, v, err = replay(bin_path, "--target", target, "--sni", "nope.example.test")
    assert rc == 1, err
    assert v["sent"]["sni"] == "nope.example.test"
    assert v["sent"]["bytes"] == 517  # the padding extension absorbed the longer name
    assert stop_of(v) == ("first_reply", "upstream_closed_silently")
    assert v["stop"]["by"] == "upstream"

    # A hello without SNI (an IP-literal client) matches no HostSNI router either; giving it the
    # router's name through --sni (the extension is inserted) makes it through.
    nosni = str(kCases / "openssl_noservername.bin")
    rc, v, _ = replay(nosni, "--target", target)
    assert stop_of(v) == ("first_reply", "upstream_closed_silently")
    assert v["sent"]["sni"] is None
    rc, v, err = replay(nosni, "--target", target, "--sni", "www.example.test")
    assert rc == 0, err
    assert stop_of(v) == ("stream", "completed")
    # type (2), length (2), list length (2), name type (1), name length (2), name.
    assert v["sent"]["bytes"] == (kCases / "openssl_noservername.bin").stat().st_size + 9 + 16


@pytest.mark.parametrize("mode,reason,close", [
    ("close", "upstream_closed_silently", "fin"),
    ("rst", "upstream_reset", "rst"),
    ("silent", "upstream_silent", "timeout"),
    ("http400", "upstream_not_tls", None),
])
def test_failure_verdicts_against_peers(reg, mode, reason, close):
    peer = lsm.start_peer(reg, mode)
    rc, v, err = replay(str(kCases / "curl_https_default.bin"), "--target",
                        f"127.0.0.1:{peer.port}", "--timeout", "1s")
    assert rc == 1, err
    assert stop_of(v) == ("first_reply", reason)
    assert v["stop"]["by"] == "upstream"
    assert v["outcome"] == "failed"
    if close:
        assert v["close"] == close
    if mode == "http400":
        assert v["upstream_first"]["protocol"] == "http1"
        assert "400" in v["upstream_first"]["summary"]
    if mode == "rst":
        assert v["stop"]["errno"] == "ECONNRESET"


def test_plaintext_flight_gets_a_good_reply(reg):
    """Plaintext first flights work too: an HTTP GET to the 400 peer is an answer, not a failure
    of TLS (the client did not speak TLS)."""
    peer = lsm.start_peer(reg, "http400")
    rc, v, err = replay(str(kCases / "plain_curl_http11_get.bin"), "--target",
                        f"127.0.0.1:{peer.port}")
    assert rc == 0, err
    assert v["sent"]["protocol"] == "http1"
    assert stop_of(v) == ("stream", "completed")


def test_closed_port_is_refused():
    port = lsm.closed_port()
    rc, v, err = replay(str(kCases / "curl_https_default.bin"), "--target", f"127.0.0.1:{port}")
    assert rc == 1, err
    assert stop_of(v) == ("connect", "upstream_refused")
    assert v["stop"]["errno"] == "ECONNREFUSED"
    assert v["close"] == "never"
    assert v["timing_ms"]["connect"] is None


def test_handshake_shows_the_certificate_and_tells_passthrough(reg):
    backend = start_tls_backend(reg, cn="backend.example.test")
    hap = lsm.start_haproxy(reg, {"backend.example.test": backend.port})
    bin_path = str(kCases / "openssl_tls13_sni.bin")
    # Directly, with the backend's name: the chain is the backend's, the name matches.
    rc, v, err = replay(bin_path, "--target", f"127.0.0.1:{backend.port}", "--handshake",
                        "--sni", "backend.example.test")
    assert rc == 0, err
    hs = v["handshake"]
    assert hs["ok"] and hs["version"] == "1.3"
    assert hs["chain"][0]["subject"] == "CN=backend.example.test"
    assert hs["chain"][0]["san"] == ["backend.example.test"]
    assert hs["chain"][0]["not_before"] < hs["chain"][0]["not_after"]
    assert hs["name_matches"] is True
    assert hs["verified"] is False and "self" in hs["verify_error"]
    # Through the HAProxy entrypoint (passthrough): the same certificate arrives.
    rc, v, err = replay(bin_path, "--target", f"127.0.0.1:{hap.port}", "--handshake",
                        "--sni", "backend.example.test")
    assert rc == 0, err
    assert v["handshake"]["chain"][0]["subject"] == "CN=backend.example.test"
    # The captured SNI (www.example.test) is not the certificate's name.
    rc, v, err = replay(bin_path, "--target", f"127.0.0.1:{backend.port}", "--handshake")
    assert v["handshake"]["sni"] == "www.example.test"
    assert v["handshake"]["name_matches"] is False
    # Readable output names the subject too.
    r = subprocess.run([lsm.linesman_bin(), "replay", bin_path, "--target",
                        f"127.0.0.1:{backend.port}", "--handshake"], capture_output=True,
                       text=True, timeout=30)
    assert "subject CN=backend.example.test" in r.stdout
    assert "does NOT match" in r.stdout


def test_replaying_its_own_capture_reproduces_the_verdict(reg, tmp_path):
    backend = start_tls_backend(reg)
    target = f"127.0.0.1:{backend.port}"
    cap = tmp_path / "first.pcapng"
    rc, first, err = replay(str(kCases / "edge_tcp_1byte_openssl_alpn.bin"), "--target", target,
                            "--chunks", "1", "--capture", str(cap))
    assert rc == 0, err
    assert first["capture"] == str(cap)
    rc, again, err = replay(str(cap), "--target", target)
    assert rc == 0, err
    assert again["input"]["format"] == "pcapng"
    assert again["sent"]["bytes"] == first["sent"]["bytes"]
    assert stop_of(again) == stop_of(first)
    assert again["server_tls"]["version"] == first["server_tls"]["version"]
    # Against a closing peer: the capture of that failure replays to the same failure.
    peer = lsm.start_peer(reg, "close")
    cap2 = tmp_path / "fail.pcapng"
    rc, first, _ = replay(str(kCases / "curl_https_default.bin"), "--target",
                          f"127.0.0.1:{peer.port}", "--capture", str(cap2))
    rc2, again, err = replay(str(cap2), "--target", f"127.0.0.1:{peer.port}")
    assert (rc, rc2) == (1, 1), err
    assert stop_of(again) == stop_of(first) == ("first_reply", "upstream_closed_silently")


def test_bad_input_exits_2_naming_the_file_or_flag(tmp_path):
    b = lsm.linesman_bin()
    bin_path = str(kCases / "curl_https_default.bin")

    def run(*args):
        r = subprocess.run([b, "replay", *args], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stderr

    rc, err = run(str(tmp_path / "missing.bin"), "--target", "127.0.0.1:1")
    assert rc == 2 and "missing.bin" in err
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    rc, err = run(str(empty), "--target", "127.0.0.1:1")
    assert rc == 2 and "empty.bin" in err
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((kPcaps / "curl_https_default.pcap").read_bytes()[:100])
    rc, err = run(str(cut), "--target", "127.0.0.1:1")
    assert rc == 2 and "cut.pcap" in err and "truncated" in err
    rc, err = run(bin_path)
    assert rc == 2 and "--target" in err
    rc, err = run(bin_path, "--target", "127.0.0.1")
    assert rc == 2 and "--target" in err
    rc, err = run(bin_path, "--target", "127.0.0.1:1", "--chunks", "0,x")
    assert rc == 2 and "--chunks" in err
    rc, err = run(bin_path, "--target", "127.0.0.1:1", "--timeout", "soon")
    assert rc == 2 and "--timeout" in err
    rc, err = run(str(kCases / "plain_curl_http11_get.bin"), "--target", "127.0.0.1:1",
                  "--sni", "x.test")
    assert rc == 2 and "--sni" in err


def test_tshark_formats_of_the_same_capture(reg, tmp_path):
    """The corpus pcap rewritten by editcap as pcapng and as nanosecond pcap (tshark's own
    formats) replays the same flight with the same segmentation."""
    editcap = lsm.need("editcap")
    backend = start_tls_backend(reg)
    src = kPcaps / "edge_tcp_split_record_header_curl.synthetic.pcap"
    meta = case_meta("edge_tcp_split_record_header_curl")
    for fmt, want in (("pcapng", "pcapng"), ("nsecpcap", "pcap")):
        out = tmp_path / f"converted.{fmt}"
        subprocess.run([editcap, "-F", fmt, str(src), str(out)], check=True, timeout=30,
                       capture_output=True)
        rc, v, err = replay(str(out), "--target", f"127.0.0.1:{backend.port}")
        assert rc == 0, err
        assert v["input"]["format"] == want
        assert v["sent"]["writes"] == len(meta["chunks"])
        assert v["sent"]["bytes"] == meta["bytes"]
        assert stop_of(v) == ("stream", "completed")


def test_postgres_starttls_capture_waits_for_the_s(reg, tmp_path):
    """PostgreSQL with hostssl only (a backend that requires TLS, as behind Traefik's PostgreSQL
    STARTTLS support). The captured SSLRequest waits for the server's 'S' before the hello, as
    the real client did, and PostgreSQL answers with a ServerHello. Sent in one write (the raw
    .bin has no record of the wait), PostgreSQL refuses data sent ahead of its 'S'; a plaintext
    StartupMessage gets the ErrorResponse of pg_hba.conf."""
    pg = lsm.Postgres(reg)
    target = f"127.0.0.1:{pg.port}"
    rc, v, err = replay(str(kPcaps / "openssl_starttls_postgres.pcap"), "--target", target)
    assert rc == 0, (err, v)
    assert v["sent"]["writes"] == 2
    assert stop_of(v) == ("stream", "completed")
    assert v["server_tls"]["version"] == "1.3"
    assert v["upstream_first"]["bytes"] > 1

    rc, v, err = replay(str(kCases / "openssl_starttls_postgres.bin"), "--target", target,
                        "--timeout", "2s")
    assert rc == 1, (err, v)
    assert v["outcome"] == "failed"

    startup = tmp_path / "startup.bin"
    startup.write_bytes(lsm.pg_startup())
    rc, v, err = replay(str(startup), "--target", target, "--timeout", "2s")
    assert rc == 1, (err, v)
    assert v["sent"]["protocol"] == "postgres"
    assert stop_of(v) == ("first_reply", "upstream_error_reply")
    assert "pg_hba.conf" in v["upstream_first"]["summary"]


def write_pcap(path, client_segments: list[tuple[float, bytes]]) -> None:
    """write_pcap: a minimal Ethernet/IPv4/TCP pcap (SYN, SYN-ACK, ACK, then the client's
    segments at the given times), made here independently of linesman's writer."""
    import struct

    def csum(b: bytes) -> int:
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    def frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        c = csum(pseudo + tcp + payload)
        tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0x4000, 64,
                         6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        return b"\0" * 12 + b"\x08\x00" + ip + tcp + payload

    c, s = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2])
    t0 = 1_700_000_000.0
    frames = [(t0, frame(c, s, 40000, 443, 100, 0, 0x02)),
              (t0, frame(s, c, 443, 40000, 500, 101, 0x12)),
              (t0, frame(c, s, 40000, 443, 101, 501, 0x10))]
    seq = 101
    for at, data in client_segments:
        frames.append((t0 + at, frame(c, s, 40000, 443, seq, 501, 0x18, data)))
        seq += len(data)
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    for ts, f in frames:
        sec = int(ts)
        out += struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(f), len(f)) + f
    path.write_bytes(out)


def test_timing_reproduces_the_captured_gaps(reg, tmp_path):
    """A hello captured in three segments 0.4 s apart: with --timing the replay takes the gaps
    (about 0.8 s), without it does not; both get the ServerHello. The bounds are generous: this
    checks that gaps are reproduced at all, not how precisely."""
    import time
    backend = start_tls_backend(reg)
    hello = (kCases / "openssl_tls13_sni.bin").read_bytes()
    pcap = tmp_path / "gaps.pcap"
    write_pcap(pcap, [(0.0, hello[:5]), (0.4, hello[5:100]), (0.8, hello[100:])])
    target = f"127.0.0.1:{backend.port}"
    t = time.monotonic()
    rc, v, err = replay(str(pcap), "--target", target, "--timing")
    timed = time.monotonic() - t
    assert rc == 0, (err, v)
    assert v["sent"]["writes"] == 3 and v["sent"]["bytes"] == len(hello)
    assert v["server_tls"]["version"] == "1.3"
    t = time.monotonic()
    rc, v, err = replay(str(pcap), "--target", target)
    untimed = time.monotonic() - t
    assert rc == 0, (err, v)
    assert timed >= 0.75, timed
    assert untimed < timed - 0.5, (untimed, timed)


def test_protocol_refusal_is_an_error_reply(reg):
    """A plaintext first flight answered with a 5xx reply line (an SMTP/FTP-style refusal) is
    upstream_error_reply, the same rule as the access log."""
    peer = lsm.start_peer(reg, "reply", "--banner", "554 5.7.1 relay access denied\\r\\n",
                          "--hold", "1")
    rc, v, err = replay(str(kCases / "plain_redis_cli_ping.bin"), "--target",
                        f"127.0.0.1:{peer.port}", "--timeout", "2s")
    assert rc == 1, (err, v)
    assert stop_of(v) == ("first_reply", "upstream_error_reply")
    assert "554" in v["upstream_first"]["summary"]
