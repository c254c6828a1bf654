#!/usr/bin/env python3
"""phone.py: a tiny lantalk client, Python 3.8+, standard library only.

    python3 phone.py [OPTIONS] HOST[:PORT] [PORT]        chat (Ctrl+D to leave)
    python3 phone.py [OPTIONS] --send HOST[:PORT] TEXT   one message, exit 0 once acked
    python3 phone.py --browse [--timeout SECS] [--json]  find peers with mDNS
    python3 phone.py [OPTIONS] --browse NAME             find NAME with mDNS, then chat
    python3 phone.py [OPTIONS] --browse --send NAME TEXT find NAME with mDNS, then send

Sessions are encrypted (TLS). Each side proves who it is with its
certificate. The laptop's fingerprint must be the one given with --fp, the
one it advertises on mDNS (--browse), or the one pinned on first contact for
what was dialled (the HOST:PORT as typed, or the mDNS name). This phone has
a key of its own, made on first run with the `openssl` command and kept in
~/.lantalk_phone/ with its name, id and pins; its fingerprint is printed at
start. Without `openssl` it has no key: the laptop shows it as "encrypted,
unauthenticated". OPTIONS: --name NAME (kept for next time), --fp
FINGERPRINT, --dir DIR, --known FILE, --plaintext (no encryption, for older
lantalks).

The wire protocol is described in PROTOCOL.md next to this file.
"""
import argparse, hashlib, json, os, re, secrets, select, shutil, socket, ssl, struct
import shlex, subprocess, sys, threading, time

PORT = 7342                  # lantalk's default TCP port
MAX_FRAME = 1_048_576        # the largest payload a frame may carry (1 MiB)
HOME = os.path.expanduser("~")
DIR = os.path.join(HOME, ".lantalk_phone")       # our key, name, id and pins
OLD_KNOWN = os.path.join(HOME, ".lantalk_phone_known")  # where pins were kept before
# Text ids must be unique among all our texts, and our peer id is the same on
# every run now: a random prefix per run, then a counter (as lantalk does).
RUN = secrets.token_hex(8)


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


# ---- Who we are: a key of our own ----------------------------------------
# Like every lantalk, phone.py has a key pair and a self-signed certificate,
# made once, on first run, and kept in its directory (~/.lantalk_phone, or
# --dir), readable by its owner only:
#
#   key.pem    our private key (ECDSA P-256, PEM)
#   cert.pem   our self-signed certificate (PEM); its SHA-256 is our fingerprint
#   me.json    {"name": our name, "id": the id we use while we have no key}
#   known      the laptops' keys we pinned, {what was dialled: fingerprint}
#
# We present the certificate in every TLS session, so the laptop knows us by
# our key, across restarts and new addresses. Our peer id is derived from the
# certificate exactly as lantalk derives its own (the first 32 hex digits of
# the fingerprint): nobody without our key can use it.
#
# Python's standard library cannot make keys, so we ask the `openssl`
# command. P-256, because that is what lantalk uses itself and what its TLS
# library (rustls, with ring) takes from a client: it also takes P-384,
# Ed25519 and RSA, but a key it does not take (P-521, say) is silently not
# sent, and the session comes out unauthenticated. Without `openssl` we say
# so and carry on without a key: the session is still encrypted, but the
# laptop shows us as "encrypted, unauthenticated", and our id is a random one
# made once and kept in me.json, so that every run is still the same
# conversation. Once `openssl` is there, the next run makes the key. To the
# laptop a key is a new peer: it shows the key-less conversation how to move
# to it (/trust there, or `lantalk trust`), and moves nothing by itself.

def write_private(path, text):
    """Writes `text` to `path`, readable by its owner only; aside first, then
    renamed, so there is never half a file."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path, what):
    """The JSON object in `path`, {} if there is none. A broken file is an
    error: ignoring it would quietly forget a pin or change our id."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        fail("cannot read %s in %s: %s" % (what, path, e))
    if not isinstance(value, dict):
        fail("cannot read %s in %s: not a JSON object" % (what, path))
    return value


def make_key(key_file, cert_file):
    """Makes our key and certificate with the openssl command. Returns None
    once they are in place, else why there is no key."""
    openssl = shutil.which("openssl")
    if not openssl:
        return "there is no openssl command to make one"
    tmp_key, tmp_cert = ("%s.new%d" % (f, os.getpid()) for f in (key_file, cert_file))
    old_umask = os.umask(0o077)  # openssl's files are ours alone from the start
    try:
        done = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "36500", "-subj", "/CN=lantalk",
             "-keyout", tmp_key, "-out", tmp_cert],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=60)
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = None if done.returncode == 0 else "openssl failed: %s" % (
            said[-1] if said else "exit status %d" % done.returncode)
    except Exception as e:  # anything: some phones cannot start programs at all
        why = "openssl could not be run: %s" % e
    finally:
        os.umask(old_umask)
    if why is None:
        try:  # a key we could not use must not become ours
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(tmp_cert, tmp_key)
        except (OSError, ssl.SSLError) as e:
            why = "openssl made a key that cannot be used: %s" % e
    if why is None:
        try:
            os.chmod(tmp_key, 0o600)
            os.chmod(tmp_cert, 0o600)
            # The certificate last: a key.pem without a cert.pem is made again.
            os.replace(tmp_key, key_file)
            os.replace(tmp_cert, cert_file)
        except OSError as e:
            why = "cannot keep the key: %s" % e
    for tmp in (tmp_key, tmp_cert):
        if os.path.exists(tmp):
            os.remove(tmp)
    return why


class Me:
    """Who this phone is: its name, its peer id, and the key and certificate
    it presents (`fp` is None when it has none)."""

    def __init__(self, directory, name=None):
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as e:
            fail("cannot create %s: %s" % (directory, e))
        self.dir = directory
        self.key_file = os.path.join(directory, "key.pem")
        self.cert_file = os.path.join(directory, "cert.pem")
        me_file = os.path.join(directory, "me.json")
        saved = read_json(me_file, "this phone's name and id")
        kept = dict(saved)
        if not isinstance(saved.get("name", ""), str) or not isinstance(saved.get("id", ""), str):
            fail("cannot read %s: \"name\" and \"id\" must be strings" % me_file)
        # The name lantalk knows us by: given once with --name, kept after.
        self.name = name or saved.get("name") or socket.gethostname().split(".")[0] or "phone"
        kept["name"] = self.name
        self.made = False           # the key was made just now
        self.no_key = None          # why we have no key
        if not os.path.exists(self.cert_file):
            self.no_key = make_key(self.key_file, self.cert_file)
            self.made = self.no_key is None
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if os.path.exists(self.cert_file):
            try:
                # Both files, or an error: a key that does not match its
                # certificate (or is missing) must not turn us into a new peer.
                self.context.load_cert_chain(self.cert_file, self.key_file)
                with open(self.cert_file, encoding="ascii") as f:
                    der = ssl.PEM_cert_to_DER_cert(f.read())
            except (OSError, ValueError, ssl.SSLError) as e:
                fail("cannot use our key (%s, %s): %s. Moving both away makes a new key, "
                     "and a new peer id" % (self.key_file, self.cert_file, e))
            self.fp = hashlib.sha256(der).hexdigest()
            self.id = self.fp[:32]  # exactly as lantalk derives a peer id
        else:
            self.fp = None
            self.id = saved.get("id") or secrets.token_hex(16)
            if not re.fullmatch("[0-9a-f]{32}", self.id):
                fail("cannot read %s: \"id\" must be 32 lowercase hex digits" % me_file)
            kept["id"] = self.id
        if kept != saved:
            try:
                write_private(me_file, json.dumps(kept, indent=1, sort_keys=True) + "\n")
            except OSError as e:
                fail("cannot write %s: %s" % (me_file, e))

    def introduce(self):
        """Tells the user who we are, once per run, as `lantalk listen` does."""
        if self.made:
            say("made our key with openssl (ECDSA P-256): %s, %s"
                % (self.key_file, self.cert_file))
        if self.fp:
            say("our fingerprint %s (id %s, key in %s)" % (grouped(self.fp), self.id, self.dir))
        else:
            say("no key: %s. The laptop shows this phone as encrypted, unauthenticated; "
                "its id %s is kept in %s"
                % (self.no_key, self.id, os.path.join(self.dir, "me.json")))


# ---- Who is on the other end: TLS and fingerprints ------------------------
# A lantalk's certificate is self-signed: no authority vouches for it, so
# TLS here checks no chain and no host name. What it does guarantee is that
# the laptop holds the private key of the certificate it shows, and that
# nobody can read or change the session. WHO that certificate belongs to is
# settled by its fingerprint (SHA-256 of the certificate), which people can
# compare: `lantalk listen` prints its own, as we print ours. The laptop's
# peer id is the first 32 hex digits of it.

def parse_fp(text):
    """64 hex digits, as people copy them: any case, grouped with spaces or colons."""
    hexfp = re.sub("[ :]", "", text).lower()
    if not re.fullmatch("[0-9a-f]{64}", hexfp):
        raise argparse.ArgumentTypeError("a fingerprint is 64 hex digits (SHA-256)")
    return hexfp


def grouped(hexfp):  # "1a2b3c4d..." -> "1a2b 3c4d ...", as lantalk prints it
    return " ".join(hexfp[i:i + 4] for i in range(0, len(hexfp), 4))


def start_tls(sock, me):
    """TLS 1.3 over `sock`, presenting our certificate if we have one; returns
    the TLS socket and the peer's fingerprint."""
    context = me.context
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False      # no names in lantalk certificates...
    context.verify_mode = ssl.CERT_NONE  # ...and no authority: see above
    tls = context.wrap_socket(sock)
    return tls, hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def load_pins(path, old=None):
    """{what was dialled: fingerprint} pinned so far. Pins kept before, in
    `old` ({laptop name: fingerprint}), count for the mDNS names of those
    laptops until the first pin is written here."""
    pins = read_json(path, "the pinned keys")
    if not pins and old and not os.path.exists(path):
        # They were pinned under the name in the laptop's hello, which is
        # also its mDNS instance name (unless someone else had it first).
        pins = {mdns_label(name): fp for name, fp in read_json(old, "the pinned keys").items()}
    for label, fp in pins.items():
        if not (isinstance(fp, str) and re.fullmatch("[0-9a-f]{64}", fp)):
            fail("cannot read the pinned keys in %s: the one for %s is not a fingerprint"
                 % (path if os.path.exists(path) else old, json.dumps(label)))
    return pins


def save_pins(path, pins):
    write_private(path, json.dumps(pins, indent=1, sort_keys=True) + "\n")


def dialled_label(host, port):
    """What a laptop dialled by address is pinned under: the host as typed
    (case does not matter in host names) and the port."""
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host.lower(), port)


def mdns_label(instance):
    """What a laptop found with --browse is pinned under: its mDNS instance."""
    return "%s.%s" % (instance.lower(), SERVICE)


def verification_code(fp_a, fp_b):
    """The code of PROTOCOL.md section 9.5, from both keys: the laptop shows
    the same one (/verify, `lantalk verify`) only if each side saw the
    other's real key, that is, if nobody is in the middle."""
    low, high = sorted([bytes.fromhex(fp_a), bytes.fromhex(fp_b)])
    h = hashlib.sha256(b"lantalk verification code v2" + low + high).digest()
    return " ".join("%05d" % (struct.unpack(">I", h[i:i + 4])[0] % 100000) for i in range(0, 32, 4))


class Refused(Exception):
    """The laptop is not who it should be; the message says why."""


def check_key(label, fp, expect, pins):
    """Trust on first use, as lantalk does, by what was dialled: the first key
    seen there is pinned; another key there later is refused, loudly. Runs
    before we send anything. Returns how the key is known, and whether to pin
    it (once the laptop's hello holds)."""
    pinned = pins.get(label)
    if expect and expect[1] == "--fp":
        # The person read the fingerprint off the laptop: that settles it,
        # and replaces an older pin (this is how a new key is accepted).
        return "key as given with --fp", pinned != fp
    if pinned and pinned != fp:
        raise Refused("WARNING: THE KEY OF \"%s\" HAS CHANGED: pinned %s, presented %s. "
                      "Someone may be impersonating it, or it was reinstalled. Nothing was "
                      "sent. If you are sure (compare with the fingerprint `lantalk listen` "
                      "prints), accept the new key with --fp %s"
                      % (clean(label), grouped(pinned), grouped(fp), fp))
    if pinned:
        return "key as pinned", False
    if expect:
        return "key as advertised on mDNS", True
    # A laptop we know, reached another way (its address rather than its
    # mDNS name, say): not a stranger, though nothing made it expected here.
    known_as = sorted(other for other, key in pins.items() if key == fp)
    if known_as:
        return "key as pinned for \"%s\"" % clean(known_as[0]), True
    return "first contact", True


# ---- Connecting ----------------------------------------------------------

def split_host_port(text, port=None):
    if text.startswith("["):             # [IPv6]:PORT
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:] or port or PORT)
    if text.count(":") == 1:             # HOST:PORT (a bare IPv6 has several ':')
        host, _, p = text.partition(":")
        return host, int(p)
    return text, int(port or PORT)


def connect(host, port, opts, label, advertised=None):
    """Opens a session; returns the Wire and the laptop's (printable) name.
    `label`: what the user dialled, which its key is pinned under.
    `advertised`: the fingerprint its mDNS advertisement carries, if any."""
    me = opts.me
    me.introduce()
    where = "%s:%d" % (host, port)
    sock = socket.create_connection((host, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    expect = (opts.fp, "--fp") if opts.fp else (advertised, "mDNS") if advertised else None
    fp = None
    if not opts.plaintext:
        try:
            sock, fp = start_tls(sock, me)
        except (ssl.SSLError, OSError) as e:
            fail("no encrypted session with %s (%s): an older lantalk? "
                 "--plaintext talks to it in clear" % (where, e))
        say("fingerprint of %s: %s" % (where, grouped(fp)))
        # Checked before we say anything, not even hello: an impostor learns
        # nothing, not our name, not our id.
        if expect and expect[0] != fp:
            sock.close()
            fail("REFUSED: %s presented the key %s, but %s says %s: someone may be in "
                 "the middle. Nothing was sent." % (where, grouped(fp),
                 "--fp" if expect[1] == "--fp" else "its mDNS advertisement",
                 grouped(expect[0])))
        try:
            how, pin = check_key(label, fp, expect, load_pins(opts.known, opts.old_known))
        except Refused as e:
            sock.close()
            fail(str(e))
    wire = Wire(sock)
    # Say hello at once: in clear, the listener sends nothing until we have spoken.
    wire.send({"type": "hello", "proto": 1, "id": me.id, "name": me.name, "app": "phone.py/3"})
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
        # A certificate proves an id: the laptop's id is derived from its key.
        if peer.get("id") != fp[:32]:
            why = ("REFUSED: %s claims the id %s but its certificate proves the id %s"
                   % (where, clean(str(peer.get("id"))), fp[:32]))
            wire.send({"type": "error", "code": "untrusted", "message": why})  # tell it why
            fail(why)
        if pin:  # only now: a laptop that fails the checks is never pinned
            pins = load_pins(opts.known, opts.old_known)
            pins[label] = fp
            save_pins(opts.known, pins)
            how += ", pinned in %s" % opts.known
        how = "encrypted, " + how
    say("connected to %s at %s (%s)" % (clean(name), where, how))
    if fp and me.fp:
        say("verification code %s: `lantalk verify %s` on the laptop (or /verify) shows the "
            "same, unless someone is in the middle"
            % (verification_code(me.fp, fp), shlex.quote(clean(me.name))))
    return wire, clean(name)


def text_message(body, counter):
    return {"type": "text", "id": "%s-%d" % (RUN, counter),
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


def chat(host, port, opts, label, advertised=None):
    wire, peer = connect(host, port, opts, label, advertised)
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


def send_one(host, port, opts, label, body, advertised=None):
    wire, peer = connect(host, port, opts, label, advertised)
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
                      "instance": instance[:-len(SERVICE) - 1],  # what its key is pinned under
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
    p.add_argument("--name", help="our name, kept for next time (at first: the host name)")
    p.add_argument("--fp", type=parse_fp, metavar="FINGERPRINT",
                   help="the laptop's key fingerprint, as `lantalk listen` prints it")
    p.add_argument("--dir", metavar="DIR", help="where our key, name, id and pinned keys are "
                   "kept (default %s)" % DIR)
    p.add_argument("--known", metavar="FILE",
                   help="where keys are pinned on first contact (default DIR/known)")
    p.add_argument("--plaintext", action="store_true",
                   help="no encryption: the old protocol in clear, for older lantalks")
    a = p.parse_args()
    if a.plaintext and a.fp:
        p.error("--fp needs encryption: leave out --plaintext")
    # The pins of earlier versions are read when nothing says where pins are.
    a.old_known = OLD_KNOWN if a.known is None and a.dir is None else None
    a.dir = a.dir or DIR
    a.known = a.known or os.path.join(a.dir, "known")

    def dial(host, port, label, advertised=None):
        a.me = Me(a.dir, a.name)
        if a.send:
            send_one(host, port, a, label, " ".join(a.args[1:]), advertised)
        else:
            chat(host, port, a, label, advertised)

    try:
        if a.browse:
            if a.send and len(a.args) < 2:
                p.error("--browse --send needs NAME and TEXT")
            peers = browse(a.timeout)
            if a.args:  # a peer by name: no list, no question
                peer = pick(peers, a.args[0])
                dial(peer["address"], peer["port"], mdns_label(peer["instance"]),
                     advertised_fp(peer))
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
            dial(peer["address"], peer["port"], mdns_label(peer["instance"]), advertised_fp(peer))
        elif a.send:
            if len(a.args) < 2:
                p.error("--send needs HOST[:PORT] and TEXT")
            host, port = split_host_port(a.args[0])
            dial(host, port, dialled_label(host, port))
        elif 1 <= len(a.args) <= 2:
            host, port = split_host_port(*a.args)
            dial(host, port, dialled_label(host, port))
        else:
            p.error("give HOST[:PORT], or use --send or --browse")
    except (OSError, EOFError, ValueError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
