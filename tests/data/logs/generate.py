#!/usr/bin/env python3
"""Writes the access-log fixtures in this folder (run it from anywhere; it writes beside itself).

The records are shaped like linesman's access log (tests/data/access-log.schema.json) for the
placements in shared/DESIGN.md; test_summary_cli.py validates every record against the schema.
Timings and addresses are made up but plausible for loopback: connects well under a millisecond,
first replies of a few milliseconds. Hand-checked expectations live in
tests/unit/tools/summary_test.cpp and correlate_test.cpp, so edit those when you change these.
"""
import copy
import datetime
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
T0 = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)

HINTS = {
    ("stream", "completed"): "The connection ended normally after both sides spoke.",
    ("stream", "client_closed"): "The client closed the connection after the upstream answered; "
    "usually a normal end initiated by the client.",
    ("first_reply", "upstream_closed_silently"): "The upstream accepted and closed without "
    "sending a byte after a ClientHello for app.example.com: in Traefik this is what an "
    "entrypoint does when no TCP router matches (a Host() rule on a TCP router, or a domain "
    "HostSNI on a router without tls); check the router rule and tls section.",
    ("first_reply", "upstream_tls_alert"): "The upstream answered the ClientHello with a TLS "
    "alert (fatal unrecognized_name): check the SNI, the certificates and TLS options of the "
    "router (or backend) that answered.",
    ("connect", "upstream_refused"): "Nothing listens on the upstream address: in Traefik, "
    "check that the entrypoint exists in the static configuration and bound its port (traefik "
    "logs at start), or that the service's server address and port are right.",
    ("route", "no_route"): "No route matched: the client sent no SNI (an IP literal), and "
    "HostSNI routes cannot match a ClientHello without one; use HostSNI(`*`) or connect by name.",
    ("first_reply", "upstream_error_reply"): "The upstream answered with a protocol-level "
    "refusal (see upstream_first.summary): for PostgreSQL 'no encryption' the backend requires "
    "TLS, so the route must pass TLS through or the client must use sslmode=require.",
    ("inspect", "client_silent"): "The client connected but sent nothing before the peek "
    "timeout: a server-speaks-first protocol (SSH, SMTP, MySQL) needs a listener without SNI "
    "routes, or the client is waiting for something else.",
    ("first_reply", "upstream_silent"): "The upstream accepted but never answered: it may wait "
    "for a protocol the client does not speak (TLS vs. plaintext, PROXY protocol), or a "
    "server-speaks-first greeting never came.",
}

BY = {
    "completed": "client", "client_closed": "client", "upstream_closed_silently": "upstream",
    "upstream_tls_alert": "upstream", "upstream_refused": "upstream", "no_route": "proxy",
    "upstream_error_reply": "upstream", "client_silent": "client", "upstream_silent": "upstream",
}


def ts(ms):
    t = T0 + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tls_hello(sni):
    return {
        "sni": sni,
        "alpn": ["h2", "http/1.1"],
        "legacy_version": "1.2",
        "supported_versions": ["1.3", "1.2"],
        "cipher_count": 31,
        "ja3": "771d5a9b0b4b2e8c1f0e6b1c7d3a2f4e5",
        "ja4": "t13d3112h2_e8f1e7e78f70_6bebaf5329ac",
        "hello_bytes": 517,
        "hello_records": 1,
        "hello_reads": 1,
        "complete": True,
    }


def record(*, at_ms, rid, listener, client_port, phase, reason, sni="app.example.com",
           tls=True, connected=None, first_byte=None, duration=None, route="app",
           upstream=("traefik-websecure", "127.0.0.1", 8443), client_ip="127.0.0.1",
           local_port=9443, proxy_source=None, from_client=None, from_upstream=0,
           client_first=None, upstream_first=None, state=None, hint=None):
    first_byte_client = None if reason == "client_silent" else 0.12
    hello = None if first_byte_client is None or not tls else 0.12
    if duration is None:
        duration = (first_byte or connected or 1.0) + 3.0
    # Three decimals, as a millisecond timer with microsecond resolution writes them.
    duration = round(duration, 3)
    connected = None if connected is None else round(connected, 3)
    first_byte = None if first_byte is None else round(first_byte, 3)
    rec = {
        "ts": ts(at_ms),
        "id": rid,
        "listener": listener,
        "client": {"ip": client_ip, "port": client_port},
        "local": {"ip": "127.0.0.1", "port": local_port},
    }
    if proxy_source:
        rec["proxy_protocol"] = {
            "version": 2,
            "source": {"ip": proxy_source[0], "port": proxy_source[1]},
            "destination": {"ip": "127.0.0.1", "port": 8443},
        }
    if client_first is None:
        client_first = ({"protocol": "tls", "summary": "TLS ClientHello SNI=" + (sni or "-"),
                         "bytes": 522} if tls else {"protocol": "none", "bytes": 0})
    rec["client_first"] = client_first
    if tls:
        rec["tls"] = tls_hello(sni)
    rec["route"] = None if phase in ("inspect", "route") else route
    if phase in ("inspect", "route") or upstream is None:
        rec["upstream"] = None
    else:
        name, ip, port = upstream
        rec["upstream"] = {"name": name, "address": f"{ip}:{port}", "ip": ip, "port": port,
                           "local_port": 40000 + client_port % 20000}
    if upstream_first is not None:
        rec["upstream_first"] = upstream_first
    fc = from_client if from_client is not None else (0 if first_byte_client is None else 522)
    rec["bytes"] = {"from_client": fc, "to_upstream": fc if connected is not None else 0,
                    "from_upstream": from_upstream, "to_client": from_upstream}
    rec["timing_ms"] = {"client_first_byte": first_byte_client, "hello_complete": hello,
                        "upstream_connected": connected, "upstream_first_byte": first_byte}
    rec["duration_ms"] = duration
    if state == "open":
        close = {"first": None, "client": "open", "upstream": "open"}
    elif phase in ("inspect", "route"):
        close = {"first": "proxy" if phase == "route" else "client",
                 "client": "proxy" if phase == "route" else "fin", "upstream": "never"}
    elif phase == "connect":
        close = {"first": "upstream", "client": "proxy", "upstream": "never"}
    elif reason in ("completed", "client_closed"):
        close = {"first": "client", "client": "fin", "upstream": "fin"}
    else:
        close = {"first": "upstream", "client": "proxy", "upstream": "fin"}
    rec["close"] = close
    rec["stop"] = {"phase": phase, "reason": reason, "by": BY[reason]}
    if reason == "upstream_refused":
        rec["stop"]["errno"] = "ECONNREFUSED"
    rec["outcome"] = "ok" if phase == "stream" else "failed"
    rec["hint"] = hint or HINTS[(phase, reason)]
    if state:
        rec["state"] = state
    return rec


def server_hello():
    return {"protocol": "tls", "summary": "TLS ServerHello 1.3 TLS_AES_128_GCM_SHA256",
            "bytes": 1380}


def write(name, records):
    with open(HERE / name, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, separators=(",", ":"))) + "\n")


def entry_log():
    """Placement 1 (client -> linesman -> Traefik entrypoint), two listeners, for summary."""
    recs = []
    port = 51000

    def nid():
        return f"c{len([r for r in recs if 'state' not in r]) + 1:06d}"

    # websecure / app.example.com: 5 completed, 2 closed silently (router rule wrong),
    # 1 client_closed in stream. Connect and first-reply times chosen for exact percentiles.
    completed = [(0.41, 2.31), (0.52, 2.82), (0.38, 2.08), (0.61, 13.11), (0.47, 2.47)]
    for i, (c, f) in enumerate(completed):
        recs.append(record(at_ms=100 * i, rid=nid(), listener="websecure",
                           client_port=port + len(recs), phase="stream", reason="completed",
                           connected=c, first_byte=f, from_upstream=5120,
                           upstream_first=server_hello()))
    for i in range(2):
        recs.append(record(at_ms=600 + 100 * i, rid=nid(), listener="websecure",
                           client_port=port + len(recs), phase="first_reply",
                           reason="upstream_closed_silently", connected=0.5,
                           upstream_first={"protocol": "none", "bytes": 0}))
    recs.append(record(at_ms=800, rid=nid(), listener="websecure",
                       client_port=port + len(recs), phase="stream", reason="client_closed",
                       connected=0.44, first_byte=1.94, from_upstream=4096,
                       upstream_first=server_hello()))
    # websecure / (no SNI): an IP-literal client against SNI routes.
    recs.append(record(at_ms=900, rid=nid(), listener="websecure",
                       client_port=port + len(recs), phase="route", reason="no_route", sni=None))
    # websecure / api.example.com: a TLS alert and a refused connect.
    recs.append(record(at_ms=1000, rid=nid(), listener="websecure",
                       client_port=port + len(recs), phase="first_reply",
                       reason="upstream_tls_alert", sni="api.example.com", route="api",
                       connected=0.39, first_byte=1.49, from_upstream=7,
                       upstream_first={"protocol": "tls", "summary": "TLS Alert fatal "
                                       "unrecognized_name", "bytes": 7}))
    recs.append(record(at_ms=1100, rid=nid(), listener="websecure",
                       client_port=port + len(recs), phase="connect", reason="upstream_refused",
                       sni="api.example.com", route="api"))
    # An interim record of c000015 (its final record is further down) ...
    recs.append(record(at_ms=1200, rid="c000015", listener="websecure", client_port=51100,
                       phase="first_reply", reason="upstream_silent", connected=0.4,
                       duration=5000.0, state="open"))
    # postgres (plaintext, no TLS, so no SNI): two ErrorResponses and a silent client.
    for i in range(2):
        recs.append(record(at_ms=1300 + 100 * i, rid=nid(), listener="postgres",
                           client_port=port + len(recs), phase="first_reply",
                           reason="upstream_error_reply", tls=False, sni=None, route="pg",
                           upstream=("pg", "127.0.0.1", 5432), local_port=15432,
                           connected=0.21 + 0.1 * i, first_byte=0.91 + 0.1 * i,
                           from_client=8, from_upstream=96,
                           client_first={"protocol": "postgres", "summary": "PostgreSQL "
                                         "StartupMessage user=app database=app", "bytes": 8},
                           upstream_first={"protocol": "postgres", "summary": "PostgreSQL "
                                           "ErrorResponse FATAL 28000 no pg_hba.conf entry "
                                           "for host \"127.0.0.1\", no encryption",
                                           "bytes": 96}))
    recs.append(record(at_ms=1500, rid=nid(), listener="postgres",
                       client_port=port + len(recs), phase="inspect", reason="client_silent",
                       tls=False, sni=None, local_port=15432, from_client=0))
    # ... the final record of c000015, and an interim record with no final one (a hang).
    recs.append(record(at_ms=1200, rid="c000015", listener="websecure", client_port=51100,
                       phase="first_reply", reason="upstream_silent", connected=0.4,
                       duration=30000.0))
    recs.append(record(at_ms=1600, rid="c000016", listener="websecure", client_port=51101,
                       phase="first_reply", reason="upstream_silent", connected=0.42,
                       duration=10000.0, state="open"))
    return recs


def bad_lines_log():
    """Good records mixed with lines a reader meets in practice: truncation, junk, bad fields."""
    good = entry_log()[:3]
    missing_stop = copy.deepcopy(good[0])
    del missing_stop["stop"]
    missing_stop["id"] = "bad-missing-stop"
    bad_ts = copy.deepcopy(good[0])
    bad_ts["ts"] = "yesterday"
    bad_ts["id"] = "bad-ts"
    text_timing = copy.deepcopy(good[0])
    text_timing["timing_ms"]["upstream_connected"] = "0.4"
    text_timing["id"] = "bad-timing"
    truncated = json.dumps(good[2], separators=(",", ":"))[:90]
    return [
        good[0],                       # 1
        "this is not json",            # 2
        "",                            # 3 (blank: skipped silently)
        missing_stop,                  # 4
        good[1],                       # 5
        "[1, 2, 3]",                   # 6
        bad_ts,                        # 7
        text_timing,                   # 8
        truncated,                     # 9 (the proxy was killed mid-write)
        good[2],                       # 10
    ]


def correlate_logs():
    """Scenario 6 of issue 4 with linesman on both sides of Traefik.

    A = client -> linesman (listener "front") -> Traefik websecure entrypoint.
    B = Traefik -> linesman (listener "back") -> backend; Traefik's service points at B.
    """
    a, b = [], []
    up_a = ("traefik-websecure", "127.0.0.1", 8443)
    up_b = ("app-backend", "127.0.0.1", 9000)

    def pair(at, aid, bid, cport, sni="app.example.com", proxy=False, delay=1.5):
        a.append(record(at_ms=at, rid=aid, listener="front", client_port=cport, phase="stream",
                        reason="completed", sni=sni, connected=0.4, first_byte=4.2,
                        duration=20.0, upstream=up_a, from_upstream=5120,
                        upstream_first=server_hello()))
        b.append(record(at_ms=at + delay, rid=bid, listener="back", client_port=40000 + cport % 1000,
                        phase="stream", reason="completed", sni=sni, connected=0.3,
                        first_byte=2.0, duration=17.0, upstream=up_b, local_port=9001,
                        from_upstream=5120, upstream_first=server_hello(),
                        proxy_source=("127.0.0.1", cport) if proxy else None))

    # Two exact pairs through PROXY headers (Traefik proxyProtocol v2 toward B).
    pair(0, "a-01", "b-01", 52001, proxy=True, delay=2.0)
    pair(1000, "a-02", "b-02", 52002, proxy=True, delay=1.0)
    # Time+SNI pairs: two connections for the same SNI 1 ms apart; nearest time wins.
    pair(2000, "a-03", "b-03", 52003, delay=0.3)
    pair(2001, "a-04", "b-04", 52004, delay=0.3)
    # No SNI on both sides (TLS without SNI): null equals null.
    pair(3000, "a-05", "b-05", 52005, sni=None, delay=0.8)
    # A only: Traefik accepted, the router matched, the service address had no port, so
    # Traefik closed without dialing: A sees first_reply/upstream_closed_silently, B nothing.
    a.append(record(at_ms=4000, rid="a-06", listener="front", client_port=52006,
                    phase="first_reply", reason="upstream_closed_silently", connected=0.4,
                    duration=2.1, upstream=up_a, upstream_first={"protocol": "none", "bytes": 0}))
    # A only, but it never reached Traefik (entrypoint missing): nothing expected in B.
    a.append(record(at_ms=3500, rid="a-07", listener="front", client_port=52007,
                    phase="connect", reason="upstream_refused", duration=0.3, upstream=up_a))
    # B only: a health check by Traefik itself, not from a client through A.
    b.append(record(at_ms=6000, rid="b-06", listener="back", client_port=41999,
                    phase="stream", reason="completed", tls=False, sni=None, connected=0.2,
                    first_byte=0.9, duration=3.0, upstream=up_b, local_port=9001,
                    from_client=78, from_upstream=120,
                    client_first={"protocol": "http1", "summary": "GET /health HTTP/1.1",
                                  "bytes": 78},
                    upstream_first={"protocol": "http1", "summary": "HTTP/1.1 200 OK",
                                    "bytes": 120}))
    # B too late for a-06's window (a-06 ended at 4002.1 ms; + 1 s window = 5002.1 ms):
    # same SNI at 5003 ms is B only with the default window, paired with --window 2s.
    b.append(record(at_ms=5003, rid="b-07", listener="back", client_port=41998, phase="stream",
                    reason="completed", connected=0.3, first_byte=2.0, duration=17.0,
                    upstream=up_b, local_port=9001, from_upstream=5120,
                    upstream_first=server_hello()))
    write("correlate_a.jsonl", a)
    write("correlate_b.jsonl", b)
    # A clean pair of logs where everything pairs (exit 0).
    write("correlate_clean_a.jsonl", a[:5])
    write("correlate_clean_b.jsonl", b[:5])


def main():
    write("entry.jsonl", entry_log())
    write("bad_lines.jsonl", bad_lines_log())
    correlate_logs()


if __name__ == "__main__":
    main()
