"""test_admin: the live view - /api/connections, /metrics, interim records and `linesman top`
against an upstream that accepts and never answers (peer.py silent)."""
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import lsm

kAdminRx = r"linesman: admin on (\S+):(\d+)"


def start(reg, up_port, *extra):
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up_port}", "--admin", "127.0.0.1:0",
                            *extra])
    m = lm.proc.wait_line(kAdminRx, 10, stream="err")
    lm.admin = f"127.0.0.1:{int(m.group(2))}"
    return lm


def http(lm, path, method="GET", token=None, data=None):
    """http: (status, headers, body text) of one request to the admin endpoint."""
    req = urllib.request.Request(f"http://{lm.admin}{path}", method=method, data=data)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def conns(lm, query=""):
    status, _, body = http(lm, "/api/connections" + query)
    assert status == 200, body
    return json.loads(body)


def metric(text, name, **labels):
    """metric: the value of the sample `name{labels...}` (labels matched as a subset)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def hang(reg, *extra):
    """hang: linesman in front of a silent upstream, one client that sent a request and waits."""
    up = lsm.start_peer(reg, "silent")
    lm = start(reg, up.port, *extra)
    s = lm.connect()
    s.sendall(b"PING\r\n")
    lsm.wait_until(lambda: [c for c in conns(lm) if c["phase"] == "first_reply"], 5,
                   "the connection in first_reply on /api/connections")
    return up, lm, s


def test_hang_shows_in_first_reply_with_growing_age(reg):
    up, lm, s = hang(reg, "--log-open-every", "300ms")
    [c1] = conns(lm)
    assert c1["phase"] == "first_reply"
    assert c1["upstream"] == f"127.0.0.1:{up.port}"
    assert c1["bytes"] == {"from_client": 6, "from_upstream": 0}
    assert c1["client"] == "127.0.0.1:%d" % s.getsockname()[1]
    time.sleep(0.5)
    [c2] = conns(lm)
    assert c2["id"] == c1["id"]
    assert c2["age_seconds"] >= c1["age_seconds"] + 0.4
    assert c2["phase_seconds"] >= c1["phase_seconds"] + 0.4
    # Filters.
    assert len(conns(lm, "?phase=first_reply")) == 1
    assert conns(lm, "?phase=stream") == []
    assert len(conns(lm, "?older_than=200ms")) == 1
    assert conns(lm, "?older_than=1h") == []
    assert conns(lm, "?sni=app.example.test") == []
    assert http(lm, "/api/connections?phase=bogus")[0] == 400
    assert http(lm, "/api/connections?older_than=soon")[0] == 400
    status, _, body = http(lm, "/api/listeners")
    assert status == 200
    [li] = json.loads(body)
    assert li["open"] == 1 and li["listen"] == f"127.0.0.1:{lm.port}"
    assert http(lm, "/healthz")[:1] == (200,)

    # Interim records: "state": "open", stop = where it waits, schema-valid, same id.
    def interim():
        out = []
        for line in lm.raw_lines():
            rec = json.loads(line)
            if rec.get("state") == "open":
                out.append(rec)
        return out if len(out) >= 2 else None
    recs = lsm.wait_until(interim, 5, "two interim records in the access log")
    for rec in recs:
        errors = list(lsm.kValidator.iter_errors(rec))
        assert not errors, f"{errors[0].message}: {rec}"
        assert rec["id"] == c1["id"]
        assert (rec["stop"]["phase"], rec["stop"]["reason"]) == ("first_reply", "upstream_silent")
        assert rec["close"]["first"] is None and rec["close"]["upstream"] == "open"
        assert rec["outcome"] == "failed"
    assert recs[1]["duration_ms"] > recs[0]["duration_ms"]

    # Metrics count it while open, then as ended once the client gives up.
    status, headers, text = http(lm, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert metric(text, "linesman_open_connections", phase="first_reply") == 1
    assert metric(text, "linesman_open_connections", phase="stream") == 0
    assert metric(text, "linesman_received_bytes_total", **{"from": "client"}) == 6
    assert metric(text, "linesman_upstream_connect_seconds_count") == 1
    assert metric(text, "linesman_first_reply_seconds_count") == 0
    lsm.close_rst(s)

    def final():
        ended = [json.loads(x) for x in lm.raw_lines() if "state" not in json.loads(x)]
        return ended or None
    [rec] = lsm.wait_until(final, 5, "the final record")
    lsm.check_record(rec)
    lsm.assert_stop(rec, "first_reply", "client_gave_up", "client", "ECONNRESET")
    text = http(lm, "/metrics")[2]
    assert metric(text, "linesman_open_connections", phase="first_reply") == 0
    assert metric(text, "linesman_connections_ended_total", phase="first_reply",
                  reason="client_gave_up") == 1
    assert metric(text, "linesman_peek_outcomes_total", outcome="not_tls") == 1
    assert conns(lm) == []


def test_promtool_accepts_metrics(reg, tmp_path):
    promtool = lsm.need("promtool")
    up, lm, s = hang(reg)
    text = http(lm, "/metrics")[2]
    for fam in ("linesman_open_connections", "linesman_connections_ended_total",
                "linesman_received_bytes_total", "linesman_upstream_connect_seconds",
                "linesman_first_reply_seconds", "linesman_peek_outcomes_total",
                "linesman_splice_fallbacks_total"):
        assert f"# TYPE {fam} " in text and f"# HELP {fam} " in text, fam
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    # promtool reports lint problems on stdout/stderr even with rc 0 in some versions.
    assert "error" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    s.close()


def test_404_405_and_read_only(reg):
    up = lsm.start_peer(reg, "silent")
    lm = start(reg, up.port)
    assert http(lm, "/nope")[0] == 404
    assert http(lm, "/api")[0] == 404
    for path in ("/api/connections", "/metrics", "/api/listeners", "/healthz"):
        for method in ("POST", "PUT", "DELETE"):
            status, headers, _ = http(lm, path, method=method, data=b"")
            assert status == 405, (method, path, status)
            assert "GET" in headers["Allow"]


def test_refuses_remote_bind_without_token(reg, tmp_path):
    up = lsm.start_peer(reg, "silent")
    base = [lsm.linesman_bin(), "run", "--listen", "127.0.0.1:0", "--upstream",
            f"127.0.0.1:{up.port}", "--access-log", str(tmp_path / "x.jsonl")]
    for extra in (["--admin", "0.0.0.0:0"], ["--admin", "0.0.0.0:0", "--admin-allow-remote"],
                  ["--admin", "0.0.0.0:0", "--admin-token", "t"]):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (extra, r.returncode, r.stderr)
        assert "--admin" in r.stderr and "loopback" in r.stderr, r.stderr
    # Allowed with both; then the token is required (except for /healthz).
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--admin", "0.0.0.0:0",
                            "--admin-allow-remote", "--admin-token", "s3cret"])
    port = int(lm.proc.wait_line(kAdminRx, 10, stream="err").group(2))
    lm.admin = f"127.0.0.1:{port}"
    status, headers, _ = http(lm, "/api/connections")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert http(lm, "/metrics", token="wrong")[0] == 401
    assert http(lm, "/api/connections", token="s3cret")[0] == 200
    assert http(lm, "/healthz")[0] == 200


def test_top_in_tmux_shows_the_hang(reg, tmp_path):
    tmux = lsm.need("tmux")
    up, lm, s = hang(reg)
    cid = conns(lm)[0]["id"]
    sock = str(tmp_path / "tmux.sock")
    session = "lmtop"
    subprocess.run([tmux, "-S", sock, "new-session", "-d", "-x", "80", "-y", "24", "-s", session,
                    lsm.linesman_bin(), "top", "--admin", lm.admin], check=True, timeout=10)
    try:
        def screen():
            return subprocess.run([tmux, "-S", sock, "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True, timeout=10).stdout

        def shows():
            text = screen()
            return text if "first_reply" in text and f"127.0.0.1:{s.getsockname()[1]}" in text \
                else None
        text = lsm.wait_until(shows, 10, "linesman top to show the hanging connection")
        lines = text.splitlines()
        assert all(len(x) <= 80 for x in lines)
        assert "1 open" in text and "first_reply 1" in text
        (tmp_path / "top.txt").write_text(text)
        # It refreshes: the age column moves.
        first = [x for x in lines if "first_reply" in x and "127.0.0.1:" in x][0]
        lsm.wait_until(lambda: [x for x in screen().splitlines()
                                if "127.0.0.1:" in x and "first_reply" in x and x != first],
                       5, "a redraw with a new age")
        subprocess.run([tmux, "-S", sock, "send-keys", "-t", session, "q"], check=True, timeout=10)

        def gone():
            r = subprocess.run([tmux, "-S", sock, "has-session", "-t", session],
                               capture_output=True, timeout=10)
            return r.returncode != 0
        lsm.wait_until(gone, 5, "linesman top to quit on q")
    finally:
        subprocess.run([tmux, "-S", sock, "kill-server"], capture_output=True, timeout=10)
    assert cid
    s.close()


def test_top_once_unreachable_exits_1(reg):
    port = lsm.closed_port()
    r = subprocess.run([lsm.linesman_bin(), "top", "--admin", f"127.0.0.1:{port}", "--once"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "admin unreachable" in r.stdout
