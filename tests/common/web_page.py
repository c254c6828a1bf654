#!/usr/bin/env python3
"""Drives assets/web/index.html in headless Chromium against a stand-in for
lantalk's side of the web protocol (assets/PROTOCOL.md, "The web client").

Standard library only: a small HTTP + WebSocket server (the page under the
same Content-Security-Policy as lantalk sends, hashes computed here), and a
WebDriver client speaking to chromedriver over HTTP. Meant to run in a fresh
network namespace (tests/web_page.rs starts it under `unshare -n`), so that
neither the server nor the browser can reach anything but loopback.

Usage: web_page.py PAGE SCREENSHOT_DIR. Exits 0 when every check passed;
prints `FAIL: ...` and exits 1 otherwise.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

TOKEN = "0123456789abcdef0123456789abcdef"
LAPTOP = "laptop"
FP = "7c0c e1f5 0a9b 33d2 8e41 5f06 c7aa 1b90 4d2e 6f13 a8c5 70b4 92de 05f7 3c68 e1a9"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def wait_for(what, cond, timeout=15.0):
    """Polls `cond` until it returns a true value, at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def csp_for(page):
    def digest(tag):
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        assert len(found) == 1, f"{len(found)} inline <{tag}>"
        return base64.b64encode(hashlib.sha256(found[0].encode()).digest()).decode()

    return (f"default-src 'none'; script-src 'sha256-{digest('script')}'; "
            f"style-src 'sha256-{digest('style')}'; connect-src 'self'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Conn:
    """One WebSocket connection, server side."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.buf = b""
        self.joined = None

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next text message, or None when the browser closed."""
        data = b""
        while True:
            b0, b1 = self.read_exact(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.read_exact(8))[0]
            mask = self.read_exact(4) if b1 & 0x80 else b"\0\0\0\0"
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(self.read_exact(n)))
            if op == 8:
                return None
            if op == 9:
                self.frame(0xA, payload)
                continue
            if op in (0, 1):
                data += payload
                if b0 & 0x80:
                    return data.decode()

    def frame(self, op, payload):
        n = len(payload)
        head = bytes([0x80 | op]) + (bytes([n]) if n < 126 else
                                     bytes([126]) + struct.pack(">H", n) if n < 65536 else
                                     bytes([127]) + struct.pack(">Q", n))
        with self.lock:
            try:
                self.sock.sendall(head + payload)
            except OSError:
                pass

    def send(self, obj):
        self.frame(1, json.dumps(obj).encode())

    def close(self, code=1000):
        self.frame(8, struct.pack(">H", code))
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Lantalk:
    """lantalk's side of the web protocol, with knobs for the tests."""

    def __init__(self, page):
        self.page = page.encode()
        self.csp = csp_for(page)
        self.lock = threading.Lock()
        self.offline = False       # drop every WebSocket at once
        self.auto_ack = True       # ack the browser's texts when stored
        self.history = []          # the conversation, oldest first
        self.received = []         # every browser text frame, in order
        self.acked = []            # ids the browser acked
        self.joins = []            # every join frame
        self.accepted = set()      # browser ids let in without a token
        self.decision = {}         # browser id -> "accept" / "decline"
        self.conns = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def url(self, fragment=""):
        return f"http://127.0.0.1:{self.port}/{fragment}"

    def accept_loop(self):
        while True:
            sock, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(sock,), daemon=True).start()

    def serve(self, sock):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:] if ":" in line)}
            common = (f"Content-Security-Policy: {self.csp}\r\nX-Content-Type-Options: nosniff\r\n"
                      "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n")
            if method == "GET" and path == "/":
                sock.sendall(("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                              f"{common}Content-Length: {len(self.page)}\r\nConnection: close\r\n\r\n"
                              ).encode() + self.page)
            elif method == "GET" and path == "/ws" and self.offline:
                return  # the chat is away: the WebSocket fails at once
            elif method == "GET" and path == "/ws" and "sec-websocket-key" in headers:
                accept = base64.b64encode(hashlib.sha1(
                    (headers["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
                sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
                self.websocket(Conn(sock))
            else:
                sock.sendall(f"HTTP/1.1 404 Not Found\r\n{common}Content-Length: 0\r\n"
                             "Connection: close\r\n\r\n".encode())
        except (EOFError, OSError, ValueError):
            pass
        finally:
            sock.close()

    def welcome(self, conn, join):
        with self.lock:
            conn.joined = join
            history = list(self.history)
        conn.send({"type": "welcome", "name": LAPTOP, "fp": FP, "you": join["name"]})
        conn.send({"type": "history", "messages": history[-200:]})

    def websocket(self, conn):
        with self.lock:
            self.conns.append(conn)
        try:
            join = json.loads(conn.recv())
            assert join.get("type") == "join"
            with self.lock:
                self.joins.append(join)
            if join.get("token") == TOKEN or (join.get("token") is None and join["id"] in self.accepted):
                self.welcome(conn, join)
            elif join.get("token") is None:
                conn.send({"type": "waiting", "name": LAPTOP})
                # Waits for the test's decision, answering a close at once
                # as lantalk does.
                while not self.decision.get(join["id"]):
                    if conn.buf or select.select([conn.sock], [], [], 0.05)[0]:
                        if conn.recv() is None:
                            conn.close()
                            return
                what = self.decision[join["id"]]
                if what == "decline":
                    conn.send({"type": "declined"})
                    conn.close(1008)
                    return
                self.accepted.add(join["id"])
                self.welcome(conn, join)
            else:
                conn.send({"type": "error", "code": "bad_token", "message": "wrong token"})
                conn.close(1008)
                return
            while True:
                text = conn.recv()
                if text is None or self.offline:
                    return
                frame = json.loads(text)
                if frame["type"] == "text":
                    with self.lock:
                        self.received.append(frame)
                        if not any(m["id"] == frame["id"] for m in self.history):
                            self.history.append({"id": frame["id"], "mine": True, "body": frame["body"],
                                                 "ts": frame["ts"], "state": "delivered"})
                    if self.auto_ack:
                        conn.send({"type": "ack", "ids": [frame["id"]]})
                elif frame["type"] == "ack":
                    with self.lock:
                        self.acked.extend(frame["ids"])
                        for m in self.history:
                            if m["id"] in frame["ids"]:
                                m["state"] = "delivered"
        finally:
            with self.lock:
                self.conns.remove(conn)

    def live(self):
        with self.lock:
            return [c for c in self.conns if c.joined]

    def say(self, body):
        """The laptop's user types `body`."""
        m = {"id": secrets.token_hex(8), "mine": False, "body": body,
             "ts": int(time.time() * 1000), "state": "sending"}
        with self.lock:
            self.history.append(m)
        for conn in self.live():
            conn.send({"type": "text", "id": m["id"], "body": body, "ts": m["ts"]})
        return m["id"]

    def go_offline(self):
        self.offline = True
        with self.lock:
            conns = list(self.conns)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Browser:
    """Headless Chromium through chromedriver's WebDriver HTTP API."""

    def __init__(self, shots):
        self.profile = tempfile.mkdtemp(prefix="lantalk-web-")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        self.driver = subprocess.Popen([shutil.which("chromedriver"), f"--port={port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        wait_for("chromedriver", self.ready, 30)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": shutil.which("chromium"),
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--user-data-dir={self.profile}", "--window-size=390,844",
                     "--no-first-run", "--no-proxy-server", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync"]}}}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]
        # A phone's screen (a headless window is at least 500 px wide).
        self.cdp("Emulation.setDeviceMetricsOverride",
                 {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        self.cdp("Emulation.setTouchEmulationEnabled", {"enabled": True})
        self.shots = shots

    def ready(self):
        try:
            return self.call("GET", "/status")["ready"]
        except OSError:
            return False

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())["value"]

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.sid}{path}", body)

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def el(self, css):
        found = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def type(self, css, keys):
        self.s("POST", f"/element/{self.el(css)}/value", {"text": keys})

    def click(self, css):
        self.s("POST", f"/element/{self.el(css)}/click", {})

    def cdp(self, cmd, params):
        return self.s("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]); return e && e.textContent;", css)

    def shot(self, name):
        path = os.path.join(self.shots, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))
        print(f"screenshot: {path}")

    def set_hidden(self, hidden):
        # Headless Chromium's tab never gets hidden on its own; this is what
        # the page sees when a phone locks or switches apps.
        self.js("Object.defineProperty(document, 'hidden', {configurable: true, get: () => arguments[0]});"
                "Object.defineProperty(document, 'visibilityState', {configurable: true,"
                " get: () => arguments[0] ? 'hidden' : 'visible'});"
                "document.dispatchEvent(new Event('visibilitychange'));", hidden)

    def quit(self):
        try:
            self.s("DELETE", "")
        finally:
            self.driver.kill()
            self.driver.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


ENTER, SHIFT, RELEASE = "\ue007", "\ue008", "\ue000"
MSGS = "return Array.from(document.querySelectorAll('#log [data-id]'), e => [e.dataset.id," \
       " e.classList.contains('mine') ? 'mine' : e.classList.contains('theirs') ? 'theirs' : '?'," \
       " e.querySelector('.body').textContent, (e.querySelector('.tick') || {}).textContent || ''])"


def by_time(history):
    """The ids of `history` in the page's order: by time, then arrival."""
    return [m["id"] for m in sorted(history, key=lambda m: m["ts"])]


def tick_of(b, mid):
    return b.js("const e = document.querySelector(`#log [data-id=\"${arguments[0]}\"] .tick`);"
                " return e && e.textContent;", mid)


def check(b, lt):
    # First run: the name is asked; the token leaves the address bar.
    b.go(lt.url(f"#t={TOKEN}"))
    wait_for("the name dialog", lambda: b.js("return !document.getElementById('dlg').hidden"))
    assert b.js("return location.href") == lt.url(), b.js("return location.href")
    assert b.js("return localStorage.getItem('lantalk.token')") == TOKEN
    assert not lt.joins, "joined before a name was chosen"
    sizes = b.js("return ['#name', '#name-ok'].map(s => document.querySelector(s).getBoundingClientRect())"
                 ".map(r => [r.width, r.height])")
    assert all(w >= 44 and h >= 44 for w, h in sizes), sizes
    b.shot("web-page-name.png")
    b.type("#name", "Ana")
    b.click("#name-ok")
    wait_for("connected", lambda: b.text("#state") == "connected")
    join = lt.joins[-1]
    assert list(join) == ["type", "id", "name", "token"], join
    assert re.fullmatch("[0-9a-f]{32}", join["id"]) and join["name"] == "Ana" and join["token"] == TOKEN, join
    assert b.text("#laptop") == LAPTOP and b.text("#fp") == FP
    assert b.js("return document.title") == "laptop — lantalk"
    # The stylesheet and the script ran under the CSP: layout and sizes hold.
    assert b.js("return getComputedStyle(document.getElementById('log')).display") == "flex"
    sizes = b.js("return ['#send', '#input', '#me'].map(s => document.querySelector(s).getBoundingClientRect())"
                 ".map(r => [r.width, r.height])")
    assert all(w >= 44 and h >= 44 for w, h in sizes), sizes
    width = b.js("return [document.documentElement.scrollWidth, innerWidth, innerHeight]")
    assert width == [390, 390, 844], width

    # Enter sends, Shift+Enter is a newline; ◷ until lantalk's ack, then ✓.
    lt.auto_ack = False
    b.type("#input", "hello" + ENTER)
    wait_for("hello at lantalk", lambda: lt.received)
    hello = lt.received[-1]
    assert list(hello) == ["type", "id", "body", "ts"] and hello["body"] == "hello", hello
    assert b.js("return document.getElementById('input').value") == ""
    assert tick_of(b, hello["id"]) == "◷"
    lt.live()[0].send({"type": "ack", "ids": [hello["id"]]})
    wait_for("✓", lambda: tick_of(b, hello["id"]) == "✓")
    lt.auto_ack = True
    b.type("#input", "a" + SHIFT + ENTER + RELEASE + "b" + ENTER)
    wait_for("a\\nb", lambda: lt.received[-1]["body"] == "a\nb")

    # A socket that stays open but acks nothing (a phone that slept) is
    # replaced, and what waits for its ack is sent again, shown once.
    lt.auto_ack = False
    joins = len(lt.joins)
    b.type("#input", "unanswered" + ENTER)
    wait_for("unanswered at lantalk", lambda: lt.received[-1]["body"] == "unanswered")
    lt.auto_ack = True
    wait_for("a new join after 10 s without ack", lambda: len(lt.joins) > joins, 20)
    slow = lt.received[-1]["id"]
    wait_for("unanswered ✓", lambda: tick_of(b, slow) == "✓")
    assert [f["id"] for f in lt.received].count(slow) == 2, lt.received
    assert [m[0] for m in b.js(MSGS)].count(slow) == 1
    assert b.js("return JSON.parse(localStorage.getItem('lantalk.outbox'))") == []

    # The laptop's text shows as text, is acked, and counts while hidden.
    long_word = "https://example.invalid/" + "x" * 300
    lt.say(long_word)
    wait_for("the long word", lambda: long_word in [m[2] for m in b.js(MSGS)])
    width = b.js("return [document.documentElement.scrollWidth, document.getElementById('log').scrollWidth]")
    assert width == [390, 390], f"a long word widens the page: {width}"
    evil = "<img src=x onerror=alert(1)>"
    mid = lt.say(evil)
    wait_for("the laptop's text", lambda: [mid, "theirs", evil, ""] in b.js(MSGS))
    assert b.js("return document.querySelectorAll('#log img').length") == 0
    wait_for("its ack", lambda: mid in lt.acked)
    # A time no Date can hold still shows the text (and acks it).
    odd = {"type": "text", "id": "odd-time", "body": "odd time", "ts": 1e20}
    lt.live()[0].send(odd)
    wait_for("odd time acked", lambda: "odd-time" in lt.acked)
    assert ["odd-time", "theirs", "odd time", ""] in b.js(MSGS)
    with lt.lock:
        lt.history.append({"id": "odd-time", "mine": False, "body": "odd time",
                           "ts": b.js("return Number(document.querySelector('[data-id=odd-time]').dataset.ts)"),
                           "state": "delivered"})
    b.set_hidden(True)
    for i in range(3):
        lt.say(f"unread {i}")
    wait_for("(3) in the title", lambda: b.js("return document.title") == "(3) laptop — lantalk")
    b.set_hidden(False)
    wait_for("title without count", lambda: b.js("return document.title") == "laptop — lantalk")

    # The chat goes away: the page says so, keeps what is typed, and after
    # a reload (the page itself still served) shows it; it goes once the
    # chat is back.
    lt.go_offline()
    wait_for("offline", lambda: (b.text("#state") or "").startswith("offline, retrying in"))
    b.type("#input", "queued" + ENTER)
    away = lt.say("said while you were away")
    queued = wait_for("outbox", lambda: b.js("return JSON.parse(localStorage.getItem('lantalk.outbox'))"))
    assert [m["body"] for m in queued] == ["queued"], queued
    b.go(lt.url())
    wait_for("queued shown after reload", lambda: [queued[0]["id"], "mine", "queued", "◷"] in b.js(MSGS))
    # Backoff grows: wait for a delay of at least 8 s, then wake the page.
    wait_for("a long backoff", lambda: int(re.sub(r"\D", "", b.text("#state") or "0") or 0) >= 8, 40)
    lt.offline = False
    b.set_hidden(True)
    b.set_hidden(False)
    wait_for("connected at once after waking", lambda: b.text("#state") == "connected", 5)
    wait_for("queued ✓", lambda: tick_of(b, queued[0]["id"]) == "✓")
    assert [f["body"] for f in lt.received].count("queued") >= 1
    # Coming back online (the phone's Wi-Fi returns) also retries at once.
    lt.go_offline()
    wait_for("a long backoff again", lambda: int(re.sub(r"\D", "", b.text("#state") or "0") or 0) >= 8, 40)
    lt.offline = False
    b.js("window.dispatchEvent(new Event('online'))")
    wait_for("connected at once when online", lambda: b.text("#state") == "connected", 5)
    assert b.js("return JSON.parse(localStorage.getItem('lantalk.outbox'))") == []
    # What the laptop said meanwhile comes with the history and is acked.
    wait_for("the text said while away, acked", lambda: away in lt.acked)
    # History merged with what was on screen: each message once.
    wait_for("the merged conversation", lambda: len(b.js(MSGS)) == len(lt.history))
    assert [m[0] for m in b.js(MSGS)] == by_time(lt.history), b.js(MSGS)
    # A text sent again (its ack was lost) is shown once and acked again.
    again = [m for m in lt.history if not m["mine"]][-1]
    acks = lt.acked.count(again["id"])
    lt.live()[0].send({"type": "text", "id": again["id"], "body": again["body"], "ts": again["ts"]})
    wait_for("the ack again", lambda: lt.acked.count(again["id"]) == acks + 1)
    assert len(b.js(MSGS)) == len(lt.history)

    # Reload: the conversation comes from history, once, in order.
    b.go(lt.url())
    wait_for("history", lambda: len(b.js(MSGS)) == len(lt.history))
    shown = b.js(MSGS)
    assert [m[0] for m in shown] == by_time(lt.history), (shown, lt.history)
    assert len({m[0] for m in shown}) == len(shown)
    assert all(m[3] == "✓" for m in shown if m[1] == "mine"), shown
    b.shot("web-page-390x844.png")
    b.cdp("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    assert b.js("return matchMedia('(prefers-color-scheme: dark)').matches")
    b.shot("web-page-dark.png")
    b.cdp("Emulation.setEmulatedMedia", {"features": []})

    # The name can be changed; the page joins again under it.
    b.click("#me")
    b.js("document.getElementById('name').value = ''")
    b.type("#name", "é" * 40 + ENTER)
    # At most 63 bytes of UTF-8, never half a character.
    wait_for("join as éé…", lambda: lt.joins[-1]["name"] == "é" * 31)
    b.click("#me")
    b.js("document.getElementById('name').value = ''")
    b.type("#name", "Ana B" + ENTER)
    wait_for("join as Ana B", lambda: lt.joins[-1]["name"] == "Ana B")
    ident = lt.joins[-1]["id"]
    assert all(j["id"] == ident for j in lt.joins), "the browser identity changed"

    # A wrong token is refused: the page stops and forgets it.
    b.go(lt.url("#t=ffffffffffffffffffffffffffffffff"))
    wait_for("refused", lambda: b.text("#state") == "this link's token is no longer valid")
    assert b.js("return localStorage.getItem('lantalk.token')") is None
    joins = len(lt.joins)
    # Asking to join without a token: waiting, then declined (no retries), then accepted.
    b.click("#retry")
    wait_for("waiting", lambda: b.text("#state") == "waiting for laptop to accept")
    assert lt.joins[-1]["token"] is None and len(lt.joins) == joins + 1
    # The laptop's user takes longer than the page's 10 s join deadline:
    # the page keeps waiting on the same socket.
    deadline = time.monotonic() + 11
    while time.monotonic() < deadline:
        assert b.text("#state") == "waiting for laptop to accept", b.text("#state")
        time.sleep(0.5)
    assert len(lt.joins) == joins + 1, "gave up waiting for the laptop's user"
    lt.decision[ident] = "decline"
    wait_for("declined", lambda: b.text("#state") == "declined by laptop")
    assert len(lt.joins) == joins + 1, "retried after a decline"
    lt.decision[ident] = "accept"
    b.click("#retry")
    wait_for("accepted", lambda: b.text("#state") == "connected")


def main():
    page_path, shots = sys.argv[1], sys.argv[2]
    with open(page_path, encoding="utf-8") as f:
        lt = Lantalk(f.read())
    b = Browser(shots)
    try:
        check(b, lt)
    except AssertionError as e:
        traceback.print_exc()
        print(f"FAIL: {e}")
        b.shot("web-page-failure.png")
        sys.exit(1)
    finally:
        b.quit()
    print("ok")


if __name__ == "__main__":
    main()
