#!/usr/bin/env python3
"""Hostile-client cases through a real lighttpd (bin-path) and a real
Apache with mod_fcgid, both in front of the same gateway config, Redis and
stub backend:

  - path parameters (";...") never move a request off the route its plain
    form matches, and the backend gets the path that was matched;
  - a header the gateway decides on that arrives twice (the underscore
    alias X_Forwarded_For that lighttpd passes as a second
    HTTP_X_FORWARDED_FOR) is a 400: it never picks the client address, the
    rate-limit identity or the internal_allow decision;
  - a backend body cut short after the head went out makes the web server
    drop the client connection at once (no hang on keep-alive, no clean end
    of a chunked body);
  - header names of any length reach the backend;
  - internal endpoints are matched on the normalized path.
"""

import os
import re
import secrets
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, echo_header, test  # noqa: E402

KEY_RE = re.compile(r"^gw_[A-Za-z0-9_-]{43}$")


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    routes = [
        {"prefix": "/api/admin", "backend": c.b.url, "require_auth": True},
        {"prefix": "/limited", "backend": c.b.url,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_minute": 3}},
        {"prefix": "/", "backend": c.b.url},
    ]
    # Every test client is 127.0.0.1, a trusted proxy here (as a web server
    # on the same host would be); /_health is for 10.9.9.9 only, so a
    # client that could choose its address could reach it.
    cfg = h.base_config(c.redis, routes,
                        gateway={"trusted_proxies": ["127.0.0.1/32"],
                                 "internal_allow": ["10.9.9.9/32"]})
    c.config = h.write_gateway_config(td, cfg)
    # a second config that lets 127.0.0.1 read /_health
    cfg2 = h.base_config(c.redis, routes,
                         gateway={"trusted_proxies": ["127.0.0.1/32"],
                                  "internal_allow": ["127.0.0.0/8"]})
    c.config2 = h.write_gateway_config(td, cfg2, name="apigw-internal.conf")
    c.lt = h.Lighttpd(td, config=c.config, max_procs=2)
    c.lt2 = h.Lighttpd(td, config=c.config2, max_procs=1, name="lighttpd-internal")
    c.ap = h.Apache(td, c.config, max_procs=4)
    h.wait_for(lambda: h.request(c.ap.port, "GET", "/x", timeout=10).status == 200,
               timeout=15, interval=0.3, what="the first request through Apache")
    keys = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    p = subprocess.run([keys, "--config", c.config, "create", "security-test"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode())
    c.key = p.stdout.decode().strip()
    check(KEY_RE.match(c.key), "apigw-keys printed %r" % c.key)
    c.servers = {"lighttpd": c.lt.port, "apache": c.ap.port}
    return c


def calls(c, key):
    return h.request(c.b.port, "GET", "/_calls?key=" + key).json()["calls"]


# ---------------------------------------------------------------------------
# 1. path parameters

# (raw path, expected status without a key, path the backend gets with one)
PARAM_CASES = [
    ("/api/admin;jsessionid=1", 401, "/api/admin"),
    ("/api/admin;", 401, "/api/admin"),
    ("/api/admin;a=1;b=2", 401, "/api/admin"),
    ("/api/admin;x/7", 401, "/api/admin/7"),
    ("/api/admin/7;v=2", 401, "/api/admin/7"),
    ("/api;x/admin", 401, "/api/admin"),
    ("/api;/admin;/", 401, "/api/admin/"),
    ("/;x/api/admin", 401, "/api/admin"),
    ("/public/..;/api/admin", 401, "/api/admin"),
    ("/public/..;x=1/api/admin", 401, "/api/admin"),
    ("/api/.;x/admin", 401, "/api/admin"),
    ("/api/admin/.;/7", 401, "/api/admin/7"),
    ("/api/admin/x/..;/..;/admin", 401, "/api/admin"),
    ("/api/admin%3Bx", 400, None),
    ("/api/admin%3bjsessionid=1", 400, None),
    ("/api/%3B/admin", 400, None),
]


def path_params(c, server):
    port = c.servers[server]
    for raw, want, _ in PARAM_CASES:
        tag = secrets.token_hex(4)
        r = h.request(port, "GET", raw + "?key=" + tag)
        if want == 400:
            expect_problem(r, 400, "%s via %s" % (raw, server))
        else:
            expect_problem(r, want, "%s without a key via %s" % (raw, server))
        eq(calls(c, tag), 0, "backend calls for %s without a key via %s" % (raw, server))
    for raw, want, backend_path in PARAM_CASES:
        if backend_path is None:
            continue
        r = h.request(port, "GET", raw, headers={"X-API-Key": c.key})
        expect_status(r, 200, "%s with a key via %s" % (raw, server))
        eq(r.json()["path"], backend_path, "path the backend got for %s via %s" % (raw, server))
    # a public route: parameters are dropped there too (one rule everywhere)
    r = h.request(port, "GET", "/public;jsessionid=9/x;y")
    expect_status(r, 200, "public path with parameters")
    eq(r.json()["path"], "/public/x", "public path at the backend")


@test
def path_params_lighttpd(c):
    path_params(c, "lighttpd")


@test
def path_params_apache(c):
    path_params(c, "apache")


# ---------------------------------------------------------------------------
# 2. duplicate and aliased headers

@test
def xff_alias_is_refused_both_orders(c):
    for order in ((("X_Forwarded_For", "10.9.9.9"), ("X-Forwarded-For", "203.0.113.5")),
                  (("X-Forwarded-For", "203.0.113.5"), ("X_Forwarded_For", "10.9.9.9"))):
        tag = secrets.token_hex(4)
        r = h.request(c.lt.port, "GET", "/echo?key=" + tag, headers=list(order))
        expect_problem(r, 400, "X-Forwarded-For and its alias, order %r" % (order,))
        check("X-Forwarded-For" in r.json()["detail"], "detail names the header: %r" % r.json())
        eq(calls(c, tag), 0, "backend calls")
        # /_health is for 10.9.9.9 only: the alias must not open it
        r = h.request(c.lt.port, "GET", "/_health", headers=list(order))
        expect_problem(r, 400, "/_health with an aliased X-Forwarded-For")
    # the real header alone is believed (the peer is a trusted proxy) and
    # reaches the backend with the peer appended
    r = h.request(c.lt.port, "GET", "/echo", headers={"X-Forwarded-For": "203.0.113.5"})
    expect_status(r, 200)
    eq(echo_header(r.json(), "x-forwarded-for"), "203.0.113.5, 127.0.0.1", "X-Forwarded-For")
    r = h.request(c.lt.port, "GET", "/_health", headers={"X-Forwarded-For": "10.9.9.9"})
    expect_status(r, 200, "/_health from an allowed address through a trusted proxy")
    check("redis" in r.json(), "/_health document: %r" % r.json())


@test
def xff_alias_gives_no_fresh_rate_limit_identity(c):
    # a 3/min limit per client; the attacker varies the alias each time
    admitted = limited = refused = 0
    for i in range(6):
        r = h.request(c.lt.port, "GET", "/limited/x",
                      headers=[("X_Forwarded_For", "198.51.100.%d" % (i + 1)),
                               ("X-Forwarded-For", "203.0.113.77")])
        if r.status == 200:
            admitted += 1
        elif r.status == 429:
            limited += 1
        elif r.status == 400:
            refused += 1
    eq((admitted, limited, refused), (0, 0, 6), "(admitted, 429, 400) with a varying alias")
    # without the alias the same client is limited at 3
    got = [h.request(c.lt.port, "GET", "/limited/x",
                     headers={"X-Forwarded-For": "203.0.113.77"}).status for _ in range(5)]
    eq(got, [200, 200, 200, 429, 429], "statuses for one client under a 3/min limit")


@test
def other_decision_headers_twice(c):
    for a, b in (("X_Forwarded_Proto", "X-Forwarded-Proto"),
                 ("X_Forwarded_Host", "X-Forwarded-Host"),
                 ("X_Request_ID", "X-Request-ID"),
                 ("Content_Type", "Content-Type")):
        r = h.request(c.lt.port, "GET", "/echo", headers=[(a, "evil"), (b, "good")])
        expect_problem(r, 400, "%s and %s" % (a, b))
    # the API key header keeps its own answer: 401, the header must appear once
    r = h.request(c.lt.port, "GET", "/api/admin",
                  headers=[("X_API_Key", c.key), ("X-API-Key", c.key)])
    expect_problem(r, 401, "key header and its alias")


@test
def apache_drops_the_alias(c):
    # Apache drops header names with '_' before FastCGI: the real value wins
    r = h.request(c.ap.port, "GET", "/echo",
                  headers=[("X_Forwarded_For", "10.9.9.9"), ("X-Forwarded-For", "203.0.113.5")])
    expect_status(r, 200)
    eq(echo_header(r.json(), "x-forwarded-for"), "203.0.113.5, 127.0.0.1", "X-Forwarded-For")
    r = h.request(c.ap.port, "GET", "/_health",
                  headers=[("X_Forwarded_For", "10.9.9.9"), ("X-Forwarded-For", "203.0.113.5")])
    check(r.status != 200 or "redis" not in r.text, "/_health opened by the alias via Apache")


@test
def connection_named_headers_dropped(c):
    # Apache hands FastCGI "Connection: close"; its recipe passes the
    # original value as APIGW_CONNECTION so the named fields still go
    for server, port in sorted(c.servers.items()):
        for conn in ("keep-alive, X-Secret", "X-Secret", "close, x-secret"):
            r = h.raw_request(port, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: %s\r\n"
                                    "X-Secret: v\r\nX-Kept: k\r\n\r\n" % conn)
            expect_status(r, 200, "%s via %s" % (conn, server))
            doc = r.json()
            eq(echo_header(doc, "x-secret"), None, "X-Secret named in Connection: %r via %s"
               % (conn, server))
            eq(echo_header(doc, "x-kept"), "k", "X-Kept via %s" % server)


# ---------------------------------------------------------------------------
# 3. a body cut short after the head went out

def read_until_close(port, path, limit_s=10.0):
    """Sends one keep-alive request; returns (bytes received, seconds until
    the server closed the connection, or None if it did not within
    limit_s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit_s)
    t0 = time.monotonic()
    s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n" % path).encode())
    buf = b""
    closed = None
    try:
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                closed = time.monotonic() - t0
                break
            if not d:
                closed = time.monotonic() - t0
                break
            buf += d
    except socket.timeout:
        pass
    finally:
        s.close()
    return buf, closed


def truncated(c, server):
    port = c.servers[server]
    for query, chunked in (("", False), ("?reset=1", False),
                           ("?chunked=1", True), ("?chunked=1&reset=1", True)):
        buf, closed = read_until_close(port, "/truncate" + query)
        what = "/truncate%s via %s" % (query, server)
        check(closed is not None, "%s: connection still open after 10 s (%d bytes)" % (what, len(buf)))
        # generous: a hang until the web server's idle timeout is the bug
        check(closed < 3.0, "%s: closed only after %.1f s" % (what, closed))
        print("# %s: closed after %.2f s, %d bytes" % (what, closed, len(buf)))
        head, _, body = buf.partition(b"\r\n\r\n")
        if head:
            check(head.startswith(b"HTTP/1.1 200"), "%s: head %r" % (what, head[:60]))
        if chunked and server != "apache":
            # mod_fcgid ends a chunked body cleanly whatever the FastCGI
            # application did (a documented limitation): there only the
            # closed connection is asserted
            check(not body.endswith(b"0\r\n\r\n"), "%s: a clean end of the chunked body" % what)
        else:
            check(len(body) < 100000, "%s: %d body bytes" % (what, len(body)))
    for _ in range(4):
        expect_status(h.request(port, "GET", "/echo"), 200, "after truncations via %s" % server)


@test
def truncated_body_closes_client_lighttpd(c):
    truncated(c, "lighttpd")


@test
def truncated_body_closes_client_apache(c):
    truncated(c, "apache")


# ---------------------------------------------------------------------------
# 4. long header names, 5. internal endpoints on the normalized path

@test
def long_header_names_forwarded(c):
    for server, port in sorted(c.servers.items()):
        for n in (100, 130, 300, 2000):
            name = "X-" + "L" * (n - 2)
            r = h.request(port, "GET", "/echo", headers={name: "v%d" % n})
            expect_status(r, 200, "%d-byte header name via %s" % (n, server))
            eq(echo_header(r.json(), name.lower()), "v%d" % n,
               "%d-byte header name at the backend via %s" % (n, server))


@test
def internal_endpoint_on_normalized_path(c):
    for path in ("/_health", "//_health", "/api/../_health", "/_health;x", "/./_health",
                 "/%5Fhealth"):
        tag = secrets.token_hex(4)
        r = h.request(c.lt2.port, "GET", path + "?key=" + tag)
        expect_status(r, 200, path)
        doc = r.json()
        check(doc.get("redis") == "up" and "server" not in doc,
              "%s: not answered by the gateway: %r" % (path, doc))
        eq(calls(c, tag), 0, "backend calls for %s" % path)
    # not internal for this client: an ordinary path, forwarded
    r = h.request(c.lt.port, "GET", "//_health")
    expect_status(r, 200)
    eq(r.json()["path"], "/_health", "forwarded path for a non-internal client")


if __name__ == "__main__":
    h.main(setup)
