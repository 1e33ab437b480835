"""test_doctor_probe: `linesman doctor --probe` against real backends on loopback.

Stands for: the Traefik service addresses a user wrote, with the backend behind each one being
right or wrong for what its router sends. openssl s_server is a TLS backend, peer.py a plaintext
one, PostgreSQL 15 with a hostssl-only pg_hba.conf a backend that refuses plaintext, and a closed
port a backend that is down. Traefik itself is not needed: doctor reads its configuration.
"""
import json
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lsm  # noqa: E402


def write_config(tmp: pathlib.Path, routers: dict[str, tuple[str, str, int]]) -> pathlib.Path:
    """routers: name -> (tls mode: passthrough|terminate|none, SNI or "*", backend port)."""
    (tmp / "traefik.yml").write_text(
        "entryPoints:\n  websecure:\n    address: \":443\"\n"
        "providers:\n  file:\n    filename: dynamic.yml\n")
    lines = ["tcp:", "  routers:"]
    for name, (mode, sni, _) in routers.items():
        lines += [f"    {name}:", "      entryPoints: [websecure]",
                  f"      rule: HostSNI(`{sni}`)", f"      service: {name}"]
        if mode == "passthrough":
            lines += ["      tls:", "        passthrough: true"]
        elif mode == "terminate":
            lines += ["      tls: {}"]
    lines.append("  services:")
    for name, (_, _, port) in routers.items():
        lines += [f"    {name}:", "      loadBalancer:", "        servers:",
                  f"          - address: \"127.0.0.1:{port}\""]
    (tmp / "dynamic.yml").write_text("\n".join(lines) + "\n")
    return tmp / "traefik.yml"


def run_probe(static: pathlib.Path, timeout_ms: int = 1500) -> tuple[int, dict, float]:
    t0 = time.monotonic()
    r = subprocess.run([lsm.linesman_bin(), "doctor", "--json", "--no-ports", "--probe",
                        "--timeout", str(timeout_ms), "--static", str(static)],
                       capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert r.returncode in (0, 1, 2), r.stderr
    return r.returncode, json.loads(r.stdout), elapsed


def by_router(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in report["findings"]:
        out.setdefault(f["router"], []).append(f)
    return out


def test_matching_backends_give_a_clean_report(reg, tmp_path):
    tls = lsm.start_s_server(reg, cn="db.example.test")
    plain = lsm.start_peer(reg, "http400")
    banner = lsm.start_peer(reg, "banner", "--banner", "SSH-2.0-OpenSSH_9.2\r\n")
    static = write_config(tmp_path, {
        "tls-pass": ("passthrough", "db.example.test", tls.port),
        "terminated": ("terminate", "app.example.test", plain.port),
        "ssh": ("none", "*", banner.port),
    })
    code, report, _ = run_probe(static)
    assert report["findings"] == [], json.dumps(report, indent=1)
    assert code == 0
    assert report["inputs"]["probe"] is True


def test_mismatched_and_dead_backends(reg, tmp_path):
    tls = lsm.start_s_server(reg, cn="app.example.test")
    plain = lsm.start_peer(reg, "http400")
    banner = lsm.start_peer(reg, "banner", "--banner", "SSH-2.0-OpenSSH_9.2\r\n")
    dead = lsm.closed_port()
    static = write_config(tmp_path, {
        "pass-to-plain": ("passthrough", "plain.example.test", plain.port),
        "pass-to-ssh": ("passthrough", "git.example.test", banner.port),
        "term-to-tls": ("terminate", "app.example.test", tls.port),
        "plain-to-tls": ("none", "*", tls.port),
        "to-dead": ("terminate", "down.example.test", dead),
    })
    code, report, elapsed = run_probe(static)
    assert code == 2
    got = {r: sorted(f["code"] for f in fs) for r, fs in by_router(report).items()}
    assert got == {
        "pass-to-plain@file": ["backend_not_tls"],
        "pass-to-ssh@file": ["backend_not_tls"],
        "term-to-tls@file": ["backend_requires_tls"],
        "plain-to-tls@file": ["backend_requires_tls"],
        "to-dead@file": ["backend_unreachable"],
    }, json.dumps(report, indent=1)
    f = by_router(report)
    assert "HTTP/1.1 400" in f["pass-to-plain@file"][0]["message"]
    assert "SSH-2.0-OpenSSH_9.2" in f["pass-to-ssh@file"][0]["message"]
    assert "refused" in f["to-dead@file"][0]["message"].lower()
    # Every finding points at the server's address line in the dynamic file.
    dyn = (tmp_path / "dynamic.yml").read_text().splitlines()
    for x in report["findings"]:
        assert x["file"].endswith("dynamic.yml")
        assert "address:" in dyn[x["line"] - 1]
    assert elapsed < 60


def test_silent_backend_is_bounded_by_the_timeout(reg, tmp_path):
    silent = lsm.start_peer(reg, "silent")
    static = write_config(tmp_path, {"pass-to-silent": ("passthrough", "s.example.test",
                                                        silent.port)})
    code, report, elapsed = run_probe(static, timeout_ms=500)
    assert [f["code"] for f in report["findings"]] == ["backend_not_tls"]
    assert "silence" in report["findings"][0]["message"]
    assert code == 2
    assert elapsed < 10


def test_postgres_that_requires_tls(reg, tmp_path):
    pg = lsm.Postgres(reg)
    static = write_config(tmp_path, {
        "pg-terminated": ("terminate", "db.example.test", pg.port),
        "pg-passthrough": ("passthrough", "db2.example.test", pg.port),
    })
    code, report, _ = run_probe(static, timeout_ms=3000)
    assert code == 2
    f = by_router(report)
    assert [x["code"] for x in f["pg-terminated@file"]] == ["backend_refused"], report
    msg = f["pg-terminated@file"][0]["message"]
    # PostgreSQL's own words, from its ErrorResponse.
    assert "28000" in msg and "no pg_hba.conf entry" in msg and "no encryption" in msg, msg
    assert [x["code"] for x in f["pg-passthrough@file"]] == ["backend_not_tls"], report
    assert "PostgreSQL" in f["pg-passthrough@file"][0]["message"]


def test_tls_backend_that_refuses_the_hello_and_an_unresolvable_host(reg, tmp_path):
    # A TLS 1.3 server whose only cipher suite no default client offers: it answers our
    # ClientHello with a handshake_failure alert (it speaks TLS, but not with these clients).
    cert, key = lsm.make_cert(reg.tmp, "strict.example.test", name="strict")
    port = lsm.free_port()
    p = reg.add(lsm.Proc("s_server-strict", ["openssl", "s_server", "-accept", f"127.0.0.1:{port}",
                                             "-cert", str(cert), "-key", str(key), "-tls1_3",
                                             "-ciphersuites", "TLS_AES_128_CCM_8_SHA256", "-www",
                                             "-naccept", "10"], reg.tmp, stdout_pipe=True))
    p.wait_line(r"^ACCEPT", 10)
    static = write_config(tmp_path, {"strict": ("passthrough", "strict.example.test", port)})
    dyn = tmp_path / "dynamic.yml"
    dyn.write_text(dyn.read_text() + "    nowhere:\n      loadBalancer:\n        servers:\n"
                   "          - address: \"backend.nonexistent.invalid:5432\"\n")
    code, report, _ = run_probe(static)
    got = sorted((f["severity"], f["code"]) for f in report["findings"])
    assert got == [("warning", "backend_tls_alert"), ("warning", "backend_unresolved")], report
    f = {x["code"]: x for x in report["findings"]}
    assert "handshake_failure" in f["backend_tls_alert"]["message"]
    assert "backend.nonexistent.invalid" in f["backend_unresolved"]["message"]
    assert code == 1
