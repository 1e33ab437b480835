#!/usr/bin/python3
"""peer.py: small TCP servers the integration tests use as upstreams, one mode per behaviour.

Run as its own process (so the tests stop it by PID and can start it inside a network
namespace): `peer.py MODE [--host H] [--port P] [options]`. It binds, then prints
`port N` on stdout and serves until killed. Every blocking call has a timeout so a stuck test
cannot leave a peer spinning; connections are handled one thread each.

Modes
  echo      echo every byte until EOF, then FIN back.
  hash      read until EOF, then answer `<sha256 hex of what was read>\n` followed by
            --answer-bytes deterministic bytes, then FIN. Proves a half-closed client still
            receives the whole answer.
  banner    speak first: send --banner at accept, then echo (SSH/SMTP stand-in).
  greet     speak first: send --banner, then FIN at once (a server that says goodbye).
  close     read the first chunk the client sends (up to 2 s), then close without a byte
            (what a Traefik entrypoint does when no TCP router matches).
  rst       read the first chunk, then close with SO_LINGER 0 (an RST, no reply).
  silent    accept, read and discard, never answer, ignore EOF (hold the socket).
  http400   read the first chunk, answer an HTTP/1.1 400 and close (a plaintext HTTP backend
            receiving a TLS ClientHello).
  reply     read the first chunk, answer --banner, then keep the socket open and ignore EOF
            until --hold seconds pass, then close with FIN (or RST with --end rst).
"""
import argparse
import hashlib
import socket
import struct
import sys
import threading
import time

kChunkTimeout = 2.0


def payload(n: int) -> bytes:
    """payload: n deterministic bytes (the test recomputes them to compare)."""
    out = bytearray()
    block = hashlib.sha256(b"linesman").digest()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(block + counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:n])


def read_first(conn: socket.socket) -> bytes:
    conn.settimeout(kChunkTimeout)
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def hold(conn: socket.socket, seconds: float) -> None:
    """hold: keep reading and discarding (EOF included) until `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
        try:
            data = conn.recv(65536)
            if not data:
                time.sleep(0.05)
        except socket.timeout:
            continue
        except OSError:
            return


def handle(conn: socket.socket, args) -> None:
    try:
        mode = args.mode
        if mode == "echo":
            conn.settimeout(60)
            while True:
                data = conn.recv(1 << 18)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        elif mode == "hash":
            conn.settimeout(60)
            h = hashlib.sha256()
            while True:
                data = conn.recv(1 << 18)
                if not data:
                    break
                h.update(data)
            conn.sendall(h.hexdigest().encode() + b"\n")
            conn.sendall(payload(args.answer_bytes))
            conn.shutdown(socket.SHUT_WR)
        elif mode == "banner":
            conn.settimeout(60)
            conn.sendall(args.banner.encode().decode("unicode_escape").encode("latin-1"))
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        elif mode == "greet":
            conn.sendall(args.banner.encode().decode("unicode_escape").encode("latin-1"))
            conn.shutdown(socket.SHUT_WR)
            hold(conn, min(args.hold, 5.0))
        elif mode == "close":
            read_first(conn)
        elif mode == "rst":
            read_first(conn)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "silent":
            hold(conn, args.hold)
        elif mode == "http400":
            read_first(conn)
            body = b"Bad Request\n"
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: " + str(len(body)).encode() +
                         b"\r\nConnection: close\r\n\r\n" + body)
            time.sleep(0.05)
        elif mode == "reply":
            read_first(conn)
            conn.sendall(args.banner.encode().decode("unicode_escape").encode("latin-1"))
            hold(conn, args.hold)
            if args.end == "rst":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["echo", "hash", "banner", "greet", "close", "rst", "silent",
                                    "http400", "reply"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--answer-bytes", type=int, default=0)
    p.add_argument("--banner", default="SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\\r\\n")
    p.add_argument("--hold", type=float, default=60.0)
    p.add_argument("--end", choices=["fin", "rst"], default="fin")
    args = p.parse_args()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.port))
    srv.listen(512)
    print(f"port {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
