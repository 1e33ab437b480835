"""`linesman demo`: the README's first command, run as a user runs it.

The demo starts its own peers in-process (a TLS server, a plaintext HTTP server, a closed port and a
Traefik-like SNI router that closes on an unknown SNI or answers with `CN=TRAEFIK DEFAULT CERT`)
and `linesman run` as a child. These tests check what it prints (every record valid against the
access-log schema, the expected stop per scenario, the facts each scenario is about), that it stays
well under 20 s, leaves no process or temp directory behind, and that it does fail, naming the
scenario, when linesman's record differs (a wrapper rewrites one upstream in the child's config).
Env: LINESMAN_BIN, LINESMAN_TEST_DATA.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import jsonschema
import pytest

DATA = pathlib.Path(os.environ.get("LINESMAN_TEST_DATA",
                                   pathlib.Path(__file__).resolve().parents[1] / "data"))
BIN = os.environ.get("LINESMAN_BIN", "linesman")
SCHEMA = json.loads((DATA / "access-log.schema.json").read_text(encoding="utf-8"))

# scenario (= listener name) -> (phase, acceptable reasons); the stops README.md's demo table shows.
EXPECTED = {
    "1-no-entrypoint": ("connect", {"upstream_refused"}),
    "2-router-rule": ("first_reply", {"upstream_closed_silently"}),
    "2b-default-cert": ("stream", {"completed", "client_closed"}),
    "2c-pq-one-segment": ("stream", {"completed", "client_closed", "upstream_closed"}),
    "4-not-tls-backend": ("first_reply", {"upstream_not_tls"}),
    "4b-no-sni": ("first_reply", {"upstream_closed_silently"}),
    "4c-plain-to-tls": ("first_reply", {"upstream_closed_silently", "upstream_tls_alert"}),
    "ok-healthy": ("stream", {"completed", "client_closed", "upstream_closed"}),
}

# A stand-in for the linesman binary: records its PID, optionally rewrites the YAML config it is
# given (to make one scenario's record differ), then execs the real binary (same PID).
WRAPPER = r'''
import os, re, sys
real, pid_file, swap = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
with open(pid_file, "w") as f:
    f.write(str(os.getpid()))
if swap == "swap":
    cfg = args[args.index("--config") + 1]
    text = open(cfg).read()
    ups = dict(re.findall(r"name: '([^']+)'\n\s+listen: [^\n]+\n\s+upstream: ([^\n]+)", text))
    # 4-not-tls-backend now points at the closed port: linesman will say upstream_refused.
    text = text.replace("upstream: " + ups["4-not-tls-backend"],
                        "upstream: " + ups["1-no-entrypoint"])
    open(cfg, "w").write(text)
os.execv(real, [real] + args)
'''


def run_demo(tmp_path, *args, env_extra=None):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.update(env_extra or {})
    start = time.monotonic()
    p = subprocess.run([BIN, "demo", *args], capture_output=True, text=True, timeout=60, env=env)
    return p, time.monotonic() - start


def wrapper(tmp_path, mode):
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER)
    exe = tmp_path / f"linesman-{mode}"
    pid_file = tmp_path / f"{mode}.pid"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script} {BIN} {pid_file} {mode} \"$@\"\n")
    exe.chmod(0o755)
    return exe, pid_file


def records_by_listener(stdout):
    recs = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        errors = [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(rec)]
        assert not errors, f"{rec.get('listener')}: {errors}"
        assert rec["listener"] not in recs, f"two records for {rec['listener']}"
        recs[rec["listener"]] = rec
    return recs


def assert_gone(pid):
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"linesman child {pid} still runs after the demo exited")


def test_demo_json_every_scenario_as_expected(tmp_path):
    exe, pid_file = wrapper(tmp_path, "plain")
    p, took = run_demo(tmp_path, "--json", "--linesman", str(exe))
    assert p.returncode == 0, p.stdout + p.stderr
    assert took < 20, f"demo took {took:.1f} s"
    # --json: nothing but records on stdout.
    assert all(line.startswith("{") for line in p.stdout.splitlines()), p.stdout
    recs = records_by_listener(p.stdout)
    assert set(recs) == set(EXPECTED)
    for name, (phase, reasons) in EXPECTED.items():
        stop = recs[name]["stop"]
        assert stop["phase"] == phase and stop["reason"] in reasons, (name, stop)
        assert recs[name]["hint"].strip(), name

    # The fact each scenario is about (what README.md says the record shows).
    assert recs["1-no-entrypoint"]["stop"].get("errno") == "ECONNREFUSED"
    assert recs["1-no-entrypoint"]["timing_ms"]["upstream_connected"] is None
    assert recs["2-router-rule"]["tls"]["sni"] == "shop.example.test"
    assert "shop.example.test" in recs["2-router-rule"]["hint"]
    assert recs["2-router-rule"]["bytes"]["from_upstream"] == 0
    assert recs["2-router-rule"]["close"]["upstream"] == "fin"
    cert = recs["2b-default-cert"]["server_tls"]["certificate"]
    assert cert["subject"] == "CN=TRAEFIK DEFAULT CERT", cert
    assert recs["2b-default-cert"]["server_tls"]["version"] == "1.2"
    # The Firefox hello in two segments; the one-segment router answered with its default
    # certificate; the record names the cause (issue 14).
    pq = recs["2c-pq-one-segment"]
    assert pq["tls"]["sni"] == "www.firefox.test" and pq["tls"]["pq_key_share"] is True, pq
    assert pq["tls"]["key_share_groups"][0] == "X25519MLKEM768", pq["tls"]
    assert pq["tls"]["sni_read"] == 2 and pq["tls"]["hello_reads"] == 2, pq["tls"]
    assert pq["server_tls"]["certificate"]["subject"] == "CN=TRAEFIK DEFAULT CERT", pq
    assert {"sni_after_first_segment", "default_certificate"} <= set(pq["warnings"]), pq
    assert "inspects only the first segment" in pq["hint"] and "-groups X25519" in pq["hint"]
    assert pq["outcome"] == "ok", pq  # the stop keeps its meaning; the warnings say what is wrong
    first = recs["4-not-tls-backend"]["upstream_first"]
    assert first["protocol"] == "http1" and first["summary"].startswith("HTTP/1.1 400"), first
    assert "HTTP/1.1 400" in recs["4-not-tls-backend"]["hint"]
    assert recs["4b-no-sni"]["tls"]["complete"] is True
    assert recs["4b-no-sni"]["tls"]["sni"] is None
    assert recs["4c-plain-to-tls"]["client_first"]["protocol"] == "http1"
    assert "tls" not in recs["4c-plain-to-tls"]
    ok = recs["ok-healthy"]
    assert ok["outcome"] == "ok" and ok["tls"]["sni"] == "app.example.test"
    assert ok["bytes"]["from_upstream"] > 0 and ok["bytes"]["to_client"] == ok["bytes"]["from_upstream"]

    # Everything it started is gone: the linesman child and its temp directory.
    assert_gone(int(pid_file.read_text()))
    assert not list(tmp_path.glob("linesman-demo-*"))


def test_demo_table_fits_100_columns(tmp_path):
    p, _ = run_demo(tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    blank = lines.index("")
    assert len(records_by_listener("\n".join(lines[:blank]))) == len(EXPECTED)
    table = lines[blank + 1:]
    assert table[0].startswith("SCENARIO")
    for line in table:
        assert len(line) <= 100, line
    rows = [l for l in table if l.split(" ", 1)[0] in EXPECTED]
    assert [r.split()[0] for r in rows] == list(EXPECTED)
    assert all(r.rstrip().endswith("yes") for r in rows), rows
    assert sum(1 for l in table if l.startswith("    hint: ")) == len(EXPECTED)
    assert "every scenario produced the record it should" in p.stdout


def test_demo_fails_naming_the_scenario_that_differs(tmp_path):
    exe, pid_file = wrapper(tmp_path, "swap")
    p, _ = run_demo(tmp_path, "--json", "--linesman", str(exe))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "scenario 4-not-tls-backend differs: expected first_reply / upstream_not_tls, " \
           "got connect / upstream_refused" in p.stderr, p.stderr
    for other in set(EXPECTED) - {"4-not-tls-backend"}:
        assert f"scenario {other} differs" not in p.stderr, p.stderr
    assert_gone(int(pid_file.read_text()))


def test_demo_reports_a_linesman_that_does_not_start(tmp_path):
    p, took = run_demo(tmp_path, "--linesman", "/bin/false")
    assert p.returncode == 1
    assert "linesman exited before listening" in p.stderr, p.stderr
    assert took < 20
    assert not list(tmp_path.glob("linesman-demo-*"))
