"""test_prometheus: a real Prometheus (Debian's server) scrapes linesman's /metrics; its answer to
`sum by (reason) (linesman_connections_ended_total)` must equal the stop reasons counted in the
access-log records. Also checks and unit-tests the shipped alerting rules with promtool
(tools/deploy/prometheus/), and loads them into the running server."""
import collections
import json
import pathlib
import subprocess
import time
import urllib.parse
import urllib.request

import lsm

kRulesDir = pathlib.Path(__file__).resolve().parents[2] / "tools" / "deploy" / "prometheus"
kAdminRx = r"linesman: admin on (\S+):(\d+)"
kQuery = "sum by (reason) (linesman_connections_ended_total)"


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read().decode())


def test_rules_check_and_unit_tests():
    promtool = lsm.need("promtool")
    r = subprocess.run([promtool, "check", "rules", "linesman-rules.yml"], cwd=kRulesDir,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 4 rules found" in r.stdout, r.stdout
    r = subprocess.run([promtool, "test", "rules", "linesman-rules.test.yml"], cwd=kRulesDir,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


def start_prometheus(reg, admin: str) -> str:
    """start_prometheus: Debian's prometheus on a free loopback port scraping `admin` every
    second, with linesman's rules loaded; returns its base URL once the target is up."""
    binary = lsm.need("prometheus")
    port = lsm.free_port()
    config = reg.tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{kRulesDir / 'linesman-rules.yml'}']\n"
        "scrape_configs:\n"
        "  - job_name: linesman\n"
        f"    static_configs: [{{targets: ['{admin}']}}]\n")
    reg.add(lsm.Proc("prometheus", [binary, f"--config.file={config}",
                                    f"--storage.tsdb.path={reg.tmp / 'tsdb'}",
                                    f"--web.listen-address=127.0.0.1:{port}"], reg.tmp))
    base = f"http://127.0.0.1:{port}"

    def target_up():
        try:
            targets = get_json(base + "/api/v1/targets")["data"]["activeTargets"]
        except OSError:
            return None
        return any(t["health"] == "up" for t in targets) or None

    lsm.wait_until(target_up, 20, f"prometheus on {base} reports the linesman target up",
                   step=0.2)
    rules = get_json(base + "/api/v1/rules")["data"]["groups"]
    assert [r["name"] for g in rules for r in g["rules"]] == [
        "LinesmanFirstReplyFailuresRising", "LinesmanRecordsDropped",
        "LinesmanConfigReloadFailed", "LinesmanNearMaxConnections"]
    return base


def query(base: str, promql: str) -> dict:
    return get_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))


def test_prometheus_sum_by_reason_matches_records(reg):
    echo = lsm.start_peer(reg, "echo")
    rst = lsm.start_peer(reg, "rst")
    lm = lsm.Linesman(reg, ["--route", f"echo.test=127.0.0.1:{echo.port}",
                            "--route", f"refused.test=127.0.0.1:{lsm.closed_port()}",
                            "--route", f"rst.test=127.0.0.1:{rst.port}",
                            "--listener-name", "web", "--admin", "127.0.0.1:0"])
    m = lm.proc.wait_line(kAdminRx, 10, stream="err")
    base = start_prometheus(reg, f"127.0.0.1:{m.group(2)}")

    # Connections with known stops: echoed and closed, refused, reset, no route.
    plan = ["echo.test"] * 3 + ["refused.test"] * 2 + ["rst.test"] + ["unknown.test"] * 2
    for sni in plan:
        s = lm.connect()
        s.sendall(lsm.client_hello(sni))
        try:
            lsm.recv_some(s, timeout=2)
        except OSError:
            pass
        s.close()
    records = lm.records(len(plan))
    assert len(records) == len(plan)
    want = collections.Counter(r["stop"]["reason"] for r in records)
    assert {"upstream_refused", "upstream_reset", "no_route"} <= set(want), want

    answer = {}

    def scraped():
        nonlocal answer
        answer = query(base, kQuery)
        got = {s["metric"]["reason"]: int(float(s["value"][1]))
               for s in answer["data"]["result"] if float(s["value"][1]) != 0}
        return got == dict(want) or None

    lsm.wait_until(scraped, 15, f"prometheus answers {kQuery} with the records' counts {want}",
                   step=0.5)
    (reg.tmp / "answer.json").write_text(json.dumps(answer, indent=1))
    print(f"query: {kQuery}\nanswer: {json.dumps(answer)}\nrecords: {dict(want)}")
    # The accept limit is scraped too (the LinesmanNearMaxConnections rule divides by it).
    limit = query(base, "linesman_max_connections")["data"]["result"]
    assert len(limit) == 1 and float(limit[0]["value"][1]) > 0, limit
