"""test_doctor: `linesman doctor` on the configuration fixtures in tests/data/doctor.

Each broken fixture marks the lines where a finding is expected with `# expect: CODE [CODE...]`;
the test runs doctor and requires exactly those (file, line, code) triples among the errors and
warnings, so a missing finding, a wrong line and an unexpected finding all fail. Stands for: a
Traefik user's own files, including the broken examples they recognise from Traefik's docs.
"""
import ctypes
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lsm  # noqa: E402

kDoctor = lsm.kData / "doctor"


def doctor(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([lsm.linesman_bin(), "doctor", *args], capture_output=True, text=True,
                          timeout=timeout)


def doctor_json(*args: str) -> tuple[int, dict]:
    r = doctor("--json", *args)
    assert r.returncode in (0, 1, 2), r.stderr
    try:
        return r.returncode, json.loads(r.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")


def expected_markers(case: pathlib.Path) -> set[tuple[str, int, str]]:
    out = set()
    for f in sorted(case.rglob("*")):
        if not f.is_file():
            continue
        for n, line in enumerate(f.read_text().splitlines(), start=1):
            m = re.search(r"#\s*expect:\s*(.+)$", line)
            if m:
                for code in m.group(1).split():
                    out.add((str(f), n, code))
    return out


def actual_findings(report: dict) -> set[tuple[str, int, str]]:
    return {(f["file"], f["line"], f["code"]) for f in report["findings"]
            if f["severity"] in ("error", "warning")}


kCases = {
    "f1_entrypoint": ["--static", "traefik.yml"],
    "f1_entrypoint_toml": ["--static", "traefik.toml"],
    "f2_rules": ["--static", "traefik.yml"],
    "f2_rules_toml": ["--dynamic", "dynamic.toml"],
    "f3_services": ["--static", "traefik.yml"],
    "f4_tls": ["--static", "traefik.yml"],
    "f5_ports": ["--static", "traefik.yml"],
    "broken_example": ["--static", "traefik.yml"],
    # Kubernetes: `kubectl get ... -o yaml` output with the static file all k8s_* cases share.
    **{case: ["--kubernetes", "cluster.yaml", "--static", "../k8s_static/traefik.yml"]
       for case in ("k8s_f1_entrypoint", "k8s_f2_host", "k8s_f2_hostsni", "k8s_f3_ports",
                    "k8s_f4_passthrough", "k8s_refs", "k8s_stream", "k8s_broken_example")},
}


@pytest.mark.parametrize("case", sorted(kCases))
def test_fixture_findings_match_markers(case):
    d = kDoctor / case
    args = [str(d / a) if i % 2 else a for i, a in enumerate(kCases[case])]
    code, report = doctor_json("--no-ports", *args)
    want = expected_markers(d)
    assert want, f"fixture {case} has no expect markers"
    got = actual_findings(report)
    assert got == want, (f"missing: {sorted(want - got)}\nunexpected: {sorted(got - want)}\n"
                         + json.dumps(report["findings"], indent=1))
    has_error = any(f["severity"] == "error" for f in report["findings"])
    assert code == (2 if has_error else 1)
    assert report["exit_code"] == code
    # Every finding says what to do about it.
    assert all(f["fix"] and f["message"] for f in report["findings"])
    notes = [f["code"] for f in report["findings"] if f["severity"] == "info"]
    # Without a static file the entrypoint checks are skipped, and the report says so.
    assert notes == (["static_missing"] if "--static" not in kCases[case] else [])


def test_clean_yaml_and_toml_give_a_clean_report():
    for static in (kDoctor / "clean" / "traefik.yml", kDoctor / "clean_toml" / "traefik.toml"):
        r = doctor("--static", str(static))  # with the machine's port check: :80/:443/:993 free
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 errors, 0 warnings, 0 notes" in r.stdout
        assert "no problems found" in r.stdout


def test_kubernetes_report_end_to_end():
    """The acceptance of issue 17 item 4: a doctor report on a Kubernetes fixture."""
    static = kDoctor / "k8s_static" / "traefik.yml"
    clean = doctor("--no-ports", "--kubernetes", str(kDoctor / "k8s_clean" / "cluster.yaml"),
                   "--static", str(static))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 errors, 0 warnings, 0 notes" in clean.stdout
    assert "  read k8s    : " + str(kDoctor / "k8s_clean" / "cluster.yaml") in clean.stdout

    refs = kDoctor / "k8s_refs" / "cluster.yaml"
    r = doctor("--no-ports", "--kubernetes", str(refs), "--static", str(static))
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout
    assert out.startswith("linesman doctor: 3 errors, 0 warnings, 0 notes\n"), out
    assert "\nentrypoint websecure\n  router apps/vault@kubernetescrd\n" in out, out
    assert f"    error   {refs}:20:9  [serverstransport_not_found]\n" in out, out
    assert f"    error   {refs}:24:9  [tlsoption_not_found]\n" in out, out
    assert "uses TLSOption apps/modern, which is not in the input" in out
    assert "\nentrypoint postgres\n  router apps/postgres@kubernetescrd\n" in out, out
    assert "a Service postgres exists in namespace db" in out

    # Without a static file the entrypoints the routes use are named, not checked.
    code, report = doctor_json("--no-ports", "--kubernetes",
                               str(kDoctor / "k8s_f1_entrypoint" / "cluster.yaml"))
    if pathlib.Path("/etc/traefik").exists():
        return
    assert code == 0, report
    assert [f["code"] for f in report["findings"]] == ["static_missing"]
    assert "(the routers use: postgress, WebSecure)" in report["findings"][0]["message"]
    assert report["inputs"]["kubernetes"] == [str(kDoctor / "k8s_f1_entrypoint" / "cluster.yaml")]


def test_kubernetes_bad_input_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text("apiVersion: v1\nkind: List\nitems:\n- apiVersion: traefik.io/v1alpha1\n"
                   "  kind: IngressRouteTCP\n  metadata: {name: r, namespace: a}\n"
                   "  spec:\n    routes: HostSNI(`x`)\n")
    r = doctor("--no-ports", "--kubernetes", str(bad))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"linesman doctor: {bad}:8: IngressRouteTCP a/r spec: routes must be a "
                        "list, found a scalar\n"), r.stderr
    notyaml = tmp_path / "notyaml.yaml"
    notyaml.write_bytes(b"\x00\xff: [\n")
    r = doctor("--no-ports", "--kubernetes", str(notyaml))
    assert r.returncode == 2 and str(notyaml) + ":1:3: YAML syntax error" in r.stderr, r.stderr
    assert "\\xff" in r.stderr, r.stderr  # the bad byte is named, escaped
    r = doctor("--no-ports", "--kubernetes", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and str(tmp_path / "missing.yaml") in r.stderr


def test_usual_places_are_searched(tmp_path):
    (tmp_path / "traefik.yml").write_text((kDoctor / "f4_tls" / "traefik.yml").read_text())
    (tmp_path / "dynamic.yml").write_text((kDoctor / "f4_tls" / "dynamic.yml").read_text())
    env = dict(os.environ, HOME=str(tmp_path / "nohome"), XDG_CONFIG_HOME="")
    r = subprocess.run([lsm.linesman_bin(), "doctor", "--no-ports"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    if pathlib.Path("/etc/traefik").exists():
        pytest.skip("/etc/traefik exists on this machine and is searched first")
    assert r.returncode == 1, r.stdout + r.stderr  # f4_tls has warnings only
    assert "passthrough_tls_ignored" in r.stdout


def test_text_report_groups_by_entrypoint_and_router_errors_first():
    r = doctor("--no-ports", "--static", str(kDoctor / "f2_rules" / "traefik.yml"))
    assert r.returncode == 2
    out = r.stdout
    assert out.startswith("linesman doctor: 10 errors, 0 warnings")
    assert "\nentrypoint websecure\n" in out
    assert "  router host-on-tcp@file\n" in out
    dyn = kDoctor / "f2_rules" / "dynamic.yml"
    line = next(n for n, t in enumerate(dyn.read_text().splitlines(), 1) if "|| (HostSNI" in t)
    # The unbalanced rule's finding names file:line:column (the column inside the rule).
    assert re.search(re.escape(str(dyn)) + rf":{line}:\d+  \[rule_parse_error\]", out), out
    assert "fix: " in out


def test_docker_inspect_labels():
    code, report = doctor_json("--no-ports", "--static", str(kDoctor / "docker" / "traefik.yml"),
                               "--docker-inspect", str(kDoctor / "docker" / "inspect.json"))
    assert code == 2
    got = {(f["router"], f["code"]) for f in report["findings"]}
    assert got == {("pg@docker", "entrypoint_missing"), ("pg@docker", "rule_http_matcher"),
                   ("pg@docker", "passthrough_tls_ignored"),
                   ("redis@docker", "hostsni_without_tls"),
                   ("redis@docker", "service_address_malformed")}, report
    lines = {f["code"]: f["line"] for f in report["findings"]}
    text = (kDoctor / "docker" / "inspect.json").read_text().splitlines()
    assert "traefik.tcp.routers.pg.entrypoints" in text[lines["entrypoint_missing"] - 1]


def test_unreadable_inputs_exit_2_naming_the_file(tmp_path):
    missing = tmp_path / "nope.yml"
    r = doctor("--static", str(missing))
    assert r.returncode == 2
    assert str(missing) in r.stderr

    bad = tmp_path / "traefik.yml"
    bad.write_text("entryPoints:\n  web:\n    address: \":80\"\n  - oops\n")
    r = doctor("--static", str(bad))
    assert r.returncode == 2
    assert str(bad) + ":4:" in r.stderr, r.stderr
    assert r.stdout == ""

    badtoml = tmp_path / "dyn.toml"
    badtoml.write_text("[tcp.routers.a]\nrule = \"HostSNI(`a`)\"\nrule = \"again\"\n")
    r = doctor("--dynamic", str(badtoml))
    assert r.returncode == 2
    assert str(badtoml) + ":3" in r.stderr, r.stderr

    st = tmp_path / "static.yml"
    st.write_text("providers:\n  file:\n    filename: /nonexistent/dynamic.yml\n")
    r = doctor("--static", str(st))
    assert r.returncode == 2
    assert "/nonexistent/dynamic.yml" in r.stderr and str(st) in r.stderr


def _listener_code(name: str) -> str:
    return ("import ctypes, socket, sys, time\n"
            f"ctypes.CDLL(None).prctl(15, {name!r}.encode(), 0, 0, 0)\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
            "print(s.getsockname()[1], flush=True)\n"
            "time.sleep(60)\n")


@pytest.mark.parametrize("comm", ["pgbouncer", "traefik"])
def test_port_held_by_another_program(reg, tmp_path, comm):
    p = reg.add(lsm.Proc(f"holder-{comm}", [lsm.kPython, "-c", _listener_code(comm)], reg.tmp,
                         stdout_pipe=True))
    port = int(p.wait_line(r"^(\d+)$", 10).group(1))
    static = tmp_path / "traefik.yml"
    static.write_text(f"entryPoints:\n  postgres:\n    address: \":{port}\"\n")
    code, report = doctor_json("--static", str(static))
    held = [f for f in report["findings"] if f["code"] == "port_in_use"]
    if comm == "traefik":
        assert held == [] and code == 0, report  # Traefik holding its own port is fine
        return
    assert code == 2
    assert len(held) == 1, report
    assert held[0]["line"] == 3 and held[0]["entrypoint"] == "postgres"
    assert f"pgbouncer (pid {p.pid}" in held[0]["message"]
