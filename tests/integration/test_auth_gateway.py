#!/usr/bin/env python3
"""Gateway-level API-key authentication
through a real lighttpd (bin-path, max-procs 4) and a real Apache with
mod_fcgid, each with a real redis-server; keys made with apigw-keys.

Main stacks: one redis, one stub backend, lighttpd (JSON access log) and
Apache (combined access log) on the same routes and the same Redis, with
api_keys.cache_ttl_s = 1.  Every key-level test runs once per server
(lighttpd_* and apache_*).  An auxiliary pair of stacks (created on first
use) has its own redis and api_keys.header = "X-Gateway-Key": it covers the
custom header and, last, Redis going down.

Rate limits use sliding_window (the default algorithm here), so a minute
boundary in the middle of a test cannot reset a counter."""

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, echo_header, test  # noqa: E402

CACHE_TTL = 1                       # api_keys.cache_ttl_s in every config here
KEY_RE = re.compile(r"^gw_[A-Za-z0-9_-]{43}$")
ID_RE = re.compile(r"^[0-9a-f]{16}$")
QUOTA_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded"
PROCS = 4                           # apigw processes per server
SPREAD = 8                          # requests that should reach every process


class Ctx:
    pass


class Stack:
    """One web server in front of the gateway."""

    def __init__(self, name, server, config, access_log=None, log_format=None,
                 header="X-API-Key"):
        self.name = name
        self.server = server
        self.port = server.port
        self.config = config
        self.access_log = access_log
        self.log_format = log_format
        self.header = header
        self.used_ids = []          # key ids that got a 200 through this stack


# ---------------------------------------------------------------------------
# set-up

def routes_for(backend_url):
    return [
        {"prefix": "/auth", "backend": backend_url, "require_auth": True},
        {"prefix": "/auth2", "backend": backend_url, "require_auth": True},
        {"prefix": "/limited", "backend": backend_url, "require_auth": True,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_minute": 3}},
        {"prefix": "/open", "backend": backend_url},
    ]


def gateway_config(redis, backend, access_log="off", fmt="combined", header="X-API-Key"):
    return h.base_config(
        redis, routes_for(backend.url),
        rate_limit={"algorithm": "sliding_window", "requests_per_minute": 1000000},
        api_keys={"header": header, "cache_ttl_s": CACHE_TTL},
        log={"access": access_log, "format": fmt})


def www_data_file(path):
    """An empty file the gateway can append to when Apache runs it as www-data."""
    open(path, "w").close()
    h.chown(path, "www-data")
    return path


def start_apache(td, config, name):
    ap = h.Apache(td, config, max_procs=PROCS, name=name)
    # mod_fcgid spawns lazily: the first request may take a moment
    h.wait_for(lambda: h.request(ap.port, "GET", "/_health", timeout=10).status in (200, 503),
               timeout=15, interval=0.3,
               what="the first request through %s (%s)" % (name, ap.log_tail()))
    return ap


def setup(td):
    c = Ctx()
    c.td = td
    c.keys_bin = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    if not os.access(c.keys_bin, os.X_OK):
        raise h.HarnessError("apigw-keys not found next to apigw: %s" % c.keys_bin)
    c.redis = h.start_redis(td)
    c.backend = h.start_backend(td, "b1")
    c.secrets = []                  # every key apigw-keys created in c.redis
    c.sent = set()                  # every key-like secret sent to a gateway
    c.aux = None

    lt_log = td.join("access-lighttpd.json")
    c.config = h.write_gateway_config(
        td, gateway_config(c.redis, c.backend, lt_log, "json"), "apigw-lighttpd.conf")
    lt = h.Lighttpd(td, config=c.config, max_procs=PROCS)

    ap_log = www_data_file(td.join("access-apache.log"))
    ap_config = h.write_gateway_config(
        td, gateway_config(c.redis, c.backend, ap_log, "combined"), "apigw-apache.conf")
    ap = start_apache(td, ap_config, "apache")

    c.stacks = {
        "lighttpd": Stack("lighttpd", lt, c.config, lt_log, "json"),
        "apache": Stack("apache", ap, ap_config, ap_log, "combined"),
    }
    return c


def aux(c):
    """Stacks with their own redis and api_keys.header = "X-Gateway-Key",
    started on first use; one never-used key per stack is created at once
    for the Redis-down tests."""
    if c.aux is None:
        a = Ctx()
        a.redis = h.start_redis(c.td, "redis-aux")
        a.redis_stopped = False
        a.config = h.write_gateway_config(
            c.td, gateway_config(a.redis, c.backend, header="X-Gateway-Key"), "apigw-aux.conf")
        lt = h.Lighttpd(c.td, config=a.config, max_procs=PROCS, name="lighttpd-aux")
        ap = start_apache(c.td, a.config, "apache-aux")
        a.stacks = {
            "lighttpd": Stack("lighttpd-aux", lt, a.config, header="X-Gateway-Key"),
            "apache": Stack("apache-aux", ap, a.config, header="X-Gateway-Key"),
        }
        a.secrets = []
        a.fresh = {}
        for n in a.stacks:
            a.fresh[n] = create_key(c, "fresh-" + n, config=a.config, record=a.secrets)
        c.aux = a
    return c.aux


# ---------------------------------------------------------------------------
# helpers

def keys_cli(c, *args, config=None, ok=True):
    p = subprocess.run([c.keys_bin, "--config", config or c.config] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=15)
    if ok and p.returncode != 0:
        raise AssertionError("apigw-keys %s: exit %d: %s" % (
            " ".join(map(str, args)), p.returncode, p.stderr.decode(errors="replace").strip()))
    return p


def list_keys(c, config=None):
    return json.loads(keys_cli(c, "list", "--json", config=config).stdout)


def key_record(c, name, config=None):
    recs = [r for r in list_keys(c, config) if r["name"] == name]
    eq(len(recs), 1, "keys named %r in `apigw-keys list --json`" % name)
    return recs[0]


def create_key(c, name, *flags, config=None, record=None):
    """Creates a key; returns (key, id), the id as `list --json` shows it."""
    p = keys_cli(c, "create", name, *flags, config=config)
    key = p.stdout.decode().strip()
    check(KEY_RE.match(key), "apigw-keys create printed %r, not a key" % key)
    (c.secrets if record is None else record).append(key)
    rec = key_record(c, name, config)
    check(ID_RE.match(rec["id"]), "key id %r" % rec["id"])
    return key, rec["id"]


_seq = [0]


def tag(what):
    """A unique query value: the backend counts requests carrying key=<tag>."""
    _seq[0] += 1
    return "%s-%d-%s" % (what, _seq[0], secrets.token_hex(3))


def get(c, s, path, key=None, headers=None, header=None):
    items = list(headers or [])
    if key is not None:
        items.append((header or s.header, key))
        if len(key) >= 20:
            c.sent.add(key)
    return h.request(s.port, "GET", path, headers=items)


def expect_401(r, header, what):
    doc = expect_problem(r, 401, what)
    eq(r.headers.get_all("WWW-Authenticate"), ['ApiKey header="%s"' % header],
       "%s: WWW-Authenticate" % what)
    return doc


def expect_429(r, policies, what):
    doc = expect_problem(r, 429, what)
    eq(doc.get("type"), QUOTA_TYPE, "%s: problem type" % what)
    eq(doc.get("violated-policies"), policies, "%s: violated-policies" % what)
    ra = r.headers.get("Retry-After")
    check(ra is not None and ra.isdigit() and int(ra) >= 1, "%s: Retry-After %r" % (what, ra))
    return doc


def random_key():
    """Well-formed (gw_ + 43 base64url characters) but never created."""
    raw = secrets.token_urlsafe(32)
    check(len(raw) == 43, "token_urlsafe(32) length")
    return "gw_" + raw


def poll(fn, timeout, interval=0.1):
    """Calls fn() until it returns a true value; returns (value, seconds)
    or raises AssertionError after timeout seconds."""
    t0 = time.monotonic()
    last = None
    while True:
        last = fn()
        if last and last[0]:
            return last[1], time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("not within %.1fs; last: %r" % (timeout, last[1] if last else None))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# the tests, each run through both servers

def t_missing_key(c, s):
    k = tag("missing")
    expect_401(get(c, s, "/auth/x?key=" + k), s.header, "no key header")
    expect_401(get(c, s, "/auth/x?key=" + k, key=""), s.header, "empty key header")
    # another route with require_auth, and a path below the prefix
    expect_401(get(c, s, "/auth2/a/b?key=" + k), s.header, "no key header on /auth2")
    eq(c.backend.calls(k), 0, "backend calls for requests without a key")


def t_unknown_key(c, s):
    k = tag("unknown")
    for _ in range(3):
        expect_401(get(c, s, "/auth/x?key=" + k, key=random_key()), s.header,
                   "well-formed unknown key")
    eq(c.backend.calls(k), 0, "backend calls for unknown keys")


def t_malformed_key(c, s):
    good, _ = create_key(c, "malformed-base-" + s.name)
    k = tag("malformed")
    bad = [
        "gw_short",
        "not-a-key",
        good[:-1],                          # 42 characters after gw_
        good + "A",                         # 44 characters after gw_
        "xx_" + good[3:],                   # wrong prefix
        "GW_" + good[3:],
        good[3:],                           # no prefix at all
        good[:-1] + "!",                    # a character outside base64url
        good[:-1] + "=",
        "Bearer " + good,
        good + " x",
    ]
    for v in bad:
        expect_401(get(c, s, "/auth/x?key=" + k, key=v), s.header, "malformed key %r" % v)
    eq(c.backend.calls(k), 0, "backend calls for malformed keys")
    # the same valid key, sent right, works
    expect_status(get(c, s, "/auth/x", key=good), 200, "the valid key after the malformed ones")


def t_duplicate_key_header(c, s):
    good, _ = create_key(c, "dup-" + s.name)
    other, _ = create_key(c, "dup-other-" + s.name)
    c.sent.update((good, other))

    def raw(path, values):
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1"]
        lines += ["%s: %s" % (s.header, v) for v in values]
        lines += ["Connection: close", "", ""]
        return h.raw_request(s.port, "\r\n".join(lines))

    k = tag("dup")
    # sanity: one header line through the raw client works
    expect_status(raw("/auth/rawclient", [good]), 200, "one key header line (raw request)")
    # the web server may fold repeated fields into "a, b": still 401
    expect_401(raw("/auth/dup?key=" + k, [good, good]), s.header, "the same valid key twice")
    expect_401(raw("/auth/dup?key=" + k, [good, other]), s.header, "two valid keys")
    expect_401(raw("/auth/dup?key=" + k, [good, random_key()]), s.header,
               "a valid and an unknown key")
    # (a second, empty line is not asserted: lighttpd drops empty header
    # values before the gateway can see them, so only one key arrives)
    lines = ["GET /auth/dup?key=%s HTTP/1.1" % k, "Host: 127.0.0.1",
             "%s: %s" % (s.header, good), "%s: %s" % (s.header.lower(), good),
             "Connection: close", "", ""]
    expect_401(h.raw_request(s.port, "\r\n".join(lines)), s.header,
               "the key header twice, in different letter case")
    # one line holding "valid, valid" is not a key either
    expect_401(raw("/auth/dup?key=" + k, ["%s, %s" % (good, good)]), s.header,
               "one header line 'key, key'")
    eq(c.backend.calls(k), 0, "backend calls for repeated key headers")


def t_valid_key_forwarded_identity(c, s):
    name = "consumer %s app" % s.name
    key, kid = create_key(c, name)
    r = get(c, s, "/auth/users/7?q=1", key=key,
            headers=[("X-Consumer-ID", "spoofed-id"), ("X-Consumer-Name", "spoofed name"),
                     ("x-consumer-id", "spoofed-2"), ("X-Consumer-Custom-ID", "spoofed-3")])
    expect_status(r, 200, "a valid key")
    doc = r.json()
    eq(doc["path"], "/auth/users/7", "forwarded path")
    eq(echo_header(doc, s.header), None, "%s header seen by the backend" % s.header)
    eq(echo_header(doc, "X-Consumer-ID"), kid, "X-Consumer-ID seen by the backend")
    eq(echo_header(doc, "X-Consumer-Name"), name, "X-Consumer-Name seen by the backend")
    eq(echo_header(doc, "X-Consumer-Custom-ID"), None, "spoofed X-Consumer-Custom-ID")
    body = json.dumps(doc)
    check(key not in body and key[3:] not in body, "the key reached the backend: %s" % body)
    check("spoofed" not in body, "a spoofed consumer header reached the backend: %s" % body)
    s.used_ids.append(kid)
    # every process (and a second route) gives the same identity
    for i in range(SPREAD):
        r = get(c, s, "/auth2/x" if i % 2 else "/auth/x", key=key,
                headers=[("X-Consumer-ID", "spoofed-id")])
        expect_status(r, 200, "a valid key, request %d" % i)
        d = r.json()
        eq(echo_header(d, "X-Consumer-ID"), kid, "X-Consumer-ID, request %d" % i)
        eq(echo_header(d, "X-Consumer-Name"), name, "X-Consumer-Name, request %d" % i)
        eq(echo_header(d, s.header), None, "key header, request %d" % i)


def t_open_route_strips_key_and_consumer(c, s):
    key, _ = create_key(c, "open-" + s.name)
    r = get(c, s, "/open/x", key=key,
            headers=[("X-Consumer-ID", "spoofed-id"), ("X-Consumer-Name", "spoofed name")])
    expect_status(r, 200, "a route without require_auth")
    doc = r.json()
    eq(echo_header(doc, s.header), None, "key header forwarded on an open route")
    eq(echo_header(doc, "X-Consumer-ID"), None, "X-Consumer-ID on an open route")
    eq(echo_header(doc, "X-Consumer-Name"), None, "X-Consumer-Name on an open route")


def t_revoked_key(c, s):
    key, kid = create_key(c, "revoke-" + s.name)
    for i in range(SPREAD):             # warm every process's key cache
        expect_status(get(c, s, "/auth/x", key=key), 200, "key before revocation, request %d" % i)
    keys_cli(c, "revoke", kid)
    t0 = time.monotonic()
    eq(key_record(c, "revoke-" + s.name)["revoked"], True, "revoked flag in list --json")

    def rejected():
        r = get(c, s, "/auth/x", key=key)
        check(r.status in (200, 401), "status %d while revocation propagates" % r.status)
        return r.status == 401, r
    r, took = poll(rejected, CACHE_TTL + 2)
    expect_401(r, s.header, "revoked key")
    # once cache_ttl_s has passed, no process may still accept it
    time.sleep(max(0, t0 + CACHE_TTL + 0.5 - time.monotonic()))
    k = tag("revoked")
    for i in range(SPREAD):
        expect_401(get(c, s, "/auth/x?key=" + k, key=key), s.header,
                   "revoked key %.1fs after revoke, request %d" % (time.monotonic() - t0, i))
    eq(c.backend.calls(k), 0, "backend calls with a revoked key")


def t_expired_key(c, s):
    name = "expire-" + s.name
    key, _ = create_key(c, name, "--expires-in", "2s")
    rec = key_record(c, name)
    check(rec["expires"] > 0, "expires in list --json: %r" % rec)
    check(abs(rec["expires"] - (rec["created"] + 2)) <= 1, "expires %r vs created %r" % (
        rec["expires"], rec["created"]))
    expect_status(get(c, s, "/auth/x", key=key), 200, "key before it expires")
    expect_status(get(c, s, "/auth/x", key=key), 200, "key before it expires (2)")
    time.sleep(max(0, rec["expires"] - time.time()))

    def rejected():
        r = get(c, s, "/auth/x", key=key)
        check(r.status in (200, 401), "status %d while the key expires" % r.status)
        return r.status == 401, r
    r, _ = poll(rejected, CACHE_TTL + 2)
    expect_401(r, s.header, "expired key")
    time.sleep(max(0, rec["expires"] + CACHE_TTL + 0.3 - time.time()))
    k = tag("expired")
    for i in range(SPREAD):
        expect_401(get(c, s, "/auth/x?key=" + k, key=key), s.header, "expired key, request %d" % i)
    eq(c.backend.calls(k), 0, "backend calls with an expired key")


def t_key_limit(c, s):
    key, _ = create_key(c, "limit2-" + s.name, "--requests-per-minute", "2")
    k = tag("keylimit")
    for i in range(2):
        r = get(c, s, "/auth/x?key=" + k, key=key)
        expect_status(r, 200, "request %d of 2/min" % (i + 1))
    expect_429(get(c, s, "/auth/x?key=" + k, key=key), ["key-minute"], "3rd request of 2/min")
    expect_429(get(c, s, "/auth/x?key=" + k, key=key), ["key-minute"], "4th request of 2/min")
    eq(c.backend.calls(k), 2, "backend calls for a 2/min key")


def t_key_limit_across_routes(c, s):
    key, _ = create_key(c, "limit2-routes-" + s.name, "--requests-per-minute", "2")
    k = tag("keyroutes")
    expect_status(get(c, s, "/auth/a?key=" + k, key=key), 200, "1st request on route A")
    expect_status(get(c, s, "/auth/a?key=" + k, key=key), 200, "2nd request on route A")
    expect_429(get(c, s, "/auth2/b?key=" + k, key=key), ["key-minute"],
               "3rd request (on route B) of a 2/min key")
    eq(c.backend.calls(k), 2, "backend calls for a 2/min key across routes")


def t_route_limit_without_key_policy(c, s):
    key, _ = create_key(c, "route3-" + s.name)
    k = tag("route3")
    for i in range(3):
        expect_status(get(c, s, "/limited/x?key=" + k, key=key), 200,
                      "request %d on a 3/min route" % (i + 1))
    expect_429(get(c, s, "/limited/x?key=" + k, key=key), ["route-minute"],
               "4th request on a 3/min route (key without a policy)")
    eq(c.backend.calls(k), 3, "backend calls on a 3/min route")
    # the route limit is per client (= key): another key still gets through
    other, _ = create_key(c, "route3-other-" + s.name)
    expect_status(get(c, s, "/limited/x", key=other), 200, "another key on the same route")


def t_route_limit_with_key_policy(c, s):
    key, _ = create_key(c, "route3-key10-" + s.name, "--requests-per-minute", "10")
    k = tag("route3key10")
    for i in range(3):
        expect_status(get(c, s, "/limited/x?key=" + k, key=key), 200,
                      "request %d on a 3/min route with a 10/min key" % (i + 1))
    expect_429(get(c, s, "/limited/x?key=" + k, key=key), ["route-minute"],
               "4th request on a 3/min route with a 10/min key")
    # the key's own policy still has room elsewhere
    expect_status(get(c, s, "/auth/x", key=key), 200, "the 10/min key on an unlimited route")
    eq(c.backend.calls(k), 3, "backend calls on a 3/min route with a 10/min key")


def t_update_policy(c, s):
    name = "update-" + s.name
    key, kid = create_key(c, name, "--requests-per-minute", "2")
    for i in range(2):
        expect_status(get(c, s, "/auth/x", key=key), 200, "request %d of 2/min" % (i + 1))
    for i in range(SPREAD // 2):        # cache the 2/min record in several processes
        expect_429(get(c, s, "/auth/x", key=key), ["key-minute"], "over 2/min, request %d" % i)

    # raise it: admitted again within cache_ttl_s
    keys_cli(c, "update", kid, "--requests-per-minute", "50")
    eq((key_record(c, name)["policy"] or {}).get("requests_per_minute"), 50,
       "policy after update in list --json")

    def admitted():
        r = get(c, s, "/auth/x", key=key)
        check(r.status in (200, 429), "status %d after raising the limit" % r.status)
        return r.status == 200, r
    poll(admitted, CACHE_TTL + 2)

    # lower it: rejected within cache_ttl_s, then by every process
    keys_cli(c, "update", kid, "--requests-per-minute", "1")
    t0 = time.monotonic()

    def rejected():
        r = get(c, s, "/auth/x", key=key)
        check(r.status in (200, 429), "status %d after lowering the limit" % r.status)
        return r.status == 429, r
    r, _ = poll(rejected, CACHE_TTL + 2)
    expect_429(r, ["key-minute"], "after lowering the limit to 1/min")
    time.sleep(max(0, t0 + CACHE_TTL + 0.5 - time.monotonic()))
    for i in range(SPREAD):
        expect_429(get(c, s, "/auth/x", key=key), ["key-minute"],
                   "1/min key after cache_ttl_s, request %d" % i)


PER_SERVER = [
    ("missing_key_401", t_missing_key),
    ("unknown_key_401", t_unknown_key),
    ("malformed_key_401", t_malformed_key),
    ("duplicate_key_header_401", t_duplicate_key_header),
    ("valid_key_forwards_consumer_identity", t_valid_key_forwarded_identity),
    ("open_route_strips_key_and_consumer_headers", t_open_route_strips_key_and_consumer),
    ("revoked_key_401_within_cache_ttl", t_revoked_key),
    ("expired_key_401", t_expired_key),
    ("key_limit_429", t_key_limit),
    ("key_limit_counted_across_routes", t_key_limit_across_routes),
    ("route_limit_key_without_policy", t_route_limit_without_key_policy),
    ("route_limit_with_key_policy", t_route_limit_with_key_policy),
    ("update_policy_within_cache_ttl", t_update_policy),
]


def _register(server, name, body):
    def fn(c):
        body(c, c.stacks[server])
    fn.__name__ = "%s_%s" % (server, name)
    fn.__qualname__ = fn.__name__
    test(fn)


for _name, _body in PER_SERVER:
    for _server in ("lighttpd", "apache"):
        _register(_server, _name, _body)


# ---------------------------------------------------------------------------
# secrets at rest and in logs

def _flatten(v):
    if isinstance(v, list):
        for x in v:
            yield from _flatten(x)
    elif v is not None:
        yield str(v)


def redis_dump(redis):
    """[(key name, [strings of its value])] for every key in redis."""
    out, cursor = [], "0"
    while True:
        cursor, names = redis.command("SCAN", cursor, "COUNT", "1000")
        for n in names:
            t = redis.command("TYPE", n)
            if t == "string":
                v = redis.command("GET", n)
            elif t == "hash":
                v = redis.command("HGETALL", n)
            elif t == "set":
                v = redis.command("SMEMBERS", n)
            elif t == "zset":
                v = redis.command("ZRANGE", n, "0", "-1", "WITHSCORES")
            elif t == "list":
                v = redis.command("LRANGE", n, "0", "-1")
            elif t == "stream":
                v = redis.command("XRANGE", n, "-", "+")
            elif t == "none":       # expired between SCAN and TYPE
                continue
            else:
                raise AssertionError("redis key %r of unexpected type %r" % (n, t))
            out.append((n, list(_flatten(v))))
        if cursor == "0":
            return out


@test
def redis_holds_no_plaintext_key(c):
    # keys of its own, used through both servers (earlier tests add more)
    for s in c.stacks.values():
        key, _ = create_key(c, "scan-" + s.name, "--requests-per-minute", "100")
        expect_status(get(c, s, "/auth/scan", key=key), 200, "a valid key before the scan")
        expect_status(get(c, s, "/limited/scan", key=key), 200, "a valid key before the scan")
    dump = redis_dump(c.redis)
    check(dump, "redis is empty")
    blob = "\n".join(n + "\n" + "\n".join(vals) for n, vals in dump)
    for key in c.secrets + sorted(c.sent):
        check(key not in blob, "a plaintext key is in redis: %s..." % key[:8])
        check(key[3:] not in blob, "the secret part of a key is in redis: %s..." % key[:8])
    for key in c.secrets:
        hexd = hashlib.sha256(key.encode()).hexdigest()
        check(hexd in blob.lower(), "the SHA-256 of key %s... is nowhere in redis "
              "(%d keys scanned)" % (key[:8], len(dump)))


def _check_access_log(c, s):
    # a key of its own (so that this test does not depend on earlier ones)
    key, kid = create_key(c, "log-" + s.name)
    expect_status(get(c, s, "/auth/logged", key=key), 200, "a valid key")
    s.used_ids.append(kid)
    expect_401(get(c, s, "/auth/logged", key=random_key()), s.header, "an unknown key")
    h.wait_for(lambda: all(i in h.read_text(s.access_log) for i in s.used_ids), timeout=3,
               what="key ids %r in %s" % (s.used_ids, s.access_log))
    text = h.read_text(s.access_log)
    for key in c.secrets + sorted(c.sent):
        check(key not in text and key[3:] not in text,
              "a key (%s...) is in the %s access log" % (key[:8], s.name))
    lines = [l for l in text.splitlines() if l.strip()]
    check(len(lines) >= 2, "only %d lines in %s" % (len(lines), s.access_log))
    for kid in s.used_ids:
        if s.log_format == "json":
            recs = [json.loads(l) for l in lines]
            mine = [r for r in recs if r.get("key_id") == kid]
            check(any(r.get("status") == 200 for r in mine),
                  "no JSON access log line with key_id %s and status 200" % kid)
            # 401s carry no key id
            check(any(r.get("status") == 401 and r.get("key_id") is None for r in recs),
                  "no 401 line with key_id null")
        else:
            # combined: the key id stands in the "user" field
            check(any(re.match(r"^\S+ - %s \[.*\" 200 " % kid, l) for l in lines),
                  "no combined access log line with user %s and status 200" % kid)


@test
def lighttpd_access_log_json_names_key_id_not_key(c):
    _check_access_log(c, c.stacks["lighttpd"])


@test
def apache_access_log_combined_names_key_id_not_key(c):
    _check_access_log(c, c.stacks["apache"])


# ---------------------------------------------------------------------------
# custom header, then Redis down (aux stacks, own redis)

def t_custom_header(c, s):
    a = aux(c)
    s = a.stacks[s.name]
    name = "custom-" + s.name
    key, kid = create_key(c, name, config=a.config, record=a.secrets)
    r = get(c, s, "/auth/x", key=key, header="X-Gateway-Key")
    expect_status(r, 200, "a valid key in X-Gateway-Key")
    doc = r.json()
    eq(echo_header(doc, "X-Gateway-Key"), None, "X-Gateway-Key seen by the backend")
    eq(echo_header(doc, "X-Consumer-ID"), kid, "X-Consumer-ID with a custom key header")
    eq(echo_header(doc, "X-Consumer-Name"), name, "X-Consumer-Name with a custom key header")
    # X-API-Key is not the key header here: the key is missing
    expect_401(get(c, s, "/auth/x", key=key, header="X-API-Key"), "X-Gateway-Key",
               "valid key sent in X-API-Key when the header is X-Gateway-Key")
    expect_401(get(c, s, "/auth/x"), "X-Gateway-Key", "no key, custom header")
    expect_401(get(c, s, "/auth/x", key=random_key(), header="X-Gateway-Key"),
               "X-Gateway-Key", "unknown key, custom header")
    # a header name matches case-insensitively
    expect_status(get(c, s, "/auth/x", key=key, header="x-gateway-key"), 200,
                  "a valid key in x-gateway-key (lower case)")


def t_redis_down(c, s):
    a = aux(c)
    server = s.name
    s = a.stacks[server]
    if not a.redis_stopped:
        a.redis.stop()
        a.redis_stopped = True
        check(not h.unix_open(a.redis.socket), "redis-aux still answers")
    fresh = a.fresh[server][0]
    for i in range(SPREAD):
        r = get(c, s, "/auth/x", key=fresh, header="X-Gateway-Key")
        check(r.status != 200, "a never-checked key got 200 with Redis down (request %d)" % i)
        expect_problem(r, 503, "a never-checked key with Redis down, request %d" % i)
        r = get(c, s, "/auth/x", key=random_key(), header="X-Gateway-Key")
        check(r.status != 200, "an unknown key got 200 with Redis down")
        expect_problem(r, 503, "an unknown key with Redis down, request %d" % i)
        expect_401(get(c, s, "/auth/x"), "X-Gateway-Key",
                   "no key with Redis down, request %d" % i)
        r = get(c, s, "/auth/x", key="gw_short", header="X-Gateway-Key")
        check(r.status != 200, "a malformed key got 200 with Redis down")


for _server in ("lighttpd", "apache"):
    _register(_server, "custom_key_header", t_custom_header)
for _server in ("lighttpd", "apache"):
    _register(_server, "redis_down_key_not_cached_503", t_redis_down)


if __name__ == "__main__":
    h.main(setup)
