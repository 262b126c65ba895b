#!/usr/bin/env python3
"""Hostile input through a real lighttpd (bin-path) and a real Apache with
mod_fcgid, in front of one gateway config, Redis and stub backend:

  1. a table of raw request targets (traversal, escapes, overlong UTF-8,
     double encoding, path parameters, slashes, dots, case, '?' '#' '/' '\\'
     NUL and control characters escaped and raw, high bytes, long paths):
     routing, authentication and rate limiting decide on exactly the path
     that is forwarded, and where a web server refuses a target itself its
     answer is recorded in the table;
  2. Redis key names stay in the gateway's keyspace whatever a client puts
     in API keys, X-Forwarded-For or paths (glob and hash-tag characters,
     CR/LF, spaces, 1 MB), and the gateway keeps working afterwards;
  3. a client's Connection field naming the headers the gateway adds never
     removes them (and still removes the client's own hop-by-hop fields);
  4. sizes: many headers, long header values and names, big FastCGI
     parameters (on a second pair of servers with raised limits), bodies at
     and over the gateway's limit, chunked bodies, 32 slow clients at once;
     afterwards the same workers are alive and their memory is bounded.
"""

import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, echo_header, expect_problem, expect_status, test  # noqa: E402

BODY_LIMIT = 65536          # gateway.max_body_bytes in this file's config
RSS_LIMIT_KB = 64 * 1024    # per gateway process, after everything below

# A second lighttpd and Apache whose own limits are raised, so that huge
# header fields and FastCGI parameters reach the gateway.
LIGHTTPD_BIG = "server.max-request-field-size = 2097152\n"
APACHE_BIG = "LimitRequestFieldSize 1048576\nLimitRequestLine 1048576\nLimitRequestFields 2000\n"

# What a gateway process or its web server writes when a gateway process
# dies: a signal, a core, mod_fcgid's "exit(...)", lighttpd's "died".
CRASH_RE = re.compile(r"signal \d+|core dump|Segmentation|Aborted|exit\(|died|terminated",
                      re.I)


class Ctx:
    pass


def create_key(c, name):
    p = subprocess.run([c.keys_bin, "--config", c.config, "create", name],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode())
    return p.stdout.decode().strip()


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    routes = [
        {"prefix": "/api/admin", "backend": c.b.url, "require_auth": True},
        # reserved characters a prefix may hold, which a client may escape
        {"prefix": "/api/k:v@x", "backend": c.b.url, "require_auth": True},
        {"prefix": "/api/s!$&'()*+,=", "backend": c.b.url, "require_auth": True},
        {"prefix": "/api/limited", "backend": c.b.url, "require_auth": True,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_minute": 3}},
        {"prefix": "/api/public", "backend": c.b.url},
        {"prefix": "/inj", "backend": c.b.url, "cache_ttl_s": 60,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_minute": 100000}},
        {"prefix": "/counted", "backend": c.b.url,
         "rate_limit": {"algorithm": "fixed_window", "requests_per_minute": 2}},
        {"prefix": "/", "backend": c.b.url},
    ]
    cfg = h.base_config(c.redis, routes,
                        gateway={"trusted_proxies": ["127.0.0.1/32"],
                                 "max_body_bytes": BODY_LIMIT})
    c.config = h.write_gateway_config(td, cfg)
    c.lt = h.Lighttpd(td, config=c.config, max_procs=2)
    c.ap = h.Apache(td, c.config, max_procs=4)
    c.ltbig = h.Lighttpd(td, config=c.config, max_procs=1, name="lighttpd-big",
                         extra=LIGHTTPD_BIG)
    c.apbig = h.Apache(td, c.config, max_procs=2, name="apache-big", extra=APACHE_BIG)
    for ap in (c.ap, c.apbig):
        h.wait_for(lambda: h.request(ap.port, "GET", "/x", timeout=10).status == 200,
                   timeout=15, interval=0.3, what="the first request through %s" % ap.name)
    c.keys_bin = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    c.key = create_key(c, "hostile")
    c.servers = {"lighttpd": c.lt, "apache": c.ap}
    c.stacks = {"lighttpd": c.lt, "apache": c.ap, "lighttpd-big": c.ltbig,
                "apache-big": c.apbig}
    c.pids = {name: set(s.worker_pids()) for name, s in c.stacks.items()}
    for name, pids in c.pids.items():
        check(pids, "no gateway process found under %s" % name)
    return c


def calls(c, tag):
    return h.request(c.b.port, "GET", "/_calls?key=" + tag).json()["calls"]


def raw(port, target, headers=(), method=b"GET", body=b"", host=b"t", timeout=10.0):
    """One request with target and header fields sent byte for byte (no
    client-side normalization or validation); "Connection: close" unless
    headers has a Connection field."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    req = [method + b" " + target + b" HTTP/1.1", b"Host: " + host]
    for k, v in headers:
        k = k.encode("latin-1") if isinstance(k, str) else k
        v = v.encode("latin-1") if isinstance(v, str) else v
        req.append(k + b": " + v)
    if not any(k.lower() in ("connection", b"connection") for k, _ in headers):
        req.append(b"Connection: close")
    return h.raw_request(port, b"\r\n".join(req) + b"\r\n\r\n" + body, timeout=timeout)


def is_problem(r):
    return (r.headers.get("content-type") or "").split(";")[0].strip() == "application/problem+json"


def expect_server_refusal(r, status, what):
    """The web server answered by itself: its status, not a gateway problem
    document, not a backend echo."""
    expect_status(r, status, what)
    check(not is_problem(r), "%s: answered by the gateway, want the web server: %r" % (what, r))
    check(b'"server": "backend"' not in r.body, "%s: reached the backend: %r" % (what, r))


# ---------------------------------------------------------------------------
# 1. the path table

def AUTH(fwd):
    """Routed to the protected /api/admin: 401 without a key; with one the
    backend gets fwd."""
    return ("auth", fwd)


def PASS(fwd):
    """Routed elsewhere (public route or the catch-all): 200 with or without
    a key, and the backend gets fwd."""
    return ("pass", fwd)


BAD = ("bad", None)  # the gateway's 400 problem document (bad path)


def SRV(status):
    """The web server refuses the target itself with status."""
    return ("server", status)


A8K = "/api/admin/" + "a" * 8192
A64K = "/api/admin/" + "a" * 65536
A4K = "/api/admin/" + "a" * 4000

# (raw request target, expectation, or {server: expectation} where the
# two web servers differ).  Found by running each target through both
# servers and checked against the rule above: the table is what the stack
# answers, and every answer routes on the path it forwards.
PATHS = [
    # dot segments, literal and escaped
    ("/api/public/../admin", AUTH("/api/admin")),
    ("/api/public/%2e%2e/admin", AUTH("/api/admin")),
    ("/api/public/%2E%2e/admin", AUTH("/api/admin")),
    ("/api/public/.%2e/admin", AUTH("/api/admin")),
    ("/api/public/%2e./admin", AUTH("/api/admin")),
    ("/api/public/.%2E/.%2e/api/admin", AUTH("/api/admin")),
    ("/api/admin/../public/x", PASS("/api/public/x")),
    ("/api/admin/%2e%2e/public", PASS("/api/public")),
    ("/api/admin/x/../../admin", AUTH("/api/admin")),
    ("/api/admin/../../api/admin", AUTH("/api/admin")),
    ("/api/./admin", AUTH("/api/admin")),
    ("/api/%2e/admin", AUTH("/api/admin")),
    ("/api/admin/%2e", AUTH("/api/admin/")),
    ("/api/admin/%2e%2e", PASS("/api/")),
    # climbing above the root: Apache refuses it before FastCGI
    ("/..", {"lighttpd": BAD, "apache": SRV(400)}),
    ("/../api/admin", {"lighttpd": BAD, "apache": SRV(400)}),
    ("/api/../../api/admin", {"lighttpd": BAD, "apache": SRV(400)}),
    ("/%2e%2e/api/admin", {"lighttpd": BAD, "apache": SRV(400)}),
    # overlong UTF-8 for '.' and '/': lighttpd refuses invalid UTF-8 in
    # the decoded path; through Apache they are opaque bytes, kept escaped
    ("/api/public/%c0%ae%c0%ae/admin",
     {"lighttpd": SRV(400), "apache": PASS("/api/public/%C0%AE%C0%AE/admin")}),
    ("/api/%c0%afadmin", {"lighttpd": SRV(400), "apache": PASS("/api/%C0%AFadmin")}),
    ("/api/public/%e0%80%ae%e0%80%ae/admin", PASS("/api/public/%E0%80%AE%E0%80%AE/admin")),
    ("/api%ef%bc%8fadmin", PASS("/api%EF%BC%8Fadmin")),
    # double encoding: decoded once, never twice
    ("/api/public/%252e%252e/admin", PASS("/api/public/%252e%252e/admin")),
    ("/api/public%252fadmin", PASS("/api/public%252fadmin")),
    ("/api%252fadmin", PASS("/api%252fadmin")),
    # path parameters
    ("/api/admin;x=1", AUTH("/api/admin")),
    ("/x/..;/api/admin", AUTH("/api/admin")),
    ("/api/public;/../admin", AUTH("/api/admin")),
    ("/api/public/..;/admin", AUTH("/api/admin")),
    # repeated slashes
    ("//api/admin", AUTH("/api/admin")),
    ("///api/admin", AUTH("/api/admin")),
    ("/api//admin", AUTH("/api/admin")),
    ("/api///admin//x", AUTH("/api/admin/x")),
    # trailing dots: "admin." is another segment than "admin"
    ("/api/admin.", PASS("/api/admin.")),
    ("/api/admin%2e", PASS("/api/admin.")),
    ("/api/admin..", PASS("/api/admin..")),
    ("/api/admin/.", AUTH("/api/admin/")),
    ("/api/admin/..", PASS("/api/")),
    # case: prefixes are case-sensitive, the other spelling is forwarded as is
    ("/API/admin", PASS("/API/admin")),
    ("/Api/Admin", PASS("/Api/Admin")),
    ("/api/ADMIN", PASS("/api/ADMIN")),
    ("/api/%41dmin", PASS("/api/Admin")),
    # escaped unreserved characters are decoded before matching
    ("/api/%61dmin", AUTH("/api/admin")),
    ("/api/adm%69n", AUTH("/api/admin")),
    ("/%61pi/admin", AUTH("/api/admin")),
    ("/api/admin/%7Eu", AUTH("/api/admin/~u")),
    # escaped reserved characters that route prefixes may hold: the
    # backend decodes them, so they must reach the same route
    ("/api/k:v@x/1", AUTH("/api/k:v@x/1")),
    ("/api/k%3Av%40x/1", AUTH("/api/k%3Av%40x/1")),
    ("/api/k%3av@x", AUTH("/api/k%3Av@x")),
    ("/api/k:v%40x;p=1/2", AUTH("/api/k:v%40x/2")),
    ("/api/x/..;/k%3Av@x/2", AUTH("/api/k%3Av@x/2")),
    ("/api/s!$&'()*+,=", AUTH("/api/s!$&'()*+,=")),
    ("/api/s%21%24%26%27%28%29%2A%2B%2C%3D/x", AUTH("/api/s%21%24%26%27%28%29%2A%2B%2C%3D/x")),
    ("/api/k%3Av%40xy", PASS("/api/k%3Av%40xy")),
    ("/api/k%3Bv@x", BAD),
    # '?' and '#' escaped in the path stay path characters
    ("/api/public%3F/../admin", AUTH("/api/admin")),
    ("/api/admin%3Fx=1", PASS("/api/admin%3Fx=1")),
    ("/api/admin%23frag", PASS("/api/admin%23frag")),
    ("/api/public%23/../admin", AUTH("/api/admin")),
    ("/api/admin?x=/../../", AUTH("/api/admin")),
    # a raw '#' in the target: lighttpd passes it on as part of the path
    ("/api/admin#frag", {"lighttpd": PASS("/api/admin%23frag"), "apache": SRV(400)}),
    ("/api/public#/../admin", {"lighttpd": AUTH("/api/admin"), "apache": SRV(400)}),
    # encoded slash and backslash, raw backslash
    ("/api%2fadmin", BAD),
    ("/api%2Fadmin", BAD),
    ("/api/public%2f..%2fadmin", BAD),
    ("/api/admin/..%2f", BAD),
    ("/api/admin/%2e%2e%2fpublic", BAD),
    ("/api\\admin", BAD),
    ("/api/public\\..\\admin", BAD),
    ("/api%5cadmin", BAD),
    ("/api%5Cadmin", BAD),
    ("/api/public/..%5cadmin", BAD),
    # broken escapes: lighttpd passes them to the gateway
    ("/api/admin%", {"lighttpd": BAD, "apache": SRV(400)}),
    ("/api/admin%2", {"lighttpd": BAD, "apache": SRV(400)}),
    ("/api/admin%zz", {"lighttpd": BAD, "apache": SRV(400)}),
    # NUL, control characters, raw and escaped
    ("/api/admin%00", {"lighttpd": SRV(400), "apache": SRV(404)}),
    ("/api/admin%00.json", {"lighttpd": SRV(400), "apache": SRV(404)}),
    ("/api/admin\x00", SRV(400)),
    ("/api/admin\t", SRV(400)),
    ("/api/admin\r", SRV(400)),
    ("/api/admin%09", {"lighttpd": SRV(400), "apache": PASS("/api/admin%09")}),
    ("/api/admin%0d%0aX-Injected:%201",
     {"lighttpd": SRV(400), "apache": PASS("/api/admin%0D%0AX-Injected:%201")}),
    ("/api/admin%20", PASS("/api/admin%20")),
    # bytes >= 0x80, raw and escaped
    ("/api/admin/\xff", {"lighttpd": SRV(400), "apache": AUTH("/api/admin/%FF")}),
    ("/api/\xc3\xa9", PASS("/api/%C3%A9")),
    ("/api/admin\x80", PASS("/api/admin%80")),
    ("/api/admin%ff", {"lighttpd": SRV(400), "apache": PASS("/api/admin%FF")}),
    # not an origin-form path
    ("*", SRV(400)),
    ("api/admin", SRV(400)),
    ("http://example.com/api/admin", {"lighttpd": SRV(400), "apache": BAD}),
    # long paths: the web servers' request-line limits answer
    (A4K, AUTH(A4K)),
    (A8K, {"lighttpd": SRV(431), "apache": SRV(414)}),
    (A64K, {"lighttpd": SRV(431), "apache": SRV(414)}),
]

PROTECTED = ("/api/admin", "/api/k:v@x", "/api/s!$&'()*+,=")


def decoded(p):
    """p with every escape decoded once, as most backends route."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), p)


def under(prefix, path):
    return path == prefix or path.startswith(prefix + "/")


def protected(path):
    return any(under(p, decoded(path)) for p in PROTECTED)


def with_tag(target, tag):
    if "#" in target:
        return target, None     # anything after '#' is path to lighttpd
    return target + ("&" if "?" in target else "?") + "key=" + tag, tag


def path_case(c, server, target, want):
    port = c.servers[server].port
    kind, fwd = want
    what = "%r via %s" % (target[:60], server)
    sent, tag = with_tag(target, secrets.token_hex(4))
    query = sent.partition("?")[2] if "#" not in sent else ""
    # without a key
    r = raw(port, sent)
    if kind == "auth":
        expect_problem(r, 401, what + " without a key")
        check("WWW-Authenticate" in r.headers, "%s: 401 without WWW-Authenticate" % what)
    elif kind == "pass":
        expect_status(r, 200, what + " without a key")
        eq(r.json()["path"], fwd, "path at the backend for %s without a key" % what)
    elif kind == "bad":
        expect_problem(r, 400, what)
    else:
        expect_server_refusal(r, fwd, what)
    if tag is not None and kind != "pass":
        eq(calls(c, tag), 0, "backend calls for %s without a key" % what)
    # with a valid key
    r = raw(port, sent, [("X-API-Key", c.key)])
    if kind in ("auth", "pass"):
        expect_status(r, 200, what + " with a key")
        doc = r.json()
        eq(doc["path"], fwd, "path at the backend for %s" % what)
        eq(doc["query"], query, "query at the backend for %s" % what)
        eq(echo_header(doc, "x-api-key"), None, "API key header forwarded for %s" % what)
        # the invariant: the route that decided (401 or not) is the one the
        # forwarded path belongs to, even for a backend that decodes more
        p = protected(fwd)
        eq(p, kind == "auth", "%s: forwarded %r, which %s a protected route" % (
            what, fwd, "is under" if p else "is not under"))
        if kind == "auth":
            check(echo_header(doc, "x-consumer-id"), "%s: no X-Consumer-ID" % what)
    elif kind == "bad":
        expect_problem(r, 400, what + " with a key")
    else:
        expect_server_refusal(r, fwd, what + " with a key")


def path_table(c, server):
    counts = {}
    for target, want in PATHS:
        w = want[server] if isinstance(want, dict) else want
        path_case(c, server, target, w)
        counts[w[0]] = counts.get(w[0], 0) + 1
    print("# %s: %d targets, %s" % (server, len(PATHS),
                                    ", ".join("%s %d" % kv for kv in sorted(counts.items()))))


@test
def path_table_size():
    check(len(PATHS) >= 60, "only %d path cases" % len(PATHS))
    eq(len({t for t, _ in PATHS}), len(PATHS), "distinct targets")


@test
def path_table_lighttpd(c):
    path_table(c, "lighttpd")


@test
def path_table_apache(c):
    path_table(c, "apache")


# Spellings of /api/limited/x (3 per minute per key): one counter.
LIMIT_VARIANTS = [
    "/api/limited/x",
    "//api/limited/./x",
    "/api/%6Cimited;v=2/x",
    "/api/public/../limited/x",
    "/api/limited/y/%2e%2e/x",
]


def shared_limit(c, server):
    port = c.servers[server].port
    key = create_key(c, "limit-" + server)
    # without a key: 401, and nothing is counted
    for v in LIMIT_VARIANTS:
        expect_problem(raw(port, v), 401, "%s without a key via %s" % (v, server))
    got = []
    for v in LIMIT_VARIANTS:
        r = raw(port, v, [("X-API-Key", key)])
        got.append(r.status)
        if r.status == 200:
            eq(r.json()["path"], "/api/limited/x", "path at the backend for %s" % v)
        else:
            doc = expect_problem(r, 429, "%s via %s" % (v, server))
            check("quota-exceeded" in doc["type"], "429 type: %r" % doc)
            check(r.headers.get("Retry-After"), "429 without Retry-After")
    eq(got, [200, 200, 200, 429, 429], "statuses for 5 spellings of one path under 3/min via %s"
       % server)


@test
def path_variants_share_rate_limit_lighttpd(c):
    shared_limit(c, "lighttpd")


@test
def path_variants_share_rate_limit_apache(c):
    shared_limit(c, "apache")


# ---------------------------------------------------------------------------
# 2. Redis key names

H64, H32, H40, H16 = "[0-9a-f]{64}", "[0-9a-f]{32}", "[0-9a-f]{40}", "[0-9a-f]{16}"
TAG = "(?:k:%s|i:%s)" % (H64, H32)
KEYSPACE_RE = re.compile(
    "^apigw:(?:"
    r"\{%(tag)s\}:rec"
    r"|\{%(tag)s\}:rl:(?:k|d|r:%(h16)s):[smhd]"
    r"|keyid:%(h16)s|keys"
    r"|\{c:%(h64)s\}:(?:v|[el]:%(h40)s)"
    r"|c:live|c:p:%(h64)s|c:r:%(h16)s"
    r"|\{b:%(h32)s\}(?::t|:c:%(h16)s:%(h32)s)?"
    r"|m:[a-z0-9_.:-]+"
    ")$" % dict(tag=TAG, h16=H16, h32=H32, h40=H40, h64=H64))

HOSTILE_KEYS = ["*", "?", "[a-z]*", "{x}", "{", "}{", "gw_*", "gw_" + "{" * 43,
                "gw_" + "*" * 43, "a b c", " ", "apigw:*", "apigw:{k:x}:rec", "%0d%0a",
                "k" * 4096]
HOSTILE_XFF = ["*", "{a}", "[0-9]*", "a b", "203.0.113.77", "203.0.113.78, *",
               "2001:db8::77", "{203.0.113.79}"]
HOSTILE_PATHS = [
    ("/inj/*", "/inj/*"), ("/inj/%2A", "/inj/%2A"), ("/inj/[a-z]?x=1", "/inj/%5Ba-z%5D"),
    ("/inj/{tag}", "/inj/%7Btag%7D"), ("/inj/%7Btag%7D", "/inj/%7Btag%7D"),
    ("/inj/a%20b", "/inj/a%20b"), ("/inj/apigw:*", "/inj/apigw:*"),
    ("/inj/x?q=*{a}[b]%20", "/inj/x"),
    # lighttpd refuses an escaped CR or LF in the path or the query
    ("/inj/a%0d%0ab", {"lighttpd": 400, "apache": "/inj/a%0D%0Ab"}),
    ("/inj/x?q=%0d%0aX:%201", {"lighttpd": 400, "apache": "/inj/x"}),
]


def scan_keys(redis):
    out, cursor = [], "0"
    while True:
        cursor, names = redis.command("SCAN", cursor, "COUNT", "1000")
        out.extend(names)
        if cursor == "0":
            return out


def injection(c, server):
    port = c.servers[server].port
    for k in HOSTILE_KEYS:
        r = raw(port, "/api/admin", [("X-API-Key", k)])
        expect_problem(r, 401, "API key %r via %s" % (k[:20], server))
        r = raw(port, "/inj/key", [("X-API-Key", k)])
        expect_status(r, 200, "API key %r on a public route via %s" % (k[:20], server))
    # raw CR, LF and NUL inside the field: both servers refuse the request
    for k in (b"ab\rcd", b"ab\ncd", b"ab\0cd", b"*\r*"):
        expect_server_refusal(raw(port, "/api/admin", [(b"X-API-Key", k)]), 400,
                              "API key %r via %s" % (k, server))
    # 1 MB key header, 1 MB path: refused by the web server
    big = {"lighttpd": 431, "apache": 400}[server]
    expect_server_refusal(raw(port, "/api/admin", [("X-API-Key", "k" * (1 << 20))]), big,
                          "1 MB API key via %s" % server)
    big = {"lighttpd": 431, "apache": 414}[server]
    expect_server_refusal(raw(port, "/inj/" + "{" * (1 << 20)), big, "1 MB path via %s" % server)
    for x in HOSTILE_XFF:
        r = raw(port, "/inj/xff", [("X-Forwarded-For", x)])
        expect_status(r, 200, "X-Forwarded-For %r via %s" % (x, server))
    for target, fwd in HOSTILE_PATHS:
        if isinstance(fwd, dict):
            fwd = fwd[server]
        if isinstance(fwd, int):
            expect_server_refusal(raw(port, target), fwd, "%s via %s" % (target, server))
            continue
        for n in range(2):
            r = raw(port, target)
            expect_status(r, 200, "%s via %s" % (target, server))
            eq(r.json()["path"], fwd, "path at the backend for %s" % target)
        # the second one comes from the cache: the path made a cache key
        eq(r.headers.get("X-Cache"), "HIT", "X-Cache of a repeated %s via %s" % (target, server))


@test
def redis_key_injection_lighttpd(c):
    injection(c, "lighttpd")


@test
def redis_key_injection_apache(c):
    injection(c, "apache")


@test
def redis_keyspace_intact(c):
    names = scan_keys(c.redis)
    check(len(names) >= 10, "only %d keys in Redis: %r" % (len(names), names))
    bad = [n for n in names if not KEYSPACE_RE.match(n)]
    eq(bad, [], "key names outside the keyspace")
    for n in names:
        for ch in "*?[] \r\n\0":
            check(ch not in n, "key %r holds %r" % (n, ch))
        check(n.count("{") <= 1, "key %r holds two '{'" % n)
        for ident in ("203.0.113.", "2001:db8", c.key, "hostile"):
            check(ident not in n, "key %r holds the raw identity %r" % (n, ident))
    # the requests above made the kinds of keys this checks
    for kind in (r":rl:r:", r"^apigw:c:p:", r"^apigw:\{c:", r"^apigw:\{k:", r"^apigw:\{i:"):
        check(any(re.search(kind, n) for n in names), "no key like %r in %r" % (kind, names))
    # Redis still works for the gateway: a fresh client is admitted, counted
    # and limited (2 per minute), through each server
    for i, (server, s) in enumerate(sorted(c.servers.items())):
        xff = "198.51.100.%d" % (i + 1)
        got = [raw(s.port, "/counted/x", [("X-Forwarded-For", xff)]).status for _ in range(3)]
        eq(got, [200, 200, 429], "a fresh client under 2/min via %s after the injection" % server)
    names = scan_keys(c.redis)
    eq([n for n in names if not KEYSPACE_RE.match(n)], [], "key names outside the keyspace")
    check(not any("198.51.100" in n for n in names), "a raw client address in a key name")


# ---------------------------------------------------------------------------
# 3. Connection naming the headers the gateway adds

GATEWAY_FIELDS = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID",
                  "X-Consumer-ID", "X-Consumer-Name", "Forwarded", "X-Real-IP", "Host",
                  "X-API-Key")


@test
def connection_cannot_remove_gateway_headers(c):
    named = ", ".join(GATEWAY_FIELDS + ("X-Secret",))
    for server, s in sorted(c.servers.items()):
        for conn in (named, "keep-alive, " + named.lower(), "X-Secret,X-Forwarded-For,Forwarded"):
            what = "Connection: %s via %s" % (conn[:40], server)
            r = raw(s.port, "/api/admin/conn",
                    [("Connection", conn), ("X-API-Key", c.key), ("X-Secret", "1"),
                     ("Forwarded", "for=192.0.2.66"), ("X-Real-IP", "192.0.2.66"),
                     ("X-Kept", "k")])
            expect_status(r, 200, what)
            doc = r.json()
            eq(echo_header(doc, "x-forwarded-for"), "127.0.0.1", "X-Forwarded-For, " + what)
            eq(echo_header(doc, "x-forwarded-proto"), "http", "X-Forwarded-Proto, " + what)
            eq(echo_header(doc, "x-forwarded-host"), "t", "X-Forwarded-Host, " + what)
            rid = r.headers.get("X-Request-ID")
            check(rid, "%s: no X-Request-ID in the response" % what)
            eq(echo_header(doc, "x-request-id"), rid, "X-Request-ID, " + what)
            check(re.match(r"^[0-9a-f]{16}$", echo_header(doc, "x-consumer-id") or ""),
                  "%s: X-Consumer-ID %r" % (what, echo_header(doc, "x-consumer-id")))
            eq(echo_header(doc, "x-consumer-name"), "hostile", "X-Consumer-Name, " + what)
            eq(echo_header(doc, "host"), "127.0.0.1:%d" % c.b.port, "Host, " + what)
            for gone in ("x-secret", "forwarded", "x-real-ip", "connection", "x-api-key"):
                eq(echo_header(doc, gone), None, "%s at the backend, %s" % (gone, what))
            eq(echo_header(doc, "x-kept"), "k", "X-Kept, " + what)
        # a client request id named in Connection: the backend gets the id
        # the client sees, whichever the gateway chose
        r = raw(s.port, "/echo", [("Connection", "X-Request-ID"), ("X-Request-ID", "cli-1")])
        expect_status(r, 200)
        eq(echo_header(r.json(), "x-request-id"), r.headers.get("X-Request-ID"),
           "X-Request-ID named in Connection via %s" % server)
        # a body whose framing fields are named: still forwarded whole
        r = raw(s.port, "/echo", [("Connection", "Content-Length, Transfer-Encoding"),
                                  ("Content-Length", "5")], method=b"POST", body=b"hello")
        expect_status(r, 200)
        eq((r.json()["body"], echo_header(r.json(), "content-length")), ("hello", "5"),
           "body with Content-Length named in Connection via %s" % server)


# odd request heads: (request line and fields, body, {server: status});
# 200 means the backend got exactly body and no field with CR or LF
CHUNKED_ABC = b"3\r\nabc\r\n0\r\n\r\n"
ODD_HEADS = [
    (b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n", b"",
     {"lighttpd": 200, "apache": 200}),
    (b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A : v\r\n", b"", {"lighttpd": 400, "apache": 400}),
    (b"GET /echo HTTP/1.1\r\nHost: t\r\nX-D: a\x7fb\r\n", b"",
     {"lighttpd": 400, "apache": 400}),
    (b"GET /echo HTTP/1.1\r\nHost: t\r\n\xff: v\r\n", b"", {"lighttpd": 400, "apache": 400}),
    (b"GET /echo HTTP/1.1\r\nHost: {x}*\r\n", b"", {"lighttpd": 400, "apache": 400}),
    (b"GET /echo HTTP/1.1\r\nHost: t\r\nHost: u\r\n", b"", {"lighttpd": 400, "apache": 400}),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n", b"abcd",
     {"lighttpd": 400, "apache": 400}),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n", b"abc",
     {"lighttpd": 400, "apache": 400}),
    # both framings: lighttpd refuses, Apache goes by the chunks
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n",
     CHUNKED_ABC, {"lighttpd": 400, "apache": 200}),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n",
     CHUNKED_ABC, {"lighttpd": 501, "apache": 400}),
]


@test
def odd_request_heads(c):
    for head, body, want in ODD_HEADS:
        data = head + b"Connection: close\r\n\r\n" + body
        for server, s in sorted(c.servers.items()):
            what = "%r via %s" % (head[:70], server)
            r = h.raw_request(s.port, data)
            if want[server] != 200:
                expect_server_refusal(r, want[server], what)
                continue
            expect_status(r, 200, what)
            doc = r.json()
            eq(doc["body"], "abc" if body else "", "body at the backend, " + what)
            for k, v in doc["headers"]:
                check("\r" not in k + v and "\n" not in k + v,
                      "%s: field with CR or LF at the backend: %r" % (what, (k, v)))
    # the API key header twice: refused, whichever copy is valid
    for server, s in sorted(c.servers.items()):
        r = raw(s.port, "/api/admin", [("X-API-Key", c.key), ("X-API-Key", "bogus")])
        expect_problem(r, 401, "two API key fields via %s" % server)


# ---------------------------------------------------------------------------
# 4. sizes

def many_headers(n):
    return [("X-H-%04d" % i, "v%d" % i) for i in range(n)]


def expect_headers_at_backend(r, hdrs, what):
    expect_status(r, 200, what)
    got = dict(h.header_pairs(r.json()))
    for k, v in hdrs:
        if got.get(k.lower()) != v:
            raise AssertionError("%s: %s at the backend is %r, want %r" % (
                what, k, (got.get(k.lower()) or "")[:40], v[:40]))


# (what, header fields, {stack: expected status}); 200 means every field
# reached the backend intact; others are the web server's own answer.
HEADER_CASES = [
    ("200 header fields", many_headers(200),
     {"lighttpd": 200, "apache": 400, "lighttpd-big": 200, "apache-big": 200}),
    ("1000 header fields", many_headers(1000),
     {"lighttpd": 431, "apache": 400, "lighttpd-big": 200, "apache-big": 200}),
    ("a 60 KB header value", [("X-Big", "v" * 61440)],
     {"lighttpd": 431, "apache": 400, "lighttpd-big": 200, "apache-big": 200}),
    ("a 64000-byte header value", [("X-Big", "w" * 64000)],
     {"lighttpd": 431, "apache": 400, "lighttpd-big": 200, "apache-big": 200}),
    # over what each server puts in one FastCGI parameter
    ("a 70000-byte header value", [("X-Big", "x" * 70000)],
     {"lighttpd": 431, "apache": 400, "lighttpd-big": 400, "apache-big": 500}),
    ("an 8000-byte header name", [("X-" + "N" * 7998, "v")],
     {"lighttpd": 200, "apache": 200, "lighttpd-big": 200, "apache-big": 200}),
    ("a 60000-byte header name", [("X-" + "M" * 59998, "v")],
     {"lighttpd": 431, "apache": 400, "lighttpd-big": 200, "apache-big": 200}),
]


@test
def header_sizes(c):
    for what, hdrs, want in HEADER_CASES:
        for name, s in sorted(c.stacks.items()):
            r = raw(s.port, "/echo", hdrs, timeout=20)
            w = "%s via %s" % (what, name)
            if want[name] == 200:
                expect_headers_at_backend(r, hdrs, w)
            else:
                expect_server_refusal(r, want[name], w)


# (query length, {stack: expected status}): the query is both REQUEST_URI
# and QUERY_STRING, so it meets the FastCGI limits at about half the size.
QUERY_CASES = [
    (8000, {"lighttpd": 200, "apache": 200, "lighttpd-big": 200, "apache-big": 200}),
    (16000, {"lighttpd": 431, "apache": 414, "lighttpd-big": 200, "apache-big": 200}),
    (32000, {"lighttpd": 431, "apache": 414, "lighttpd-big": 200, "apache-big": 200}),
    (40000, {"lighttpd": 431, "apache": 414, "lighttpd-big": 400, "apache-big": 500}),
    (500000, {"lighttpd": 431, "apache": 414, "lighttpd-big": 400, "apache-big": 500}),
]


@test
def huge_query_strings(c):
    for n, want in QUERY_CASES:
        q = "q=" + "".join(secrets.choice("abcdefghij") for _ in range(64)) * (n // 64 + 1)
        q = q[:n]
        for name, s in sorted(c.stacks.items()):
            r = raw(s.port, "/echo?" + q, timeout=20)
            w = "a %d-byte query via %s" % (n, name)
            if want[name] == 200:
                expect_status(r, 200, w)
                eq(r.json()["query"], q, "query at the backend, " + w)
            else:
                expect_server_refusal(r, want[name], w)


def post(port, body, chunks=None, path="/echo"):
    if chunks is None:
        return raw(port, path, [("Content-Length", str(len(body)))], method=b"POST", body=body)
    data = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in chunks) + b"0\r\n\r\n"
    return raw(port, path, [("Transfer-Encoding", "chunked")], method=b"POST", body=data)


@test
def request_body_limit(c):
    body = secrets.token_hex(BODY_LIMIT // 2).encode()
    eq(len(body), BODY_LIMIT, "body size")
    chunks = [body[i:i + 10000] for i in range(0, len(body), 10000)]
    for name, s in sorted(c.servers.items()):
        for how, r in (("Content-Length", post(s.port, body)),
                       ("chunked", post(s.port, body, chunks))):
            expect_status(r, 200, "a body at the limit (%s) via %s" % (how, name))
            doc = r.json()
            eq((doc["body_len"], hashlib.sha256(doc["body"].encode()).hexdigest()),
               (BODY_LIMIT, hashlib.sha256(body).hexdigest()),
               "body at the backend (%s) via %s" % (how, name))
        tag = secrets.token_hex(4)
        over = body + b"x"
        for how, r in (("Content-Length", post(s.port, over, path="/echo?key=" + tag)),
                       ("chunked", post(s.port, over, chunks + [b"x"], path="/echo?key=" + tag)),
                       ("chunked, 4 x limit",
                        post(s.port, None, [body] * 4, path="/echo?key=" + tag))):
            doc = expect_problem(r, 413, "a body over the limit (%s) via %s" % (how, name))
            eq(doc["error"], "request body too large", "413 error field")
        eq(calls(c, tag), 0, "backend calls for bodies over the limit via %s" % name)


def slow_post(port, body, delay, out, idx):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        for i in range(len(body)):
            time.sleep(delay)
            s.sendall(body[i:i + 1])
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        s.close()
        out[idx] = h._parse_response(buf, eof=True)
    except Exception as e:  # reported by the test
        out[idx] = e


@test
def slow_bodies_do_not_block(c):
    nclients, nbytes, delay = 32, 60, 0.05
    threads, results = [], {}
    for name, s in sorted(c.servers.items()):
        for i in range(nclients):
            body = b"%02d-%s" % (i, secrets.token_hex(nbytes).encode()[:nbytes - 3])
            t = threading.Thread(target=slow_post, args=(s.port, body, delay, results,
                                                         (name, i, body)))
            t.daemon = True
            threads.append(t)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)
    for name, s in sorted(c.servers.items()):
        t1 = time.monotonic()
        r = h.request(s.port, "GET", "/echo", timeout=10)
        expect_status(r, 200, "a normal request during 32 slow bodies via %s" % name)
        check(time.monotonic() - t1 < 2.0, "a normal request took %.2f s via %s" % (
            time.monotonic() - t1, name))
        # served while every slow client was still sending
        eq(len(results), 0, "slow clients done before the normal request via %s" % name)
    for t in threads:
        t.join(30)
    took = time.monotonic() - t0
    eq(len(results), 2 * nclients, "slow clients that got an answer")
    for (name, i, body), r in sorted(results.items(), key=lambda kv: kv[0][:2]):
        check(not isinstance(r, Exception) and r is not None,
              "slow client %d via %s: %r" % (i, name, r))
        expect_status(r, 200, "slow client %d via %s" % (i, name))
        eq(r.json()["body"], body.decode(), "slow client %d's body via %s" % (i, name))
    print("# %d slow clients (%d bytes, one per %d ms) done in %.1f s" % (
        2 * nclients, nbytes, delay * 1000, took))


# ---------------------------------------------------------------------------
# last: nothing died, memory bounded

@test
def workers_alive_and_bounded(c):
    for name, s in sorted(c.stacks.items()):
        expect_status(h.request(s.port, "GET", "/echo"), 200, "a request via %s at the end" % name)
        now = set(s.worker_pids())
        gone = c.pids[name] - now
        eq(sorted(gone), [], "gateway processes of %s that exited" % name)
        if name.startswith("lighttpd"):
            eq(now, c.pids[name], "gateway processes under %s" % name)
        for pid in sorted(now):
            rss = h.proc_status_kb(pid, "VmRSS")
            check(rss is not None and rss < RSS_LIMIT_KB,
                  "%s gateway pid %d VmRSS %s kB (limit %d)" % (name, pid, rss, RSS_LIMIT_KB))
            print("# %s pid %d VmRSS %d kB" % (name, pid, rss))
        text = h.read_text(s.error_log)
        if hasattr(s, "log_text"):
            text = s.log_text()
        crashes = [l for l in text.splitlines() if CRASH_RE.search(l)]
        eq(crashes, [], "crash lines in %s's logs" % name)


if __name__ == "__main__":
    h.main(setup)
