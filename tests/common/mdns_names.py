"""The names lantalk services go by on one interface: asks
`PTR? _lantalk._tcp.local.` over IPv4 on IFACE only, a few times over
SECONDS, and prints `srv INSTANCE HOST` once for each service record
answered (parsed with python-zeroconf's parser), then `done`.

    python mdns_names.py IFACE SECONDS
"""

import select
import socket
import struct
import sys
import time

from zeroconf import DNSIncoming, DNSOutgoing, DNSQuestion
from zeroconf.const import _CLASS_IN, _FLAGS_QR_QUERY, _TYPE_PTR, _TYPE_SRV

GROUP, PORT = "224.0.0.251", 5353
IP_MULTICAST_ALL = 49  # Linux: only the groups joined on IFACE, not any interface's


def main():
    iface, seconds = sys.argv[1], float(sys.argv[2])
    index = socket.if_nametoindex(iface)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    sock.bind(("0.0.0.0", PORT))
    mreqn = socket.inet_aton(GROUP) + socket.inet_aton("0.0.0.0") + struct.pack("@i", index)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    seen = set()
    end = time.monotonic() + seconds
    asked = 0.0
    while time.monotonic() < end:
        if time.monotonic() - asked > seconds / 4:
            out = DNSOutgoing(_FLAGS_QR_QUERY)
            out.add_question(DNSQuestion("_lantalk._tcp.local.", _TYPE_PTR, _CLASS_IN))
            for packet in out.packets():
                sock.sendto(packet, (GROUP, PORT))
            asked = time.monotonic()
        ready, _, _ = select.select([sock], [], [], 0.1)
        if not ready:
            continue
        data, source = sock.recvfrom(9000)
        msg = DNSIncoming(data, source)
        if not msg.valid:
            print(f"malformed packet from {source[0]}", flush=True)
            continue
        for rec in msg.answers():
            if rec.type == _TYPE_SRV and rec.ttl > 0:
                line = f"srv {rec.name} {rec.server}"
                if line not in seen:
                    seen.add(line)
                    print(line, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
