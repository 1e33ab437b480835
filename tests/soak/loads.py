"""loads: the soak's client loads. Each counts, in a shared counter, the connections it opened
(connect(2) succeeded: the kernel completed the handshake, so linesman will accept it), which
the soak compares with linesman_connections_accepted_total. Every loop is bounded by `stop`
(a multiprocessing.Event) and by the soak's deadline; every socket has a timeout."""
import asyncio
import multiprocessing
import resource
import socket
import time

# A TLS record header and the first bytes of a ClientHello: a slow client sends one byte every
# 2 s and never gets far enough for the hello to complete; the listener's peek timeout ends it.
kHelloStart = bytes.fromhex("160301020001" + "0001fc0303") + bytes(range(32)) * 8


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def churn(port: int, opened, failed, stop, deadline: float) -> None:
    """churn: short connections as fast as one process can: connect, send 16 bytes, read the
    answer (or the close, when the upstream is down), close."""
    ours = 0
    bad = 0
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
        except OSError:
            bad += 1
            time.sleep(0.01)
            continue
        ours += 1
        try:
            s.settimeout(3)
            s.sendall(b"0123456789abcdef")
            s.recv(64)
        except OSError:
            pass
        finally:
            s.close()
        if ours % 64 == 0:  # publish in batches: the shared counter takes a lock
            with opened.get_lock():
                opened.value += 64
    with opened.get_lock():
        opened.value += ours % 64
    with failed.get_lock():
        failed.value += bad


async def open_counted(port: int, opened: list, timeout: float = 5.0):
    """open_counted: a connection to PORT as (reader, writer), or None. Counted in opened[0] as
    soon as the kernel completed its handshake, even when this event loop (starved by the loads
    beside it) only looks after its timeout: linesman accepted that connection all the same, and
    the soak compares the two counts. Counting only when open_connection returned in time made
    the soak report fewer clients than linesman accepted (bench/results/2026-12-03-soak20b)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
    except (OSError, asyncio.TimeoutError):
        try:
            sock.getpeername()  # connected after all: the wait only timed out late
            opened[0] += 1
        except OSError:
            pass
        sock.close()
        return None
    opened[0] += 1
    try:
        return await asyncio.open_connection(sock=sock)
    except OSError:
        sock.close()
        return None


async def _hold_one(port: int, opened, stop, deadline: float, held: list) -> None:
    """_hold_one: one idle connection, opened again whenever it is closed."""
    while not stop.is_set() and time.monotonic() < deadline:
        conn = await open_counted(port, opened)
        if conn is None:
            await asyncio.sleep(0.5)
            continue
        reader, writer = conn
        held.append(writer)
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    data = await asyncio.wait_for(reader.read(1024), 1.0)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break
        except OSError:
            pass
        held.remove(writer)
        writer.close()


async def _slow_one(port: int, opened, stop, deadline: float) -> None:
    """_slow_one: a client that sends one byte of its hello every 2 s until linesman ends it
    (the listener's peek timeout), then starts again."""
    while not stop.is_set() and time.monotonic() < deadline:
        conn = await open_counted(port, opened)
        if conn is None:
            await asyncio.sleep(0.5)
            continue
        reader, writer = conn
        try:
            for i in range(len(kHelloStart)):
                if stop.is_set() or time.monotonic() >= deadline:
                    break
                writer.write(kHelloStart[i:i + 1])
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(1024), 2.0)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break  # ended by linesman
        except OSError:
            pass
        writer.close()


async def _idle_and_slow(idle_port, idle_n, slow_port, slow_n, opened_value, stop,
                         deadline) -> None:
    opened = [0]
    held: list = []
    tasks = []
    # Ramp up: a few hundred new connections a second, not all at once.
    for i in range(idle_n):
        tasks.append(asyncio.create_task(_hold_one(idle_port, opened, stop, deadline, held)))
        if i % 200 == 199:
            await asyncio.sleep(0.1)
    for i in range(slow_n):
        tasks.append(asyncio.create_task(_slow_one(slow_port, opened, stop, deadline)))
        if i % 200 == 199:
            await asyncio.sleep(0.1)
    published = 0
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0.5)
        with opened_value.get_lock():
            opened_value.value += opened[0] - published
        published = opened[0]
        if stop.is_set() or time.monotonic() >= deadline + 15:
            for w in list(held):
                w.close()
            await asyncio.wait(tasks, timeout=15)
            break
    for t in tasks:
        t.cancel()
    with opened_value.get_lock():
        opened_value.value += opened[0] - published


def idle_and_slow(idle_port, idle_n, slow_port, slow_n, opened, stop, deadline) -> None:
    raise_nofile()
    asyncio.run(_idle_and_slow(idle_port, idle_n, slow_port, slow_n, opened, stop, deadline))


def start(target, *args) -> multiprocessing.Process:
    p = multiprocessing.Process(target=target, args=args, daemon=True)
    p.start()
    return p
