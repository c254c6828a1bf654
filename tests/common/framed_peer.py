"""A plaintext lantalk peer for tests/security.rs: the framed protocol
(4-byte big-endian length + JSON) with no TLS at all, as an older lantalk
or a hand-written client speaks it; and a raw text client (what `nc` does).

usage:
  python3 framed_peer.py client [--tls] [--id ID] HOST PORT NAME TEXT...
      Connects, sends a hello (a random id, or ID) and the TEXTs, waits for
      their acks, says bye. Prints every frame received as one JSON line,
      then {"event": "end", "acked": N} when the peer closes or all are
      acked. Exits 0 when every text was acknowledged, 1 otherwise. With
      --tls: over TLS without a client certificate (a script without a key),
      not checking the server's.
  python3 framed_peer.py server [--id ID] PORT NAME
      Listens on PORT (0: any) of every address, IPv4 and IPv6, prints
      {"event": "listening", "port": N}; for each connection prints
      {"event": "connection", "first": FIRST_BYTE}. A connection whose first
      byte is not 0x00 (a TLS ClientHello is 0x16) is read and closed without
      a word, as a lantalk from before TLS does with a frame it cannot take.
      Otherwise answers the hello with its own, prints every frame as a JSON
      line and acknowledges texts. Runs until killed.
  python3 framed_peer.py raw HOST PORT LINE
      Sends LINE and a newline as raw text, prints what comes back (as
      {"event": "raw", "text": ...}) once the peer closes.

Every wait has a timeout (10 s), so a silent peer ends the client instead of
hanging the test.
"""

import json
import os
import socket
import struct
import sys
import threading

TIMEOUT = 10.0


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def send_frame(sock, obj):
    payload = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_frame(sock):
    header = recv_exact(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack(">I", header)
    payload = recv_exact(sock, length)
    if payload is None:
        return None
    return json.loads(payload)


def hello(name, peer_id=None):
    return {
        "type": "hello",
        "proto": 1,
        "id": peer_id or os.urandom(16).hex(),
        "name": name,
        "app": "framed_peer.py/0",
    }


def client(args):
    tls, peer_id = False, None
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--tls":
            tls = True
        elif flag == "--id":
            peer_id = args.pop(0)
    host, port, name, texts = args[0], args[1], args[2], args[3:]
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    if tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock)
    send_frame(sock, hello(name, peer_id))
    pending = set()
    run = os.urandom(4).hex()
    for i, body in enumerate(texts):
        tid = "py-%s-%d" % (run, i)
        pending.add(tid)
        send_frame(sock, {"type": "text", "id": tid, "ts": 0, "body": body})
    acked = 0
    try:
        while pending:
            frame = recv_frame(sock)
            if frame is None:
                break
            out(frame)
            if frame.get("type") == "ack" and frame.get("id") in pending:
                pending.discard(frame["id"])
                acked += 1
            if frame.get("type") in ("error", "bye"):
                break
        if not pending:
            send_frame(sock, {"type": "bye"})
    except OSError as e:
        out({"event": "socket-error", "error": str(e)})
    out({"event": "end", "acked": acked})
    sock.close()
    return 0 if not pending else 1


def serve_one(conn, name, peer_id):
    conn.settimeout(TIMEOUT)
    try:
        first = conn.recv(1, socket.MSG_PEEK)
        out({"event": "connection", "first": first[0] if first else None})
        if not first or first[0] != 0:
            # Read what came (closing with unread data would reset the
            # connection instead of ending it).
            conn.recv(65536)
            return
        frame = recv_frame(conn)
        if frame is None:
            return
        out(frame)
        send_frame(conn, hello(name, peer_id))
        while True:
            frame = recv_frame(conn)
            if frame is None:
                return
            out(frame)
            if frame.get("type") == "text":
                send_frame(conn, {"type": "ack", "id": frame["id"]})
            elif frame.get("type") == "bye":
                send_frame(conn, {"type": "bye"})
                return
    except (OSError, ValueError) as e:
        out({"event": "socket-error", "error": str(e)})
    finally:
        conn.close()


def server(args):
    peer_id = None
    if args[0] == "--id":
        peer_id = args[1]
        args = args[2:]
    port, name = args[0], args[1]
    # IPv6 and IPv4 both: a peer may dial any address mDNS gave it.
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", int(port)))
    listener.listen(16)
    out({"event": "listening", "port": listener.getsockname()[1]})
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_one, args=(conn, name, peer_id), daemon=True).start()


def raw(host, port, line):
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    sock.sendall(line.encode() + b"\n")
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        out({"event": "socket-error", "error": str(e)})
    out({"event": "raw", "text": got.decode("utf-8", "replace")})
    return 0


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "client":
        return client(list(args))
    if mode == "server":
        return server(list(args))
    if mode == "raw":
        return raw(args[0], args[1], args[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
