"""test_replay_through_linesman: every corpus first flight replayed through `linesman run` (placement
2: Traefik -> linesman -> backend, with openssl s_server as the TLS backend; and placement 1:
client -> linesman -> entrypoint, with HAProxy routing on SNI as the Traefik entrypoint).

linesman is transparent, so the replay's verdict through it equals the verdict straight to the
backend; and the access-log record linesman writes for that connection agrees with the verdict
(same upstream_first protocol, same server_tls version, same first_reply stop).
"""
from __future__ import annotations

import lsm
from test_replay_corpus import (all_cases, case_meta, kCases, observed, replay, start_tls_backend,
                                stop_of)


def record_agrees(rec: dict, v: dict, name: str) -> None:
    phase, reason = stop_of(v)
    if reason != "upstream_silent":
        # (After a silent wait the replay leaves; s_server may then answer the FIN with an
        # alert that only linesman sees.)
        assert rec["upstream_first"]["protocol"] == v["upstream_first"]["protocol"], name
    if reason == "completed":
        # The replay closes once it has its answer: the proxy saw a normal stream end.
        assert rec["stop"]["phase"] == "stream", (name, rec["stop"])
        assert rec["server_tls"]["version"] == v["server_tls"]["version"], name
        assert rec["server_tls"]["cipher"] == v["server_tls"]["cipher"], name
    elif reason == "upstream_silent":
        # The replay gave up waiting and closed; what the backend did after that FIN (s_server
        # answers a cut hello plus FIN with an alert) is seen by linesman only. Still no reply
        # while the client was there: the stop is in first_reply either way.
        assert rec["stop"]["phase"] == "first_reply", (name, rec["stop"])
        assert rec["timing_ms"]["upstream_first_byte"] is None or \
            rec["close"]["first"] == "client", (name, rec)
    else:
        assert (rec["stop"]["phase"], rec["stop"]["reason"]) == (phase, reason), (name, rec)
    if "alert" in v.get("server_tls", {}):
        assert rec["server_tls"]["alert"]["description"] == \
            v["server_tls"]["alert"]["description"], name


def test_every_case_through_linesman_to_s_server(reg):
    backend = start_tls_backend(reg)
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{backend.port}"])
    direct_target = f"127.0.0.1:{backend.port}"
    via_target = f"127.0.0.1:{lm.port}"
    n = 0
    for name in all_cases():
        bin_path = str(kCases / f"{name}.bin")
        for chunks in ("whole", "1"):
            _, direct, err = replay(bin_path, "--target", direct_target, "--timeout", "1s",
                                    "--chunks", chunks)
            assert direct is not None, err
            rc, via, err = replay(bin_path, "--target", via_target, "--timeout", "1s",
                                  "--chunks", chunks)
            assert via is not None, err
            assert observed(via) == observed(direct), f"{name} ({chunks}): via linesman " \
                f"{observed(via)}, direct {observed(direct)}"
            assert via["sent"]["bytes"] == case_meta(name)["bytes"]
            n += 1
            recs = lm.records(n, timeout=15)
            record_agrees(recs[n - 1], via, f"{name} ({chunks})")
            if via["sent"]["protocol"] == "tls" and via["sent"].get("sni"):
                assert recs[n - 1]["tls"]["sni"] == via["sent"]["sni"], name


def test_through_linesman_to_haproxy_entrypoint(reg):
    backend = start_tls_backend(reg)
    hap = lsm.start_haproxy(reg, {"www.example.test": backend.port})
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{hap.port}"])
    target = f"127.0.0.1:{lm.port}"
    bin_path = str(kCases / "curl_https_default.bin")
    rc, v, err = replay(bin_path, "--target", target)
    assert rc == 0 and stop_of(v) == ("stream", "completed"), (err, v)
    rc, v, err = replay(bin_path, "--target", target, "--sni", "unknown.example.test")
    assert rc == 1 and stop_of(v) == ("first_reply", "upstream_closed_silently"), (err, v)
    recs = lm.records(2, timeout=15)
    assert recs[1]["tls"]["sni"] == "unknown.example.test"
    assert (recs[1]["stop"]["phase"], recs[1]["stop"]["reason"]) == \
        ("first_reply", "upstream_closed_silently")
    # --handshake through the passthrough chain shows the backend's certificate.
    rc, v, err = replay(bin_path, "--target", target, "--handshake")
    assert v["handshake"]["chain"][0]["subject"] == "CN=backend.example.test", v
