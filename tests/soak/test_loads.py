"""The soak's own client count (tests/soak/loads.py): a connection the kernel completed is counted
even when the client's event loop only gets to it after its timeout."""
import asyncio
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loads  # noqa: E402


def test_a_connection_completed_while_the_loop_was_starved_is_counted():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    async def main():
        opened = [0]
        # The loop is busy for longer than the connect's timeout right after the connect starts
        # (as when thousands of soak clients share it): the handshake completes in the kernel,
        # and the timeout and the completion are seen in the same late turn of the loop.
        asyncio.get_running_loop().call_soon(time.sleep, 1.5)
        conn = await loads.open_counted(port, opened, timeout=1.0)
        if conn is not None:
            conn[1].close()
        return opened[0]

    counted = asyncio.run(main())
    srv.settimeout(5)
    accepted, _ = srv.accept()  # what linesman would have accepted and logged
    accepted.close()
    srv.close()
    assert counted == 1


def test_a_refused_connection_is_not_counted():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # bound, not listening: the connect is refused

    async def main():
        opened = [0]
        conn = await loads.open_counted(port, opened, timeout=1.0)
        return opened[0], conn

    try:
        assert asyncio.run(main()) == (0, None)
    finally:
        s.close()
