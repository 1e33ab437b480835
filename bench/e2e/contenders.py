"""contenders: how each forwarder is configured and started as a plain TCP forwarder on loopback.

Every contender logs one line per connection to a file (HAProxy `option tcplog` to stdout in raw
format, nginx stream `access_log`, socat `-d -d` notices on stderr, linesman's JSON access log).
With tls=True the configuration routes on the ClientHello's SNI where the contender can
(HAProxy `req.ssl_sni`, nginx `ssl_preread`; linesman always inspects the ClientHello), and a
name that does not match is closed, like a Traefik entrypoint without a matching router.
"""

import os
import subprocess

SNI = "localhost"


class started:
    """started: a running forwarder: its Popen (None for direct), listen port and log file."""

    def __init__(self, proc, port, log_path):
        self.proc = proc
        self.port = port
        self.log_path = log_path


class contender:
    name = ""
    label = ""
    per_thread = True  # False: the figure does not depend on the thread count (direct, socat)

    def available(self):
        """available: None when the contender can run, else the reason it cannot."""
        return None

    def version(self):
        return ""

    def start(self, reg, workdir, listen, upstream, tls, threads):
        raise NotImplementedError


def _first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    for line in (r.stdout + r.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unknown"


class direct(contender):
    name = "direct"
    label = "direct (no proxy)"
    per_thread = False

    def version(self):
        return "-"

    def start(self, reg, workdir, listen, upstream, tls, threads):
        return started(None, upstream, None)


class haproxy(contender):
    """haproxy: HAProxy 2.6 `mode tcp`, `option tcplog`, logs to stdout (raw) redirected to a file."""

    SPLICE = {
        "auto": "    option splice-auto\n",
        "forced": "    option splice-request\n    option splice-response\n",
        "none": "",
    }

    def __init__(self, splice):
        self.splice = splice
        self.name = f"haproxy-{splice}" if splice != "none" else "haproxy-nosplice"
        self.label = {"auto": "HAProxy splice-auto", "forced": "HAProxy forced splice",
                      "none": "HAProxy no splice"}[splice]

    def version(self):
        return _first_line(["haproxy", "-v"])

    def start(self, reg, workdir, listen, upstream, tls, threads):
        if tls:
            route = ("    tcp-request inspect-delay 5s\n"
                     "    tcp-request content accept if { req.ssl_hello_type 1 }\n"
                     f"    use_backend be if {{ req.ssl_sni -i {SNI} }}\n")
        else:
            route = "    default_backend be\n"
        cfg = (
            "global\n"
            f"    nbthread {threads}\n"
            "    maxconn 9500\n"
            "    maxpipes 400\n"
            "    ulimit-n 20000\n"
            "    log stdout format raw local0 info\n"
            "defaults\n"
            "    mode tcp\n"
            "    log global\n"
            "    option tcplog\n"
            "    timeout connect 5s\n"
            "    timeout client 10m\n"
            "    timeout server 10m\n"
            f"{self.SPLICE[self.splice]}"
            "frontend fe\n"
            f"    bind 127.0.0.1:{listen}\n"
            f"{route}"
            "backend be\n"
            f"    server up 127.0.0.1:{upstream}\n"
        )
        path = os.path.join(workdir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        log = os.path.join(workdir, "access.log")
        p = reg.start(["haproxy", "-db", "-f", path], stdout_path=log,
                      stderr_path=os.path.join(workdir, "stderr.log"))
        reg.wait_listening(p, listen)
        return started(p, listen, log)


class nginx_stream(contender):
    """nginx_stream: nginx `stream` proxy_pass with `access_log`; ssl_preread SNI map under TLS."""

    name = "nginx"
    label = "nginx stream"

    def version(self):
        return _first_line(["nginx", "-v"])

    def start(self, reg, workdir, listen, upstream, tls, threads):
        log = os.path.join(workdir, "access.log")
        if tls:
            # No matching name: proxy to a closed port, so the client sees a close.
            route = (f"    map $ssl_preread_server_name $up {{\n"
                     f"        {SNI} 127.0.0.1:{upstream};\n"
                     f"        default 127.0.0.1:1;\n"
                     f"    }}\n")
            server = (f"    server {{\n        listen 127.0.0.1:{listen};\n"
                      f"        ssl_preread on;\n        proxy_pass $up;\n"
                      f"        proxy_timeout 10m;\n    }}\n")
        else:
            route = ""
            server = (f"    server {{\n        listen 127.0.0.1:{listen};\n"
                      f"        proxy_pass 127.0.0.1:{upstream};\n"
                      f"        proxy_timeout 10m;\n    }}\n")
        cfg = (
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
            + ("user root;\n" if os.geteuid() == 0 else "")
            + f"worker_processes {threads};\n"
            "worker_rlimit_nofile 20000;\n"
            "daemon off;\n"
            "master_process on;\n"
            f"pid {workdir}/nginx.pid;\n"
            f"error_log {workdir}/error.log warn;\n"
            "events {\n    worker_connections 19500;\n}\n"
            "stream {\n"
            "    log_format basic '$remote_addr [$time_local] $protocol $status $bytes_sent '\n"
            "                     '$bytes_received $session_time \"$upstream_addr\" "
            "\"$ssl_preread_server_name\"';\n"
            f"    access_log {log} basic;\n"
            f"{route}{server}"
            "}\n"
        )
        p = reg.start_nginx(workdir, cfg, [listen])
        return started(p, listen, log)


class socat(contender):
    """socat: one forked process per connection (the floor); `-d -d` notices are its log."""

    name = "socat"
    label = "socat (fork)"
    per_thread = False

    def version(self):
        for line in _first_line_all(["socat", "-V"]):
            if line.startswith("socat version"):
                return line
        return "unknown"

    def start(self, reg, workdir, listen, upstream, tls, threads):
        log = os.path.join(workdir, "access.log")
        p = reg.start(["socat", "-d", "-d",
                       f"TCP-LISTEN:{listen},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
                       f"TCP:127.0.0.1:{upstream}"], stderr_path=log)
        reg.wait_listening(p, listen)
        return started(p, listen, log)


def _first_line_all(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return [l.strip() for l in (r.stdout + r.stderr).splitlines()]
    except (OSError, subprocess.TimeoutExpired):
        return []


class linesman(contender):
    """linesman: `linesman run` with its JSON access log to a file."""

    def __init__(self, binary, splice=True):
        self.binary = binary
        self.splice = splice
        self.routes = False
        self.name = "linesman" if splice else "linesman-nosplice"
        self.label = "linesman" if splice else "linesman --no-splice"

    def available(self):
        if not self.binary or not os.access(self.binary, os.X_OK):
            return f"no linesman binary at {self.binary}"
        try:
            r = subprocess.run([self.binary, "run", "--help"], capture_output=True, text=True,
                               timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{self.binary} run --help failed: {e}"
        text = r.stdout + r.stderr
        if r.returncode != 0 or "--upstream" not in text:
            return f"{self.binary} has no working `run` subcommand yet"
        if not self.splice and "--no-splice" not in text:
            return f"{self.binary} run has no --no-splice flag"
        self.routes = "--route" in text
        return None

    def version(self):
        return _first_line([self.binary, "--version"])

    def start(self, reg, workdir, listen, upstream, tls, threads):
        log = os.path.join(workdir, "access.log")
        # TLS: route on the ClientHello's SNI, no default upstream (no match = close), like the
        # HAProxy and nginx configurations; plain: one upstream, connected at once.
        target = (["--route", f"{SNI}=127.0.0.1:{upstream}"] if tls and self.routes else
                  ["--upstream", f"127.0.0.1:{upstream}"])
        argv = [self.binary, "run", "--listen", f"127.0.0.1:{listen}", *target,
                "--access-log", log, "--threads", str(threads)]
        if not self.splice:
            argv.append("--no-splice")
        p = reg.start(argv, stdout_path=os.path.join(workdir, "stdout.log"),
                      stderr_path=os.path.join(workdir, "stderr.log"))
        reg.wait_listening(p, listen)
        return started(p, listen, log)


class reactor_ab(contender):
    """reactor_ab: bench/reactor_ab, the same forwarding as linesman's plain short connection
    driven by Asio (mode asio) or by a thin edge-triggered epoll loop (mode epoll): the A/B of the
    reactor alone. Not a product: no inspection, no routes; one line per connection."""

    def __init__(self, binary, mode):
        self.binary = binary
        self.mode = mode
        self.name = f"ab-{mode}"
        self.label = f"reactor A/B: {mode}"

    def available(self):
        if not self.binary or not os.access(self.binary, os.X_OK):
            return f"no reactor_ab binary at {self.binary}"
        return None

    def version(self):
        return "bench/reactor_ab"

    def start(self, reg, workdir, listen, upstream, tls, threads):
        log = os.path.join(workdir, "access.log")
        p = reg.start([self.binary, "--mode", self.mode, "--listen", str(listen), "--upstream",
                       str(upstream), "--log", log],
                      stdout_path=os.path.join(workdir, "stdout.log"),
                      stderr_path=os.path.join(workdir, "stderr.log"))
        reg.wait_listening(p, listen)
        return started(p, listen, log)


# DEFAULT: the contenders of a run without --contenders (linesman-nosplice is opt-in: time budget).
DEFAULT = ("direct", "haproxy-forced", "haproxy-auto", "haproxy-nosplice", "nginx", "socat",
           "linesman")


def all_contenders(linesman_bin):
    ab = os.path.join(os.path.dirname(linesman_bin or ""), "..", "bench", "reactor_ab")
    return [direct(), haproxy("forced"), haproxy("auto"), haproxy("none"), nginx_stream(),
            socat(), linesman(linesman_bin, True), linesman(linesman_bin, False),
            reactor_ab(ab, "asio"), reactor_ab(ab, "epoll")]
