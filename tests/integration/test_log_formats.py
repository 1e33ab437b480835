"""test_log_formats: `--log-format linesman|ecs|otel` (docs/log-formats.md).

Each scenario (a completed TLS connection, a refused upstream, no_route, upstream_not_tls, PROXY
protocol in and out, an idle timeout) runs through three linesman processes, one per format, with
the same upstream. Every line is checked: linesman records against the schema, ECS documents
against a field list written from the ECS field reference (names, types, allowed values, units),
OTLP lines against the protobuf JSON mapping of ExportLogsServiceRequest (lowerCamelCase names,
64-bit integers as strings, AnyValue with exactly one member) and the semantic-convention
attribute list. The three records of a scenario must tell the same stop.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import re
import socket
import time

import pytest

import lsm

kSni = "app.example.test"
kFormats = ("linesman", "ecs", "otel")

# ---------------------------------------------------------------------------------------------
# ECS 8.11 field reference (https://www.elastic.co/guide/en/ecs/8.11/ecs-field-reference.html):
# the fields the ecs mapping may write, with their ECS type. Anything else must be linesman.*.
kEcsFields: dict[str, str] = {
    "@timestamp": "date",
    "ecs.version": "keyword",
    "message": "match_only_text",
    "event.kind": "keyword", "event.category": "keyword[]", "event.type": "keyword[]",
    "event.id": "keyword", "event.dataset": "keyword", "event.start": "date", "event.end": "date",
    "event.duration": "long", "event.outcome": "keyword", "event.reason": "keyword",
    "network.transport": "keyword", "network.type": "keyword", "network.protocol": "keyword",
    "network.bytes": "long",
    "tls.client.server_name": "keyword", "tls.client.ja3": "keyword", "tls.version": "keyword",
    "tls.version_protocol": "keyword", "tls.next_protocol": "keyword", "tls.cipher": "keyword",
    "tls.established": "boolean",
    "observer.hostname": "keyword", "observer.product": "keyword", "observer.type": "keyword",
    "host.name": "keyword",
}
for side in ("source", "destination", "client", "server"):
    kEcsFields.update({f"{side}.ip": "ip", f"{side}.address": "keyword", f"{side}.port": "long",
                       f"{side}.bytes": "long", f"{side}.domain": "keyword"})
kEcsRequired = ("@timestamp", "ecs.version", "event.kind", "event.category", "event.type",
                "event.duration", "event.outcome", "event.reason")
# ECS allowed values (the categorization fields and the keyword fields with a fixed set).
kEcsAllowed = {
    "event.kind": {"alert", "asset", "enrichment", "event", "metric", "state", "pipeline_error",
                   "signal"},
    "event.category": {"network"},
    # event.type values the ECS reference allows with category "network".
    "event.type": {"access", "allowed", "connection", "denied", "end", "error", "info",
                   "protocol", "start"},
    "event.outcome": {"failure", "success", "unknown"},
    "network.type": {"ipv4", "ipv6"},
}


def flatten(doc: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def rfc3339(s: str) -> datetime.datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", s), s
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def check_ecs_type(name: str, kind: str, v) -> None:
    if kind.endswith("[]"):
        assert isinstance(v, list) and v and all(isinstance(x, str) for x in v), (name, v)
    elif kind in ("keyword", "match_only_text"):
        assert isinstance(v, str), (name, v)
    elif kind == "long":
        assert isinstance(v, int) and not isinstance(v, bool) and v >= 0, (name, v)
    elif kind == "boolean":
        assert isinstance(v, bool), (name, v)
    elif kind == "ip":
        ipaddress.ip_address(v)
    elif kind == "date":
        rfc3339(v)
    else:
        raise AssertionError(f"unknown ECS type {kind}")


def check_ecs(doc: dict) -> dict:
    flat = flatten(doc)
    for name in kEcsRequired:
        assert name in flat, f"ECS: {name} missing: {doc}"
    for name, v in flat.items():
        if name.startswith("linesman."):
            continue
        assert name in kEcsFields, f"ECS: {name} is neither an ECS field we map nor linesman.*"
        check_ecs_type(name, kEcsFields[name], v)
        if name in kEcsAllowed:
            vals = v if isinstance(v, list) else [v]
            assert set(vals) <= kEcsAllowed[name], (name, v)
    # event.duration is in nanoseconds: end - start, to the microsecond the record keeps.
    span = rfc3339(flat["event.end"]) - rfc3339(flat["event.start"])
    assert flat["event.duration"] == (span // datetime.timedelta(microseconds=1)) * 1000, flat
    assert flat["@timestamp"] == flat["event.start"]
    for lower in ("network.transport", "network.protocol", "tls.version_protocol"):
        assert flat.get(lower, "").islower() or lower not in flat, (lower, flat.get(lower))
    if "tls.version" in flat:
        assert re.fullmatch(r"\d\.\d", flat["tls.version"]), flat["tls.version"]
    if "tls.client.server_name" in flat:
        assert flat["destination.domain"] == flat["tls.client.server_name"]
    return flat


# ---------------------------------------------------------------------------------------------
# OTLP JSON (opentelemetry-proto, logs/v1 and common/v1 in the protobuf JSON mapping; the
# OpenTelemetry Protocol spec: trace/span ids hex, enums as integers, int64/fixed64 as strings).
kOtlpKeys = {
    "request": {"resourceLogs"},
    "resourceLogs": {"resource", "scopeLogs", "schemaUrl"},
    "resource": {"attributes", "droppedAttributesCount"},
    "scopeLogs": {"scope", "logRecords", "schemaUrl"},
    "scope": {"name", "version", "attributes", "droppedAttributesCount"},
    "logRecord": {"timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText",
                  "body", "attributes", "droppedAttributesCount", "flags", "traceId", "spanId"},
}
kInt64 = re.compile(r"-?\d+")
kUint64 = re.compile(r"\d+")
# Semantic conventions (v1.26+, network.*, server.*, destination.*, tls.*): attribute -> type.
kOtelAttributes = {
    "network.peer.address": "string", "network.peer.port": "int",
    "network.local.address": "string", "network.local.port": "int",
    "network.transport": "string", "network.type": "string",
    "server.address": "string", "server.port": "int",
    "destination.address": "string", "destination.port": "int",
    "tls.protocol.name": "string", "tls.protocol.version": "string", "tls.cipher": "string",
    "tls.next_protocol": "string", "tls.client.ja3": "string", "tls.established": "bool",
}
kResourceAttributes = {"service.name": "string", "service.instance.id": "string",
                       "host.name": "string"}
# SeverityNumber ranges of the log data model.
kSeverity = {"INFO": range(9, 13), "WARN": range(13, 17), "ERROR": range(17, 21)}


def any_value(v) -> tuple[str, object]:
    """any_value: (type, python value) of an OTLP AnyValue; exactly one member allowed."""
    assert isinstance(v, dict) and len(v) == 1, f"AnyValue needs exactly one member: {v}"
    (k, x), = v.items()
    if k == "stringValue":
        assert isinstance(x, str)
        return "string", x
    if k == "boolValue":
        assert isinstance(x, bool)
        return "bool", x
    if k == "intValue":
        assert isinstance(x, str) and kInt64.fullmatch(x), f"int64 must be a string: {v}"
        return "int", int(x)
    if k == "doubleValue":
        assert isinstance(x, (int, float)) and not isinstance(x, bool)
        return "double", x
    if k == "arrayValue":
        assert set(x) <= {"values"}
        return "array", [any_value(e)[1] for e in x.get("values", [])]
    if k == "kvlistValue":
        return "kvlist", attributes(x.get("values", []))
    raise AssertionError(f"not an AnyValue member: {k}")


def attributes(kvs) -> dict:
    assert isinstance(kvs, list)
    out = {}
    for kv in kvs:
        assert set(kv) == {"key", "value"}, kv
        assert kv["key"] not in out, f"duplicate attribute {kv['key']}"
        out[kv["key"]] = any_value(kv["value"])
    return out


def keys_ok(obj: dict, kind: str) -> None:
    assert isinstance(obj, dict) and set(obj) <= kOtlpKeys[kind], \
        f"{kind}: unknown fields {set(obj) - kOtlpKeys[kind]}"


def check_otel(doc: dict) -> dict:
    keys_ok(doc, "request")
    assert len(doc["resourceLogs"]) == 1
    rl = doc["resourceLogs"][0]
    keys_ok(rl, "resourceLogs")
    keys_ok(rl["resource"], "resource")
    res = attributes(rl["resource"]["attributes"])
    for k, t in kResourceAttributes.items():
        assert res[k][0] == t, (k, res.get(k))
    assert res["service.name"][1] == "linesman"
    assert len(rl["scopeLogs"]) == 1
    sl = rl["scopeLogs"][0]
    keys_ok(sl, "scopeLogs")
    keys_ok(sl["scope"], "scope")
    assert len(sl["logRecords"]) == 1
    lr = sl["logRecords"][0]
    keys_ok(lr, "logRecord")
    for t in ("timeUnixNano", "observedTimeUnixNano"):
        assert isinstance(lr[t], str) and kUint64.fullmatch(lr[t]), f"{t} must be a string: {lr}"
    assert int(lr["timeUnixNano"]) <= int(lr["observedTimeUnixNano"])
    assert isinstance(lr["severityNumber"], int)
    assert lr["severityNumber"] in kSeverity[lr["severityText"]], lr
    assert any_value(lr["body"])[0] == "string" and lr["body"]["stringValue"].strip()
    attrs = attributes(lr["attributes"])
    for k, (t, v) in attrs.items():
        if k.startswith("linesman."):
            continue
        assert k in kOtelAttributes, f"OTel: {k} is neither a semantic convention we map nor linesman.*"
        assert t == kOtelAttributes[k], (k, t, v)
    assert attrs["network.transport"][1] == "tcp"
    assert attrs["network.type"][1] in ("ipv4", "ipv6")
    ipaddress.ip_address(attrs["network.peer.address"][1])
    ipaddress.ip_address(attrs["network.local.address"][1])
    return {"record": lr, "attrs": {k: v for k, (t, v) in attrs.items()}, "resource": res}


# ---------------------------------------------------------------------------------------------
# Scenarios: each gets a fresh upstream, then drives one connection through `lm`.

def completed_tls(reg):
    backend = lsm.start_s_server(reg)
    args = ["--upstream", f"127.0.0.1:{backend.port}"]

    def drive(lm):
        r = lsm.s_client(lm.port, kSni, alpn="h2,http/1.1")
        assert r.returncode == 0, r.stderr[-500:]
    return args, drive, "completed"


def refused(reg):
    args = ["--upstream", f"127.0.0.1:{lsm.closed_port()}"]

    def drive(lm):
        s = lm.connect()
        s.sendall(lsm.client_hello(kSni))
        lsm.recv_all(s, timeout=5)
        s.close()
    return args, drive, "upstream_refused"


def no_route(reg):
    up = lsm.start_peer(reg, "echo")
    args = ["--route", f"{kSni}=127.0.0.1:{up.port}"]

    def drive(lm):
        s = lm.connect()
        s.sendall(lsm.client_hello("other.example.test"))
        lsm.recv_all(s, timeout=5)
        s.close()
    return args, drive, "no_route"


def not_tls(reg):
    up = lsm.start_peer(reg, "http400")
    args = ["--upstream", f"127.0.0.1:{up.port}"]

    def drive(lm):
        s = lm.connect()
        s.sendall(lsm.client_hello(kSni))
        lsm.recv_all(s, timeout=5)
        s.close()
    return args, drive, "upstream_not_tls"


def proxy_protocol(reg):
    up = lsm.start_peer(reg, "echo")
    args = ["--upstream", f"127.0.0.1:{up.port}", "--proxy-protocol-in", "v1",
            "--proxy-protocol-strip", "--proxy-protocol-out", "v2"]

    def drive(lm):
        s = lm.connect()
        s.sendall(b"PROXY TCP4 192.0.2.10 192.0.2.20 40000 443\r\n" + lsm.client_hello(kSni))
        lsm.recv_some(s, timeout=5)
        s.shutdown(socket.SHUT_WR)
        lsm.recv_all(s, timeout=5)
        s.close()
    return args, drive, None


def idle_timeout(reg):
    up = lsm.start_peer(reg, "echo")
    args = ["--upstream", f"127.0.0.1:{up.port}", "--idle-timeout", "1s"]

    def drive(lm):
        s = lm.connect()
        s.sendall(lsm.client_hello(kSni))
        lsm.recv_all(s, timeout=6)
        s.close()
    return args, drive, "idle_timeout"


kScenarios = [completed_tls, refused, no_route, not_tls, proxy_protocol, idle_timeout]


def one_line(lm) -> dict:
    lsm.wait_until(lambda: lm.raw_lines() or None, 10,
                   f"a line in {lm.log_path}; stderr:\n{lm.stderr()}")
    time.sleep(0.05)  # a second record (there must be none) would come in the same batch
    lines = lm.raw_lines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


@pytest.mark.parametrize("scenario", kScenarios, ids=lambda f: f.__name__)
def test_every_format(reg, scenario):
    args, drive, reason = scenario(reg)
    docs = {}
    for fmt in kFormats:
        lm = lsm.Linesman(reg, args + ["--log-format", fmt], name=f"linesman-{fmt}")
        drive(lm)
        docs[fmt] = one_line(lm)
    rec = lsm.check_record(docs["linesman"])
    ecs = check_ecs(docs["ecs"])
    otel = check_otel(docs["otel"])
    stop = rec["stop"]
    if reason is not None:
        assert stop["reason"] == reason, lsm.brief(rec)
    # The same stop and outcome in all three (`by` may differ: which side of a completed TLS
    # exchange closes first is a race).
    assert ecs["event.reason"] == stop["reason"] == ecs["linesman.stop.reason"]
    assert ecs["linesman.stop.phase"] == stop["phase"]
    assert ecs["event.outcome"] == ("success" if rec["outcome"] == "ok" else "failure")
    a = otel["attrs"]
    assert (a["linesman.stop.phase"], a["linesman.stop.reason"]) == (stop["phase"], stop["reason"])
    assert otel["record"]["severityText"] == ("INFO" if rec["outcome"] == "ok" else "WARN")
    assert a["linesman.id"].startswith(otel["resource"]["service.instance.id"][1] + "-")
    # Where the record has TLS, so do the standard fields.
    if rec.get("tls", {}).get("sni"):
        assert ecs["tls.client.server_name"] == rec["tls"]["sni"] == a["server.address"]
        assert ecs["tls.client.ja3"] == rec["tls"]["ja3"] == a["tls.client.ja3"]
        assert ecs["linesman.tls.ja4"] == rec["tls"]["ja4"] == a["linesman.tls.ja4"]
    if rec.get("server_tls", {}).get("cipher"):
        assert ecs["tls.cipher"] == rec["server_tls"]["cipher"] == a["tls.cipher"]
        assert ecs["tls.version"] == rec["server_tls"]["version"] == a["tls.protocol.version"]
    if scenario is completed_tls:
        assert ecs["tls.established"] is True and a["tls.established"] is True
        assert ecs["source.bytes"] > 0 and ecs["destination.bytes"] > 0
        assert int(ecs["destination.port"]) == rec["upstream"]["port"]
    if scenario is proxy_protocol:
        assert ecs["linesman.proxy_protocol.source.ip"] == "192.0.2.10"
        assert a["linesman.proxy_protocol.source.ip"] == "192.0.2.10"
        assert a["linesman.proxy_protocol_out.version"] == 2


def test_shared_file_with_two_formats_is_a_config_error(reg):
    log = reg.tmp / "shared.jsonl"
    cfg = reg.tmp / "two.yaml"
    cfg.write_text(f"""listeners:
  - {{name: edge, listen: 127.0.0.1:0, upstream: 127.0.0.1:1, access_log: {log}}}
  - {{name: inner, listen: 127.0.0.1:0, upstream: 127.0.0.1:1, access_log: {log}, log_format: otel}}
""")
    rc, _, err = lsm.run_linesman(["run", "--config", str(cfg)])
    assert rc != 0
    assert "'edge'" in err and "'inner'" in err and "different formats" in err, err


def test_unknown_format_is_refused():
    rc, _, err = lsm.run_linesman(["run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1",
                                   "--log-format", "gelf"])
    assert rc != 0 and "--log-format" in err and "gelf" in err, err
