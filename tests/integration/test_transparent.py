"""test_transparent: `linesman run --transparent` behind an nftables REDIRECT (docs/transparent-and-proxy-protocol.md).

Three network namespaces the test creates (nothing is routed outside them, the host's own rules
and links are never touched; the veth pairs are created inside the namespaces):

    client ns  c0 10.200.1.2 / fd00:200:1::2  --veth--  m0 10.200.1.1 / fd00:200:1::1
    middle ns  linesman + `nft ... tcp dport 8080 redirect to :LPORT` on m0's ingress
    middle ns  m1 10.200.2.1 / fd00:200:2::1  --veth--  s0 10.200.2.2 / fd00:200:2::2  server ns

The client dials the server's address on port 8080; the REDIRECT sends it to linesman, which
reads the original destination and connects to it. The echo server proves the bytes arrive; the
record shows original_dst. A client dialling linesman's own address is a redirect loop.
"""
import shutil
import socket

import pytest

import lsm
from lsm import assert_stop

kPort = 8080


@pytest.fixture
def topo(reg):
    if not shutil.which("nft"):
        pytest.skip("nft (nftables) is not installed")
    c, m, s = lsm.Netns(), lsm.Netns(), lsm.Netns()
    for ns in (c, m, s):
        reg.add(ns)
    c.sh("ip", "link", "add", "c0", "type", "veth", "peer", "name", "m0", "netns", m.name)
    s.sh("ip", "link", "add", "s0", "type", "veth", "peer", "name", "m1", "netns", m.name)
    for ns, dev, v4, v6 in ((c, "c0", "10.200.1.2/24", "fd00:200:1::2/64"),
                            (m, "m0", "10.200.1.1/24", "fd00:200:1::1/64"),
                            (m, "m1", "10.200.2.1/24", "fd00:200:2::1/64"),
                            (s, "s0", "10.200.2.2/24", "fd00:200:2::2/64")):
        ns.sh("ip", "addr", "add", v4, "dev", dev)
        ns.sh("ip", "-6", "addr", "add", v6, "dev", dev, "nodad")
        ns.sh("ip", "link", "set", dev, "up")
    c.sh("ip", "route", "add", "default", "via", "10.200.1.1")
    c.sh("ip", "-6", "route", "add", "default", "via", "fd00:200:1::1")
    s.sh("ip", "route", "add", "default", "via", "10.200.2.1")
    s.sh("ip", "-6", "route", "add", "default", "via", "fd00:200:2::1")
    return c, m, s


def redirect(m: lsm.Netns, lport: int) -> None:
    m.sh("nft", "-f", "-", input=(
        "table inet lsm {\n chain pre {\n  type nat hook prerouting priority dstnat;\n"
        f"  iifname \"m0\" tcp dport {kPort} redirect to :{lport}\n }}\n}}\n"))


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_transparent_end_to_end(reg, topo, family):
    c, m, s = topo
    v6 = family == "ipv6"
    server_ip = "fd00:200:2::2" if v6 else "10.200.2.2"
    lsm.start_peer(reg, "echo", "--host", "::" if v6 else "0.0.0.0", "--port", str(kPort),
                   netns=s)
    lm = lsm.Linesman(reg, ["--transparent"], listen="[::]:0" if v6 else "0.0.0.0:0", netns=m)
    redirect(m, lm.port)

    def run():
        sock = lsm.connect(kPort, server_ip, timeout=5)
        payload = lsm.peer_payload(300_000)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        got = lsm.recv_all(sock, timeout=10)
        sock.close()
        return payload, got
    payload, got = c.in_ns(run)
    assert got == payload
    rec = lm.record()
    assert rec["original_dst"] == {"ip": server_ip, "port": kPort}
    assert rec["upstream"]["name"] == "original_dst"
    assert rec["upstream"]["ip"] == server_ip and rec["upstream"]["port"] == kPort
    assert rec["client"]["ip"] == ("fd00:200:1::2" if v6 else "10.200.1.2")
    assert rec["local"]["port"] == lm.port
    assert rec["stop"]["reason"] == "completed", lsm.brief(rec)


def test_transparent_redirect_loop_refused(reg, topo):
    c, m, s = topo
    lm = lsm.Linesman(reg, ["--transparent"], listen="0.0.0.0:0", netns=m)
    redirect(m, lm.port)  # loads conntrack in the middle namespace

    def run():
        sock = lsm.connect(lm.port, "10.200.1.1", timeout=5)  # linesman itself, no redirect
        got = lsm.recv_all(sock, timeout=5)
        sock.close()
        return got
    assert c.in_ns(run) == b""
    rec = lm.record()
    assert_stop(rec, "route", "no_route", "proxy")
    assert rec["transparent_error"] == "redirect_loop"
    assert rec["original_dst"] == {"ip": "10.200.1.1", "port": lm.port}
    assert "redirect loop" in rec["hint"], rec["hint"]
    assert rec["upstream"] is None
