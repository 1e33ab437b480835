"""test_doctor_api: `linesman doctor --api URL` against a local HTTP server that answers like
Traefik's API (GET /api/entrypoints, /api/tcp/routers, /api/tcp/services, /api/http/routers: JSON
arrays of objects with name "x@provider", status enabled|disabled|warning, error: [..]).

Stands for: a running Traefik whose loaded state differs from its files (a router it disabled
with its own error text, a router it never loaded, an entrypoint added without a restart).
"""
import http.server
import json
import pathlib
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lsm  # noqa: E402

kCase = lsm.kData / "doctor" / "f7_api"

kApi = {
    "/api/entrypoints": [
        {"name": "websecure", "address": ":443", "transport": {}, "forwardedHeaders": {},
         "http": {}},
        {"name": "traefik", "address": ":8080", "transport": {}, "http": {}},
    ],
    "/api/tcp/routers": [
        {"entryPoints": ["postgres"], "service": "db", "rule": "HostSNI(`*`)",
         "status": "disabled", "error": ["entryPoint \"postgres\" doesn't exist",
                                         "no valid entryPoint for this router"],
         "using": [], "name": "db@file", "provider": "file"},
        {"entryPoints": ["websecure"], "service": "mail", "rule": "HostSNI(`mail.example.com`)",
         "tls": {"passthrough": False}, "status": "enabled", "using": ["websecure"],
         "name": "mail@file", "provider": "file"},
    ],
    "/api/tcp/services": [
        {"loadBalancer": {"servers": [{"address": "10.0.0.5:5432"}]}, "status": "enabled",
         "usedBy": ["db@file"], "name": "db@file", "provider": "file"},
        {"loadBalancer": {"servers": [{"address": "10.0.0.6:143"}]}, "status": "warning",
         "error": ["some servers are unhealthy"], "usedBy": ["mail@file"], "name": "mail@file",
         "provider": "file"},
    ],
    "/api/http/routers": [
        {"entryPoints": ["websecure"], "service": "api@internal", "rule": "Host(`t.example.com`)",
         "status": "enabled", "using": ["websecure"], "name": "dashboard@file",
         "provider": "file"},
    ],
}


class TraefikApi(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        TraefikApi.seen.append(self.path)
        body = kApi.get(path)
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Next-Page", "1")  # Traefik's "no further page"
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TraefikApi)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    TraefikApi.seen = []
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


def doctor(*args: str) -> tuple[int, dict]:
    r = subprocess.run([lsm.linesman_bin(), "doctor", "--json", "--no-ports",
                        "--static", str(kCase / "traefik.yml"), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 1, 2), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_api_status_and_not_loaded(api_server):
    code, report = doctor("--api", api_server)
    assert code == 2
    got = sorted((f["severity"], f["code"], f["router"] or f["service"] or f["entrypoint"])
                 for f in report["findings"])
    assert got == [
        ("error", "api_router_not_loaded", "new-router@file"),
        ("error", "api_router_status", "db@file"),
        ("warning", "api_entrypoint_missing", "postgres"),
        ("warning", "api_service_status", "mail@file"),
    ], json.dumps(report, indent=1)
    f = {x["code"]: x for x in report["findings"]}
    # Traefik's own error text is carried through, and the file:line of the router is found.
    assert "entryPoint \"postgres\" doesn't exist" in f["api_router_status"]["message"]
    assert f["api_router_status"]["file"].endswith("f7_api/dynamic.yml")
    assert f["api_router_status"]["line"] == 3
    assert "some servers are unhealthy" in f["api_service_status"]["message"]
    assert f["api_router_not_loaded"]["line"] == 12
    assert {p.split("?")[0] for p in TraefikApi.seen} == set(kApi)


def test_api_url_ending_in_api_is_accepted(api_server):
    code, report = doctor("--api", api_server + "/api/")
    assert code == 2
    assert any(f["code"] == "api_router_not_loaded" for f in report["findings"])


def test_api_unreachable_is_an_error_naming_the_url():
    url = f"http://127.0.0.1:{lsm.closed_port()}"
    code, report = doctor("--api", url, "--timeout", "500")
    assert code == 2
    assert [f["code"] for f in report["findings"]] == ["api_unreachable"]
    assert url in report["findings"][0]["message"]
