#!/usr/bin/python3
"""echo_server.py: the soak's upstream, an asyncio echo server that holds thousands of
connections in one thread (peer.py's thread per connection would not). `echo_server.py PORT`
binds 127.0.0.1:PORT (SO_REUSEADDR, so a restarted one takes the port again at once), prints
`port N` and echoes every byte until EOF or until killed."""
import asyncio
import resource
import sys


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True,
                                        backlog=4096)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(int(sys.argv[1])))
