"""Session flood for tests/floods.rs: connections that speak, then idle.

usage: python3 session_flood.py PORT MODE COUNT SOURCE...

Opens COUNT TCP connections to 127.0.0.1:PORT from each SOURCE address
(each socket bound to it before connecting), all at once, and holds them:

  raw     sends one byte, "x", as a raw text client (nc) typing one letter
          would, then stays silent; whatever the server writes is read and
          its first line kept.
  framed  sends a lantalk hello in clear (a random id, the name
          flood-N), then stays in the session: answers every ping with a
          pong and reads everything else.

Prints a JSON report on stdout for every line read from stdin; closes
everything and exits at the end of stdin. A report: {"opened": n,
"pending": connect not finished, "open": connected and not closed,
"closed": closed by the server (end of stream or reset), "failed": connect
refused or errored, "answered": connections that got anything from the
server (raw: a line; framed: the server's hello), "open_answered": open
ones among them, "told": {first line received: how many connections got
it} (raw mode only)}.
"""

import errno
import json
import os
import resource
import select
import socket
import struct
import sys


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def frame(obj):
    payload = json.dumps(obj).encode()
    return struct.pack(">I", len(payload)) + payload


class Conn:
    def __init__(self, n, source, port, mode):
        self.n = n
        self.mode = mode
        self.state = "pending"  # pending, open, closed, failed
        self.buf = b""
        self.answered = False
        self.first_line = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        err = self.sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            self.state = "failed"

    def greeting(self):
        if self.mode == "raw":
            return b"x"
        hello = {
            "type": "hello",
            "proto": 1,
            "id": os.urandom(16).hex(),
            "name": "flood-%d" % self.n,
            "app": "sessionflood/0",
        }
        return frame(hello)

    def connected(self):
        """Called when the socket becomes writable while pending."""
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.state = "failed"
            return
        self.state = "open"
        self.send(self.greeting())

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.state = "closed"

    def readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self.state = "closed"
            return
        if not data:
            self.state = "closed"
            return
        self.buf += data
        if self.mode == "raw":
            if b"\n" in self.buf and self.first_line is None:
                self.first_line = self.buf.split(b"\n", 1)[0].decode("utf-8", "replace")
                self.answered = True
            self.buf = self.buf[-4096:]
            return
        while len(self.buf) >= 4:
            (length,) = struct.unpack(">I", self.buf[:4])
            if len(self.buf) < 4 + length:
                break
            payload, self.buf = self.buf[4 : 4 + length], self.buf[4 + length :]
            try:
                msg = json.loads(payload)
            except ValueError:
                continue
            kind = msg.get("type")
            if kind == "hello":
                self.answered = True
            elif kind == "ping":
                self.send(frame({"type": "pong", "nonce": msg.get("nonce")}))


def main():
    port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sources = sys.argv[4:]
    if mode not in ("raw", "framed") or not sources:
        sys.exit(__doc__)
    raise_fd_limit(count * len(sources) + 64)

    conns = []
    for source in sources:
        for _ in range(count):
            conns.append(Conn(len(conns), source, port, mode))

    poller = select.poll()
    by_fd = {}
    for c in conns:
        if c.state == "pending":
            poller.register(c.sock, select.POLLOUT)
            by_fd[c.sock.fileno()] = c
    stdin = sys.stdin.fileno()
    poller.register(stdin, select.POLLIN)

    def report():
        counts = {"opened": len(conns), "pending": 0, "open": 0, "closed": 0, "failed": 0}
        told = {}
        for c in conns:
            counts[c.state] += 1
            if c.first_line is not None:
                told[c.first_line] = told.get(c.first_line, 0) + 1
        counts["answered"] = sum(1 for c in conns if c.answered)
        counts["open_answered"] = sum(1 for c in conns if c.answered and c.state == "open")
        counts["told"] = told
        print(json.dumps(counts), flush=True)

    while True:
        for fd, events in poller.poll():
            if fd == stdin:
                line = sys.stdin.readline()
                if not line:
                    for c in conns:
                        c.sock.close()
                    return
                report()
                continue
            c = by_fd.get(fd)
            if c is None:
                continue
            if c.state == "pending":
                c.connected()
                if c.state == "open":
                    poller.modify(c.sock, select.POLLIN)
            elif c.state == "open":
                c.readable()
            if c.state in ("closed", "failed"):
                poller.unregister(fd)
                del by_fd[fd]


if __name__ == "__main__":
    main()
