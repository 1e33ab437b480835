"""test_inspect: `linesman inspect --json` agrees with the corpus ground truth on every case.

The ground truth (tests/data/corpus/cases/NAME.json) comes from tshark, an independent parser;
this is the acceptance check for the reading layer as users see it.
"""
import json
import os
import pathlib
import subprocess
import tempfile

import pytest

from test_modern_hello import group_name

BIN = os.environ.get("LINESMAN_BIN", "linesman")
DATA = pathlib.Path(os.environ.get("LINESMAN_TEST_DATA", pathlib.Path(__file__).parents[1] / "data"))
CASES = DATA / "corpus" / "cases"
TIMEOUT = 60

VERSION_NAMES = {0x0304: "1.3", 0x0303: "1.2", 0x0302: "1.1", 0x0301: "1.0", 0x0300: "SSL 3.0"}
# Where the corpus accepts strict rejection, what linesman chose (see tests/unit/tls/corpus_test.cpp).
STRICT_CHOICES = {"edge_duplicate_sni_extension": "malformed",
                  "edge_sni_uppercase_trailing_dot": "complete"}
OUTCOME_STATUS = {"ok": "complete", "incomplete": "incomplete", "malformed": "malformed",
                  "not_client_hello": "malformed", "plaintext": "not_tls"}


def is_grease(v: int) -> bool:
    return (v >> 8) == (v & 0xff) and (v & 0x0f) == 0x0a


def version_name(hex_str: str) -> str:
    v = int(hex_str, 16)
    return VERSION_NAMES.get(v, "0x%04x" % v)


def case_names():
    names = sorted(p.stem for p in CASES.glob("*.json"))
    assert len(names) >= 40, "corpus missing"
    return names


@pytest.fixture(scope="module")
def lines():
    paths = [str(CASES / (n + ".bin")) for n in case_names()]
    out = subprocess.run([BIN, "inspect", "--json", *paths], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True)
    result = {}
    for raw in out.stdout.splitlines():
        line = json.loads(raw)
        result[pathlib.Path(line["file"]).stem] = line
    assert len(result) == len(paths), out.stdout
    return result


@pytest.mark.parametrize("name", case_names())
def test_inspect_agrees_with_ground_truth(lines, name):
    meta = json.loads((CASES / (name + ".json")).read_text())
    gt = meta["ground_truth"]
    line = lines[name]
    want = STRICT_CHOICES.get(name, OUTCOME_STATUS[gt["outcome"]])
    assert line["status"] == want
    first = line["client_first"]
    assert first["bytes"] == meta["bytes"]
    if meta["kind"] == "plaintext":
        assert first["protocol"] not in ("tls", "none")
        assert "tls" not in line
        return
    if meta.get("tls_offset", 0) == 0 and gt["outcome"] != "incomplete":
        assert first["protocol"] == "tls"
    if want != "complete":
        assert "hello" not in line
        if want == "incomplete":
            assert line["tls"]["complete"] is False
        return

    tls = line["tls"]
    assert tls["complete"] is True
    assert tls["sni"] == gt["sni"]
    assert tls["alpn"] == (gt["alpn"] or [])
    assert tls["legacy_version"] == version_name(gt["legacy_version"])
    assert tls["supported_versions"] == [version_name(v) for v in (gt["supported_versions"] or [])
                                         if not is_grease(int(v, 16))]
    assert tls["cipher_count"] == gt["cipher_suites_count"]
    assert tls["ja3"] == gt["ja3"]
    assert tls["ja4"] == gt["ja4"]
    assert tls["hello_records"] == gt["records"]
    assert tls["hello_bytes"] == meta["tshark"]["client_hello"]["handshake_length"] + 4
    assert tls["ech"] == (65037 in gt["extensions"])
    assert tls["hello_reads"] == 0
    assert "sni_read" not in tls  # read-based: meaningless for a file
    ch = meta["tshark"]["client_hello"]
    assert tls["supported_groups"] == [group_name(g) for g in ch["supported_groups"] or []]
    assert tls["key_share_groups"] == [group_name(g) for g in ch["key_share_groups"] or []]
    assert tls["pq_key_share"] == ("X25519MLKEM768" in tls["key_share_groups"])
    assert (tls["ech_config_id"] is not None) == tls["ech"]

    hello = line["hello"]
    assert hello["wire_bytes"] == gt["hello_bytes"]
    assert hello["tls_offset"] == meta["tls_offset"]
    assert hello["record_version"] == gt["record_version"]
    assert hello["extensions"] == gt["extensions"]
    for key in ("ja3_full", "ja4_r", "ja4_o", "ja4_ro"):
        assert hello[key] == gt[key], key


def test_text_mode_is_readable():
    path = CASES / "openssl_alpn_h2_http11.bin"
    out = subprocess.run([BIN, "inspect", str(path)], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True)
    assert "complete" in out.stdout
    assert "sni: api.example.test" in out.stdout
    assert "alpn: h2, http/1.1" in out.stdout
    assert "ja4: t13d" in out.stdout


def test_unreadable_file_fails_with_its_name():
    missing = "/nonexistent/linesman-first-flight.bin"
    out = subprocess.run([BIN, "inspect", "--json", missing, str(CASES / "curl_https_default.bin")],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode != 0
    assert missing in out.stderr
    # The readable file is still reported.
    assert len(out.stdout.splitlines()) == 1


def test_non_printable_sni_is_escaped():
    raw = bytearray((CASES / "curl_https_default.bin").read_bytes())
    at = raw.find(b"www.example.test")
    assert at > 0
    raw[at + 3] = 0x01  # "www\x01example.test": same length, framing unchanged
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "hello.bin"
        path.write_bytes(bytes(raw))
        out = subprocess.run([BIN, "inspect", "--json", str(path)], capture_output=True,
                             timeout=TIMEOUT, check=True)
    assert b"\x01" not in out.stdout
    line = json.loads(out.stdout)
    assert line["status"] == "complete"
    assert line["tls"]["sni"] == "www\\x01example.test"
