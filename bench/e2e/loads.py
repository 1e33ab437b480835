"""loads: the backends (iperf3 server, nginx HTTP/HTTPS, an idle-connection holder) and the loads
(iperf3 bulk, wrk short and keep-alive connections, many idle connections) the harness drives.
Everything binds and connects to 127.0.0.1 only.
"""

import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from procs import free_port

SMALL_FILE = "1k.bin"
SMALL_SIZE = 1024


def make_cert(workdir):
    """make_cert: a self-signed P-256 certificate for `localhost` (cheap handshakes)."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return cert, key


def start_iperf_server(reg, workdir):
    port = free_port()
    p = reg.start(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)],
                  stdout_path=os.path.join(workdir, "iperf3-server.log"),
                  stderr_path=os.path.join(workdir, "iperf3-server.log"))
    reg.wait_listening(p, port)
    return p, port


def start_http_backend(reg, workdir, cert, key):
    """start_http_backend: nginx (1 worker, no access log) serving a 1 KiB file on HTTP and HTTPS."""
    www = os.path.join(workdir, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, SMALL_FILE), "wb") as f:
        f.write(b"x" * SMALL_SIZE)
    http, https = free_port(), free_port()
    tmp = os.path.join(workdir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    cfg = (
        ("user root;\n" if os.geteuid() == 0 else "")
        + "worker_processes 1;\n"
        "worker_rlimit_nofile 20000;\n"
        "daemon off;\n"
        f"pid {workdir}/nginx.pid;\n"
        f"error_log {workdir}/error.log warn;\n"
        "events {\n    worker_connections 10000;\n}\n"
        "http {\n"
        "    access_log off;\n"
        "    default_type application/octet-stream;\n"
        "    keepalive_requests 10000000;\n"
        "    keepalive_timeout 120s;\n"
        f"    client_body_temp_path {tmp}/body;\n"
        f"    proxy_temp_path {tmp}/proxy;\n"
        f"    fastcgi_temp_path {tmp}/fastcgi;\n"
        f"    uwsgi_temp_path {tmp}/uwsgi;\n"
        f"    scgi_temp_path {tmp}/scgi;\n"
        f"    server {{\n        listen 127.0.0.1:{http};\n        root {www};\n    }}\n"
        f"    server {{\n        listen 127.0.0.1:{https} ssl;\n        root {www};\n"
        f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n    }\n"
        "}\n"
    )
    p = reg.start_nginx(workdir, cfg, [http, https])
    return p, http, https


def iperf(port, seconds, streams):
    """iperf: one iperf3 client run through PORT; returns (bytes received, Gbit/s).

    Retries a few times when the server is still finishing the previous test ("busy").
    """
    last = ""
    for _ in range(5):
        r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
                            "-P", str(streams), "-J"], capture_output=True, text=True,
                           timeout=seconds + 30)
        try:
            j = json.loads(r.stdout)
        except json.JSONDecodeError:
            last = (r.stdout + r.stderr)[-300:]
            time.sleep(0.5)
            continue
        if "error" in j:
            last = j["error"]
            time.sleep(0.5)
            continue
        recv = j["end"]["sum_received"]
        return int(recv["bytes"]), float(recv["bits_per_second"]) / 1e9
    raise RuntimeError(f"iperf3 failed: {last}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(num, unit):
    return float(num) * _UNITS[unit]


def wrk(url, seconds, conns, close):
    """wrk: one wrk run (1 thread, --latency); returns a dict of requests, rate, p50/p99 ms, errors."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if r.returncode != 0 or not m or not rate:
        raise RuntimeError(f"wrk failed ({r.returncode}): {(out + r.stderr)[-300:]}")
    res = {"requests": int(m.group(1)), "rate": float(rate.group(1)), "errors": 0}
    for pct in ("50", "99"):
        lm = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        res[f"p{pct}_ms"] = _ms(lm.group(1), lm.group(2)) if lm else None
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if se:
        res["errors"] += sum(int(x) for x in se.groups())
    n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if n2:
        res["errors"] += int(n2.group(1))
    return res


class holder:
    """holder: a backend that accepts connections and holds them open without reading or writing.

    With a server SSLContext it completes a TLS handshake on each connection first (in a small
    thread pool; OpenSSL releases the GIL). Owns its listening socket and every accepted socket;
    close() releases them all.
    """

    def __init__(self, server_ctx=None):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4096)
        self.port = self.lsock.getsockname()[1]
        self.ctx = server_ctx
        self.held = []
        self.failed = 0
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(3) if server_ctx else None
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        self.lsock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stop.is_set():
                    return
                self.failed += 1
                time.sleep(0.01)
                continue
            if self.ctx is None:
                self.held.append(conn)
            else:
                self.pool.submit(self._handshake, conn)

    def _handshake(self, conn):
        try:
            conn.settimeout(20)
            self.held.append(self.ctx.wrap_socket(conn, server_side=True))
        except (OSError, ssl.SSLError):
            self.failed += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(2)
        if self.pool:
            self.pool.shutdown(wait=True, cancel_futures=True)
        for s in self.held:
            try:
                s.close()
            except OSError:
                pass
        self.held = []
        self.lsock.close()


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.num_tickets = 0  # no post-handshake tickets: an idle client socket stays unreadable
    return ctx


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


STALL_S = 5.0


def open_idle(port, n, hold, client_ctx=None, timeout=60.0):
    """open_idle: opens N connections to PORT and waits until HOLD holds N (or TIMEOUT).

    Returns (client sockets, error or None). Connects are paced so that no more than 256 are
    in flight beyond what the holder has accepted (a forwarder's accept backlog is finite).
    The caller closes the returned sockets.
    """
    socks, errors = [], []
    end = time.monotonic() + timeout

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if client_ctx is not None:
            s = client_ctx.wrap_socket(s, server_hostname="localhost")
        return s

    progress = [len(hold.held), time.monotonic()]

    def stalled():
        # No connection reached the holder for STALL_S seconds: the forwarder stopped passing
        # new connections on (a connection limit, a wedged accept loop).
        now, held = time.monotonic(), len(hold.held)
        if held != progress[0]:
            progress[0], progress[1] = held, now
        return now - progress[1] > STALL_S

    def wait_room(k):
        while k - len(hold.held) - hold.failed > 256 and time.monotonic() < end:
            if stalled():
                return False
            time.sleep(0.002)
        return True

    if client_ctx is None:
        for i in range(n):
            if not wait_room(i):
                errors.append(f"stalled: no new connection reached the backend for {STALL_S}s")
                break
            if time.monotonic() >= end:
                errors.append("timeout while connecting")
                break
            try:
                socks.append(one())
            except OSError as e:
                errors.append(str(e))
                if len(errors) > 20:
                    break
    else:
        with ThreadPoolExecutor(3) as pool:
            futs = []
            for i in range(n):
                if not wait_room(i):
                    errors.append(f"stalled: no new connection reached the backend for "
                                  f"{STALL_S}s")
                    break
                if time.monotonic() >= end:
                    errors.append("timeout while connecting")
                    break
                futs.append(pool.submit(one))
            for k, f in enumerate(futs):
                if time.monotonic() >= end or stalled():
                    # Give up on the queued rest; the (at most 3) running ones end within
                    # their socket timeout.
                    for g in futs[k:]:
                        g.cancel()
                    errors.append("stalled or timed out while handshaking")
                    break
                try:
                    socks.append(f.result(timeout=max(1.0, end - time.monotonic())))
                except Exception as e:  # OSError, SSLError, TimeoutError
                    errors.append(str(e))
        # The pool has joined: handshakes that finished after we gave up are returned too, so
        # that the caller closes them.
        for f in futs:
            if f.done() and not f.cancelled() and f.exception() is None \
                    and f.result() not in socks:
                socks.append(f.result())
    while len(hold.held) < len(socks) and time.monotonic() < end and not stalled():
        time.sleep(0.01)
    err = None
    if errors:
        err = f"{len(errors)} connect errors, first: {errors[0]}"
    if len(hold.held) < n:
        err = f"backend holds {len(hold.held)} of {n}" + (f"; {err}" if err else "")
    return socks, err


def count_dropped(socks):
    """count_dropped: client sockets that became readable (EOF or reset): the path was closed."""
    import select
    poller = select.poll()
    for s in socks:
        poller.register(s.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    return len(poller.poll(0))
