"""python-zeroconf as another stack on the LAN, for tests/interop.rs.

    python zeroconf_peer.py browse
        Browses _lantalk._tcp.local. on every interface and family; prints a
        JSON line per service resolved ({"event": "resolved", "name",
        "server", "port", "addresses", "txt"}) and per service removed
        ({"event": "removed", "name"}).
    python zeroconf_peer.py register INSTANCE HOST ADDRESS PORT [KEY=VALUE...]
        Registers INSTANCE._lantalk._tcp.local. on HOST.local. at ADDRESS
        and PORT with the TXT KEY=VALUE pairs; prints `registered`, then
        runs until killed (SIGTERM unregisters: a goodbye).
"""

import json
import signal
import socket
import sys
import threading

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

TYPE = "_lantalk._tcp.local."


def browse():
    zc = Zeroconf(ip_version=IPVersion.All)

    def changed(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            print(json.dumps({"event": "removed", "name": name}), flush=True)
            return
        if state_change is not ServiceStateChange.Added:
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None:
            print(json.dumps({"event": "unresolved", "name": name}), flush=True)
            return
        txt = {k.decode(): (v or b"").decode("utf-8", "replace") for k, v in info.properties.items()}
        print(
            json.dumps(
                {
                    "event": "resolved",
                    "name": name,
                    "server": info.server,
                    "port": info.port,
                    "addresses": info.parsed_scoped_addresses(IPVersion.All),
                    "txt": txt,
                }
            ),
            flush=True,
        )

    ServiceBrowser(zc, TYPE, handlers=[changed])
    threading.Event().wait()


def register(instance, host, address, port, pairs):
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    props = dict(pair.split("=", 1) for pair in pairs)
    info = ServiceInfo(
        TYPE,
        f"{instance}.{TYPE}",
        addresses=[socket.inet_aton(address)],
        port=int(port),
        properties=props,
        server=f"{host}.local.",
    )
    zc.register_service(info)
    print("registered", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    zc.unregister_service(info)
    zc.close()


if __name__ == "__main__":
    if sys.argv[1] == "browse":
        browse()
    else:
        register(*sys.argv[2:6], sys.argv[6:])
