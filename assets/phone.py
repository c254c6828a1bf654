#!/usr/bin/env python3
"""phone.py: a tiny lantalk client, Python 3.8+, standard library only.

    python3 phone.py [--name NAME] HOST[:PORT] [PORT]     chat (Ctrl+D to leave)
    python3 phone.py [--name NAME] --send HOST[:PORT] TEXT one message, exit 0 once acked
    python3 phone.py --browse [--timeout SECS] [--json]   find peers with mDNS

The wire protocol is described in PROTOCOL.md next to this file.
"""
import argparse, json, os, secrets, socket, struct, sys, threading, time

PORT = 7342                  # lantalk's default TCP port
MAX_FRAME = 1_048_576        # the largest payload a frame may carry (1 MiB)
MY_ID = secrets.token_hex(16)  # 32 hex digits; a real client would store it and reuse it
send_lock = threading.Lock()   # two threads (chat + reader) write to one socket


# ---- Framing -------------------------------------------------------------
# TCP is a byte stream: it has no idea where one message ends and the next one
# begins. Two sends may arrive as one recv(), one send may arrive in pieces.
# So every message (a "frame") starts with its length: 4 bytes, big-endian
# (">I" in struct), followed by that many bytes of UTF-8 JSON.

def send(sock, msg):
    data = json.dumps(msg).encode("utf-8")
    # Header and payload in ONE sendall: two small writes would make the
    # receiver wait ~40 ms for each message (Nagle + delayed ACK).
    with send_lock:
        sock.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(sock, n):
    # recv(n) returns *up to* n bytes, maybe fewer: keep asking until we have
    # all n. An empty result means the other side closed the connection.
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv(sock):
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    if not 1 <= length <= MAX_FRAME:  # check BEFORE reading: it may be garbage
        raise ValueError("bad frame length %d" % length)
    return json.loads(recv_exact(sock, length).decode("utf-8"))


def clean(text):
    # Never print a peer's text raw: escape control characters (terminal
    # escape sequences!) and invisible ones such as bidi overrides.
    return "".join(c if c.isprintable() or c in "\n\t" else "\\u%04x" % ord(c) for c in text)


def fail(message):
    print("phone.py: " + message, file=sys.stderr, flush=True)
    sys.exit(1)


# ---- Connecting ----------------------------------------------------------

def split_host_port(text, port=None):
    if text.startswith("["):             # [IPv6]:PORT
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:] or port or PORT)
    if text.count(":") == 1:             # HOST:PORT (a bare IPv6 has several ':')
        host, _, p = text.partition(":")
        return host, int(p)
    return text, int(port or PORT)


def connect(host, port, name):
    sock = socket.create_connection((host, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Say hello at once: the listener sends nothing until we have spoken.
    send(sock, {"type": "hello", "proto": 1, "id": MY_ID, "name": name, "app": "phone.py/1"})
    peer = recv(sock)
    if peer.get("type") == "error":
        fail("%s refused us: %s" % (host, peer.get("message")))
    if peer.get("type") != "hello":
        fail("expected a hello, got %r" % peer.get("type"))
    sock.settimeout(None)  # from now on, block as long as needed
    return sock, clean(str(peer.get("name", "?")))


def text_message(body, counter):
    return {"type": "text", "id": "%s-%d" % (MY_ID[:16], counter),
            "ts": int(time.time() * 1000), "body": body}


# ---- Chat ----------------------------------------------------------------

def reader(sock, peer, state):
    """Runs in a thread: prints what arrives until the peer leaves."""
    code = 0
    try:
        while True:
            msg = recv(sock)
            kind = msg.get("type")
            if kind == "text":
                print("%s: %s" % (peer, clean(str(msg.get("body", "")))), flush=True)
                send(sock, {"type": "ack", "id": msg.get("id")})  # ack once shown
            elif kind == "ack":
                state["pending"].discard(msg.get("id"))
                print("  \u2713 delivered", flush=True)
            elif kind == "ping":
                send(sock, {"type": "pong", "nonce": msg.get("nonce", 0)})
            elif kind == "error":
                print("phone.py: error from %s: %s (%s)" % (peer, msg.get("message"),
                      msg.get("code")), file=sys.stderr, flush=True)
                code = 1
                break
            elif kind == "bye":
                break
            # hello again, pong, unknown types: ignored, as the protocol says
    except (EOFError, OSError, ValueError) as e:
        if not state["bye_sent"]:     # after our bye, EOF is the normal ending
            print("phone.py: connection lost: %s" % e, file=sys.stderr, flush=True)
            code = 1
    if not state["bye_sent"]:         # the peer left first: answer its bye
        try:
            if code == 0:
                send(sock, {"type": "bye"})
        except OSError:
            pass
        print("%s left" % peer, file=sys.stderr, flush=True)
        # The main thread is stuck reading the keyboard; end the whole program.
        sys.stdout.flush()
        os._exit(code)
    state["reader_code"] = code


def chat(host, port, name):
    sock, peer = connect(host, port, name)
    print("connected to %s; type a message and press Enter, Ctrl+D to leave" % peer,
          file=sys.stderr, flush=True)
    state = {"bye_sent": False, "code": 0, "pending": set()}  # pending: ids not yet acked
    thread = threading.Thread(target=reader, args=(sock, peer, state), daemon=True)
    thread.start()
    counter = 0
    try:
        for line in sys.stdin:          # ends at Ctrl+D (EOF)
            body = line.rstrip("\n")
            if body:
                counter += 1
                msg = text_message(body, counter)
                state["pending"].add(msg["id"])
                send(sock, msg)
        # Ctrl+D: first give the peer up to 5 s to acknowledge what we sent...
        deadline = time.monotonic() + 5
        while state["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        if state["pending"]:
            print("phone.py: %d message(s) not acknowledged" % len(state["pending"]),
                  file=sys.stderr, flush=True)
            state["code"] = 1
        # ...then leave politely: bye, close our sending side, wait for its bye.
        state["bye_sent"] = True
        send(sock, {"type": "bye"})
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        fail("cannot send: %s" % e)
    thread.join(10)
    sys.exit(state["code"] or state.get("reader_code", 0))


def send_one(host, port, name, body):
    sock, peer = connect(host, port, name)
    msg = text_message(body, 1)
    send(sock, msg)
    deadline = time.monotonic() + 5
    try:
        while True:  # wait up to 5 s for the ack of our text
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            reply = recv(sock)
            if reply.get("type") == "ack" and reply.get("id") == msg["id"]:
                break
            if reply.get("type") == "ping":
                send(sock, {"type": "pong", "nonce": reply.get("nonce", 0)})
            elif reply.get("type") in ("error", "bye"):
                fail("%s ended the session: %s" % (peer, reply.get("message", "bye")))
    except socket.timeout:
        fail("no acknowledgement from %s within 5 s" % peer)
    except (EOFError, OSError, ValueError) as e:
        fail("not delivered: %s" % e)
    try:  # delivered! Now say bye and wait (briefly) for the peer's bye or EOF
        send(sock, {"type": "bye"})
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        while recv(sock).get("type") != "bye":
            pass
    except (EOFError, OSError, ValueError):
        pass  # the message was acknowledged; how the goodbye went does not matter
    sys.exit(0)


# ---- mDNS browsing ---------------------------------------------------------
# mDNS is DNS over UDP multicast: we send one question "who has PTR records
# for _lantalk._tcp.local.?" to 224.0.0.251:5353. We send it from a random
# port rather than 5353, which makes it a "legacy unicast" query (RFC 6762
# section 6.7): responders answer straight back to our port, so we do not
# need to set the QU ("unicast response please") bit or join the group.
SERVICE = "_lantalk._tcp.local"


def encode_name(name):  # "a.b" -> b"\x01a\x01b\x00"
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def read_name(packet, pos):
    """Returns (name, position after it). Handles compression pointers:
    a length byte >= 0xC0 means "the rest of the name is at offset X"."""
    labels, end, jumps = [], None, 0
    while True:
        n = packet[pos]
        if n >= 0xC0:
            end = end or pos + 2
            pos, jumps = struct.unpack(">H", packet[pos:pos + 2])[0] & 0x3FFF, jumps + 1
            if jumps > 20:
                raise ValueError("pointer loop")
        elif n == 0:
            return ".".join(labels), end or pos + 1
        else:
            labels.append(packet[pos + 1:pos + 1 + n].decode("utf-8", "replace"))
            pos += 1 + n


def parse(packet, found):
    """Adds the PTR/SRV/TXT/A records of one DNS response to `found`."""
    _id, _flags, qd, an, ns, ar = struct.unpack(">6H", packet[:12])
    pos = 12
    for _ in range(qd):                      # skip the echoed questions
        pos = read_name(packet, pos)[1] + 4
    for _ in range(an + ns + ar):            # then every record
        name, pos = read_name(packet, pos)
        rtype, _cls, _ttl, size = struct.unpack(">HHIH", packet[pos:pos + 10])
        pos += 10
        data, key = packet[pos:pos + size], name.lower()
        if rtype == 12 and key == SERVICE.lower():                    # PTR
            found["ptr"].add(read_name(packet, pos)[0])
        elif rtype == 33:                                            # SRV
            port = struct.unpack(">H", data[4:6])[0]
            found["srv"][key] = (read_name(packet, pos + 6)[0].lower(), port)
        elif rtype == 16:                                            # TXT
            txt, i = {}, 0
            while i < len(data):   # strings of "key=value", each length-prefixed
                item = data[i + 1:i + 1 + data[i]].decode("utf-8", "replace")
                txt[item.partition("=")[0]] = item.partition("=")[2]
                i += 1 + data[i]
            found["txt"][key] = txt
        elif rtype == 1 and size == 4:                               # A (IPv4)
            found["a"].setdefault(key, socket.inet_ntoa(data))
        pos += size


def browse(timeout):
    query = struct.pack(">6H", 0, 0, 1, 0, 0, 0) + encode_name(SERVICE) + struct.pack(">HH", 12, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    found = {"ptr": set(), "srv": {}, "txt": {}, "a": {}, "src": {}}
    deadline, next_query = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_query:   # ask again every second
            sent = False
            for index, ifname in socket.if_nameindex():  # on every interface
                try:  # struct ip_mreqn {group, local address, interface index} (Linux)
                    mreqn = struct.pack("4s4si", socket.inet_aton("224.0.0.251"), bytes(4), index)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                    sock.sendto(query, ("224.0.0.251", 5353))
                    sent = True
                except OSError:
                    pass
            if not sent:  # other systems: let the routing table pick
                sock.sendto(query, ("224.0.0.251", 5353))
            next_query = time.monotonic() + 1
        sock.settimeout(max(min(deadline, next_query) - time.monotonic(), 0.01))
        try:
            packet, (src, _port) = sock.recvfrom(9000)
            parse(packet, found)
            for instance in found["ptr"]:
                found["src"].setdefault(instance.lower(), src)
        except socket.timeout:
            pass
        except (ValueError, IndexError, struct.error):
            pass  # a malformed packet: ignore it
    peers = []
    for instance in sorted(found["ptr"]):
        key = instance.lower()
        if key not in found["srv"]:
            continue
        host, port = found["srv"][key]
        txt = found["txt"].get(key, {})
        peers.append({"name": txt.get("nick") or instance[:-len(SERVICE) - 1],
                      "address": found["a"].get(host, found["src"].get(key)),
                      "port": port, "host": host, "id": txt.get("id", "")})
    return peers


def main():
    p = argparse.ArgumentParser(description="A tiny lantalk client.")
    p.add_argument("args", nargs="*", help="HOST[:PORT] [PORT], or HOST[:PORT] TEXT with --send")
    p.add_argument("--send", action="store_true", help="send one message and exit")
    p.add_argument("--browse", action="store_true", help="find lantalk peers with mDNS")
    p.add_argument("--timeout", type=float, default=2.0, help="browse for SECS (default 2)")
    p.add_argument("--json", action="store_true", help="--browse: one JSON object per line")
    p.add_argument("--name", default=socket.gethostname().split(".")[0], help="our name")
    a = p.parse_args()
    try:
        if a.browse:
            peers = browse(a.timeout)
            for n, peer in enumerate(peers, 1):
                if a.json:
                    print(json.dumps(peer), flush=True)
                else:
                    print("%d. %s  %s:%d  id %s" % (n, clean(peer["name"]), peer["address"],
                          peer["port"], clean(peer["id"])), flush=True)
            if not peers:
                fail("no lantalk peers found")
            if a.json or not sys.stdin.isatty():
                return
            choice = input("connect to which? [1-%d] " % len(peers)).strip()
            if not choice.isdigit() or not 1 <= int(choice) <= len(peers):
                fail("no such peer: %r" % choice)
            chat(peers[int(choice) - 1]["address"], peers[int(choice) - 1]["port"], a.name)
        elif a.send:
            if len(a.args) < 2:
                p.error("--send needs HOST[:PORT] and TEXT")
            send_one(*split_host_port(a.args[0]), a.name, " ".join(a.args[1:]))
        elif 1 <= len(a.args) <= 2:
            chat(*split_host_port(*a.args), a.name)
        else:
            p.error("give HOST[:PORT], or use --send or --browse")
    except (OSError, EOFError, ValueError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
