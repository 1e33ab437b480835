"""`linesman summary` and `linesman correlate` from the command line, on the fixtures in
tests/data/logs (written by tests/data/logs/generate.py; every record is checked against the
access-log schema here, so the fixtures cannot drift from the contract).

No peers needed: these commands only read logs; one test reads a log written by `linesman run`
(skipped while `run` is missing). Env: LINESMAN_BIN, LINESMAN_TEST_DATA.
"""
import json
import os
import pathlib
import socket
import ssl
import subprocess
import time

import jsonschema
import pytest

DATA = pathlib.Path(os.environ.get("LINESMAN_TEST_DATA",
                                   pathlib.Path(__file__).resolve().parents[1] / "data"))
LOGS = DATA / "logs"
BIN = os.environ.get("LINESMAN_BIN", "linesman")

# bad_lines.jsonl holds deliberately broken lines; these line numbers are the good ones.
GOOD_LINES_OF_BAD_FILE = {1, 5, 10}


def run(*args, stdin=None):
    return subprocess.run([BIN, *map(str, args)], input=stdin, capture_output=True, text=True,
                          timeout=60)


def fixture_records():
    for path in sorted(LOGS.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if path.name == "bad_lines.jsonl" and n not in GOOD_LINES_OF_BAD_FILE:
                continue
            yield path.name, n, line


def test_fixtures_are_valid_against_the_schema():
    schema = json.loads((DATA / "access-log.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    count = 0
    for name, n, line in fixture_records():
        record = json.loads(line)
        errors = [e.message for e in validator.iter_errors(record)]
        assert not errors, f"{name}:{n}: {errors}"
        count += 1
    assert count >= 40


def test_a_broken_record_is_caught_by_the_schema_check():
    # The validation above must be able to fail: a record with a reason outside the taxonomy.
    schema = json.loads((DATA / "access-log.schema.json").read_text(encoding="utf-8"))
    record = json.loads((LOGS / "entry.jsonl").read_text(encoding="utf-8").splitlines()[0])
    record["stop"]["reason"] = "gremlins"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(record))


def test_summary_text_fits_100_columns_and_names_what_stopped():
    r = run("summary", LOGS / "entry.jsonl")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), [l for l in lines if len(l) > 100]
    text = r.stdout
    assert "15 records from 1 file" in text
    assert "(no SNI)" in text
    assert "first_reply/upstream_closed_silently" in text
    assert "c000016" in text  # still open at the end of the log (an interim record only)
    assert r.stderr == ""


def test_summary_json_has_the_same_content():
    r = run("summary", "--json", LOGS / "entry.jsonl")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["records"] == 15
    assert j["interim_records"] == 2
    assert j["total"]["funnel"] == {"accepted": 15, "inspected": 14, "routed": 13,
                                    "connected": 12, "first_reply": 9, "stream": 6}
    assert j["total"]["stopped"]["first_reply"] == 6
    top = j["total"]["stop_reasons"][0]
    assert (top["phase"], top["reason"], top["count"]) == ("stream", "completed", 5)
    assert top["example_id"] == "c000001" and top["example_hint"]
    assert j["total"]["connect_ms"] == {"n": 12, "p50": 0.41, "p90": 0.52, "p99": 0.61,
                                        "max": 0.61}
    assert j["total"]["first_reply_ms"]["n"] == 9
    groups = {(g["listener"], g["sni"]): g for g in j["groups"]}
    assert groups[("postgres", None)]["funnel"]["inspected"] == 2
    assert groups[("websecure", "api.example.com")]["stopped"]["connect"] == 1
    assert [o["id"] for o in j["still_open"]] == ["c000016"]


def test_summary_reads_several_files_and_stdin():
    entry = (LOGS / "entry.jsonl").read_text(encoding="utf-8")
    r = run("summary", "--json", LOGS / "correlate_a.jsonl", "-", stdin=entry)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["records"] == 15 + 7
    assert j["files"] == [str(LOGS / "correlate_a.jsonl"), "-"]


def test_summary_reports_bad_lines_with_numbers_and_goes_on():
    r = run("summary", LOGS / "bad_lines.jsonl")
    assert r.returncode == 0
    bad = [line for line in r.stderr.splitlines() if "skipped" in line]
    numbers = [int(line.split("bad_lines.jsonl:")[1].split(":")[0]) for line in bad]
    assert numbers == [2, 4, 6, 7, 8, 9]
    assert "3 records from 1 file (6 bad lines skipped)" in r.stdout


def test_summary_unreadable_file_exits_2_naming_it(tmp_path):
    missing = tmp_path / "nope.jsonl"
    r = run("summary", LOGS / "entry.jsonl", missing)
    assert r.returncode == 2
    assert str(missing) in r.stderr
    r = run("summary", tmp_path)  # a directory
    assert r.returncode == 2
    assert str(tmp_path) in r.stderr


def test_correlate_lists_what_reached_one_side_only():
    r = run("correlate", LOGS / "correlate_a.jsonl", LOGS / "correlate_b.jsonl")
    assert r.returncode == 1, r.stderr
    assert "Pairs: 5" in r.stdout
    assert "Traefik never dialed the backend" in r.stdout
    assert all(len(line) <= 100 for line in r.stdout.splitlines())

    r = run("correlate", "--json", LOGS / "correlate_a.jsonl", LOGS / "correlate_b.jsonl")
    assert r.returncode == 1
    j = json.loads(r.stdout)
    assert [(p["a"], p["b"], p["how"]) for p in j["pairs"]] == [
        ("a-01", "b-01", "proxy_source"), ("a-02", "b-02", "proxy_source"),
        ("a-03", "b-03", "time_sni"), ("a-04", "b-04", "time_sni"), ("a-05", "b-05", "time_sni")]
    assert [a["id"] for a in j["a_only"]] == ["a-06", "a-07"]
    assert "server address has a port" in j["a_only"][0]["hint"]
    assert "never reached Traefik" in j["a_only"][1]["hint"]
    assert [b["id"] for b in j["b_only"]] == ["b-06", "b-07"]


def test_correlate_window_widens_pairing():
    r = run("correlate", "--json", "--window", "2s", LOGS / "correlate_a.jsonl",
            LOGS / "correlate_b.jsonl")
    j = json.loads(r.stdout)
    assert ("a-06", "b-07") in [(p["a"], p["b"]) for p in j["pairs"]]
    assert j["window_ms"] == 2000


def test_correlate_exit_0_when_everything_pairs():
    r = run("correlate", LOGS / "correlate_clean_a.jsonl", LOGS / "correlate_clean_b.jsonl")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Every record paired" in r.stdout


@pytest.mark.parametrize("args", [
    ["--window", "soon"],
    ["--window", "-1s"],
])
def test_correlate_bad_window_exits_2(args):
    r = run("correlate", *args, LOGS / "correlate_a.jsonl", LOGS / "correlate_b.jsonl")
    assert r.returncode == 2
    assert "--window" in r.stderr


def test_correlate_bad_input_exits_2(tmp_path):
    r = run("correlate", LOGS / "correlate_a.jsonl", tmp_path / "b.jsonl")
    assert r.returncode == 2
    assert "b.jsonl" in r.stderr
    r = run("correlate", LOGS / "correlate_a.jsonl")
    assert r.returncode == 2
    assert "two logs" in r.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_summary_reads_a_log_written_by_linesman_run(tmp_path):
    """Contract check against the real writer: `linesman run` in front of a closed port (Traefik
    stand-in: an entrypoint missing from the static config), TLS clients with an SNI, then
    `summary --json` on the log it wrote. Skips when this build has no `run` yet."""
    helped = run("run", "--help")
    if helped.returncode != 0 or "--listen" not in helped.stdout:
        pytest.skip("this linesman has no `run` subcommand yet")
    log = tmp_path / "access.jsonl"
    listen, closed = free_port(), free_port()
    proc = subprocess.Popen([BIN, "run", "--listen", f"127.0.0.1:{listen}", "--upstream",
                             f"127.0.0.1:{closed}", "--access-log", str(log), "--listener-name",
                             "websecure", "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
                time.sleep(0.05)
        else:
            pytest.fail(f"linesman run never listened on 127.0.0.1:{listen}")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", listen), timeout=5) as raw:
                try:
                    with ctx.wrap_socket(raw, server_hostname="app.example.com"):
                        pass
                except (ssl.SSLError, OSError):
                    pass  # the upstream is closed: linesman closes the client side
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = log.read_text().splitlines() if log.exists() else []
            if len([l for l in lines if '"app.example.com"' in l]) >= 3:
                break
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    r = run("summary", "--json", log)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "every record linesman wrote must be readable"
    j = json.loads(r.stdout)
    groups = {(g["listener"], g["sni"]): g for g in j["groups"]}
    app = groups[("websecure", "app.example.com")]
    assert app["connections"] == 3
    assert app["stopped"]["connect"] == 3
    top = app["stop_reasons"][0]
    assert (top["phase"], top["reason"], top["count"]) == ("connect", "upstream_refused", 3)
    assert app["connect_ms"]["n"] == 0
