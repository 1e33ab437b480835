"""test_admin_records: the admin page's API (docs/live-view.md): /api/records and /api/funnel
answered from the ring of recent records, their query validation under hostile input, the page's
files and who may load them (token, a browser naming the port by a DNS name)."""
import collections
import json
import socket

import lsm
from test_admin import http, start


def raw(port, request: bytes, timeout=5.0):
    """raw: (status code, body) of one hand-written request."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = lsm.recv_all(s, timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def records(lm, query=""):
    status, _, body = http(lm, "/api/records" + query)
    assert status == 200, body
    return json.loads(body), body


def test_records_are_the_log_lines_and_the_funnel_counts_them(reg):
    up = lsm.start_peer(reg, "close")
    lm = start(reg, up.port)
    n = 300
    for i in range(n):
        s = lm.connect()
        s.sendall(lsm.client_hello(f"c{i}.example.test"))
        lsm.recv_all(s)
        s.close()
    lsm.wait_until(lambda: len(lm.raw_lines()) >= n, 10, f"{n} records")
    lines = lm.raw_lines()
    lsm.wait_until(lambda: records(lm, "?limit=1")[0]["matched"] >= n, 5, "the ring has them all")
    answer, body = records(lm, "?limit=1000")
    assert answer["matched"] == n and answer["returned"] == n and answer["limit"] == 1000
    # The same bytes as the log, newest first.
    for line in lines:
        assert line.encode() in body.encode()
    assert [r["id"] for r in answer["records"]] == [json.loads(x)["id"] for x in reversed(lines)]
    # Filters: a limit, a stop reason, one id, a window.
    assert records(lm, "?limit=7")[0]["returned"] == 7
    [first] = records(lm, "?id=" + json.loads(lines[0])["id"])[0]["records"]
    assert first == json.loads(lines[0])
    want = collections.Counter((json.loads(x)["stop"]["phase"], json.loads(x)["stop"]["reason"])
                               for x in lines)
    (phase, reason), count = want.most_common(1)[0]
    got = records(lm, f"?phase={phase}&stop_reason={reason}&since=5m&limit=1000")[0]
    assert got["matched"] == count
    assert records(lm, "?stop_reason=upstream_tls_alert")[0]["matched"] == want[
        ("first_reply", "upstream_tls_alert")]
    status, _, body = http(lm, "/api/funnel?window=1m")
    assert status == 200, body
    f = json.loads(body)
    assert f["window"]["total"] == n and f["window"]["complete"] is True
    assert {(c["phase"], c["reason"]): c["count"] for c in f["window"]["ended"]} == dict(want)
    assert f["since_start"]["total"] == n  # the metrics agree
    assert f["ring"]["held"] == n and f["ring"]["evicted"] == 0
    assert f["ring"]["held_bytes"] <= f["ring"]["max_bytes"]
    assert f["ring"]["max_records"] == 10000


def test_hostile_queries_get_a_clear_400_and_nothing_breaks(reg):
    up = lsm.start_peer(reg, "close")
    lm = start(reg, up.port)
    cases = {
        "?limit=-1": "limit: a whole number from 1 to 1000",
        "?limit=99999999": "limit: a whole number from 1 to 1000",
        "?limit=0": "limit: a whole number from 1 to 1000",
        "?limit=1e3": "limit: a whole number from 1 to 1000",
        "?limit=1&limit=2": "limit: given more than once",
        "?since=-1s": "since: bad duration",
        "?since=30h": "since: '30h' must be above 0 and at most 24h",
        "?since=100000h": "since: bad duration",
        "?since=999999999999999999999999s": "since: bad duration",
        "?stop_reason=%3Cscript%3E": "stop_reason: not a stop reason",
        "?phase=all": "phase: use inspect, route, connect, first_reply or stream",
        "?id=%ff%fe": "id: not valid UTF-8 text",
        "?listener=" + "a" * 5000: "listener: longer than 256 bytes",
        "?bogus=1": "unknown query parameter 'bogus'",
    }
    for q, want in cases.items():
        status, _, body = http(lm, "/api/records" + q)
        assert status == 400, (q, body)
        assert json.loads(body)["error"].startswith(want), (q, body)
    for q in ("?window=0s", "?window=25h", "?window=5m&window=1m", "?limit=5"):
        status, _, body = http(lm, "/api/funnel" + q)
        assert status == 400 and "error" in json.loads(body), (q, body)
    # A query near the request bound (64 KiB), then far past it: refused, and the port serves on.
    port = int(lm.admin.split(":")[1])
    status, _ = raw(port, b"GET /api/records?id=" + b"x" * 60000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status in (400, 414), status
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(b"GET /api/records?id=" + b"y" * 200_000 + b" HTTP/1.1\r\n\r\n")
        except OSError:
            pass  # cut off mid-request: what we want
    assert http(lm, "/healthz")[0] == 200
    assert records(lm)[0]["matched"] == 0


def test_page_files_need_no_token_but_the_data_does(reg):
    up = lsm.start_peer(reg, "close")
    lm = start(reg, up.port, "--admin-token", "t0k")
    for path in ("/", "/index.html", "/app.js", "/app.css"):
        status, headers, body = http(lm, path)
        assert status == 200 and body, path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert http(lm, "/app.js")[1]["Content-Type"].startswith("text/javascript")
    for path in ("/api/records", "/api/funnel", "/api/connections"):
        assert http(lm, path)[0] == 401, path
        assert http(lm, path, token="t0k")[0] == 200, path
    assert http(lm, "/", method="POST", data=b"")[0] == 401  # not a page load: token first
    assert http(lm, "/", method="POST", data=b"", token="t0k")[0] == 405
    assert http(lm, "/nope.js")[0] == 401  # not a page file: the token rule applies


def test_a_browser_must_name_the_port_by_address(reg):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 would read the API
    as same-origin; a request a browser sends (Sec-Fetch-*) must say Host: an IP or localhost."""
    up = lsm.start_peer(reg, "close")
    lm = start(reg, up.port)
    port = int(lm.admin.split(":")[1])
    browser = b"Sec-Fetch-Mode: cors\r\nSec-Fetch-Site: same-origin\r\n"
    status, body = raw(port, b"GET /api/connections HTTP/1.1\r\nHost: evil.example:%d\r\n" % port +
                       browser + b"\r\n")
    assert status == 421, body
    assert b"IP address or localhost" in body
    for host in (b"127.0.0.1:%d" % port, b"localhost:%d" % port, b"[::1]:%d" % port):
        status, body = raw(port, b"GET /api/connections HTTP/1.1\r\nHost: " + host + b"\r\n" +
                           browser + b"\r\n")
        assert status == 200, (host, body)
    # Not a browser (curl, linesman top, Prometheus): no change.
    status, _ = raw(port, b"GET /api/connections HTTP/1.1\r\nHost: some.name\r\n\r\n")
    assert status == 200
