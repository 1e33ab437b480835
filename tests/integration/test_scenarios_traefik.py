"""test_scenarios_traefik: the quiet Traefik TCP failures (README.md) that test_tls_e2e.py and
test_stop_reasons.py do not already cover, each reproduced with real programs in the placement
where users meet it, and the record's hint checked to speak to the cause.

Traefik is not packaged for Debian. Stand-ins, each named in its test:
- `openssl s_server -tls1_2` with a certificate whose subject is CN=TRAEFIK DEFAULT CERT (made with
  openssl here) for an entrypoint answering an unknown SNI with Traefik's default certificate;
- `openssl s_server` with a certificate for another name for a router that terminates TLS where
  passthrough was meant;
- HAProxy (`mode tcp`, `req.ssl_sni`) for an entrypoint with TCP routers, its backend with no
  server for a service whose server address has no port (Traefik fails the dial and closes).

Covered elsewhere (not repeated): no entrypoint (upstream_refused), router rule not matching
(upstream_closed_silently via HAProxy and nginx), PostgreSQL hostssl-only (upstream_error_reply),
passthrough to plain HTTP (upstream_not_tls), port held by another program, no SNI.

The last test runs `linesman summary` over the logs the scenarios here produced.
"""
import json
import pathlib
import signal
import subprocess

import lsm
from lsm import assert_stop
import test_stop_reasons

kSni = "app.example.test"

# scenario name -> access-log paths it produced (for the summary test at the end).
kProduced: dict[str, list[pathlib.Path]] = {}


def start_tls_server(reg, cn: str, sans: list[str], version: str = "tls1_2") -> lsm.Proc:
    """start_tls_server: `openssl s_server -www` offering only `version`, with a self-signed
    certificate for subject CN=`cn` and the DNS subjectAltNames `sans`."""
    lsm.need("openssl")
    cert, key = lsm.make_cert(reg.tmp, cn, sans, name=f"cert-{len(reg._items)}")
    port = lsm.free_port()
    argv = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key",
            str(key), f"-{version}", "-naccept", "100", "-www"]
    p = reg.add(lsm.Proc(f"s_server-{port}", argv, reg.tmp, stdout_pipe=True))
    p.wait_line(r"^ACCEPT", 10)
    p.port = port
    return p


def start_haproxy_service(reg, sni: str, server_port) -> lsm.Proc:
    """start_haproxy_service: HAProxy standing in for a Traefik entrypoint with one TCP router
    HostSNI(`sni`) (passthrough) whose service has one server at 127.0.0.1:`server_port`, or, with
    server_port None, a backend with no server at all: HAProxy then accepts, reads the hello and
    closes without dialing anything, as Traefik does when the service's server address has no
    port (the dial fails before a packet leaves)."""
    exe = lsm.need("haproxy")
    port = lsm.free_port()
    lines = ["global", "  log stderr format short local0 info", "defaults", "  mode tcp",
             "  timeout connect 2s", "  timeout client 10s", "  timeout server 10s",
             "frontend entrypoint", f"  bind 127.0.0.1:{port}",
             "  tcp-request inspect-delay 2s",
             "  tcp-request content accept if { req.ssl_hello_type 1 }",
             f"  use_backend svc if {{ req.ssl_sni -i {sni} }}",
             "backend svc"]
    if server_port is not None:
        lines.append(f"  server s0 127.0.0.1:{server_port}")
    cfg = reg.tmp / f"haproxy-{port}.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    p = reg.add(lsm.Proc(f"haproxy-{port}", [exe, "-db", "-f", str(cfg)], reg.tmp,
                         stop_signal=signal.SIGTERM))
    lsm.wait_until(lambda: not p.alive() or port in lsm.listening_ports(p.pid), 10,
                   "haproxy to listen")
    assert p.alive(), f"haproxy exited:\n{p.output()}"
    p.port = port
    return p


def verifying_s_client(port: int, servername: str) -> subprocess.CompletedProcess:
    """verifying_s_client: an s_client that checks the certificate against the system CAs and the
    host name, as curl would: it aborts the handshake on a certificate it does not trust."""
    return lsm.s_client(port, servername,
                        extra=["-verify_return_error", "-verify_hostname", servername])


def assert_completed_after_client_rejects(rec: dict) -> None:
    """The verifying client sends its alert (in clear, TLS 1.2) and a FIN; s_server, reading the
    alert, closes too. Both FINs cross, so stop.by names whichever linesman saw first: phase and
    reason are fixed, by is the side close.first names."""
    assert (rec["stop"]["phase"], rec["stop"]["reason"]) == ("stream", "completed"), \
        lsm.brief(rec)
    assert rec["stop"]["by"] in ("client", "upstream"), lsm.brief(rec)
    assert rec["stop"]["by"] == rec["close"]["first"], lsm.brief(rec)
    assert rec["close"]["client"] == rec["close"]["upstream"] == "fin", lsm.brief(rec)
    # The client's alert record (7 bytes) after its ClientHello reached the server.
    assert rec["bytes"]["from_client"] == rec["client_first"]["bytes"] + 7, lsm.brief(rec)


def first_flights(rec: dict) -> tuple:
    cf, uf = rec.get("client_first") or {}, rec.get("upstream_first") or {}
    return cf.get("protocol"), uf.get("protocol"), uf.get("summary", "")


# ------------------------------------------------------------------------------ (a) default cert

def scenario_default_certificate(reg) -> dict:
    """Traefik: no TCP router matches the SNI on this entrypoint (the router is missing, on another
    entrypoint, or is an HTTP router), so Traefik's own TLS handling answers with its default
    certificate, CN=TRAEFIK DEFAULT CERT. With TLS 1.2 the certificate travels in clear and
    linesman (client -> linesman -> entrypoint) records its subject. The client (verifying, like
    curl) rejects it and closes."""
    entry = start_tls_server(reg, "TRAEFIK DEFAULT CERT",
                             ["0a1b2c3d4e5f.6a7b8c9d0e1f.traefik.default"])
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{entry.port}"])
    r = verifying_s_client(lm.port, "shop.example.test")
    assert r.returncode != 0, "the client must reject Traefik's default certificate"
    assert b"TRAEFIK DEFAULT CERT" in r.stdout + r.stderr
    rec = lm.record(timeout=10)
    kProduced["default_certificate"] = [lm.log_path]
    return rec


def test_a_traefik_default_certificate(reg):
    rec = scenario_default_certificate(reg)
    assert_completed_after_client_rejects(rec)
    assert first_flights(rec)[:2] == ("tls", "tls"), lsm.brief(rec)
    assert rec["upstream_first"]["summary"].startswith("TLS handshake ServerHello"), lsm.brief(rec)
    assert rec["tls"]["sni"] == "shop.example.test"
    cert = rec["server_tls"]["certificate"]
    assert cert["subject"] == "CN=TRAEFIK DEFAULT CERT", lsm.brief(rec)
    assert rec["server_tls"]["version"] == "1.2"
    h = rec["hint"]
    assert "No TCP router matched" in h and "default certificate" in h, h
    assert "shop.example.test" in h and "HTTP router" in h, h


# ------------------------------------------------------------ (b) terminated, not passed through

def scenario_terminated_not_passthrough(reg) -> dict:
    """Traefik: the router for app.example.test terminates TLS (tls without passthrough) with a
    certificate for another name (here other.example.test; in Traefik typically the default or a
    wrong certresolver certificate) where the user meant tls.passthrough=true to let the backend
    present its own. linesman between client and entrypoint sees a certificate that does not
    cover the SNI sent. The verifying client rejects it and closes."""
    entry = start_tls_server(reg, "other.example.test", ["other.example.test"])
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{entry.port}"])
    r = verifying_s_client(lm.port, kSni)
    assert r.returncode != 0
    rec = lm.record(timeout=10)
    kProduced["terminated_not_passthrough"] = [lm.log_path]
    return rec


def test_b_tls_terminated_where_passthrough_was_meant(reg):
    rec = scenario_terminated_not_passthrough(reg)
    assert_completed_after_client_rejects(rec)
    assert first_flights(rec)[:2] == ("tls", "tls"), lsm.brief(rec)
    assert rec["tls"]["sni"] == kSni
    assert rec["server_tls"]["certificate"]["subject"] == "CN=other.example.test"
    assert rec["server_tls"]["certificate"]["san"] == ["other.example.test"]
    h = rec["hint"]
    assert "terminated where passthrough was meant" in h, h
    assert "CN=other.example.test" in h and kSni in h and "tls.passthrough=true" in h, h


def test_b_control_certificate_covers_the_sni_by_wildcard(reg):
    """Control for (b): a wildcard certificate *.example.test covers app.example.test (RFC 6125),
    so no passthrough hint, whatever else happens."""
    entry = start_tls_server(reg, "*.example.test", ["*.example.test"])
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{entry.port}"])
    lsm.s_client(lm.port, kSni)
    rec = lm.record(timeout=10)
    assert rec["server_tls"]["certificate"]["san"] == ["*.example.test"], lsm.brief(rec)
    assert "passthrough was meant" not in rec["hint"], rec["hint"]
    assert rec["outcome"] == "ok", lsm.brief(rec)


# ------------------------------------------------------------ (c) plaintext client, TLS backend

def scenario_plaintext_to_tls_backend(reg) -> dict:
    """Traefik: a TCP router without tls (HostSNI(`*`)) sends a plaintext client to a backend that
    requires TLS (router -> linesman -> backend). OpenSSL, seeing an HTTP request where a
    ClientHello belongs, closes without sending an alert; the client gets nothing."""
    backend = start_tls_server(reg, kSni, [kSni], version="tls1_3")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}"])
    s = lm.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
    data = lsm.recv_all(s, timeout=5)
    s.close()
    assert data == b"", data[:80]
    rec = lm.record(timeout=10)
    kProduced["plaintext_to_tls_backend"] = [lm.log_path]
    return rec


def test_c_plaintext_client_to_tls_backend(reg):
    rec = scenario_plaintext_to_tls_backend(reg)
    assert_stop(rec, "first_reply", "upstream_closed_silently", "upstream")
    assert first_flights(rec)[:2] == ("http1", "none"), lsm.brief(rec)
    assert rec["client_first"]["summary"].startswith("GET / HTTP/1.1"), lsm.brief(rec)
    assert "tls" not in rec and "server_tls" not in rec, lsm.brief(rec)
    assert rec["bytes"]["from_upstream"] == 0
    h = rec["hint"]
    assert "plaintext http1" in h, h
    assert "router must terminate TLS or the client must use TLS" in h, h


# ----------------------------------------------------------------- (d) unreachable network

def scenario_unreachable(reg, netns) -> dict:
    rec = test_stop_reasons.connect_upstream_unreachable(reg, netns)
    kProduced["unreachable"] = [reg.tmp / "linesman.jsonl"]
    return rec


def test_d_backend_on_unreachable_network(reg, netns):
    """Traefik: the service's server is on a network the host has no route to (reuses
    test_stop_reasons' namespace scenario: the route table says `unreachable` for TEST-NET-2)
    and adds what a user reads: the hint names the address."""
    rec = scenario_unreachable(reg, netns)
    assert_stop(rec, "connect", "upstream_unreachable", "upstream", "EHOSTUNREACH")
    assert rec["client_first"]["protocol"] == "tls", lsm.brief(rec)
    assert rec.get("upstream_first") is None, lsm.brief(rec)
    assert rec["timing_ms"]["upstream_connected"] is None
    h = rec["hint"]
    assert "198.51.100.1:443" in h and "cannot be reached" in h, h


# --------------------------------------------------------- (e) service address without a port

def correlate(a: pathlib.Path, b: pathlib.Path):
    rc, out, err = lsm.run_linesman(["correlate", "--json", str(a), str(b)], timeout=30)
    assert rc in (0, 1), f"correlate exit {rc}: {err}"
    return rc, json.loads(out)


def two_placements(reg, dial_b: bool):
    """client -> linesman A -> HAProxy (the entrypoint) -> [linesman B -> s_server (backend)].
    With dial_b the service's server is linesman B; without, the service has no usable server
    and HAProxy never dials anything. Returns (record A, path A, path B)."""
    backend = start_tls_server(reg, kSni, [kSni], version="tls1_3")
    lm_b = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}"], name="linesman-B")
    hap = start_haproxy_service(reg, kSni, lm_b.port if dial_b else None)
    lm_a = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}"], name="linesman-A")
    r = lsm.s_client(lm_a.port, kSni)
    rec_a = lm_a.record(timeout=10)
    return r, rec_a, lm_a, lm_b


def test_e_service_address_without_port_never_dialed(reg):
    """Traefik: a TCP service whose server address has no port (`address: "10.0.0.5"`): Traefik
    accepts, matches the router, fails to dial and closes; the backend sees nothing. On A's
    side alone this looks like any silent close; only the two logs together show that the
    connection never left Traefik, and correlate says to check the server address's port."""
    r, rec_a, lm_a, lm_b = two_placements(reg, dial_b=False)
    assert r.returncode != 0
    assert_stop(rec_a, "first_reply", "upstream_closed_silently", "upstream")
    assert first_flights(rec_a)[:2] == ("tls", "none"), lsm.brief(rec_a)
    assert rec_a["tls"]["sni"] == kSni
    assert rec_a["timing_ms"]["upstream_connected"] is not None  # A did reach the entrypoint
    assert lm_b.raw_lines() == [], "linesman B must have no record: HAProxy never dialed it"
    lm_a.stop()
    lm_b.stop()
    assert lm_b.raw_lines() == []
    kProduced["never_dialed"] = [lm_a.log_path, lm_b.log_path]
    rc, j = correlate(lm_a.log_path, lm_b.log_path)
    assert rc == 1, j
    assert j["pairs"] == [] and j["b_only"] == [], j
    assert [x["id"] for x in j["a_only"]] == [rec_a["id"]], j
    hint = j["a_only"][0]["hint"]
    assert "Traefik never dialed the backend" in hint and "server address has a port" in hint, hint
    rc_text, out, _ = lsm.run_linesman(["correlate", str(lm_a.log_path), str(lm_b.log_path)])
    assert rc_text == 1 and "never dialed" in out, out


def test_e_control_entrypoint_dials_b_and_correlate_pairs(reg):
    """Control for (e): the service's server is linesman B (address with a port), so the same
    client reaches the backend, both logs hold the connection and correlate pairs them."""
    r, rec_a, lm_a, lm_b = two_placements(reg, dial_b=True)
    assert r.returncode == 0, r.stderr[-400:]
    assert b"HTTP/1.0 200 ok" in r.stdout
    rec_b = lm_b.record(timeout=10)
    assert rec_a["outcome"] == "ok" and rec_b["outcome"] == "ok", (lsm.brief(rec_a),
                                                                   lsm.brief(rec_b))
    assert rec_a["tls"]["sni"] == rec_b["tls"]["sni"] == kSni
    assert rec_a["tls"]["ja4"] == rec_b["tls"]["ja4"], "passthrough: the same ClientHello"
    lm_a.stop()
    lm_b.stop()
    kProduced["control_dialed"] = [lm_a.log_path, lm_b.log_path]
    rc, j = correlate(lm_a.log_path, lm_b.log_path)
    assert rc == 0, j
    assert [(p["a"], p["b"], p["how"]) for p in j["pairs"]] == [
        (rec_a["id"], rec_b["id"], "time_sni")], j
    assert j["a_only"] == [] and j["b_only"] == [], j


# ------------------------------------------------------------------------ (f) linesman summary

def test_f_summary_over_the_scenario_logs(tmp_path):
    """`linesman summary` over every log the scenarios above wrote (scenarios not run yet in this
    session, e.g. under -k, are run here, each in its own directory) shows the funnel and the
    stop reasons."""
    def netns_in(r):
        return r.add(lsm.Netns())
    missing = {
        "default_certificate": scenario_default_certificate,
        "terminated_not_passthrough": scenario_terminated_not_passthrough,
        "plaintext_to_tls_backend": scenario_plaintext_to_tls_backend,
        "unreachable": lambda r: scenario_unreachable(r, netns_in(r)),
        "never_dialed": test_e_service_address_without_port_never_dialed,
        "control_dialed": test_e_control_entrypoint_dials_b_and_correlate_pairs,
    }
    for name, run_it in missing.items():
        if name in kProduced:
            continue
        (tmp_path / name).mkdir()
        sub = lsm.Registry(tmp_path / name)
        try:
            run_it(sub)
        finally:
            sub.close()
    logs = [str(p) for paths in kProduced.values() for p in paths]
    rc, out, err = lsm.run_linesman(["summary", "--json", *logs], timeout=30)
    assert rc == 0, err
    j = json.loads(out)
    # default cert, terminated, plaintext, unreachable, never dialed (A only), control (A and B).
    assert j["records"] == 7, j
    total = j["total"]
    assert total["connections"] == 7
    assert total["funnel"]["accepted"] == 7
    assert total["funnel"]["connected"] == 6, total  # all but the unreachable one
    assert total["funnel"]["first_reply"] == 4, total  # both certs and the control pair
    assert total["stopped"]["connect"] == 1 and total["stopped"]["first_reply"] == 2, total
    reasons = {(r["phase"], r["reason"]): r for r in total["stop_reasons"]}
    assert reasons[("first_reply", "upstream_closed_silently")]["count"] == 2, reasons
    assert reasons[("connect", "upstream_unreachable")]["count"] == 1, reasons
    # Both certificate scenarios (the verifying client's alert and FIN, then the server's FIN)
    # and the control pair end as stream/completed.
    assert reasons[("stream", "completed")]["count"] == 4, reasons
    assert total["stopped"]["stream"] == 4, total
    assert "cannot be reached" in reasons[("connect", "upstream_unreachable")]["example_hint"]
    by_sni = {(g["sni"]): g for g in j["groups"]}
    assert by_sni["shop.example.test"]["connections"] == 1, by_sni.keys()
    rc, text, _ = lsm.run_linesman(["summary", *logs], timeout=30)
    assert rc == 0 and "upstream_closed_silently" in text and "shop.example.test" in text, text
