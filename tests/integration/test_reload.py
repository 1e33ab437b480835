"""test_reload: configuration reload (SIGHUP and --watch) of a --config file, as Traefik's file
provider reloads its routes: new connections get the new upstreams, routes, timeouts and
listeners; open connections keep theirs; a bad file changes nothing and is counted. Upstreams are
peer.py `banner` servers, so the first bytes a client reads say which upstream it reached."""
import json
import os
import re
import signal
import socket
import time
import urllib.request

import lsm

kAdminRx = r"linesman: admin on (\S+):(\d+)"


def write_config(path, listeners, drain="10s"):
    """write_config: a --config file; `listeners` are (name, port, upstream_port, routes)
    tuples, routes a list of (sni, upstream_port); every listener logs to the test's access log
    (the one lsm.Linesman reads). Written to a new file renamed over the old
    one, as editors and configuration tools do."""
    lines = ["defaults:", "  timeouts:", f"    drain: {drain}", "listeners:"]
    for name, port, up, routes in listeners:
        lines += [f"  - name: {name}", f"    listen: 127.0.0.1:{port}",
                  f"    access_log: {path.parent / 'linesman.jsonl'}"]
        if up:
            lines.append(f"    upstream: 127.0.0.1:{up}")
        if routes:
            lines.append("    routes:")
            for sni, rup in routes:
                lines += [f"      - sni: {sni}", f"        upstream: 127.0.0.1:{rup}"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def start(reg, cfg, *extra):
    up = lsm.start_peer(reg, "echo", name="flag-upstream")
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up.port}", "--config", str(cfg),
                            "--admin", "127.0.0.1:0", *extra], listen="127.0.0.1:0",
                      wait=False)
    m = lm.proc.wait_line(kAdminRx, 10, stream="err")
    lm.admin = f"127.0.0.1:{int(m.group(2))}"
    # The flag listener (named after its address) is the one lm.connect() uses.
    m = lm.proc.wait_line(r"listening on 127\.0\.0\.1:(\d+) \(listener 127\.0\.0\.1:0\)", 5,
                          stream="err")
    lm.host, lm.port = "127.0.0.1", int(m.group(1))
    return lm


def metric(lm, name):
    with urllib.request.urlopen(f"http://{lm.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search("^" + re.escape(name) + r" (\d+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return int(m.group(1))


def reloads(lm, result):
    return metric(lm, f'linesman_config_reloads_total{{result="{result}"}}')


def hup_and_wait(lm, result, before):
    lm.proc.signal(signal.SIGHUP)
    lsm.wait_until(lambda: reloads(lm, result) > before, 10, f"a reload counted as {result}")


def read_up_to(s, n):
    """read_up_to: what `s` sends within 5 s, until n bytes came."""
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        got += lsm.recv_some(s, 5)
    return got


def banner_of(port, expect_len=2):
    s = lsm.connect(port)
    return s, read_up_to(s, expect_len)


def banner(reg, text):
    return lsm.start_peer(reg, "banner", "--banner", text, name=f"peer-{text}")


def web_to_aa(reg, *extra, drain="10s"):
    """web_to_aa: banner peers AA and BB, and linesman started with a config file whose one
    listener `web` (a free port) goes to AA. Returns (a, b, port, cfg, lm)."""
    a, b = banner(reg, "AA"), banner(reg, "BB")
    port = lsm.free_port()
    cfg = reg.tmp / "linesman.yaml"
    write_config(cfg, [("web", port, a.port, [])], drain=drain)
    lm = start(reg, cfg, *extra)
    lsm.wait_until(lambda: port in lsm.listening_ports(lm.pid), 10, "the file's listener")
    return a, b, port, cfg, lm


def test_sighup_new_connections_get_the_new_upstream_open_ones_keep_theirs(reg):
    a, b, port, cfg, lm = web_to_aa(reg)

    held, first = banner_of(port)
    assert first == b"AA"
    write_config(cfg, [("web", port, b.port, [])])
    hup_and_wait(lm, "success", 0)

    fresh, second = banner_of(port)
    assert second == b"BB", "a connection after the reload reaches the new upstream"
    # The connection accepted before the reload still streams to its upstream (A echoes).
    held.sendall(b"still-a")
    assert read_up_to(held, 7) == b"still-a"
    held.close()
    fresh.close()
    recs = lm.records(2)
    by_gen = {r["config_generation"]: r for r in recs}
    assert set(by_gen) == {1, 2}, recs
    assert by_gen[1]["upstream"]["port"] == a.port
    assert by_gen[2]["upstream"]["port"] == b.port
    assert all(r["listener"] == "web" for r in recs)
    assert metric(lm, "linesman_config_generation") == 2
    assert reloads(lm, "failure") == 0


def test_bad_file_changes_nothing_and_names_file_line_and_key(reg):
    a, b, port, cfg, lm = web_to_aa(reg)

    bad_files = [
        # (text, what the message must name)
        (f"listeners:\n  - name: web\n    listen: 127.0.0.1:{port}\n"
         f"    upstream: 127.0.0.1:{b.port}\n    upstrem: 127.0.0.1:1\n",
         ":5: listeners[0].upstrem: unknown key"),
        (f"listeners:\n  - name: web\n    listen: 127.0.0.1:{port}\n"
         f"    upstream: 127.0.0.1:{b.port}\n    timeouts: {{idle: 5 parsecs}}\n",
         "listeners[0].timeouts.idle: bad duration"),
        ("listeners: [\n", ":"),  # a YAML syntax error: the file and a line
        # a port another program holds: the bind fails, nothing changes
        (f"listeners:\n  - name: web\n    listen: 127.0.0.1:{port}\n"
         f"    upstream: 127.0.0.1:{b.port}\n  - name: taken\n    listen: 127.0.0.1:{a.port}\n"
         f"    upstream: 127.0.0.1:{b.port}\n", f"cannot listen on 127.0.0.1:{a.port}"),
    ]
    for i, (text, named) in enumerate(bad_files):
        cfg.write_text(text)
        hup_and_wait(lm, "failure", i)
        lsm.wait_until(lambda: named in lm.stderr(), 5, f"the error naming {named!r}")
        assert str(cfg) in lm.stderr()
        s, got = banner_of(port)
        s.close()
        assert got == b"AA", f"bad file {i} changed the upstream"
    assert reloads(lm, "success") == 0
    assert metric(lm, "linesman_config_generation") == 1
    # The same file fixed: the reload goes through.
    write_config(cfg, [("web", port, b.port, [])])
    hup_and_wait(lm, "success", 0)
    s, got = banner_of(port)
    s.close()
    assert got == b"BB"
    recs = lm.records(len(bad_files) + 1)
    assert sorted(r["config_generation"] for r in recs) == [1] * len(bad_files) + [2]


def test_listeners_added_and_removed_with_a_drain(reg):
    a, b = banner(reg, "AA"), banner(reg, "BB")
    p1, p2 = lsm.free_port(), lsm.free_port()
    cfg = reg.tmp / "linesman.yaml"
    write_config(cfg, [("old", p1, a.port, [])], drain="1s")
    lm = start(reg, cfg)
    lsm.wait_until(lambda: p1 in lsm.listening_ports(lm.pid), 10, "listener old")
    held, got = banner_of(p1)
    assert got == b"AA"

    write_config(cfg, [("new", p2, b.port, [])], drain="1s")
    hup_and_wait(lm, "success", 0)
    lsm.wait_until(lambda: p2 in lsm.listening_ports(lm.pid), 10, "listener new bound")
    lsm.wait_until(lambda: p1 not in lsm.listening_ports(lm.pid), 10, "listener old closed")
    s, got = banner_of(p2)
    s.close()
    assert got == b"BB"
    # The removed listener's open connection gets its drain timeout (1s), then proxy_shutdown.
    recs = lm.records(2, timeout=10)
    old = [r for r in recs if r["listener"] == "old"]
    assert len(old) == 1, recs
    lsm.assert_stop(old[0], "stream", "proxy_shutdown", "proxy")
    assert old[0]["config_generation"] == 1
    assert 900 <= old[0]["duration_ms"] <= 5000, old[0]["duration_ms"]
    held.close()
    # The flag listener (--listen/--upstream) survives every reload, on the same port.
    f = lm.connect()
    f.sendall(b"x")
    assert lsm.recv_some(f, 5) == b"x"
    f.close()
    assert lm.port in lsm.listening_ports(lm.pid)


def test_route_sets_switch_and_sni_routes_reload(reg):
    a, b = banner(reg, "AA"), banner(reg, "BB")
    port = lsm.free_port()
    cfg = reg.tmp / "linesman.yaml"
    write_config(cfg, [("sni", port, None, [("app.example.test", a.port)])])
    lm = start(reg, cfg)
    lsm.wait_until(lambda: port in lsm.listening_ports(lm.pid), 10, "listener sni")
    for round_, (up, want) in enumerate([(b, b"BB"), (a, b"AA"), (b, b"BB")]):
        write_config(cfg, [("sni", port, None, [("app.example.test", up.port)])])
        hup_and_wait(lm, "success", round_)
        s = lsm.connect(port)
        s.sendall(lsm.client_hello("app.example.test"))
        got = read_up_to(s, 2)
        s.close()
        assert got[:2] == want, f"round {round_}"


def test_watch_reloads_when_the_file_is_replaced(reg):
    a, b, port, cfg, lm = web_to_aa(reg, "--watch")
    write_config(cfg, [("web", port, b.port, [])])  # renamed over the old file, no signal
    lsm.wait_until(lambda: reloads(lm, "success") == 1, 10, "--watch reload")
    s, got = banner_of(port)
    s.close()
    assert got == b"BB"
    # An edit in place (write, close) is seen too; a broken edit is counted and changes nothing.
    with open(cfg, "a") as f:
        f.write("bogus: 1\n")
    lsm.wait_until(lambda: reloads(lm, "failure") == 1, 10, "--watch failed reload")
    assert "bogus: unknown key" in lm.stderr()
    s, got = banner_of(port)
    s.close()
    assert got == b"BB"


def test_watch_needs_config(reg):
    rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream",
                                   "127.0.0.1:9", "--watch"])
    assert rc == 2 and "--watch: needs --config" in err


def test_every_accepted_connection_has_one_record_through_reloads_and_drain(reg):
    """accepted == records written (+ dropped) across reloads and a SIGTERM drain."""
    a, b, port, cfg, lm = web_to_aa(reg, "--drain-timeout", "1s", drain="1s")
    held = []
    for i in range(6):
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.close()
        held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        write_config(cfg, [("web", port, (a if i % 2 else b).port, [])], drain="1s")
        hup_and_wait(lm, "success", i)
    accepted = metric(lm, "linesman_connections_accepted_total")
    assert accepted == 6 * 21
    lm.proc.signal(signal.SIGTERM)
    assert lm.proc.wait(30) == 0
    recs = lm.records(accepted)
    assert len(recs) == accepted
    assert len({r["id"] for r in recs}) == accepted
    # A connection gets the generation current when linesman accepts it: one still in the
    # kernel's backlog at a reload gets the next one.
    gens = {r["config_generation"] for r in recs}
    assert set(range(1, 7)) <= gens <= set(range(1, 8)), gens
    for s in held:
        s.close()


def test_renamed_listener_keeps_its_socket_and_shows_its_new_name(reg):
    a = banner(reg, "AA")
    port = lsm.free_port()
    cfg = reg.tmp / "linesman.yaml"
    write_config(cfg, [("before", port, a.port, [])])
    lm = start(reg, cfg)
    lsm.wait_until(lambda: port in lsm.listening_ports(lm.pid), 10, "listener before")
    write_config(cfg, [("after", port, a.port, [])])
    hup_and_wait(lm, "success", 0)
    with urllib.request.urlopen(f"http://{lm.admin}/api/listeners", timeout=5) as r:
        names = [x["name"] for x in json.loads(r.read())]
    assert "after" in names and "before" not in names, names
    s, got = banner_of(port)
    s.close()
    assert got == b"AA"
    rec = lm.records(1)[0]
    assert rec["listener"] == "after" and rec["config_generation"] == 2
    lsm.wait_until(lambda: 'listener="after"' in urllib.request.urlopen(
        f"http://{lm.admin}/metrics", timeout=5).read().decode(), 5, "metrics under the new name")
