"""What a cache per interface *and* IP family, like avahi's, holds for a host,
and whether every record in it gets its goodbye (TTL 0) on that family.

Listens for mDNS on IPv4 and IPv6 on one interface and parses every packet
with python-zeroconf's parser (so what lantalk sends must be well-formed to
python-zeroconf). Asks `A?` and `AAAA?` for HOST on both families until
answers came, then prints one line per record cached, `cached FAMILY TYPE
ADDR`, and `ready`. From then on it prints `goodbye FAMILY TYPE ADDR` for
each cached record withdrawn on its own family and, once none is left,
`all withdrawn`. It runs until killed.

    python mdns_families.py IFACE HOST
"""

import select
import socket
import struct
import sys
import time

from zeroconf import DNSIncoming, DNSOutgoing, DNSQuestion
from zeroconf.const import _CLASS_IN, _FLAGS_QR_QUERY, _TYPE_A, _TYPE_AAAA

GROUP4, GROUP6, PORT = "224.0.0.251", "ff02::fb", 5353
NAMES = {_TYPE_A: "A", _TYPE_AAAA: "AAAA"}


def sockets(iface):
    index = socket.if_nametoindex(iface)
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    v4.bind(("0.0.0.0", PORT))
    mreqn = socket.inet_aton(GROUP4) + socket.inet_aton("0.0.0.0") + struct.pack("@i", index)
    v4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    v4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    v6.bind(("::", PORT))
    mreq6 = socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", index)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    return {"v4": (v4, (GROUP4, PORT)), "v6": (v6, (GROUP6, PORT, 0, index))}


def ask(socks, host):
    for sock, dest in socks.values():
        out = DNSOutgoing(_FLAGS_QR_QUERY)
        for qtype in NAMES:
            out.add_question(DNSQuestion(host, qtype, _CLASS_IN))
        for packet in out.packets():
            sock.sendto(packet, dest)


def records(sock, family, host):
    """The address records for HOST in one packet: (family, type, addr, ttl)."""
    data, source = sock.recvfrom(9000)
    msg = DNSIncoming(data, source[:2])
    if not msg.valid:
        print(f"malformed packet from {source[0]} on {family}", flush=True)
        return []
    found = []
    for rec in msg.answers():
        if rec.type in NAMES and rec.name.lower() == host.lower():
            kind = socket.AF_INET if rec.type == _TYPE_A else socket.AF_INET6
            found.append((family, NAMES[rec.type], socket.inet_ntop(kind, rec.address), rec.ttl))
    return found


def main():
    iface, host = sys.argv[1], sys.argv[2]
    socks = sockets(iface)
    by_sock = {sock: family for family, (sock, _) in socks.items()}
    cached = set()
    asked = 0.0
    # Until each family has answered both questions.
    while {(f, t) for f, t, _ in cached} != {(f, t) for f in socks for t in NAMES.values()}:
        if time.monotonic() - asked > 0.5:
            ask(socks, host)
            asked = time.monotonic()
        ready, _, _ = select.select(list(by_sock), [], [], 0.1)
        for sock in ready:
            for family, kind, addr, ttl in records(sock, by_sock[sock], host):
                if ttl > 0:
                    cached.add((family, kind, addr))
    # Answers still in flight (mdns-sd delays some) count too.
    settle = time.monotonic() + 1.0
    while time.monotonic() < settle:
        ready, _, _ = select.select(list(by_sock), [], [], 0.1)
        for sock in ready:
            for family, kind, addr, ttl in records(sock, by_sock[sock], host):
                if ttl > 0:
                    cached.add((family, kind, addr))
    for family, kind, addr in sorted(cached):
        print(f"cached {family} {kind} {addr}", flush=True)
    print("ready", flush=True)
    left = set(cached)
    while True:
        ready, _, _ = select.select(list(by_sock), [], [], 1.0)
        for sock in ready:
            for family, kind, addr, ttl in records(sock, by_sock[sock], host):
                if ttl == 0 and (family, kind, addr) in left:
                    left.discard((family, kind, addr))
                    print(f"goodbye {family} {kind} {addr}", flush=True)
                    if not left:
                        print("all withdrawn", flush=True)


if __name__ == "__main__":
    main()
