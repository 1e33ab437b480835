"""test_modern_hello: post-quantum ClientHellos that span segments, named in the record (issue 14).

Real peers: HAProxy 2.6 routing on `req.ssl_sni` with `bind ... defer-accept` and no
`tcp-request inspect-delay` stands in for a router that reads one segment (Traefik before v3.6.11
reads hellos the same way): defer-accept makes HAProxy accept when the first bytes arrive, and with
no inspect delay its rules run on those bytes alone. `openssl s_server` is the routed backend and
`openssl s_client` a classic (OpenSSL 3.0: no ML-KEM) client. The hello is Firefox ESR's
(tests/data/corpus/cases/firefox_sni.bin: 1,899 bytes, X25519MLKEM768 first).
"""
import json
import re
import socket
import time
import urllib.request

import pytest

import lsm

kFirefoxSni = "www.firefox.test"

# IANA "TLS Supported Groups" names for the codes the corpus holds: written here, apart from
# tls/names.cpp, so the test checks linesman's table instead of repeating it.
kGroupNames = {
    0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1", 0x001d: "x25519",
    0x001e: "x448", 0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096",
    0x0103: "ffdhe6144", 0x0104: "ffdhe8192", 0x11ec: "X25519MLKEM768",
}


def group_name(hex_code: str) -> str:
    v = int(hex_code, 16)
    if (v >> 8) == (v & 0xff) and (v & 0x0f) == 0x0a:
        return "grease"
    assert v in kGroupNames, f"group {hex_code} missing from this test's table"
    return kGroupNames[v]


def start_one_segment_haproxy(reg: lsm.Registry, app_port: int) -> lsm.Proc:
    """HAProxy whose SNI rules see only the first segment: defer-accept, no inspect-delay, and no
    default backend (an unmatched hello is closed without a byte, as Traefik closes when no TCP
    router matches)."""
    exe = lsm.need("haproxy")
    port = lsm.free_port()
    cfg = reg.tmp / f"haproxy-one-segment-{port}.cfg"
    cfg.write_text("\n".join([
        "global", "  log stderr format short local0 info",
        "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 5s",
        "  timeout server 5s",
        "frontend entrypoint", f"  bind 127.0.0.1:{port} defer-accept",
        f"  use_backend app if {{ req.ssl_sni -i {kFirefoxSni} }}",
        "backend app", f"  server s1 127.0.0.1:{app_port}",
    ]) + "\n")
    p = reg.add(lsm.Proc(f"haproxy-{port}", [exe, "-db", "-f", str(cfg)], reg.tmp))
    lsm.wait_until(lambda: not p.alive() or port in lsm.listening_ports(p.pid), 10,
                   "haproxy to listen")
    assert p.alive(), f"haproxy exited:\n{p.output()}"
    p.port = port
    return p


def send_hello(port: int, hello: bytes, split: int = 0, gap: float = 0.0,
               wait: float = 3.0) -> bytes:
    """send_hello: `hello` in two segments (split, then the rest after `gap` s) or whole; then
    what comes back until the peer closes or `wait` s pass; closes with a FIN."""
    s = lsm.connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if split:
            s.sendall(hello[:split])
            time.sleep(gap)
            s.sendall(hello[split:])
        else:
            s.sendall(hello)
        # The server's first flight is enough: the replayed hello cannot go on.
        return lsm.read_until_end(s, wait, first_only=True)[0]
    finally:
        s.close()


@pytest.fixture
def routed(reg):
    """routed: s_server (TLS 1.3) behind the one-segment HAProxy, linesman in front of HAProxy."""
    app = lsm.start_s_server(reg, "tls1_3", cn=kFirefoxSni)
    hap = start_one_segment_haproxy(reg, app.port)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}", "--admin", "127.0.0.1:0"])
    m = lm.proc.wait_line(r"linesman: admin on (\S+):(\d+)", 10, stream="err")
    lm.admin = f"{m.group(1)}:{m.group(2)}"
    return lm, app, hap


def test_split_hello_is_missed_by_a_one_segment_router_and_the_record_says_why(routed):
    lm, app, hap = routed
    hello = lsm.corpus("firefox_sni")
    assert len(hello) == 1899
    # Split at byte 100: inside the session id, before any extension; 100 ms apart.
    got = send_hello(lm.port, hello, split=100, gap=0.1)
    rec = lm.record()
    print("HAProxy record:", json.dumps(rec))
    assert got == b"", got  # HAProxy matched no rule on the first segment and closed
    assert rec["stop"]["phase"] == "first_reply", lsm.brief(rec)
    assert rec["stop"]["reason"] in ("upstream_closed_silently", "upstream_reset"), lsm.brief(rec)
    t = rec["tls"]
    assert t["sni"] == kFirefoxSni and t["complete"] is True
    assert t["hello_reads"] == 2 and t["sni_read"] == 2, t
    assert t["pq_key_share"] is True
    assert t["key_share_groups"] == ["X25519MLKEM768", "x25519", "secp256r1"], t
    assert t["supported_groups"][0] == "X25519MLKEM768", t
    assert t["ech"] is True and isinstance(t["ech_config_id"], int)
    assert "sni_after_first_segment" in rec["warnings"], rec.get("warnings")
    assert "ech_outer_name_only" in rec["warnings"], rec.get("warnings")
    assert rec["bytes"]["to_upstream"] == 1899 and rec["bytes"]["from_upstream"] == 0
    hint = rec["hint"]
    assert "arrived in read 2" in hint and "inspects only the first segment" in hint, hint
    assert "tcp-request inspect-delay" in hint and "-groups X25519" in hint, hint

    # The counter moved with the record.
    with urllib.request.urlopen(f"http://{lm.admin}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert re.search(r'^linesman_warnings_total\{[^}]*warning="sni_after_first_segment"\} 1$',
                     metrics, re.M), metrics


def test_the_same_hello_sent_whole_is_routed(routed):
    lm, app, hap = routed
    got = send_hello(lm.port, lsm.corpus("firefox_sni"))
    rec = lm.record()
    assert got[:1] == b"\x16", got[:16]  # s_server's ServerHello: HAProxy routed it
    assert rec["stop"]["phase"] == "stream", lsm.brief(rec)
    assert rec["server_tls"]["version"] == "1.3", lsm.brief(rec)
    assert rec["tls"]["sni_read"] == 1 and rec["tls"]["hello_reads"] == 1
    assert rec["tls"]["pq_key_share"] is True
    assert "sni_after_first_segment" not in rec.get("warnings", []), rec.get("warnings")
    assert "inspects only the first segment" not in rec["hint"]


def test_openssl_default_groups_have_no_post_quantum_share(reg):
    app = lsm.start_s_server(reg, "tls1_3")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{app.port}"])
    r = lsm.s_client(lm.port, "app.example.test")
    assert r.returncode == 0, r.stderr
    rec = lm.record()
    t = rec["tls"]
    assert t["pq_key_share"] is False
    assert t["key_share_groups"] == ["x25519"], t
    assert t["supported_groups"][:2] == ["x25519", "secp256r1"], t
    assert t["sni_read"] == 1 and t["ech"] is False and t["ech_config_id"] is None
    assert rec["outcome"] == "ok" and "warnings" not in rec, rec


def complete_cases():
    out = []
    for path in sorted(lsm.kCorpus.glob("*.json")):
        meta = json.loads(path.read_text())
        # (edge_duplicate_sni_extension: ok for tshark, rejected by linesman as BoringSSL does.)
        if meta["kind"] == "tls" and meta["ground_truth"]["outcome"] == "ok" and \
                path.stem != "edge_duplicate_sni_extension":
            out.append(path.stem)
    assert "firefox_sni" in out and len(out) >= 25, out
    return out


def test_every_corpus_case_groups_through_linesman(reg):
    """Every complete corpus hello, delivered in its recorded chunks (one byte at a time for
    edge_tcp_1byte_openssl_alpn) through linesman to a peer that answers only after the client's
    FIN (so no reply can cut the first flight short): the record's supported_groups and
    key_share_groups are tshark's, named."""
    peer = lsm.start_peer(reg, "hash")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{peer.port}"])
    names = complete_cases()
    ports = {}
    for name in names:
        meta = json.loads((lsm.kCorpus / f"{name}.json").read_text())
        data = lsm.corpus(name)
        s = lsm.connect(lm.port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ports[s.getsockname()[1]] = name
        at = 0
        for n in meta["chunks"]:
            s.sendall(data[at:at + n])
            at += n
        s.shutdown(socket.SHUT_WR)
        lsm.recv_all(s, timeout=5)
        s.close()
    recs = lm.records(len(names), timeout=20)
    seen = set()
    for rec in recs:
        name = ports[rec["client"]["port"]]
        seen.add(name)
        ch = json.loads((lsm.kCorpus / f"{name}.json").read_text())["tshark"]["client_hello"]
        t = rec["tls"]
        assert t["complete"] is True, (name, lsm.brief(rec))
        assert t["supported_groups"] == [group_name(g) for g in ch["supported_groups"] or []], name
        assert t["key_share_groups"] == [group_name(g) for g in ch["key_share_groups"] or []], name
        assert t["pq_key_share"] == ("X25519MLKEM768" in t["key_share_groups"]), name
    assert seen == set(names)
