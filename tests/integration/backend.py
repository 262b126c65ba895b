#!/usr/bin/env python3
"""Stub HTTP/1.1 backend for the apigw integration tests (stdlib only).

Usage: backend.py [--port N] [--name NAME]

Listens on 127.0.0.1 (port 0 = any free port), prints "PORT <n>" on stdout
once it accepts connections, and serves until killed.  It speaks HTTP/1.1
with keep-alive: every response carries Content-Length or is chunked.

Gateway routes have prefixes (/api, /strip, ...), so endpoints are matched
on the *last segments* of the request path, whatever comes before them:

  .../status/<code>[?location=URL]
                             answer <code> with a small JSON body (and a
                             Location header)
  .../cookies                two Set-Cookie and two X-Multi headers
  .../garbage                a response that is not HTTP, then close
  .../truncate[?chunked=1][&reset=1]
                             Content-Length 100000 but 1000 bytes (or a
                             chunked body without its last chunk), then
                             close (with reset=1: a TCP reset)
  .../eof                    HTTP/1.1 body delimited by closing the connection
  .../slow?ms=N              sleep N ms, then echo
  .../flaky?key=K&fail=N&status=S
                             the first N calls with key K answer S (default
                             503); later ones echo with 200
  .../big?mb=N[&chunked=1]   N MiB of big_block() data, Content-Length set
                             (or chunked with chunked=1)
  .../drip?n=N&ms=M          chunked: N chunks "drip <i>\\n", M ms apart
  .../hop                    response with hop-by-hop headers
                             (Connection: X-Secret, X-Secret, Keep-Alive)
  .../hdr?h=Name:Value[&h=...][&status=S]
                             echo, with the given response header fields
                             (and status)
  .../blob?size=N            N bytes of big_block() data, Content-Length
  .../bighdr?size=N          echo with an X-Big field of N bytes
  .../moded?key=K            answers with the status set for K by
                             /_mode?key=K&status=S (default 200), echo body
  .../_mode?key=K&status=S   sets that status
  .../slowbody?ms=N          Content-Length 100000, 1000 bytes, then
                             silence for N ms, then close (cut transfer)
  .../raw?kind=K             a hand-made faulty response head: K is
                             status999, crlf (bare CR in a field value),
                             lf (bare LF inside a field), nul (NUL in a
                             field), dupcl (two different Content-Length)
  .../_bytes?key=K           {"key": K, "bytes": n}: body bytes that /big
                             requests with key=K wrote so far
  .../_calls?key=K           {"key": K, "calls": n}: how many requests
                             carried key=K in their query (any endpoint)
  anything else (/echo...)   echo: JSON {seq (the backend's request
                             count, so every answer differs), server,
                             method, path, query,
                             headers: [[name, value], ...], body,
                             body_len, client_port}; with close=1 the
                             backend closes the connection afterwards

Every request whose query has key=K is counted (see _calls), which lets a
test prove that the gateway did or did not contact the backend.
"""

import argparse
import hashlib
import json
import socket
import struct
import sys
import threading
import time
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

# http.server refuses more than 100 request header fields (431): the
# gateway is tested with far more, and the web server in front decides.
http.client._MAXHEADERS = 100000

BLOCK_SIZE = 65536
_BASE = bytes((i * 31 + 7) & 0xFF for i in range(BLOCK_SIZE))


def big_block(i):
    """Block i of the /big stream: its 8-byte index, then a fixed pattern."""
    return struct.pack(">Q", i) + _BASE[8:]


def big_digest(mb):
    """(length, sha256 hex) of the body that /big?mb=<mb> sends."""
    h = hashlib.sha256()
    n = mb * (1 << 20) // BLOCK_SIZE
    for i in range(n):
        h.update(big_block(i))
    return n * BLOCK_SIZE, h.hexdigest()


# Faulty response heads for .../raw?kind=K: each must be refused by the
# gateway (an error status or a cut connection), never passed on as a 200.
_RAW_BODY = b"raw body\n"
RAW_RESPONSES = {
    "status999": b"HTTP/1.1 999 Odd\r\nContent-Length: 9\r\n\r\n" + _RAW_BODY,
    "crlf": b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 9\r\n\r\n" + _RAW_BODY,
    "lf": b"HTTP/1.1 200 OK\r\nX-Bad: a\nX-Injected: b\r\nContent-Length: 9\r\n\r\n" + _RAW_BODY,
    "nul": b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 9\r\n\r\n" + _RAW_BODY,
    "dupcl": b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 5\r\n\r\n" + _RAW_BODY,
}


class State:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.calls = {}
        self.sent = {}
        self.modes = {}
        self.seq = 0

    def next_seq(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def count(self, key):
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            return self.calls[key]

    def add_sent(self, key, n):
        with self.lock:
            self.sent[key] = self.sent.get(key, 0) + n

    def get_sent(self, key):
        with self.lock:
            return self.sent.get(key, 0)

    def get(self, key):
        with self.lock:
            return self.calls.get(key, 0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apigw-stub/1"
    timeout = 30
    # the head and the body are two writes: without TCP_NODELAY the body
    # waits for the gateway's delayed ACK of the head (40 ms per request
    # on a kept connection)
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- helpers ----------------------------------------------------------

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(8)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        no_body = status in (204, 304) or 100 <= status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not no_body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj, extra=()):
        self._send(status, json.dumps(obj).encode(), extra=extra)

    def _echo(self, body, status=200, extra=()):
        self._json(status, {
            "seq": self.server.state.next_seq(),
            "server": self.server.state.name,
            "method": self.command,
            "path": self.path_only,
            "query": self.query,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "body_len": len(body),
            "client_port": self.client_address[1],
        }, extra=[("X-Backend", self.server.state.name)] + list(extra))

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    # ---- dispatch ---------------------------------------------------------

    def _handle(self):
        target = self.path
        self.path_only, _, self.query = target.partition("?")
        qa = parse_qs(self.query, keep_blank_values=True)
        q = {k: v[-1] for k, v in qa.items()}
        body = self._read_body()
        state = self.server.state
        key = q.get("key")
        segs = self.path_only.rstrip("/").split("/")
        last = segs[-1] if segs else ""
        count = state.count(key) if key is not None and last != "_calls" else 0
        try:
            if len(segs) >= 2 and segs[-2] == "status" and last.isdigit():
                code = int(last)
                extra = [("X-Backend", state.name)]
                if "location" in q:
                    extra.append(("Location", q["location"]))
                self._json(code, {"status": code, "from": "backend"}, extra=extra)
            elif last == "garbage":
                self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True
            elif last == "truncate":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                if q.get("chunked") == "1":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self._chunk(b"x" * 1000)
                else:
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"x" * 1000)
                self.wfile.flush()
                if q.get("reset") == "1":
                    time.sleep(0.05)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                self.close_connection = True
            elif last == "eof":
                # no Content-Length, no chunking: the body ends at close
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 b"Connection: close\r\n\r\n" + b"eof body\n" * 1000)
                self.wfile.flush()
                self.close_connection = True
            elif last == "cookies":
                self._send(200, b"cookies\n", "text/plain", extra=[
                    ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2, c=3; HttpOnly"),
                    ("X-Multi", "one"), ("X-Multi", "two")])
            elif last == "hdr":
                extra = []
                for item in qa.get("h", []):
                    name, _, value = item.partition(":")
                    extra.append((name, value))
                self._echo(body, status=int(q.get("status", "200")), extra=extra)
            elif last == "bighdr":
                self._echo(body, extra=[("X-Big", "b" * int(q.get("size", "1000")))])
            elif last == "blob":
                n = int(q.get("size", "0"))
                data = (_BASE * (n // BLOCK_SIZE + 1))[:n]
                self._send(200, data, "application/octet-stream")
            elif last == "_mode":
                with state.lock:
                    state.modes[q.get("key", "")] = int(q.get("status", "200"))
                self._json(200, {"ok": True})
            elif last == "moded":
                with state.lock:
                    code = state.modes.get(q.get("key", ""), 200)
                self._echo(body, status=code)
            elif last == "slowbody":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"s" * 1000)
                self.wfile.flush()
                time.sleep(int(q.get("ms", "3000")) / 1000.0)
                self.close_connection = True
            elif last == "raw":
                self.wfile.write(RAW_RESPONSES.get(q.get("kind", ""), b"junk\r\n\r\n"))
                self.wfile.flush()
                self.close_connection = True
            elif last == "_bytes":
                self._json(200, {"key": q.get("key", ""), "bytes": state.get_sent(q.get("key", ""))})
            elif last == "_calls":
                self._json(200, {"key": q.get("key", ""), "calls": state.get(q.get("key", ""))})
            elif last == "slow":
                time.sleep(int(q.get("ms", "1000")) / 1000.0)
                self._echo(body)
            elif last == "flaky":
                if count <= int(q.get("fail", "1")):
                    code = int(q.get("status", "503"))
                    self._json(code, {"flaky": True, "call": count, "from": "backend"},
                               extra=[("X-Backend", state.name), ("X-Flaky-Call", str(count))])
                else:
                    self._echo(body)
            elif last == "big":
                self._big(int(q.get("mb", "1")), q.get("chunked") == "1", key)
            elif last == "drip":
                self._drip(int(q.get("n", "5")), int(q.get("ms", "200")))
            elif last == "hop":
                self._send(200, b"hop body\n", "text/plain", extra=[
                    ("Connection", "X-Secret"), ("X-Secret", "hidden"),
                    ("Keep-Alive", "timeout=5, max=100"), ("X-Normal", "kept")])
            else:
                if q.get("close") == "1":
                    self.close_connection = True
                self._echo(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _big(self, mb, chunked, key=None):
        n = mb * (1 << 20) // BLOCK_SIZE
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n * BLOCK_SIZE))
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(n):
            if chunked:
                self._chunk(big_block(i))
            else:
                self.wfile.write(big_block(i))
            if key is not None:
                self.server.state.add_sent(key, BLOCK_SIZE)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _drip(self, n, ms):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(n):
            self._chunk(b"drip %d\n" % i)
            self.wfile.flush()
            time.sleep(ms / 1000.0)
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="backend")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args.name)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
