"""lsm: the harness for linesman's loopback integration tests.

Everything here starts real processes (linesman, openssl s_server, HAProxy, nginx, PostgreSQL,
Redis, peer.py servers) on free loopback ports or inside network namespaces the test creates, and
stops them by PID. Every wait is bounded by a deadline; nothing sleeps forever.

Ownership: a `Registry` (one per test, see conftest.py) owns every process and namespace a test
starts and tears them down in reverse order, even when the test fails.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import itertools
import json
import os
import pathlib
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from typing import Callable, Iterable, Optional

import jsonschema
import pytest

kRepo = pathlib.Path(__file__).resolve().parents[2]
kData = pathlib.Path(os.environ.get("LINESMAN_TEST_DATA", kRepo / "tests" / "data"))
kCorpus = kData / "corpus" / "cases"
kPeer = pathlib.Path(__file__).resolve().parent / "peer.py"
kPython = "/usr/bin/python3"
kPgBin = pathlib.Path("/usr/lib/postgresql/15/bin")
kNginxStream = pathlib.Path("/usr/lib/nginx/modules/ngx_stream_module.so")


# kSanitized: LINESMAN_BIN is an ASan+UBSan build (tools/test.sh's sanitizer stage): limits on
# address space cannot apply to it, and it runs a few times slower.
kSanitized = os.environ.get("LINESMAN_SANITIZED") == "1"


def linesman_bin() -> str:
    """linesman_bin: the binary under test: $LINESMAN_BIN, else the first build dir that has one."""
    env = os.environ.get("LINESMAN_BIN")
    if env:
        return env
    for cand in sorted(kRepo.glob("build/*/tools/linesman")):
        if os.access(cand, os.X_OK):
            return str(cand)
    pytest.fail("LINESMAN_BIN is not set and no build/*/tools/linesman exists")


# ---------------------------------------------------------------------------------------------
# Access-log contract: the schema plus the phase/reason table of docs/access-log.md.

kSchema = json.loads((kData / "access-log.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(kSchema)
kValidator = jsonschema.Draft202012Validator(kSchema)

# docs/access-log.md, "Stop reasons": the reasons each phase may carry (28 pairs).
kTaxonomy: dict[str, tuple[str, ...]] = {
    "inspect": ("client_silent", "client_closed", "client_reset", "hello_incomplete",
                "hello_malformed", "hello_too_large"),
    "route": ("no_route",),
    "connect": ("upstream_refused", "upstream_timeout", "upstream_unreachable",
                "upstream_resolve_failed", "upstream_error", "client_gave_up"),
    "first_reply": ("upstream_closed_silently", "upstream_reset", "upstream_silent",
                    "upstream_tls_alert", "upstream_not_tls", "upstream_error_reply",
                    "client_gave_up"),
    "stream": ("completed", "client_closed", "upstream_closed", "client_reset", "upstream_reset",
               "idle_timeout", "proxy_shutdown", "proxy_error"),
}
kAllPairs = frozenset((p, r) for p, rs in kTaxonomy.items() for r in rs)
assert len(kAllPairs) == 28

# Every (phase, reason) seen in a validated record during this pytest process.
produced_pairs: set[tuple[str, str]] = set()


def check_record(rec: dict) -> dict:
    """check_record: validate one access-log record against the schema and the taxonomy.

    Fails the test with the record in the message; returns the record for chaining."""
    errors = sorted(kValidator.iter_errors(rec), key=lambda e: list(e.path))
    if errors:
        msgs = "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
        pytest.fail(f"record violates access-log.schema.json: {msgs}\nrecord: {json.dumps(rec)}")
    phase, reason = rec["stop"]["phase"], rec["stop"]["reason"]
    if reason not in kTaxonomy[phase]:
        pytest.fail(f"stop.reason {reason!r} does not belong to phase {phase!r} "
                    f"(docs/access-log.md stop table)\nrecord: {json.dumps(rec)}")
    if not rec["hint"].strip():
        pytest.fail(f"empty hint\nrecord: {json.dumps(rec)}")
    produced_pairs.add((phase, reason))
    return rec


def brief(rec: dict) -> str:
    """brief: the part of a record a failure message needs."""
    keys = ("stop", "close", "outcome", "client_first", "upstream_first", "tls", "server_tls",
            "bytes", "hint")
    return json.dumps({k: rec.get(k) for k in keys if k in rec})


def assert_stop(rec: dict, phase: str, reason: str, by: str, errno_name: Optional[str] = None):
    """assert_stop: the record stopped where the test says, with the whole record on failure."""
    got = rec["stop"]
    want = {"phase": phase, "reason": reason, "by": by}
    have = {k: got.get(k) for k in want}
    assert have == want, f"stop: got {have}, want {want}\nrecord: {brief(rec)}"
    if errno_name is not None:
        assert got.get("errno") == errno_name, \
            f"stop.errno: got {got.get('errno')!r}, want {errno_name!r}\nrecord: {brief(rec)}"


# ---------------------------------------------------------------------------------------------
# Small bounded helpers.

def wait_until(pred: Callable[[], object], timeout: float, what: str, step: float = 0.02):
    """wait_until: poll `pred` until it returns truthy or `timeout` seconds pass (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(step)


def free_port(host: str = "127.0.0.1") -> int:
    """free_port: a port the OS just handed out for `host` (closed again; small race accepted)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """closed_port: a loopback port nothing listens on (bound without listen, then released)."""
    return free_port()


def listening_ports(pid: int) -> set[int]:
    """listening_ports: TCP ports in LISTEN state in the network namespace of process `pid`."""
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = pathlib.Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 3 and f[3] == "0A":
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def connect(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_all(sock: socket.socket, timeout: float = 10.0, limit: int = 1 << 28) -> bytes:
    """recv_all: read until EOF (or reset), bounded by `timeout` and `limit` bytes."""
    deadline = time.monotonic() + timeout
    out = bytearray()
    while len(out) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no EOF within {timeout}s ({len(out)} bytes read)")
        sock.settimeout(left)
        try:
            data = sock.recv(1 << 18)
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
    return bytes(out)


def read_until_end(sock: socket.socket, wait: float = 3.0, first_only: bool = False,
                   limit: int = 65536) -> tuple[bytes, str]:
    """read_until_end: what comes back until the peer closes ("fin") or resets ("rst"), or until
    `wait` s pass or `limit` bytes came ("open"); with `first_only`, the first bytes are enough."""
    got = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(got) < limit:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return got, "rst"
        if not chunk:
            return got, "fin"
        got += chunk
        if first_only:
            break
    return got, "open"


def hellos_through(lm, count: int) -> None:
    """hellos_through: `count` connections through `lm`, each sending a ClientHello for
    r<i>.example.test and reading until the upstream closes; waits for their records."""
    for i in range(count):
        s = lm.connect()
        s.sendall(client_hello(f"r{i}.example.test"))
        recv_all(s)
        s.close()
    lm.records(count)


def recv_some(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """recv_some: one read (b'' on EOF, reset or timeout)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except (socket.timeout, ConnectionResetError):
        return b""


def close_rst(sock: socket.socket) -> None:
    """close_rst: close with SO_LINGER 0 so the kernel sends an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def corpus(name: str) -> bytes:
    return (kCorpus / f"{name}.bin").read_bytes()


def peer_payload(n: int) -> bytes:
    """peer_payload: the deterministic bytes peer.py's `hash` mode sends (same algorithm)."""
    out = bytearray()
    block = hashlib.sha256(b"linesman").digest()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(block + counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:n])


def client_hello(sni: Optional[str] = "app.example.test", alpn: Iterable[str] = ("h2",),
                 pad_to: int = 0, record_size: int = 16384,
                 versions: Iterable[int] = (0x0304,)) -> bytes:
    """client_hello: a TLS 1.3 ClientHello (RFC 8446 4.1.2) built here, split into records of at
    most `record_size` bytes. `pad_to` adds a padding extension (RFC 7685) so the handshake message
    reaches that many bytes: used for a hello larger than linesman's inspection buffer. `versions`
    is the supported_versions list (at most 127)."""
    def u16(n): return n.to_bytes(2, "big")
    def u24(n): return n.to_bytes(3, "big")
    ext = bytearray()
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + u16(len(name)) + name
        ext += u16(0) + u16(len(entry) + 2) + u16(len(entry)) + entry
    alpn = list(alpn)
    if alpn:
        lst = b"".join(bytes([len(a)]) + a.encode() for a in alpn)
        ext += u16(16) + u16(len(lst) + 2) + u16(len(lst)) + lst
    vs = b"".join(u16(v) for v in versions)
    ext += u16(43) + u16(len(vs) + 1) + bytes([len(vs)]) + vs       # supported_versions
    ext += u16(10) + u16(4) + u16(2) + u16(29)                       # supported_groups: x25519
    ext += u16(13) + u16(4) + u16(2) + u16(0x0804)                   # signature_algorithms
    key = bytes(range(32))
    ext += u16(51) + u16(38) + u16(36) + u16(29) + u16(32) + key     # key_share x25519
    suites = u16(0x1301) + u16(0x1302) + u16(0x1303)
    body = (u16(0x0303) + bytes(32) + b"\x20" + bytes(range(32)) + u16(len(suites)) + suites +
            b"\x01\x00")
    base = len(body) + 2 + len(ext) + 4
    if pad_to > base + 4:
        pad = pad_to - base - 4
        ext += u16(21) + u16(pad) + bytes(pad)
    body += u16(len(ext)) + ext
    msg = b"\x01" + u24(len(body)) + body
    out = bytearray()
    for i in range(0, len(msg), record_size):
        frag = msg[i:i + record_size]
        out += b"\x16\x03\x01" + u16(len(frag)) + frag
    return bytes(out)


def cpu_seconds(pid: int) -> float:
    """cpu_seconds: utime + stime of process `pid` (all threads), from /proc/PID/stat."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Processes.

class Proc:
    """Proc: one child process, stopped by its PID. Output goes to files in the test's dir (or is
    collected line by line from a pipe by a reader thread so the pipe never fills)."""

    def __init__(self, name: str, argv: list[str], workdir: pathlib.Path, *,
                 stdout_pipe: bool = False, stderr_pipe: bool = False,
                 preexec_fn=None, stop_signal: int = signal.SIGTERM, env=None, stdin=None):
        self.name = name
        self.argv = argv
        self.stop_signal = stop_signal
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        self.out_lines: list[str] = []
        self.err_lines: list[str] = []
        self._lock = threading.Lock()
        self._out_f = None if stdout_pipe else open(self.out_path, "wb")
        self._err_f = None if stderr_pipe else open(self.err_path, "wb")
        self.popen = subprocess.Popen(
            argv, cwd=workdir, env=env,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=subprocess.PIPE if stdout_pipe else self._out_f,
            stderr=subprocess.PIPE if stderr_pipe else self._err_f,
            preexec_fn=preexec_fn)
        self.pid = self.popen.pid
        self._threads = []
        if stdout_pipe:
            self._threads.append(self._reader(self.popen.stdout, self.out_lines, self.out_path))
        if stderr_pipe:
            self._threads.append(self._reader(self.popen.stderr, self.err_lines, self.err_path))

    def _reader(self, pipe, lines: list[str], path: pathlib.Path) -> threading.Thread:
        def run():
            with open(path, "wb") as f:
                for raw in iter(pipe.readline, b""):
                    f.write(raw)
                    f.flush()
                    with self._lock:
                        lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def wait_line(self, pattern: str, timeout: float, stream: str = "out") -> re.Match:
        """wait_line: the first output line matching `pattern`; fails if the process exits first."""
        rx = re.compile(pattern)
        lines = self.out_lines if stream == "out" else self.err_lines
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for line in lines:
                    m = rx.search(line)
                    if m:
                        return m
            if self.popen.poll() is not None:
                time.sleep(0.1)  # let the reader thread drain the pipe
                with self._lock:
                    for line in lines:
                        m = rx.search(line)
                        if m:
                            return m
                pytest.fail(f"{self.name} exited with {self.popen.returncode} before printing "
                            f"/{pattern}/:\n{self.output()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"{self.name} printed no /{pattern}/ within {timeout}s:\n"
                            f"{self.output()}")
            time.sleep(0.02)

    def output(self) -> str:
        text = []
        for p in (self.out_path, self.err_path):
            try:
                text.append(p.read_text(errors="replace")[-4000:])
            except OSError:
                pass
        return "\n".join(text)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """stop: the stop signal, a bounded wait, then SIGKILL. Returns the exit status."""
        if self.alive():
            try:
                os.kill(self.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        for t in self._threads:
            t.join(timeout=2)
        for f in (self._out_f, self._err_f):
            if f:
                f.close()
        return self.popen.returncode


class Netns:
    """Netns: a network namespace with only `lo` (up), unique name, deleted by `close`.

    Nothing inside can reach the host's network, so connect failures produced here never send
    a packet off the machine."""

    _seq = itertools.count()

    def __init__(self):
        if not shutil.which("ip"):
            pytest.skip("ip (iproute2) is not installed")
        self.name = f"lsm-h4-{os.getpid()}-{next(self._seq)}"
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0:
            pytest.skip(f"cannot create a network namespace (needs root/CAP_SYS_ADMIN): "
                        f"{r.stderr.strip()}")
        self.sh("ip", "link", "set", "lo", "up")

    def sh(self, *argv: str, input: Optional[str] = None) -> None:
        r = subprocess.run(["ip", "netns", "exec", self.name, *argv], input=input,
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, f"{argv} in {self.name}: {r.stderr}"

    def prefix(self) -> list[str]:
        """prefix: argv prefix; `ip netns exec` execs the command, so the PID stays the same."""
        return ["ip", "netns", "exec", self.name]

    def drop_syn(self, port: int) -> None:
        """drop_syn: an nft rule that drops SYNs to `port` (a firewall that never answers)."""
        if not shutil.which("nft"):
            pytest.skip("nft (nftables) is not installed")
        self.sh("nft", "-f", "-", input=(
            "table inet lsm {\n chain out {\n  type filter hook output priority 0;\n"
            f"  tcp dport {port} tcp flags & (syn|ack) == syn drop\n }}\n}}\n"))

    def in_ns(self, fn: Callable[[], object]) -> object:
        """in_ns: run `fn` on a thread that joined this namespace (setns is per thread); a socket
        it creates stays in the namespace after the thread ends."""
        box: dict = {}

        def run():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                box["v"] = fn()
            except BaseException as e:  # handed to the caller
                box["e"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(30)
        if "e" in box:
            raise box["e"]
        return box.get("v")

    def connect(self, port: int, timeout: float = 5.0) -> socket.socket:
        return self.in_ns(lambda: connect(port, timeout=timeout))

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)


class Registry:
    """Registry: what one test started; `close` stops it all in reverse order."""

    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self._items: list = []

    def add(self, item):
        self._items.append(item)
        return item

    def close(self):
        for item in reversed(self._items):
            try:
                if isinstance(item, Proc):
                    item.stop(timeout=5)
                else:
                    item.close()
            except Exception:  # teardown must go on
                pass
        self._items.clear()


# ---------------------------------------------------------------------------------------------
# linesman under test.

kListenRx = r"linesman: listening on (\[[0-9a-fA-F:.]+\]|[^\s:]+):(\d+) \(listener ([^)]*)\)"


class Linesman:
    """Linesman: one `linesman run` process with its access log in the test's dir.

    `start` returns once linesman printed its listening line; `records(n)` waits for n records,
    each validated (schema + taxonomy); `stop` sends SIGTERM and returns the exit code."""

    def __init__(self, reg: Registry, args: list[str], *, listen: str = "127.0.0.1:0",
                 access_log: Optional[pathlib.Path] = None, netns: Optional[Netns] = None,
                 preexec_fn=None, name: str = "linesman", wait: bool = True):
        self.reg = reg
        self.log_path = access_log or reg.tmp / f"{name}.jsonl"
        argv = [linesman_bin(), "run", "--listen", listen, "--access-log", str(self.log_path),
                *args]
        if "--drain-timeout" not in args and "--config" not in args:
            # Connections a test leaves open would hold linesman for the whole default drain (10 s)
            # when the registry stops it, and the registry kills it after 5 s: a second is plenty.
            # Tests about the drain pass their own.
            argv += ["--drain-timeout", "1s"]
        if os.environ.get("LINESMAN_THREADS") and "--threads" not in args:
            # LINESMAN_THREADS: worker threads for every linesman (the ThreadSanitizer stage)
            argv += ["--threads", os.environ["LINESMAN_THREADS"]]
        if netns:
            argv = netns.prefix() + argv
        self.argv = argv
        self.proc = reg.add(Proc(name, argv, reg.tmp, stderr_pipe=True, preexec_fn=preexec_fn))
        self.pid = self.proc.pid
        self.host = None
        self.port = None
        self.listener = None
        if wait:
            self.wait_listening()

    def wait_listening(self, timeout: float = 10.0):
        m = self.proc.wait_line(kListenRx, timeout, stream="err")
        self.host, self.port, self.listener = m.group(1).strip("[]"), int(m.group(2)), m.group(3)
        return self.port

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return connect(self.port, self.host, timeout)

    def raw_lines(self) -> list[str]:
        try:
            text = self.log_path.read_text()
        except FileNotFoundError:
            return []
        return [line for line in text.split("\n")[:-1] if line.strip()]  # complete lines only

    def records(self, n: int = 1, timeout: float = 10.0) -> list[dict]:
        """records: wait until the access log holds at least n records; all are validated."""
        lines = wait_until(lambda: (lambda ls: ls if len(ls) >= n else None)(self.raw_lines()),
                           timeout, f"{n} access-log record(s) in {self.log_path} "
                           f"(have {len(self.raw_lines())}); stderr:\n" + self.stderr())
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                pytest.fail(f"access-log line is not JSON ({e}): {line!r}")
            out.append(check_record(rec))
        return out

    def record(self, timeout: float = 10.0) -> dict:
        """record: the single record a one-connection test expects (fails if there are more)."""
        recs = self.records(1, timeout)
        time.sleep(0.05)
        recs = self.records(1, 1)
        assert len(recs) == 1, f"expected one record, got {len(recs)}: {recs}"
        return recs[0]

    def stderr(self) -> str:
        return "\n".join(self.proc.err_lines[-40:])

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        return self.proc.stop(timeout)


def run_linesman(args: list[str], timeout: float = 10.0, netns: Optional[Netns] = None):
    """run_linesman: run linesman to completion (bad flags, port in use); (rc, stdout, stderr)."""
    argv = [linesman_bin(), *args]
    if netns:
        argv = netns.prefix() + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


# ---------------------------------------------------------------------------------------------
# Real peers.

def need(binary: str) -> str:
    path = shutil.which(binary) or (binary if os.access(binary, os.X_OK) else None)
    if not path:
        pytest.skip(f"{binary} is not installed (tools/scripts/setup.sh installs it)")
    return path


def start_peer(reg: Registry, mode: str, *extra: str, netns: Optional[Netns] = None,
               name: Optional[str] = None) -> Proc:
    """start_peer: a peer.py server (see its docstring for the modes); `.port` is its port."""
    argv = [kPython, str(kPeer), mode, *extra]
    if netns:
        argv = netns.prefix() + argv
    p = reg.add(Proc(name or f"peer-{mode}", argv, reg.tmp, stdout_pipe=True))
    p.port = int(p.wait_line(r"^port (\d+)$", 10).group(1))
    return p


def make_cert(dir: pathlib.Path, cn: str, sans: Iterable[str] = (), name: str = "cert"):
    """make_cert: a self-signed P-256 certificate made with the openssl CLI; (cert, key) paths."""
    need("openssl")
    cert, key = dir / f"{name}.pem", dir / f"{name}.key"
    san = ",".join(f"DNS:{s}" for s in sans) or f"DNS:{cn}"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={cn}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True, timeout=30)
    return cert, key


def start_s_server(reg: Registry, version: str = "tls1_3", alpn: Optional[str] = None,
                   cn: str = "app.example.test", www: bool = True) -> Proc:
    """start_s_server: `openssl s_server` on a free port with a fresh self-signed certificate.
    version: tls1_2 or tls1_3 (the only version offered). With www it answers GET with a page."""
    need("openssl")
    cert, key = make_cert(reg.tmp, cn, [cn], name=f"s_server-{cn}")
    port = free_port()
    argv = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key",
            str(key), f"-{version}", "-naccept", "100"]
    if www:
        argv.append("-www")
    if alpn:
        argv += ["-alpn", alpn]
    p = reg.add(Proc(f"s_server-{port}", argv, reg.tmp, stdout_pipe=True))
    p.wait_line(r"^ACCEPT", 10)
    p.port = port
    return p


def s_client(port: int, servername: Optional[str], alpn: Optional[str] = None,
             extra: Iterable[str] = (), send: bytes = b"GET / HTTP/1.0\r\n\r\n",
             timeout: float = 15.0) -> subprocess.CompletedProcess:
    """s_client: one `openssl s_client` connection; sends `send` and waits for the server's close."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof"]
    if servername:
        argv += ["-servername", servername]
    else:
        argv += ["-noservername"]
    if alpn:
        argv += ["-alpn", alpn]
    argv += list(extra)
    return subprocess.run(argv, input=send, capture_output=True, timeout=timeout)


def start_haproxy(reg: Registry, routes: dict[str, int], inspect_delay: str = "2s") -> Proc:
    """start_haproxy: HAProxy in `mode tcp` routing on `req.ssl_sni`, standing in for a Traefik
    entrypoint with TCP routers (HostSNI): each SNI in `routes` goes to its loopback port; there is
    no default backend, so an unknown SNI is closed without a byte, as Traefik does when no TCP
    router matches."""
    exe = need("haproxy")
    port = free_port()
    lines = ["global", "  log stderr format short local0 info", "defaults", "  mode tcp",
             "  timeout connect 2s", "  timeout client 10s", "  timeout server 10s",
             "frontend entrypoint", f"  bind 127.0.0.1:{port}",
             f"  tcp-request inspect-delay {inspect_delay}",
             "  tcp-request content accept if { req.ssl_hello_type 1 }"]
    for i, sni in enumerate(routes):
        lines.append(f"  use_backend b{i} if {{ req.ssl_sni -i {sni} }}")
    for i, (sni, bport) in enumerate(routes.items()):
        lines += [f"backend b{i}", f"  server s{i} 127.0.0.1:{bport}"]
    cfg = reg.tmp / f"haproxy-{port}.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    p = reg.add(Proc(f"haproxy-{port}", [exe, "-db", "-f", str(cfg)], reg.tmp,
                     stop_signal=signal.SIGTERM))
    wait_until(lambda: not p.alive() or port in listening_ports(p.pid), 10, "haproxy to listen")
    assert p.alive(), f"haproxy exited:\n{p.output()}"
    p.port = port
    return p


def start_nginx_stream(reg: Registry, port: int, stream_body: str, name: str = "") -> Proc:
    """start_nginx_stream: nginx with the `stream` module and `stream_body` inside `stream { }`,
    listening on PORT (the body's `listen`). Own prefix, pid file and error log in the test dir;
    `daemon off`; skips the test when the stream module is not installed."""
    exe = need("nginx")
    if not kNginxStream.exists():
        pytest.skip(f"{kNginxStream} missing (Debian package libnginx-mod-stream)")
    prefix = reg.tmp / (name or f"nginx-{port}")
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(f"""
load_module {kNginxStream};
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
stream {{
{stream_body}}}
""")
    p = reg.add(Proc(name or f"nginx-{port}", [exe, "-p", str(prefix), "-e",
                                               str(prefix / "error.log"), "-c",
                                               str(prefix / "nginx.conf")], reg.tmp,
                     stop_signal=signal.SIGQUIT))
    wait_until(lambda: not p.alive() or port in listening_ports(p.pid), 10, "nginx to listen")
    assert p.alive(), f"nginx exited:\n{p.output()}\n{(prefix / 'error.log').read_text()}"
    p.port = port
    p.prefix = prefix
    return p


def start_nginx(reg: Registry, routes: dict[str, int], default: Optional[int] = None,
                port: Optional[int] = None) -> Proc:
    """start_nginx: nginx `stream` with `ssl_preread` routing on SNI (the other entrypoint
    stand-in)."""
    port = port or free_port()
    maps = "".join(f"    {sni} 127.0.0.1:{bp};\n" for sni, bp in routes.items())
    maps += f"    default 127.0.0.1:{default or closed_port()};\n"
    return start_nginx_stream(reg, port, f"""  map $ssl_preread_server_name $backend {{
{maps}  }}
  server {{
    listen 127.0.0.1:{port};
    ssl_preread on;
    proxy_connect_timeout 2s;
    proxy_pass $backend;
  }}
""")


def start_redis(reg: Registry) -> Proc:
    exe = need("redis-server")
    port = free_port()
    p = reg.add(Proc(f"redis-{port}", [exe, "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--daemonize", "no",
                                       "--dir", str(reg.tmp)], reg.tmp))
    wait_until(lambda: not p.alive() or port in listening_ports(p.pid), 10, "redis to listen")
    assert p.alive(), f"redis exited:\n{p.output()}"
    p.port = port
    return p


class Postgres:
    """Postgres: a PostgreSQL 15 cluster in a fresh directory, run as the `postgres` user, with
    ssl=on and a pg_hba.conf of `hostssl` lines only: a backend that requires TLS."""

    def __init__(self, reg: Registry):
        initdb = kPgBin / "initdb"
        if not initdb.exists():
            pytest.skip(f"{initdb} missing (Debian package postgresql-15)")
        try:
            import pwd
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no `postgres` user (installed with the postgresql package)")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        # pytest's tmp dirs are 0700 root: the cluster lives in its own dir postgres can reach.
        import tempfile
        self.base = pathlib.Path(tempfile.mkdtemp(prefix="lsm-pg-"))
        os.chmod(self.base, 0o755)
        self.data = self.base / "data"
        os.chown(self.base, self.uid, self.gid)
        drop = self._drop_privileges
        r = subprocess.run([str(initdb), "-D", str(self.data), "-N", "-A", "trust", "-U",
                            "postgres", "--locale=C", "-E", "UTF8"], preexec_fn=drop,
                           capture_output=True, text=True, timeout=120, cwd=self.base)
        assert r.returncode == 0, f"initdb failed: {r.stderr}"
        cert, key = make_cert(self.base, "db.example.test", name="server")
        for f in (cert, key):
            os.chown(f, self.uid, self.gid)
            os.chmod(f, 0o600)
        self.port = free_port()
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.base}'\nssl = on\n"
                    f"ssl_cert_file = '{cert}'\nssl_key_file = '{key}'\nfsync = off\n"
                    "logging_collector = off\n")
        (self.data / "pg_hba.conf").write_text(
            "# TLS only: a plaintext client gets 'no pg_hba.conf entry ... no encryption'\n"
            "hostssl all all 127.0.0.1/32 trust\n")
        self.proc = reg.add(Proc(f"postgres-{self.port}", [str(kPgBin / "postgres"), "-D",
                                                           str(self.data)],
                                 self.base, preexec_fn=drop, stop_signal=signal.SIGINT))
        wait_until(lambda: not self.proc.alive() or self.port in listening_ports(self.proc.pid),
                   30, "postgres to listen")
        assert self.proc.alive(), f"postgres exited:\n{self.proc.output()}"
        reg.add(self)

    def _drop_privileges(self):
        os.setgid(self.gid)
        os.setuid(self.uid)

    def close(self):
        shutil.rmtree(self.base, ignore_errors=True)


def pg_startup(user: str = "app", database: str = "app") -> bytes:
    """pg_startup: a PostgreSQL v3 StartupMessage in plaintext (what a client sends without TLS)."""
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    body = struct.pack("!I", 196608) + params
    return struct.pack("!I", len(body) + 4) + body


def limit_nofile(n: int):
    """limit_nofile: a preexec_fn that sets RLIMIT_NOFILE to n for the child."""
    def fn():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return fn


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))
