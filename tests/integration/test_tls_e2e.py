"""test_tls_e2e: real TLS clients and servers through linesman, and the Traefik failures
(README.md) that a debugging proxy in front of an entrypoint has to name.

Traefik is not packaged for Debian; HAProxy (`mode tcp`, `req.ssl_sni` routing, no default
backend) and nginx (`stream` + `ssl_preread`) stand in for an entrypoint with TCP routers, and
`openssl s_server` for the TLS backend. linesman never terminates TLS: the handshake is between
s_client and s_server.
"""
import re
import socket


import lsm
from lsm import assert_stop

kSni = "app.example.test"


def s_client_facts(out: bytes) -> dict:
    text = out.decode(errors="replace")
    facts = {}
    m = re.search(r"New, (TLSv[\d.]+), Cipher is (\S+)", text)
    if m:
        facts["version"], facts["cipher"] = m.group(1), m.group(2)
    m = re.search(r"ALPN protocol: (\S+)", text)
    if m:
        facts["alpn"] = m.group(1)
    return facts


def test_s_client_linesman_haproxy_s_server(reg):
    """openssl s_client -> linesman -> HAProxy (req.ssl_sni, standing in for a Traefik entrypoint
    with a passthrough TCP router HostSNI(`app.example.test`)) -> openssl s_server (TLS 1.3)."""
    backend = lsm.start_s_server(reg, version="tls1_3", alpn="h2", cn=kSni)
    hap = lsm.start_haproxy(reg, {kSni: backend.port})
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}"])
    r = lsm.s_client(lm.port, kSni, alpn="h2")
    facts = s_client_facts(r.stdout)
    assert r.returncode == 0 and facts.get("version") == "TLSv1.3", r.stdout[-800:]
    assert facts.get("alpn") == "h2", r.stdout[-800:]
    assert b"HTTP/1.0 200 ok" in r.stdout, "s_server's -www page did not come back"
    rec = lm.record(timeout=10)
    assert rec["tls"]["sni"] == kSni, lsm.brief(rec)
    assert rec["tls"]["alpn"] == ["h2"], lsm.brief(rec)
    assert rec["tls"]["complete"] is True
    ja4 = rec["tls"].get("ja4", "")
    assert ja4.startswith("t13") and re.fullmatch(r"t13[di]\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}", ja4), \
        f"ja4 {ja4!r}"
    assert rec["server_tls"]["version"] == "1.3", lsm.brief(rec)
    assert rec["server_tls"]["cipher"] == facts["cipher"], lsm.brief(rec)
    assert rec["client_first"]["protocol"] == "tls"
    assert rec["upstream_first"]["protocol"] == "tls"
    assert rec["outcome"] == "ok", lsm.brief(rec)
    assert rec["stop"]["phase"] == "stream" and rec["stop"]["reason"] in (
        "completed", "upstream_closed", "client_closed"), lsm.brief(rec)
    assert rec["bytes"]["from_client"] == rec["bytes"]["to_upstream"] > 0
    assert rec["bytes"]["from_upstream"] == rec["bytes"]["to_client"] > 0


def test_hello_listing_127_versions_is_cut_and_said(reg):
    """A hostile hello listing 127 supported_versions, the most its one-byte length allows: the
    record keeps the first 8 that are not GREASE and says it cut the list (versions_truncated, as
    groups_truncated does for groups). The hello still reaches s_server, which refuses it with an
    alert (lsm.client_hello offers only rsa_pss_rsae_sha256, s_server's key is P-256): the
    record names the alert from its codes."""
    backend = lsm.start_s_server(reg, version="tls1_3", cn=kSni)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}"])
    versions = [0x0304] + [0x0a0a if i % 3 == 0 else 0x7f00 + i for i in range(1, 127)]
    s = lm.connect()
    try:
        s.sendall(lsm.client_hello(kSni, versions=versions))
        first = lsm.read_until_end(s, 3.0, first_only=True)[0]
    finally:
        s.close()
    rec = lm.record()
    assert first == b"\x15\x03\x03\x00\x02\x02\x28", f"s_server's answer: {first[:16]!r}"
    want = ["1.3"] + [f"0x{0x7f00 + i:04x}" for i in range(1, 127) if i % 3][:7]
    assert rec["tls"]["supported_versions"] == want, lsm.brief(rec)
    assert rec["tls"]["versions_truncated"] is True, lsm.brief(rec)
    assert "groups_truncated" not in rec["tls"], lsm.brief(rec)
    assert rec["server_tls"] == {
        "alert": {"level": "fatal", "description": "handshake_failure", "code": 40}}, lsm.brief(rec)
    assert_stop(rec, "first_reply", "upstream_tls_alert", "upstream")


def test_s_client_linesman_nginx_tls12_certificate_in_clear(reg):
    """s_client -> linesman -> nginx stream ssl_preread -> s_server limited to TLS 1.2: the
    certificate travels in clear, so the record names its subject and the version is 1.2."""
    backend = lsm.start_s_server(reg, version="tls1_2", cn=kSni)
    ng = lsm.start_nginx(reg, {kSni: backend.port})
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{ng.port}"])
    r = lsm.s_client(lm.port, kSni)
    facts = s_client_facts(r.stdout)
    assert r.returncode == 0 and facts.get("version") == "TLSv1.2", r.stdout[-800:]
    rec = lm.record(timeout=10)
    assert rec["server_tls"]["version"] == "1.2", lsm.brief(rec)
    assert rec["server_tls"]["cipher"] == {
        "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    }.get(facts["cipher"], facts["cipher"]), lsm.brief(rec)
    assert "CN=app.example.test" in rec["server_tls"]["certificate"]["subject"], lsm.brief(rec)
    assert rec["outcome"] == "ok"


def test_no_entrypoint_upstream_refused(reg):
    """Traefik: the entrypoint is missing from the static configuration (or failed to bind its
    port), so nothing listens: connect/upstream_refused, and the record still carries the SNI the
    client asked for."""
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{lsm.closed_port()}"])
    r = lsm.s_client(lm.port, kSni, alpn="h2")
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    assert_stop(rec, "connect", "upstream_refused", "upstream", "ECONNREFUSED")
    assert rec["tls"]["sni"] == kSni, lsm.brief(rec)
    assert rec["close"]["upstream"] == "never"
    assert "entrypoint" in rec["hint"].lower(), rec["hint"]


def test_router_rule_no_match_closed_silently(reg):
    """Traefik: a TCP router with a Host() rule or a domain HostSNI without tls is dropped, so the
    entrypoint reads the ClientHello and closes without a byte. HAProxy with no default backend does
    the same for an SNI it has no rule for: first_reply/upstream_closed_silently, SNI in the hint."""
    backend = lsm.start_s_server(reg, cn=kSni)
    hap = lsm.start_haproxy(reg, {kSni: backend.port})
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}"])
    r = lsm.s_client(lm.port, "shop.example.test", alpn="h2")
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    assert_stop(rec, "first_reply", "upstream_closed_silently", "upstream")
    assert rec["tls"]["sni"] == "shop.example.test"
    assert "shop.example.test" in rec["hint"], rec["hint"]
    assert rec["bytes"]["from_upstream"] == 0
    assert rec["outcome"] == "failed"


def test_router_rule_no_match_nginx(reg):
    """The same failure with the nginx stand-in (ssl_preread, unknown SNI mapped to a closed port:
    nginx accepts, reads the hello, fails to connect and closes)."""
    backend = lsm.start_s_server(reg, cn=kSni)
    ng = lsm.start_nginx(reg, {kSni: backend.port})
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{ng.port}"])
    r = lsm.s_client(lm.port, "shop.example.test")
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    assert_stop(rec, "first_reply", "upstream_closed_silently", "upstream")
    assert "shop.example.test" in rec["hint"], rec["hint"]


def test_passthrough_to_plain_http_backend(reg):
    """Traefik: tls.passthrough to a backend that does not speak TLS; the backend answers the
    ClientHello with an HTTP 400: first_reply/upstream_not_tls, its status line in the summary."""
    up = lsm.start_peer(reg, "http400")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    r = lsm.s_client(lm.port, kSni)
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    assert_stop(rec, "first_reply", "upstream_not_tls", "upstream")
    assert "HTTP/1.1 400" in rec["upstream_first"]["summary"], lsm.brief(rec)
    assert "HTTP/1.1 400" in rec["hint"], rec["hint"]


def test_plaintext_client_to_postgres_requiring_tls(reg):
    """Traefik: a TCP router without TLS (HostSNI(`*`)) in front of a PostgreSQL whose pg_hba.conf
    only has hostssl lines: the plaintext StartupMessage gets an ErrorResponse,
    first_reply/upstream_error_reply with PostgreSQL's message in the summary."""
    pg = lsm.Postgres(reg)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{pg.port}"])
    s = lm.connect()
    s.sendall(lsm.pg_startup(user="shop", database="orders"))
    data = lsm.recv_all(s, timeout=5)
    s.close()
    assert b"no pg_hba.conf entry" in data
    rec = lm.record(timeout=10)
    assert_stop(rec, "first_reply", "upstream_error_reply", "upstream")
    summary = rec["upstream_first"]["summary"]
    assert "no pg_hba.conf entry" in summary, lsm.brief(rec)
    assert "encryption" in rec["hint"], rec["hint"]


def test_tls_client_to_port_held_by_another_program(reg):
    """Port conflict seen inline: the entrypoint's port is held by another program (an SSH
    server here; PostgreSQL cannot stand in, it closes on a ClientHello without a byte). The TLS
    client gets that program's greeting: upstream_not_tls, the greeting in the summary."""
    up = lsm.start_peer(reg, "banner")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}"])
    r = lsm.s_client(lm.port, kSni)
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    assert_stop(rec, "first_reply", "upstream_not_tls", "upstream")
    assert rec["upstream_first"]["protocol"] == "ssh", lsm.brief(rec)
    assert "SSH-2.0-OpenSSH" in rec["upstream_first"]["summary"], lsm.brief(rec)


def test_client_without_sni_to_sni_routes(reg):
    """Traefik: a client that connects to an IP literal sends no SNI, so no HostSNI router can
    match it: the record has sni null and says so."""
    backend = lsm.start_s_server(reg, cn=kSni)
    lm = lsm.Linesman(reg, ["--route", f"{kSni}=127.0.0.1:{backend.port}"])
    r = lsm.s_client(lm.port, None)
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    assert_stop(rec, "route", "no_route", "proxy")
    assert rec["tls"]["sni"] is None, lsm.brief(rec)
    assert "sni" in rec["hint"].lower(), rec["hint"]


def test_sni_route_to_s_server_with_alpn(reg):
    """An SNI route (not the default) to a TLS 1.3 s_server: route name and ALPN recorded."""
    backend = lsm.start_s_server(reg, version="tls1_3", alpn="h2", cn=kSni)
    lm = lsm.Linesman(reg, ["--route", f"{kSni}=127.0.0.1:{backend.port}"])
    r = lsm.s_client(lm.port, kSni, alpn="h2,http/1.1")
    assert r.returncode == 0, r.stderr[-500:]
    rec = lm.record(timeout=10)
    assert rec["route"], lsm.brief(rec)
    assert rec["tls"]["alpn"] == ["h2", "http/1.1"]
    assert rec["upstream"]["port"] == backend.port
    assert rec["server_tls"]["version"] == "1.3"
    assert rec["outcome"] == "ok"


def _tls_cases():
    import json
    out = []
    for meta in sorted(lsm.kCorpus.glob("*.json")):
        j = json.loads(meta.read_text())
        if j.get("kind") == "tls" and j["ground_truth"].get("outcome") == "ok" and \
                not j.get("tls_offset"):
            out.append(meta.stem)
    return out


def test_corpus_hellos_replayed_through_linesman(reg):
    """Replay (placement 3): every real ClientHello of the corpus, delivered in its recorded TCP
    chunks (one byte at a time for some), through linesman in peek mode (an SNI route forces it
    to wait for the whole hello). The record's SNI, ALPN, JA3, JA4 and record count match the
    tshark-derived ground truth."""
    import json
    import time as _time
    up = lsm.start_peer(reg, "http400")
    lm = lsm.Linesman(reg, ["--route", f"never.invalid=127.0.0.1:{up.port}",
                            "--upstream", f"127.0.0.1:{up.port}", "--peek-timeout", "3s",
                            "--threads", "1"])
    cases = _tls_cases()
    assert len(cases) >= 20, cases
    port_case = {}
    for name in cases:
        meta = json.loads((lsm.kCorpus / f"{name}.json").read_text())
        data = lsm.corpus(name)
        s = lm.connect()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port_case[s.getsockname()[1]] = (name, meta)
        pos = 0
        for n in meta.get("chunks") or [len(data)]:
            s.sendall(data[pos:pos + n])
            pos += n
            if len(meta.get("chunks") or []) > 1:
                _time.sleep(0.001)
        lsm.recv_all(s, timeout=5)
        s.close()
    recs = lm.records(len(cases), timeout=15)
    problems = []
    for rec in recs:
        name, meta = port_case[rec["client"]["port"]]
        gt = meta["ground_truth"]
        if (meta.get("expect") or {}).get("strict_reject_acceptable") and \
                rec["stop"]["reason"] == "hello_malformed":
            continue  # bytes that break an RFC: rejecting them is acceptable (corpus README)
        t = rec.get("tls") or {}
        want = {"sni": gt["sni"], "alpn": gt["alpn"] or [], "ja3": gt["ja3"], "ja4": gt["ja4"],
                "complete": True}
        have = {k: t.get(k) for k in want}
        if have["sni"] is not None and want["sni"] is not None and \
                have["sni"].lower().rstrip(".") == want["sni"].lower().rstrip("."):
            have["sni"] = want["sni"]  # case and trailing dot may be normalized
        if have != want:
            problems.append(f"{name}: got {have}, want {want}")
    assert not problems, "\n".join(problems)
