#!/usr/bin/env python3
"""phone.py: a tiny lantalk client, Python 3.8+, standard library only.

    python3 phone.py [OPTIONS] HOST[:PORT] [PORT]        chat (Ctrl+D to leave)
    python3 phone.py [OPTIONS] --send HOST[:PORT] TEXT   one message, exit 0 once acked
    python3 phone.py --browse [--timeout SECS] [--json]  find peers with mDNS
    python3 phone.py [OPTIONS] --browse NAME             find NAME with mDNS, then chat
    python3 phone.py [OPTIONS] --browse --send NAME TEXT find NAME with mDNS, then send

Sessions are encrypted (TLS). The laptop proves who it is with its
certificate, whose fingerprint must be the one given with --fp, the one it
advertises on mDNS (--browse), or the one pinned for its name on first
contact (in ~/.lantalk_phone_known, or --known FILE). OPTIONS: --name NAME,
--fp FINGERPRINT, --known FILE, --plaintext (no encryption, for older lantalks).

The wire protocol is described in PROTOCOL.md next to this file.
"""
import argparse, hashlib, json, os, re, secrets, select, socket, ssl, struct, sys, threading, time

PORT = 7342                  # lantalk's default TCP port
MAX_FRAME = 1_048_576        # the largest payload a frame may carry (1 MiB)
MY_ID = secrets.token_hex(16)  # 32 hex digits; a real client would store it and reuse it
KNOWN = os.path.join(os.path.expanduser("~"), ".lantalk_phone_known")  # pinned keys


# ---- Framing -------------------------------------------------------------
# TCP is a byte stream: it has no idea where one message ends and the next one
# begins. Two sends may arrive as one recv(), one send may arrive in pieces.
# So every message (a "frame") starts with its length: 4 bytes, big-endian
# (">I" in struct), followed by that many bytes of UTF-8 JSON.

class Wire:
    """Frames over one connection, in clear or inside TLS, for two threads
    (the chat reads in one and writes in the other).

    OpenSSL forbids two threads inside one TLS connection at once: a read
    and a write at the same moment can corrupt it. So every use of the
    socket holds `lock`, and nobody waits while holding it: a thread waits
    with select() for bytes to read (or room to write), then takes the lock
    and does what can be done at once. (Waiting with the lock held could
    deadlock: our writer stuck until the laptop reads, the laptop not
    reading until we read its acks.)"""

    def __init__(self, sock):
        self.sock, self.lock, self.buf = sock, threading.Lock(), b""
        self.tls = isinstance(sock, ssl.SSLSocket)

    def send(self, msg):
        data = json.dumps(msg).encode("utf-8")
        # Header and payload in ONE buffer: two small writes would make the
        # receiver wait ~40 ms for each message (Nagle + delayed ACK).
        data = struct.pack(">I", len(data)) + data
        while data:
            with self.lock:
                self.sock.setblocking(False)  # never wait while holding the lock
                try:
                    data = data[self.sock.send(data):]
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass  # no room: try again with the same bytes (TLS requires it)
                finally:
                    self.sock.setblocking(True)
            if data:
                select.select([], [self.sock], [])

    def recv(self, deadline=None):
        """The next message; socket.timeout if none is complete by `deadline`
        (a time.monotonic() value; None waits as long as it takes)."""
        (length,) = struct.unpack(">I", self.recv_exact(4, deadline))
        if not 1 <= length <= MAX_FRAME:  # check BEFORE reading: it may be garbage
            raise ValueError("bad frame length %d" % length)
        return json.loads(self.recv_exact(length, deadline).decode("utf-8"))

    def recv_exact(self, n, deadline):
        # A read returns what has arrived: maybe part of a frame, maybe the
        # end of one and the start of the next. Keep the rest for next time.
        while len(self.buf) < n:
            self.buf += self.recv_some(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_some(self, deadline):
        while True:
            # Bytes TLS has already decrypted are invisible to select().
            if not (self.tls and self.sock.pending()):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise socket.timeout("timed out")
                select.select([self.sock], [], [], left)
            with self.lock:
                self.sock.setblocking(False)
                try:
                    chunk = self.sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue  # nothing yet, or only part of a TLS record
                finally:
                    self.sock.setblocking(True)
            if not chunk:
                raise EOFError("connection closed")
            return chunk

    def close_write(self):
        # In clear, shutting down our sending side tells the peer we are done
        # (it still reads). TLS has no such half-close in Python's ssl module;
        # our bye says the same, and the laptop answers it with its own.
        if not self.tls:
            self.sock.shutdown(socket.SHUT_WR)


def clean(text):
    # Never print a peer's text raw: escape control characters (terminal
    # escape sequences!) and invisible ones such as bidi overrides.
    return "".join(c if c.isprintable() or c in "\n\t" else "\\u%04x" % ord(c) for c in text)


def say(message):
    print("phone.py: " + message, file=sys.stderr, flush=True)


def fail(message):
    say(message)
    sys.exit(1)


def error_text(msg):
    """What to show of an `error` message from the laptop."""
    text = "%s (%s)" % (clean(str(msg.get("message"))), clean(str(msg.get("code"))))
    if msg.get("code") == "encryption_required":
        text += "; leave out --plaintext"
    return text


# ---- Who is on the other end: TLS and fingerprints ------------------------
# A lantalk's certificate is self-signed: no authority vouches for it, so
# TLS here checks no chain and no host name. What it does guarantee is that
# the laptop holds the private key of the certificate it shows, and that
# nobody can read or change the session. WHO that certificate belongs to is
# settled by its fingerprint (SHA-256 of the certificate), which people can
# compare: `lantalk listen` prints its own. The laptop's peer id is the first
# 32 hex digits of it. We show no certificate ourselves: the laptop marks us
# "encrypted, unauthenticated".

def parse_fp(text):
    """64 hex digits, as people copy them: any case, grouped with spaces or colons."""
    hexfp = re.sub("[ :]", "", text).lower()
    if not re.fullmatch("[0-9a-f]{64}", hexfp):
        raise argparse.ArgumentTypeError("a fingerprint is 64 hex digits (SHA-256)")
    return hexfp


def grouped(hexfp):  # "1a2b3c4d..." -> "1a2b 3c4d ...", as lantalk prints it
    return " ".join(hexfp[i:i + 4] for i in range(0, len(hexfp), 4))


def start_tls(sock):
    """TLS 1.3 over `sock`; returns the TLS socket and the peer's fingerprint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False      # no names in lantalk certificates...
    context.verify_mode = ssl.CERT_NONE  # ...and no authority: see above
    tls = context.wrap_socket(sock)
    return tls, hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def load_pins(path):
    """{laptop name: fingerprint} pinned so far. A broken file is an error:
    ignoring it would quietly turn every laptop into a first contact."""
    try:
        with open(path, encoding="utf-8") as f:
            pins = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        fail("cannot read the pinned keys in %s: %s" % (path, e))
    if not isinstance(pins, dict):
        fail("cannot read the pinned keys in %s: not a JSON object" % path)
    return pins


def save_pins(path, pins):
    tmp = "%s.tmp%d" % (path, os.getpid())  # write aside, then rename: never half a file
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(pins, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class Refused(Exception):
    """The laptop is not who it should be; the message says why."""


def check_key(name, fp, expect, known):
    """Trust on first use, as lantalk does: the first key seen under a name
    is pinned; another key under that name later is refused, loudly. Returns
    how the key is known."""
    pins = load_pins(known)
    pinned = pins.get(name)
    if expect and expect[1] == "--fp":
        # The person read the fingerprint off the laptop: that settles it,
        # and replaces an older pin (this is how a new key is accepted).
        how = "key as given with --fp"
    elif pinned and pinned != fp:
        raise Refused("WARNING: THE KEY OF \"%s\" HAS CHANGED: pinned %s, presented %s. "
                      "Someone may be impersonating it, or it was reinstalled. Nothing was "
                      "sent. If you are sure (compare with the fingerprint `lantalk listen` "
                      "prints), accept the new key with --fp %s"
                      % (clean(name), grouped(pinned), grouped(fp), fp))
    elif pinned:
        return "key as pinned"
    else:
        how = "key as advertised on mDNS" if expect else "first contact"
    if pinned != fp:
        pins[name] = fp
        save_pins(known, pins)
        how += ", pinned in %s" % known
    return how


# ---- Connecting ----------------------------------------------------------

def split_host_port(text, port=None):
    if text.startswith("["):             # [IPv6]:PORT
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:] or port or PORT)
    if text.count(":") == 1:             # HOST:PORT (a bare IPv6 has several ':')
        host, _, p = text.partition(":")
        return host, int(p)
    return text, int(port or PORT)


def connect(host, port, opts, advertised=None):
    """Opens a session; returns the Wire and the laptop's (printable) name.
    `advertised`: the fingerprint its mDNS advertisement carries, if any."""
    where = "%s:%d" % (host, port)
    sock = socket.create_connection((host, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    expect = (opts.fp, "--fp") if opts.fp else (advertised, "mDNS") if advertised else None
    fp = None
    if not opts.plaintext:
        try:
            sock, fp = start_tls(sock)
        except (ssl.SSLError, OSError) as e:
            fail("no encrypted session with %s (%s): an older lantalk? "
                 "--plaintext talks to it in clear" % (where, e))
        say("fingerprint of %s: %s" % (where, grouped(fp)))
        if expect and expect[0] != fp:
            # Checked before we say anything: an impostor learns nothing.
            fail("REFUSED: %s presented the key %s, but %s says %s: someone may be in "
                 "the middle. Nothing was sent." % (where, grouped(fp),
                 "--fp" if expect[1] == "--fp" else "its mDNS advertisement",
                 grouped(expect[0])))
    wire = Wire(sock)
    # Say hello at once: in clear, the listener sends nothing until we have spoken.
    wire.send({"type": "hello", "proto": 1, "id": MY_ID, "name": opts.name, "app": "phone.py/2"})
    try:
        peer = wire.recv(time.monotonic() + 5)
    except socket.timeout:
        fail("no hello from %s within 5 s" % where)
    if peer.get("type") == "error":
        fail("%s refused us: %s" % (where, error_text(peer)))
    if peer.get("type") != "hello":
        fail("expected a hello, got %r" % peer.get("type"))
    name = str(peer.get("name", "?"))
    if fp is None:
        how = "plaintext: anyone on the network can read this session"
    else:
        try:
            # A certificate proves an id: the laptop's id is derived from its key.
            if peer.get("id") != fp[:32]:
                raise Refused("REFUSED: %s claims the id %s but its certificate proves the "
                              "id %s" % (where, clean(str(peer.get("id"))), fp[:32]))
            how = "encrypted, " + check_key(name, fp, expect, opts.known)
        except Refused as e:  # tell the laptop why we leave, then leave
            wire.send({"type": "error", "code": "untrusted", "message": str(e)})
            fail(str(e))
    say("connected to %s at %s (%s)" % (clean(name), where, how))
    return wire, clean(name)


def text_message(body, counter):
    return {"type": "text", "id": "%s-%d" % (MY_ID[:16], counter),
            "ts": int(time.time() * 1000), "body": body}


# ---- Chat ----------------------------------------------------------------

def reader(wire, peer, state):
    """Runs in a thread: prints what arrives until the peer leaves."""
    code = 0
    try:
        while True:
            msg = wire.recv()
            kind = msg.get("type")
            if kind == "text":
                print("%s: %s" % (peer, clean(str(msg.get("body", "")))), flush=True)
                wire.send({"type": "ack", "id": msg.get("id")})  # ack once shown
            elif kind == "ack":
                state["pending"].discard(msg.get("id"))
                print("  \u2713 delivered", flush=True)
            elif kind == "ping":
                wire.send({"type": "pong", "nonce": msg.get("nonce", 0)})
            elif kind == "error":
                say("error from %s: %s" % (peer, error_text(msg)))
                code = 1
                break
            elif kind == "bye":
                break
            # hello again, pong, unknown types: ignored, as the protocol says
    except (EOFError, OSError, ValueError) as e:
        if not state["bye_sent"]:     # after our bye, EOF is the normal ending
            say("connection lost: %s" % e)
            code = 1
    if not state["bye_sent"]:         # the peer left first: answer its bye
        try:
            if code == 0:
                wire.send({"type": "bye"})
        except OSError:
            pass
        print("%s left" % peer, file=sys.stderr, flush=True)
        # The main thread is stuck reading the keyboard; end the whole program.
        sys.stdout.flush()
        os._exit(code)
    state["reader_code"] = code


def chat(host, port, opts, advertised=None):
    wire, peer = connect(host, port, opts, advertised)
    say("type a message and press Enter, Ctrl+D to leave")
    state = {"bye_sent": False, "code": 0, "pending": set()}  # pending: ids not yet acked
    thread = threading.Thread(target=reader, args=(wire, peer, state), daemon=True)
    thread.start()
    counter = 0
    try:
        for line in sys.stdin:          # ends at Ctrl+D (EOF)
            body = line.rstrip("\n")
            if body:
                counter += 1
                msg = text_message(body, counter)
                state["pending"].add(msg["id"])
                wire.send(msg)
        # Ctrl+D: first give the peer up to 5 s to acknowledge what we sent...
        deadline = time.monotonic() + 5
        while state["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        if state["pending"]:
            say("%d message(s) not acknowledged" % len(state["pending"]))
            state["code"] = 1
        # ...then leave politely: bye, close our sending side, wait for its bye.
        state["bye_sent"] = True
        wire.send({"type": "bye"})
        wire.close_write()
    except OSError as e:
        fail("cannot send: %s" % e)
    thread.join(10)
    sys.exit(state["code"] or state.get("reader_code", 0))


def send_one(host, port, opts, body, advertised=None):
    wire, peer = connect(host, port, opts, advertised)
    msg = text_message(body, 1)
    wire.send(msg)
    deadline = time.monotonic() + 5
    try:
        while True:  # wait up to 5 s for the ack of our text
            reply = wire.recv(deadline)
            if reply.get("type") == "ack" and reply.get("id") == msg["id"]:
                break
            if reply.get("type") == "ping":
                wire.send({"type": "pong", "nonce": reply.get("nonce", 0)})
            elif reply.get("type") == "error":
                fail("%s ended the session: %s" % (peer, error_text(reply)))
            elif reply.get("type") == "bye":
                fail("%s ended the session before acknowledging" % peer)
    except socket.timeout:
        fail("no acknowledgement from %s within 5 s" % peer)
    except (EOFError, OSError, ValueError) as e:
        fail("not delivered: %s" % e)
    try:  # delivered! Now say bye and wait (briefly) for the peer's bye or EOF
        wire.send({"type": "bye"})
        wire.close_write()
        deadline = time.monotonic() + 2
        while wire.recv(deadline).get("type") != "bye":
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
                      "port": port, "host": host, "id": txt.get("id", ""),
                      "fp": txt.get("fp", "")})  # the fingerprint of its certificate
    return peers


def pick(peers, name):
    """The one peer called `name` among those found by --browse."""
    same = [p for p in peers if p["name"] == name]
    if not same:
        fail("no lantalk peer named %r found (found: %s)"
             % (name, ", ".join(clean(p["name"]) for p in peers) or "none"))
    if len(same) > 1:
        fail("%d peers are named %r: connect to one by HOST:PORT (%s)" % (len(same), name,
             ", ".join("%s:%d" % (p["address"], p["port"]) for p in same)))
    return same[0]


def advertised_fp(peer):
    try:
        return parse_fp(peer.get("fp") or "")
    except argparse.ArgumentTypeError:
        return None  # none, or not a fingerprint: the pinned key still applies


def main():
    p = argparse.ArgumentParser(description="A tiny lantalk client.")
    p.add_argument("args", nargs="*", help="HOST[:PORT] [PORT], or HOST[:PORT] TEXT with "
                   "--send; with --browse, a peer NAME instead of HOST[:PORT]")
    p.add_argument("--send", action="store_true", help="send one message and exit")
    p.add_argument("--browse", action="store_true", help="find lantalk peers with mDNS")
    p.add_argument("--timeout", type=float, default=2.0, help="browse for SECS (default 2)")
    p.add_argument("--json", action="store_true", help="--browse: one JSON object per line")
    p.add_argument("--name", default=socket.gethostname().split(".")[0], help="our name")
    p.add_argument("--fp", type=parse_fp, metavar="FINGERPRINT",
                   help="the laptop's key fingerprint, as `lantalk listen` prints it")
    p.add_argument("--known", default=KNOWN, metavar="FILE",
                   help="where keys are pinned on first contact (default %(default)s)")
    p.add_argument("--plaintext", action="store_true",
                   help="no encryption: the old protocol in clear, for older lantalks")
    a = p.parse_args()
    if a.plaintext and a.fp:
        p.error("--fp needs encryption: leave out --plaintext")
    try:
        if a.browse:
            peers = browse(a.timeout)
            if a.args:  # a peer by name: no list, no question
                if a.send and len(a.args) < 2:
                    p.error("--browse --send needs NAME and TEXT")
                peer = pick(peers, a.args[0])
                where, fp = (peer["address"], peer["port"]), advertised_fp(peer)
                if a.send:
                    send_one(*where, a, " ".join(a.args[1:]), fp)
                else:
                    chat(*where, a, fp)
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
            peer = peers[int(choice) - 1]
            chat(peer["address"], peer["port"], a, advertised_fp(peer))
        elif a.send:
            if len(a.args) < 2:
                p.error("--send needs HOST[:PORT] and TEXT")
            send_one(*split_host_port(a.args[0]), a, " ".join(a.args[1:]))
        elif 1 <= len(a.args) <= 2:
            chat(*split_host_port(*a.args), a)
        else:
            p.error("give HOST[:PORT], or use --send or --browse")
    except (OSError, EOFError, ValueError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
