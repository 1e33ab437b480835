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


def test_admin_records_bounds_the_ring_and_the_funnel_says_it_is_incomplete(reg):
    up = lsm.start_peer(reg, "close")
    lm = start(reg, up.port, "--admin-records", "3")
    lsm.hellos_through(lm, 5)
    lsm.wait_until(lambda: json.loads(http(lm, "/api/funnel")[2])["ring"]["pushed"] == 5, 5,
                   "5 records pushed")
    f = json.loads(http(lm, "/api/funnel?window=1m")[2])
    assert f["ring"]["held"] == 3 and f["ring"]["evicted"] == 2 and f["ring"]["max_records"] == 3
    assert f["window"]["total"] == 3 and f["window"]["complete"] is False
    assert f["since_start"]["total"] == 5
    assert records(lm)[0]["matched"] == 3
    for bad in ("0", "-1", "1000001", "x"):
        rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream",
                                       "127.0.0.1:9", "--admin", "127.0.0.1:0",
                                       "--admin-records", bad])
        assert rc == 2 and "--admin-records" in err, (bad, rc, err)
    rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
                                   "--admin-records", "5"])
    assert rc == 2 and "--admin-records: needs --admin" in err, err


def test_answers_are_not_compressed_for_a_browser(reg):
    """A browser accepts br: httplib answered with brotli at quality 11, which took the page's
    refresh from ~30 ms to over 10 s with 1,500 open connections (a 790 KB answer)."""
    import urllib.request
    up = lsm.start_peer(reg, "silent")
    lm = start(reg, up.port)
    socks = [lm.connect() for _ in range(200)]
    for s in socks:
        s.sendall(b"PING\r\n")
    lsm.wait_until(lambda: len(json.loads(http(lm, "/api/connections")[2])) == 200, 10,
                   "200 open connections")
    for path in ("/", "/app.js", "/app.css", "/api/connections", "/api/records", "/api/funnel",
                 "/metrics"):
        req = urllib.request.Request(f"http://{lm.admin}{path}")
        req.add_header("Accept-Encoding", "br, gzip, deflate")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.headers.get("Content-Encoding") is None, path
            body = r.read()
        if path == "/api/connections":
            assert len(json.loads(body)) == 200


def test_a_page_of_another_site_cannot_add_a_fault(reg):
    """CSRF: any web page can POST a text/plain body to a loopback port without a preflight; the
    body below is a valid fault. With --admin-faults and no token it was applied (201)."""
    up = lsm.start_peer(reg, "close")
    lm = start(reg, up.port, "--admin-faults")
    port = int(lm.admin.split(":")[1])
    body = b'{"spec":"latency:ms=100"}'

    def post(extra: bytes):
        return raw(port, b"POST /api/faults HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + extra +
                   b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    for extra in (b"Origin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\n",
                  b"Origin: http://evil.example\r\n",
                  b"Sec-Fetch-Site: same-site\r\n"):
        status, answer = post(extra)
        assert status == 403 and b"another site" in answer, (extra, status, answer)
    assert json.loads(http(lm, "/api/faults")[2]) == []
    # The same request from a client that is not a browser (curl) still works.
    status, answer = post(b"")
    assert status == 201, answer
    assert len(json.loads(http(lm, "/api/faults")[2])) == 1
