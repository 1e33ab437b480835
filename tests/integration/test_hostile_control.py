"""test_hostile_control: a few hundred malformed requests to the admin endpoint and malformed
--config files reloaded into a running linesman. Each gets a clear 4xx or a named, counted
error; linesman neither crashes nor hangs and keeps forwarding. (test_hostile_admin.py covers
bodies, tokens and slow clients; tests/unit/proxy/config_test.cpp the parser on its own.)"""
import http.client
import random
import re
import signal
import threading
import time
import urllib.request

import lsm
from hostile import get, raw_request, rss_kib, start_admin


def admin_requests():
    """admin_requests: (request bytes, allowed statuses), deterministic (seeded)."""
    rnd = random.Random(16)
    out = []
    for n in (1000, 8000, 9000, 60000):  # long paths: 414 past httplib's 8 KiB request line
        out.append((b"GET /" + b"a" * n + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    {404} if n < 8100 else {414}))
    for q in [
        "phase=%ff", "phase=", "phase=STREAM", "phase=stream%00", "phase=stream&phase=connect",
        "older_than=", "older_than=1e400s", "older_than=99999999999h", "older_than=-1s",
        "older_than=5", "older_than=5%ffs", "older_than=nan", "older_than=inf", "older_than=0x10s",
        "older_than=1s&older_than=2s", "sni=%ff%fe", "sni=a%00b", "sni=" + "a" * 300,
        "sni=%c0%af", "sni=%ed%a0%80", "bogus=1", "%zz=1", "=1", "a" * 300 + "=1",
    ]:
        out.append((f"GET /api/connections?{q} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), {400}))
    alphabet = b"%?&=/ \x00\x01\xff\xfe\xc3\x80azAZ09.-_~:\r\n\t"
    for _ in range(260):  # random query strings: 400 unless they happen to be valid
        q = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40)))
        q = q.replace(b" ", b"%20").replace(b"\r", b"%0d").replace(b"\n", b"%0a")
        out.append((b"GET /api/connections?" + q + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    {200, 400}))
    for line in [b"GARBAGE", b"GET / HTTP/9.9", b"GET  HTTP/1.1", b"\x00\x01\x02", b"BREW /healthz HTTP/1.1",
                 b"GET /healthz HTTP/1.1\nHost: x\n", b"GET /\xff\xfe HTTP/1.1", b"GET /%ff HTTP/1.1",
                 b"GET /metrics?x=%ff HTTP/1.1", b"GET /api/listeners/../metrics HTTP/1.1",
                 b"GET /api/connections HTTP/1.1\r\nX: " + b"a" * 100000,
                 b"GET /api/connections HTTP/1.1\r\n" + b"A: b\r\n" * 200 + b"Broken header",
                 b"GET http://x/healthz HTTP/1.1", b"CONNECT 127.0.0.1:1 HTTP/1.1",
                 b"GET /healthz HTTP/1.1\r\nContent-Length: -1", b"GET /healthz HTTP/1.1\r\nContent-Length: 99999999999999999999999"]:
        out.append((line + b"\r\n\r\n", None))  # any 4xx (or a plain answer for the benign)
    return out


def test_admin_malformed_requests_get_4xx_and_no_crash(reg):
    lm = start_admin(reg)
    reqs = admin_requests()
    assert len(reqs) > 300
    rss0 = rss_kib(lm.pid)
    bad = []
    for data, allowed in reqs:
        t = time.monotonic()
        status, answer = raw_request(lm.admin_port, data)
        took = time.monotonic() - t
        ok = (status in allowed) if allowed else (400 <= status < 500 or status == 200)
        if not ok or took > 3:
            bad.append((data[:80], status, round(took, 2), answer[:120]))
        assert lm.proc.alive(), f"linesman died on {data[:80]!r}"
    assert not bad, "\n".join(map(repr, bad[:20]))
    status, _, body = get(lm.admin_port, "/healthz")
    assert status == 200 and body == b"ok\n"
    # The requests left no memory behind (sanitizer builds keep shadow memory: not measured).
    if not lsm.kSanitized:
        assert rss_kib(lm.pid) < rss0 + 16 * 1024


def test_admin_query_errors_are_named(reg):
    lm = start_admin(reg)
    for q, named in [("sni=%ff", "sni: not valid UTF-8"), ("bogus=1", "unknown query parameter"),
                     ("phase=stream&phase=connect", "phase: given more than once"),
                     ("sni=" + "a" * 300, "sni: longer than 256")]:
        status, _, body = get(lm.admin_port, "/api/connections?" + q)
        assert status == 400 and named in body.decode(), (q, status, body)


kAdminRx = r"linesman: admin on (\S+):(\d+)"


def bad_configs(port, up):
    """bad_configs: (text or bytes, a needle the error must contain)."""
    good = (f"listeners:\n  - name: web\n    listen: 127.0.0.1:{port}\n"
            f"    upstream: 127.0.0.1:{up}\n    access_log: LOG\n")
    out = [
        ("listeners: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("listeners: " + "{a: " * 3000 + "}" * 3000 + "\n", "nested too deeply"),
        ("a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
         + "listeners: [*a9]\n", "unknown key"),
        (b"listeners:\n  - name: \"\xff\xfe\"\n    listen: 127.0.0.1:1\n    upstream: a:1\n",
         "not valid UTF-8"),
        (b"listeners:\n  - listen: '127.0.0.1:1\x00'\n    upstream: a:1\n", "\\x00"),
        (b"\xef\xbb\xbf\xff\xfe\x00\x00garbage", ""),
        ("", "expected a mapping"),
        ("listeners: []\n", "non-empty list"),
        ("listeners:\n  - {? [a, b] : 1}\n", "a key must be a name"),
        ("x" * (1024 * 1024 + 10), "too large"),
        (good.replace(f"127.0.0.1:{up}", "127.0.0.1:99999"), "bad port"),
        (good + "  - name: web2\n    listen: 127.0.0.1:" + str(port) + "\n    upstream: a:1\n",
         "both listen on"),
        (good.replace("    access_log: LOG\n", "    access_log: /nonexistent/dir/x.jsonl\n"),
         "cannot write"),
        (good.replace(f"upstream: 127.0.0.1:{up}", f"upstream: 127.0.0.1:{port}"),
         "forwarding loop"),
    ]
    rnd = random.Random(16)
    for _ in range(60):  # seeded byte flips of the good file
        b = bytearray(good.encode())
        for _ in range(rnd.randint(1, 3)):
            b[rnd.randrange(len(b))] = rnd.choice(b"\x00\t:{}[]&*!|>'\"%@`#-?,\xff")
        out.append((bytes(b), None))
    for n in range(0, len(good), 7):  # files saved half-way
        out.append((good[:n], None))
    return out


def test_bad_config_reloads_are_named_counted_and_change_nothing(reg):
    a = lsm.start_peer(reg, "banner", "--banner", "AA", name="peer-AA")
    port = lsm.free_port()
    cfg = reg.tmp / "linesman.yaml"
    log = reg.tmp / "linesman.jsonl"
    text = (f"listeners:\n  - name: web\n    listen: 127.0.0.1:{port}\n"
            f"    upstream: 127.0.0.1:{a.port}\n    access_log: {log}\n")
    cfg.write_text(text)
    up = lsm.start_peer(reg, "echo", name="flag-upstream")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--config", str(cfg),
                            "--admin", "127.0.0.1:0"], access_log=log, wait=False)
    admin = lm.proc.wait_line(kAdminRx, 10, stream="err").group(2)

    def counts():
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
            body = r.read().decode()
        f = re.search(r'^linesman_config_reloads_total\{result="failure"\} (\d+)$', body, re.M)
        s = re.search(r'^linesman_config_reloads_total\{result="success"\} (\d+)$', body, re.M)
        g = re.search(r"^linesman_config_generation (\d+)$", body, re.M)
        return int(f.group(1)), int(s.group(1)), int(g.group(1))

    variants = bad_configs(port, a.port)
    failures = 0
    for data, needle in variants:
        data = data.replace("LOG", str(log)) if isinstance(data, str) else data
        if isinstance(data, str):
            cfg.write_text(data)
        else:
            cfg.write_bytes(data)
        before = counts()
        lm.proc.signal(signal.SIGHUP)
        after = lsm.wait_until(lambda: (lambda c: c if c[0] + c[1] > before[0] + before[1]
                                        else None)(counts()), 10, f"the reload of {data[:60]!r}")
        assert lm.proc.alive()
        if after[1] > before[1]:
            # A flip that still makes a valid file (a comment, a quote): fine, put the good one
            # back so that the next variant starts from it.
            assert needle is None, f"accepted: {data[:200]!r}"
            cfg.write_text(text)
            lm.proc.signal(signal.SIGHUP)
            lsm.wait_until(lambda: counts()[1] > after[1], 10, "the good file again")
            continue
        failures += 1
        if needle:
            lsm.wait_until(lambda: needle in lm.stderr(), 5, f"an error naming {needle!r}")
    assert failures >= 20
    # Every error line is one printable line naming the file.
    errors = [x for x in lm.proc.err_lines if "reload of" in x and "failed" in x]
    assert len(errors) == failures
    for e in errors:
        assert str(cfg) in e, e
        assert all(c == "\t" or ord(c) >= 0x20 for c in e), repr(e)
    # Still forwarding on the listener of the last good generation.
    s = lsm.connect(port)
    assert lsm.recv_some(s, 5) == b"AA"
    s.close()


def test_sighup_storm_resets_no_admin_request(reg):
    """SIGHUPs while the admin API answers: no request is cut. A signal delivered to an admin
    thread interrupted its poll, and httplib closed that request's socket unread (a reset)."""
    up = lsm.start_peer(reg, "echo", name="storm-upstream")
    port = lsm.free_port()
    cfg = reg.tmp / "linesman.yaml"
    cfg.write_text(f"listeners:\n  - name: web\n    listen: 127.0.0.1:{port}\n"
                   f"    upstream: 127.0.0.1:{up.port}\n")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--config", str(cfg),
                            "--admin", "127.0.0.1:0"], wait=False)
    admin = lm.proc.wait_line(kAdminRx, 10, stream="err").group(2)
    stop = threading.Event()

    def storm():
        for _ in range(400):  # bounded: 400 signals, 2 ms apart
            if stop.is_set():
                return
            lm.proc.signal(signal.SIGHUP)
            time.sleep(0.002)

    t = threading.Thread(target=storm)
    t.start()
    errors = []
    deadline = time.monotonic() + 20
    try:
        for _ in range(300):
            if time.monotonic() > deadline:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
                    r.read()
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
    finally:
        stop.set()
        t.join(10)
    assert lm.proc.alive()
    assert not errors, f"{len(errors)} of 300 admin requests failed during SIGHUPs: {errors[:3]}"
