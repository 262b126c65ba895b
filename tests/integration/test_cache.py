#!/usr/bin/env python3
"""The shared response cache through a real lighttpd (bin-path, 4 apigw
processes) and a real Apache with mod_fcgid, both on one redis-server and
one stub backend: what is stored and what never is, hits from Redis with
Age, X-Cache and Cache-Status, the per-key partition, HEAD from GET's
entry, no-cache refreshes, TTL and max-age, Vary, byte-exact bodies, the
stampede bound, stale-if-error, and one Redis round trip per request.

Every test uses its own query tag (key=...), which the backend counts: a
hit is proven by the backend's count not moving."""

import hashlib
import os
import re
import secrets
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, test  # noqa: E402

MAX_OBJECT = 100000
COPY_LIFE_S = 1.05  # a process's copy of an entry answers for up to 1 s
KEY_RE = re.compile(r"^gw_[A-Za-z0-9_-]{43}$")


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    c.b2 = h.start_backend(td, "b2")
    routes = [
        {"prefix": "/c", "backend": c.b.url, "cache_ttl_s": 30},
        {"prefix": "/short", "backend": c.b.url, "cache_ttl_s": 2},
        {"prefix": "/auth", "backend": c.b.url, "cache_ttl_s": 30, "require_auth": True},
        {"prefix": "/stale", "backend": c.b.url, "cache_ttl_s": 1,
         "cache_stale_if_error_s": 60},
        {"prefix": "/nostale", "backend": c.b.url, "cache_ttl_s": 1},
        {"prefix": "/gone", "backend": c.b2.url, "cache_ttl_s": 1,
         "cache_stale_if_error_s": 60, "connect_timeout_ms": 500},
        {"prefix": "/slowc", "backend": c.b.url, "cache_ttl_s": 30, "timeout_ms": 5000},
        {"prefix": "/plain", "backend": c.b.url},
        # hits answered by the processes' copies: the rate limit leases
        # too, so such a hit needs no Redis at all
        {"prefix": "/lc", "backend": c.b.url, "cache_ttl_s": 30,
         "rate_limit": {"algorithm": "gcra", "requests_per_minute": 1000000,
                        "lease_max_units": 64, "lease_ms": 500}},
    ]
    c.log = td.join("access.json")
    open(c.log, "w").close()
    h.chown(c.log, "www-data")
    cfg = h.base_config(c.redis, routes, cache={"max_object_bytes": MAX_OBJECT},
                        log={"access": c.log, "format": "json"})
    c.config = h.write_gateway_config(td, cfg)
    c.lt = h.Lighttpd(td, config=c.config, max_procs=4)
    c.ap = h.Apache(td, c.config, max_procs=6)
    h.wait_for(lambda: h.request(c.ap.port, "GET", "/plain/x", timeout=10).status == 200,
               timeout=15, interval=0.3, what="the first request through Apache")
    c.servers = {"lighttpd": c.lt.port, "apache": c.ap.port}
    keys = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    c.keys = []
    for name in ("cache-a", "cache-b"):
        p = subprocess.run([keys, "--config", c.config, "create", name],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode())
        key = p.stdout.decode().strip()
        check(KEY_RE.match(key), "apigw-keys printed %r" % key)
        c.keys.append(key)
    return c


def tag():
    return secrets.token_hex(5)


def calls(c, key, b=None):
    return h.request((b or c.b).port, "GET", "/_calls?key=" + key).json()["calls"]


def get(c, server, path, **kw):
    return h.request(c.servers[server], "GET", path, **kw)


def xc(r):
    return (r.headers.get("X-Cache"), r.headers.get("Cache-Status"))


def both(fn):
    """Registers fn(c, server) as one test per web server."""
    for server in ("lighttpd", "apache"):
        def t(c, server=server):
            fn(c, server)
        t.__name__ = "%s_%s" % (fn.__name__, server)
        test(t)
    return fn


# ---------------------------------------------------------------------------

@both
def miss_then_hit(c, server):
    k = tag()
    r1 = get(c, server, "/c/echo?key=" + k)
    expect_status(r1, 200)
    eq(xc(r1), ("MISS", "apigw; fwd=miss; stored"), "first request")
    check("Age" not in r1.headers, "Age on a miss: %r" % r1.headers)
    for _ in range(3):
        r = get(c, server, "/c/echo?key=" + k)
        expect_status(r, 200)
        eq(xc(r), ("HIT", "apigw; hit"), "a repeat")
        eq(r.body, r1.body, "body from the cache")
        check(re.match(r"^\d+$", r.headers.get("Age", "")), "Age %r" % r.headers.get("Age"))
        eq(r.headers.get("Content-Type"), "application/json", "stored Content-Type")
        eq(r.headers.get("X-Backend"), "backend", "stored backend field")
        check("X-Request-ID" in r.headers, "request id on a hit")
    eq(calls(c, k), 1, "backend calls for 1 miss and 3 hits")
    # a hit is rate limited like any request: the headers are there
    check("RateLimit" in r.headers, "no RateLimit headers on a hit: %r" % r.headers)


@both
def age_grows(c, server):
    k = tag()
    get(c, server, "/c/echo?key=" + k)
    time.sleep(2.1)
    r = get(c, server, "/c/echo?key=" + k)
    eq(xc(r)[0], "HIT", "X-Cache")
    check(int(r.headers["Age"]) >= 2, "Age after 2.1 s: %r" % r.headers["Age"])


# (path suffix, what) of responses that must never be served from the cache
NOT_STORED = [
    ("/c/hdr?h=Cache-Control:no-store", "Cache-Control: no-store"),
    ("/c/hdr?h=Cache-Control:private", "Cache-Control: private"),
    ("/c/hdr?h=Cache-Control:no-cache", "Cache-Control: no-cache"),
    ("/c/hdr?h=Cache-Control:max-age%3D0", "max-age=0"),
    ("/c/cookies?x=1", "Set-Cookie"),
    ("/c/hdr?h=Vary:*", "Vary: *"),
    ("/c/hdr?h=Vary:" + ",".join("a%d" % i for i in range(1000)), "1,000 Vary names"),
    ("/c/hdr?h=Vary:X-API-Key", "Vary on the API key header"),
    ("/c/status/404?x=1", "status 404"),
    ("/c/hdr?status=201", "status 201"),
    ("/c/blob?size=%d" % (MAX_OBJECT + 1), "a body over max_object_bytes"),
    ("/c/truncate?x=1", "a body cut short"),
    ("/c/truncate?chunked=1", "a chunked body cut short"),
]


@both
def never_stored(c, server):
    for path, what in NOT_STORED:
        k = tag()
        url = path + "&key=" + k
        for i in range(2):
            try:
                r = get(c, server, url)
            except Exception:
                continue  # a cut-short body: the client sees a broken transfer
            check(r.headers.get("X-Cache") != "HIT", "%s: HIT on request %d" % (what, i + 1))
            if "max_object" in what:
                eq(len(r.body), MAX_OBJECT + 1, "%s: streamed whole" % what)
        eq(calls(c, k), 2, "%s: backend calls for 2 requests" % what)


@both
def per_key_partition(c, server):
    k = tag()
    a, b = c.keys
    ra = get(c, server, "/auth/echo?key=" + k, headers={"X-API-Key": a})
    eq(xc(ra)[0], "MISS", "key A first")
    rb = get(c, server, "/auth/echo?key=" + k, headers={"X-API-Key": b})
    eq(xc(rb)[0], "MISS", "key B never gets key A's entry")
    ra2 = get(c, server, "/auth/echo?key=" + k, headers={"X-API-Key": a})
    eq(xc(ra2)[0], "HIT", "key A again")
    eq(ra2.body, ra.body, "key A's own body")
    rb2 = get(c, server, "/auth/echo?key=" + k, headers={"X-API-Key": b})
    eq(xc(rb2)[0], "HIT", "key B again")
    eq(rb2.body, rb.body, "key B's own body")
    eq(calls(c, k), 2, "backend calls: one per key")
    # without a key, or with a wrong one: 401, never the cached body
    expect_problem(get(c, server, "/auth/echo?key=" + k), 401, "no key")
    expect_problem(get(c, server, "/auth/echo?key=" + k, headers={"X-API-Key": "gw_" + "x" * 43}),
                   401, "unknown key")
    # the key never reaches Redis in plaintext (only its hash names things)
    for name in c.redis.command("KEYS", "*"):
        check(a not in name and b not in name, "a key in a Redis name: %r" % name)


@both
def head_from_get(c, server):
    k = tag()
    r = get(c, server, "/c/echo?key=" + k)
    r2 = h.request(c.servers[server], "HEAD", "/c/echo?key=" + k)
    expect_status(r2, 200)
    eq(xc(r2)[0], "HIT", "HEAD after GET")
    eq(r2.body, b"", "HEAD body")
    eq(r2.headers.get("Content-Length"), str(len(r.body)), "HEAD Content-Length")
    # HEAD first never fills the entry (no body to store)
    k = tag()
    r = h.request(c.servers[server], "HEAD", "/c/echo?key=" + k)
    eq(xc(r)[0], "MISS", "HEAD first")
    eq(xc(get(c, server, "/c/echo?key=" + k))[0], "MISS", "GET after a HEAD miss")
    eq(xc(get(c, server, "/c/echo?key=" + k))[0], "HIT", "GET again")


@both
def no_cache_refreshes(c, server):
    k = tag()
    s1 = get(c, server, "/c/echo?key=" + k).json()["seq"]
    eq(get(c, server, "/c/echo?key=" + k).json()["seq"], s1, "a hit")
    r = get(c, server, "/c/echo?key=" + k, headers={"Cache-Control": "no-cache"})
    eq(xc(r), ("MISS", "apigw; fwd=request; stored"), "no-cache request")
    s2 = r.json()["seq"]
    check(s2 != s1, "no-cache was answered from the cache")
    r = get(c, server, "/c/echo?key=" + k)
    eq((xc(r)[0], r.json()["seq"]), ("HIT", s2), "the refreshed entry")
    r = get(c, server, "/c/echo?key=" + k, headers={"Cache-Control": "no-store"})
    eq(xc(r), ("BYPASS", "apigw; fwd=bypass"), "no-store request")
    eq(calls(c, k), 3, "backend calls")


@both
def ttl_and_max_age(c, server):
    # lives of 2 s: a loaded machine must not turn the in-life check into
    # a miss
    for path in ("/short/echo?x=1", "/c/hdr?h=Cache-Control:public,max-age%3D2"):
        k = tag()
        get(c, server, path + "&key=" + k)
        eq(xc(get(c, server, path + "&key=" + k))[0], "HIT", "%s within its life" % path)
        time.sleep(2.6)
        eq(xc(get(c, server, path + "&key=" + k))[0], "MISS", "%s after its life" % path)
        eq(calls(c, k), 2, "backend calls for %s" % path)


@both
def body_byte_exact(c, server):
    k = tag()
    r1 = get(c, server, "/c/blob?size=65536&key=" + k)
    eq(len(r1.body), 65536, "first body")
    r2 = get(c, server, "/c/blob?size=65536&key=" + k)
    eq(xc(r2)[0], "HIT", "64 KiB second request")
    check(r2.body == r1.body, "64 KiB body from the cache differs")
    eq(calls(c, k), 1, "backend calls")


@both
def vary(c, server):
    k = tag()
    path = "/c/hdr?h=Vary:Accept-Language&key=" + k
    seen = {}
    for lang, want in (("en", "MISS"), ("en", "HIT"), ("fr", "MISS"), ("fr", "HIT"),
                       ("en", "HIT"), (None, "MISS"), (None, "HIT")):
        hd = {"Accept-Language": lang} if lang else {}
        r = get(c, server, path, headers=hd)
        eq(xc(r)[0], want, "Accept-Language %s" % lang)
        seq = r.json()["seq"]
        if want == "HIT":
            eq(seq, seen[lang], "the %s variant's own body" % lang)
        seen[lang] = seq
    eq(calls(c, k), 3, "backend calls: one per variant")


@test
def stampede_bound(c):
    # 16 cold requests at once through 4 processes, a 300 ms backend: one
    # fetches, the others wait for its entry
    for _ in range(2):
        k = tag()
        out = []

        def one():
            r = get(c, "lighttpd", "/slowc/slow?ms=300&key=" + k)
            out.append((r.status, r.headers.get("X-Cache")))

        ts = [threading.Thread(target=one) for _ in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        eq(len(out), 16, "answers")
        check(all(s == 200 for s, _ in out), "statuses %r" % out)
        n = calls(c, k)
        check(n <= 2, "backend reached %d times by 16 cold requests" % n)
        check(sum(1 for _, x in out if x == "HIT") >= 14, "hits %r" % out)


@both
def stale_if_error(c, server):
    # a failure status: the stale entry stands in
    k = tag()
    url = "/stale/moded?key=" + k
    s1 = get(c, server, url).json()["seq"]
    h.request(c.b.port, "GET", "/_mode?key=%s&status=503" % k)
    time.sleep(1.5)
    r = get(c, server, url)
    expect_status(r, 200, "stale entry for a 503")
    eq(xc(r), ("HIT", "apigw; hit; detail=stale"), "stale hit")
    eq(r.json()["seq"], s1, "the stale body")
    check(int(r.headers["Age"]) >= 1, "stale Age %r" % r.headers.get("Age"))
    h.request(c.b.port, "GET", "/_mode?key=%s&status=200" % k)
    r = get(c, server, url)
    eq(xc(r)[0], "MISS", "back to the backend once it answers")
    check(r.json()["seq"] != s1, "a fresh body")
    # off (cache_stale_if_error_s = 0): the backend's 503 passes through
    k = tag()
    url = "/nostale/moded?key=" + k
    get(c, server, url)
    h.request(c.b.port, "GET", "/_mode?key=%s&status=503" % k)
    time.sleep(1.5)
    r = get(c, server, url)
    eq(r.status, 503, "no stale entry without cache_stale_if_error_s")


@test
def stale_if_error_connect_failure(c):
    k = tag()
    for server in ("lighttpd", "apache"):
        eq(get(c, server, "/gone/echo?key=" + k).status, 200, "fill via %s" % server)
    c.b2.stop()
    time.sleep(1.5)
    for server in ("lighttpd", "apache"):
        r = get(c, server, "/gone/echo?key=" + k)
        expect_status(r, 200, "stale entry with the backend down via %s" % server)
        eq(xc(r)[1], "apigw; hit; detail=stale", "Cache-Status via %s" % server)


def reads_during(redis, fn):
    """Redis reads while fn() ran (the deferred store included), and how
    many more the 4 processes' metric flushes (one write each, at most once
    a second, on no request's path) may add."""
    got, took = h.redis_reads_during(redis, fn, settle=0.2)
    return got, 4 * (int(took) + 2)

def log_lines(c, request_id):
    import json
    with open(c.log) as f:
        return [d for d in map(json.loads, f) if d["request_id"] == request_id]


@test
def one_round_trip(c):
    k = tag()
    rid = []

    def one(hdr):
        r = get(c, "lighttpd", "/c/echo?key=" + k, headers={"X-Request-ID": hdr})
        rid.append(r)

    # a miss: the lookup rides with the rate-limit script (one round trip);
    # the store follows as a write nobody waits for (one more read at Redis)
    miss, flushes = reads_during(c.redis, lambda: one("rt-miss-" + k))
    eq(xc(rid[-1])[0], "MISS", "first request")
    check(2 <= miss <= 2 + flushes, "Redis reads for a miss (one round trip + the deferred "
          "store): %d (+ up to %d metric flushes)" % (miss, flushes))
    hit, flushes = reads_during(c.redis, lambda: one("rt-hit-" + k))
    eq(xc(rid[-1])[0], "HIT", "second request")
    check(1 <= hit <= 1 + flushes, "Redis reads for a hit: %d (+ up to %d metric flushes)"
          % (hit, flushes))
    time.sleep(0.3)
    for name in ("rt-miss-" + k, "rt-hit-" + k):
        lines = log_lines(c, name)
        eq(len(lines), 1, "access log lines for %s" % name)
        eq(lines[0]["redis_rt"], 1, "round trips the request waited for (%s)" % name)


@test
def process_copies(c):
    # Hits a process found fresh in Redis are answered from its copy for
    # up to a second: with a leased rate limit, most hits then cost no
    # Redis round trip.  Every answer is still a true hit.
    k = tag()
    path = "/lc/echo?key=" + k
    first = get(c, "lighttpd", path)
    eq(xc(first)[0], "MISS", "first request")
    time.sleep(0.2)  # the deferred store
    rs = []

    def hits():
        for _ in range(60):
            rs.append(get(c, "lighttpd", path, headers={"X-Request-ID": "lc-%s-%d" % (
                k, len(rs))}))

    t0 = time.monotonic()
    reads, flushes = reads_during(c.redis, hits)
    took = time.monotonic() - t0
    for r in rs:
        expect_status(r, 200)
        eq(xc(r), ("HIT", "apigw; hit"), "a repeat")
        eq(r.body, first.body, "body of a hit")
        age = int(r.headers.get("Age", "-1"))
        check(0 <= age <= int(took) + 1, "Age %d after %.1f s" % (age, took))
    eq(calls(c, k), 1, "backend calls for 1 miss and 60 hits")
    # each of the 4 processes asks Redis once for the entry (and its
    # lease) and once a second again; 60 hits otherwise need none
    bound = 4 * 2 * (int(took) + 1)
    check(reads <= bound + flushes,
          "Redis reads for 60 hits: %d (bound %d + %d metric flushes)"
          % (reads, bound, flushes))
    time.sleep(0.3)
    zero = [d for i in range(60) for d in log_lines(c, "lc-%s-%d" % (k, i))
            if d["redis_rt"] == 0]
    check(len(zero) >= 30, "hits with no Redis round trip: %d of 60" % len(zero))
    print("# cache hits answered by a process copy, no round trip: %d of 60; Redis reads %d"
             % (len(zero), reads), flush=True)
    # a purge reaches the copies within a second
    purge(c, "purge", "/lc/echo")
    time.sleep(COPY_LIFE_S)
    seen = [xc(get(c, "lighttpd", path))[0] for _ in range(8)]
    eq(seen[0], "MISS", "first request after the purge (then %r)" % seen)
    eq(calls(c, k), 2, "backend calls after the purge")


@test
def process_copies_keep_variants_apart(c):
    # a process's copies of two variants of one resource: every answer is
    # the variant of its own request, copy or not
    k = tag()
    path = "/lc/hdr?h=Vary:Accept-Language&key=" + k
    seen = {}
    for lang in ("en", "fr", None):
        hd = {"Accept-Language": lang} if lang else {}
        r = get(c, "lighttpd", path, headers=hd)
        eq(xc(r)[0], "MISS", "first %s" % lang)
        seen[lang] = r.json()["seq"]
    time.sleep(0.2)  # the deferred stores
    for i in range(60):
        lang = ("en", "fr", None)[i % 3]
        hd = {"Accept-Language": lang} if lang else {}
        r = get(c, "lighttpd", path, headers=hd)
        eq(xc(r)[0], "HIT", "repeat %d (%s)" % (i, lang))
        eq(r.json()["seq"], seen[lang], "repeat %d: the %s variant's own body" % (i, lang))
    eq(calls(c, k), 3, "backend calls: one per variant")


def purge(c, *args):
    tool = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-cache")
    p = subprocess.run([tool, "--config", c.config] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    eq(p.returncode, 0, "apigw-cache %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout.decode()


@test
def purge_across_two_stacks(c):
    # entries filled through lighttpd and Apache (one Redis): a purge by
    # the CLI is seen by every process of both within a second (a
    # process's copy of an entry answers for at most that long)
    k = tag()
    paths = ["/c/echo?key=%s&q=%d" % (k, i) for i in range(3)]
    for server in ("lighttpd", "apache"):
        for p in paths:
            get(c, server, p)
            eq(xc(get(c, server, p))[0], "HIT", "%s %s filled" % (server, p))
    # one query only
    out = purge(c, "purge", paths[0])
    check("purged" in out, "purge output %r" % out)
    time.sleep(COPY_LIFE_S)
    for server in ("lighttpd", "apache"):
        eq(xc(get(c, server, paths[0]))[0], "MISS", "%s: the purged query" % server)
        eq(xc(get(c, server, paths[1]))[0], "HIT", "%s: another query kept" % server)
    # the whole path: every query and variant
    purge(c, "purge", "/c/echo")
    time.sleep(COPY_LIFE_S)
    for server in ("lighttpd", "apache"):
        for p in paths[1:]:
            eq(xc(get(c, server, p))[0], "MISS", "%s %s after purging the path" % (server, p))
    # the route
    for server in ("lighttpd", "apache"):
        for p in paths:
            get(c, server, p)
    purge(c, "purge", "--route", "/c")
    time.sleep(COPY_LIFE_S)
    for server in ("lighttpd", "apache"):
        for p in paths:
            eq(xc(get(c, server, p))[0], "MISS", "%s %s after purging the route" % (server, p))
    out = purge(c, "stats")
    check("entries" in out, "stats output %r" % out)


@test
def hostile_inputs(c):
    # a 1 MB header in a would-be cached response: libcurl refuses header
    # fields over 100 KB, so it is a bad backend response (502), not stored
    k = tag()
    for _ in range(2):
        r = get(c, "lighttpd", "/c/bighdr?size=1048576&key=" + k)
        expect_problem(r, 502, "a 1 MB response header")
    eq(calls(c, k), 2, "backend calls for the 1 MB header")
    # a 60 KB field is kept and served whole from the cache
    k = tag()
    r1 = get(c, "lighttpd", "/c/bighdr?size=60000&key=" + k)
    r2 = get(c, "lighttpd", "/c/bighdr?size=60000&key=" + k)
    eq(xc(r2)[0], "HIT", "60 KB field, second request")
    eq(r2.headers.get("X-Big"), "b" * 60000, "the 60 KB field from the cache")
    # a 64 KB query string: the web server refuses it itself
    r = get(c, "lighttpd", "/c/echo?q=" + "a" * 65536)
    check(r.status in (400, 414, 431), "64 KB query: %d" % r.status)
    # a Vary header with many distinct values: each is its own entry
    k = tag()
    for i in range(200):
        r = get(c, "lighttpd", "/c/hdr?h=Vary:X-V&key=" + k, headers={"X-V": "v%d" % i})
        eq(xc(r)[0], "MISS", "distinct Vary value %d" % i)
    time.sleep(0.3)
    # the path's index lists one member per stored variant of this query
    qh = hashlib.sha1(("?h=Vary:X-V&key=" + k).encode()).hexdigest()
    rid = hashlib.sha256(b"/c").hexdigest()[:16]
    path64 = hashlib.sha256((rid + "\n/c/hdr").encode()).hexdigest()
    members = c.redis.command("ZRANGE", "apigw:c:p:" + path64, "0", "-1")
    eq(sum(1 for m in members if m.endswith(" " + qh)), 200, "variants stored for 200 values")
    eq(xc(get(c, "lighttpd", "/c/hdr?h=Vary:X-V&key=" + k, headers={"X-V": "v7"}))[0], "HIT",
       "one of the variants")
    expect_status(get(c, "lighttpd", "/plain/echo"), 200, "the gateway after all that")


@test
def live_count_and_layout(c):
    k = tag()
    get(c, "lighttpd", "/c/echo?key=" + k)
    time.sleep(0.2)
    live = c.redis.command("ZCARD", "apigw:c:live")
    check(live >= 1, "live entries %r" % live)
    names = c.redis.command("KEYS", "apigw:*")
    for n in names:
        check(re.match(r"^apigw:(\{[a-z]:[0-9a-f]+\}(:[a-z0-9:]+)?|c:live|c:[pr]:[0-9a-f]+|keys|keyid:[0-9a-f]+|m:[a-z]+(:[0-9]+)?)$", n),
              "unexpected Redis name %r" % n)
        check(k not in n, "client input in a Redis name: %r" % n)


if __name__ == "__main__":
    h.main(setup)
