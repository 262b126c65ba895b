#!/usr/bin/env python3
"""A tiny sample backend for the apigw demo (Python standard library only).

Every path answers with JSON describing the request it received, so the
demo shows what the gateway forwards: the normalized path, the query, the
X-Forwarded-* and X-Consumer-* headers, and no API key header.

    python3 contrib/backend/sample_backend.py --port 9000
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sample-backend/1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        doc = {
            "service": "sample-backend",
            "method": self.command,
            "path": path,
            "query": query,
            "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", "replace"),
        }
        out = (json.dumps(doc, indent=2) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Cache-Control", "public, max-age=60")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer
    do_OPTIONS = _answer

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    args = ap.parse_args()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
