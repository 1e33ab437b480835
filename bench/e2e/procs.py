"""procs: the processes the harness starts, stopped by PID, and the /proc figures it reads.

Every process is started in its own session (so its process group id is its PID) and recorded in
a registry; stop() ends it with SIGTERM, then SIGKILL after a grace period, and then kills any
member of that same process group that is still alive (nginx workers, socat children). Nothing
is ever killed by name.
"""

import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """_stat: the fields of /proc/PID/stat after the command name, or None if PID is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def _all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def tree(root):
    """tree: ROOT and all its live descendants (one scan of /proc)."""
    stats = _all_stats()
    children = {}
    for pid, st in stats.items():
        children.setdefault(int(st[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def group_members(pgid):
    """group_members: live PIDs whose process group is PGID."""
    return [pid for pid, st in _all_stats().items() if int(st[2]) == pgid]


def cpu_seconds(root):
    """cpu_seconds: utime+stime of ROOT's process tree, plus the times of reaped children.

    A child that exited and was reaped is counted once, in its reaper's cutime/cstime, so the sum
    over the live tree of all four fields is the CPU the tree has used since ROOT started (socat's
    forked children included).
    """
    total = 0
    for pid in tree(root):
        st = _stat(pid)
        if st is not None:
            # Fields 14-17 (utime, stime, cutime, cstime) are at 11..14 after the name.
            total += sum(int(x) for x in st[11:15])
    return total / CLK_TCK


def memory_bytes(root):
    """memory_bytes: (Rss, Pss) in bytes summed over ROOT's process tree (smaps_rollup)."""
    rss = pss = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            pass
    return rss, pss


def free_port():
    """free_port: a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """listening: whether some socket listens on 127.0.0.1:PORT or *:PORT (reads /proc/net/tcp)."""
    want = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and parts[1].endswith(want):
                        return True
        except FileNotFoundError:
            pass
    return False


class registry:
    """registry: the processes this harness started; stop_all() ends every one of them."""

    def __init__(self):
        self.procs = []

    def start(self, argv, stdout_path=None, stderr_path=None, cwd=None, env=None):
        """start: ARGV in a new session, stdout/stderr appended to the given files (or discarded);
        ENV replaces the environment when given."""
        out = open(stdout_path, "ab") if stdout_path else subprocess.DEVNULL
        err = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                                 env=env, start_new_session=True)
        finally:
            for f in (out, err):
                if f is not subprocess.DEVNULL:
                    f.close()
        self.procs.append(p)
        return p

    def wait_listening(self, p, port, timeout=10.0):
        """wait_listening: until PORT listens; raises if P exits or TIMEOUT passes."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited with {p.returncode} before listening on {port}")
            if listening(port):
                return
            time.sleep(0.02)
        raise RuntimeError(f"{p.args[0]} did not listen on {port} within {timeout}s")

    def start_nginx(self, workdir, cfg, ports):
        """start_nginx: writes `cfg` to WORKDIR/nginx.conf, starts nginx on it (prefix WORKDIR,
        error log and stderr in WORKDIR) and waits until it listens on every port of `ports`."""
        path = os.path.join(workdir, "nginx.conf")
        with open(path, "w") as f:
            f.write(cfg)
        p = self.start(["nginx", "-p", workdir, "-c", path, "-e", f"{workdir}/error.log"],
                       stderr_path=os.path.join(workdir, "stderr.log"))
        for port in ports:
            self.wait_listening(p, port)
        return p

    def stop(self, p, grace=5.0):
        """stop: SIGTERM to P's group, SIGKILL after GRACE seconds, then any group member left."""
        pgid = p.pid
        if p.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(grace)
        # Workers or forked children that outlived their leader (same group id = our child's PID).
        for _ in range(50):
            left = group_members(pgid)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            try:
                self.stop(p, grace=2.0)
            except Exception:  # keep stopping the others
                pass
