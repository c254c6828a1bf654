"""Connection flood for tests/floods.rs.

usage: python3 conn_flood.py PORT COUNT SOURCE [SETTLE_SECONDS]

Opens COUNT TCP connections to 127.0.0.1:PORT at once, each bound to the
source address SOURCE before connecting, sends nothing on them and holds
them. Watches for SETTLE_SECONDS (default 2) how many the server closes and
when, then prints one JSON report on stdout. Prints a fresh report for every
line read from stdin; closes everything and exits at the end of stdin.

A report: {"opened": n, "held": connected and still open, "closed": closed
by the server (end of stream or reset), "pending": connect not finished,
"failed": connect refused or errored, "last_close_s": seconds from the first
connect to the last close seen while watching, "open_s": seconds to issue
every connect}.
"""

import errno
import json
import resource
import select
import socket
import sys
import time


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def classify(sock):
    """'closed', 'held', 'pending' or 'failed'."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err in (errno.ECONNRESET, errno.EPIPE):
        return "closed"
    if err:
        return "failed"
    try:
        sock.getpeername()
    except OSError:
        return "pending"
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return "held"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except OSError:
        return "failed"
    return "closed" if data == b"" else "held"


def main():
    port, count, source = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    settle = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
    raise_fd_limit(count + 64)

    socks = []
    start = time.monotonic()
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    open_s = time.monotonic() - start

    # Watch for closes: a closed connection becomes readable (EOF) or errors.
    poller = select.poll()
    by_fd = {}
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
        by_fd[s.fileno()] = s
    last_close = 0.0
    deadline = start + settle
    while by_fd:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000):
            s = by_fd.get(fd)
            if s is not None and classify(s) in ("closed", "failed"):
                last_close = time.monotonic() - start
                poller.unregister(fd)
                del by_fd[fd]

    def report():
        counts = {"held": 0, "closed": 0, "pending": 0, "failed": 0}
        for s in socks:
            counts[classify(s)] += 1
        counts.update(opened=count, last_close_s=round(last_close, 3), open_s=round(open_s, 3))
        print(json.dumps(counts), flush=True)

    report()
    for _ in sys.stdin:
        report()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
