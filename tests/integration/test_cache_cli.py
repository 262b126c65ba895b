#!/usr/bin/env python3
"""Integration test of apigw-cache against a private redis-server.

Each test lays the response cache out by hand, exactly as the gateway
does (the names of src/keyspace.h: entries and their fill locks and Vary
names, c:live, the c:p: path zsets with "<entry> <qh40>" members and the
c:r: route zsets), runs the built apigw-cache, and compares the whole
database with what must remain: every key and every zset member.

Environment: top_builddir (where apigw-cache was built), top_srcdir.
Python 3 standard library only.
"""

import hashlib
import json
import os
import re
import subprocess

import harness as h
from harness import check, eq, test

PREFIX = "cachetest:"
CACHE_BIN = os.path.join(h.TOP_BUILDDIR, "apigw-cache")
FAR = 4102444800000  # 2100-01-01 in Unix ms: never expires during a test

# (route prefix, cache_ttl_s); "/plain" does not cache
ROUTES = [("/api", 60), ("/api/users", 30), ("/plain", 0)]


def sha256(s):
    return hashlib.sha256(s.encode()).hexdigest()


def route_id(prefix):
    return sha256(prefix)[:16]


def path64(rid, path):
    return sha256("%s\n%s" % (rid, path))


def qh40(query):
    return hashlib.sha1(("" if query is None else "?" + query).encode()).hexdigest()


LIVE = PREFIX + "c:live"


class Entry:
    """One cached variant, named as the gateway names it."""

    def __init__(self, route, path, query, var, size, exp=FAR):
        self.route, self.path, self.query = route, path, query
        rid = route_id(route)
        res = sha256("GET\nhost\n%s\n%r" % (path, query))
        v = hashlib.sha1(("variant %d" % var).encode()).hexdigest()
        self.name = "%s{c:%s}:e:%s" % (PREFIX, res, v)
        self.lock = "%s{c:%s}:l:%s" % (PREFIX, res, v)
        self.vary = "%s{c:%s}:v" % (PREFIX, res)
        self.member = "%s %s" % (self.name, qh40(query))
        self.pz = "%sc:p:%s" % (PREFIX, path64(rid, path))
        self.rz = "%sc:r:%s" % (PREFIX, rid)
        self.body = ("%s?%s#%d|" % (path, query, var)) * size
        self.exp = exp


def layout():
    """Two caching routes, several paths, queries with none, empty and
    real query strings, several variants each."""
    spec = [
        ("/api", "/api/items", [(None, 3), ("", 2), ("a=1", 2), ("b=2&a=1", 2)]),
        ("/api", "/api/other", [(None, 2), ("a=1", 1)]),
        ("/api/users", "/api/users/7", [(None, 2), ("x=%41", 2)]),
        ("/api/users", "/api/users", [(None, 1), ("", 1)]),
    ]
    out = []
    for route, path, queries in spec:
        for query, nvar in queries:
            for var in range(nvar):
                out.append(Entry(route, path, query, var, 1 + len(out)))
    return out


# ---- Redis helpers (one connection, pipelined) ----

def pipeline(redis, cmds):
    """Runs cmds on one connection; returns their replies."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(redis.socket)
        s.sendall(b"".join(h.resp_encode(c) for c in cmds))
        f = s.makefile("rb")
        out = []
        for _ in cmds:
            try:
                out.append(h.resp_read(f))
            except h.RedisError as e:
                out.append(e)
        return out
    finally:
        s.close()


def populate(c, entries, extra=()):
    """Empties the database, then stores entries (and extra commands) as
    the gateway would."""
    cmds = [("FLUSHALL",)]
    for e in entries:
        cmds += [("SET", e.name, e.body), ("SET", e.lock, "1"),
                 ("SET", e.vary, "Accept"),
                 ("ZADD", LIVE, e.exp, e.name),
                 ("ZADD", e.pz, e.exp, e.member),
                 ("ZADD", e.rz, e.exp, e.pz)]
    cmds += list(extra)
    for r in pipeline(c.redis, cmds):
        check(not isinstance(r, Exception), "populate: %s" % r)


def snapshot(c):
    """{key: value} for the whole database: a string's value, or the set
    of a zset's members."""
    keys = c.redis.command("KEYS", "*")
    types = pipeline(c.redis, [("TYPE", k) for k in keys])
    cmds = []
    for k, t in zip(keys, types):
        if t == "string":
            cmds.append(("GET", k))
        elif t == "zset":
            cmds.append(("ZRANGE", k, "0", "-1"))
        else:
            raise AssertionError("unexpected %s key %s" % (t, k))
    vals = pipeline(c.redis, cmds)
    return {k: (set(v) if isinstance(v, list) else v) for k, v in zip(keys, vals)}


def expected(entries, kept, dropped_pz=(), dropped_rz=(), extra=None):
    """The database once only the entries in kept remain: locks and Vary
    names always stay; a zset is absent when empty; a path zset named in
    dropped_pz has left its route zset, and a route zset in dropped_rz is
    gone."""
    db = dict(extra or {})
    for e in entries:
        db[e.lock] = "1"
        db[e.vary] = "Accept"
    for e in kept:
        db[e.name] = e.body
        db.setdefault(LIVE, set()).add(e.name)
        db.setdefault(e.pz, set()).add(e.member)
    for e in entries:
        if e.rz not in dropped_rz and e.pz not in dropped_pz:
            db.setdefault(e.rz, set()).add(e.pz)
    return db


def diff(got, want):
    lines = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            lines.append("%s: got %r, want %r" % (k, got.get(k), want.get(k)))
    return "\n".join(lines[:20])


def expect_db(c, want, what):
    got = snapshot(c)
    check(got == want, "%s: database differs:\n%s" % (what, diff(got, want)))


def run(c, *args, config=True, env_config=None):
    """Runs apigw-cache; returns (exit code, stdout, stderr)."""
    argv = [CACHE_BIN]
    if config:
        argv += ["--config", c.conf]
    argv += list(args)
    env = dict(os.environ)
    env.pop("APIGW_CONFIG", None)
    if env_config is not None:
        env["APIGW_CONFIG"] = env_config
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def expect_ok(res, out=None):
    rc, o, err = res
    check(rc == 0 and err == "", "exit %d, stderr %r" % (rc, err))
    if out is not None:
        eq(o, out, "stdout")
    return o


def expect_error(res, code, contains=None):
    """An error: the exit code, no stdout, exactly one stderr line."""
    rc, out, err = res
    check(rc == code, "exit %d, wanted %d (stderr %r)" % (rc, code, err))
    eq(out, "", "stdout")
    lines = err.splitlines()
    check(len(lines) == 1 and err.endswith("\n"), "stderr is not one line: %r" % err)
    check(lines[0].startswith("apigw-cache: "), "bad prefix: %r" % err)
    if contains is not None:
        check(contains in lines[0], "%r not in %r" % (contains, lines[0]))


def setup(td):
    if not os.access(CACHE_BIN, os.X_OK):
        raise h.HarnessError("%s not built" % CACHE_BIN)
    c = type("Ctx", (), {})()
    c.td = td
    c.redis = h.start_redis(td)
    routes = [{"prefix": p, "backend": "http://127.0.0.1:9", "cache_ttl_s": t}
              for p, t in ROUTES]
    cfg = h.base_config(c.redis, routes)
    cfg["redis"]["key_prefix"] = PREFIX
    c.conf = h.write_gateway_config(td, cfg)
    return c


def subset(entries, pred):
    return [e for e in entries if pred(e)]


# ---- the tests, run in order (the last one stops Redis) ----

@test
def help_version(c):
    o = expect_ok(run(c, "--help", config=False))
    check(o.startswith("usage: apigw-cache") and "purge --route PREFIX" in o, o)
    o = expect_ok(run(c, "--version", config=False))
    check(re.match(r"^apigw-cache \S+\n$", o), o)


@test
def purge_path_all(c):
    es = layout()
    populate(c, es)
    # not normalized as given: the gateway's normalization applies
    expect_ok(run(c, "purge", "/api/x/..//./items"), "purged 9 entries\n")
    gone = subset(es, lambda e: e.path == "/api/items")
    eq(len(gone), 9, "entries of /api/items")
    kept = [e for e in es if e not in gone]
    expect_db(c, expected(es, kept, dropped_pz={gone[0].pz}), "purge /api/items")
    # again: nothing left, nothing else touched
    expect_ok(run(c, "purge", "/api/items"), "purged 0 entries\n")
    expect_db(c, expected(es, kept, dropped_pz={gone[0].pz}), "purge /api/items twice")


@test
def purge_path_longest_route(c):
    """/api/users/7 belongs to route /api/users, not /api: its path zset
    is named after that route's id."""
    es = layout()
    populate(c, es)
    expect_ok(run(c, "purge", "/api/users/7"), "purged 4 entries\n")
    kept = subset(es, lambda e: e.path != "/api/users/7")
    pz = subset(es, lambda e: e.path == "/api/users/7")[0].pz
    expect_db(c, expected(es, kept, dropped_pz={pz}), "purge /api/users/7")
    # the route's own prefix as a path
    expect_ok(run(c, "purge", "/api/users"), "purged 2 entries\n")
    kept2 = subset(kept, lambda e: e.path != "/api/users")
    pz2 = subset(es, lambda e: e.path == "/api/users")[0].pz
    expect_db(c, expected(es, kept2, dropped_pz={pz, pz2}), "purge /api/users")


@test
def purge_query(c):
    es = layout()
    populate(c, es)
    expect_ok(run(c, "purge", "/api/items?a=1"), "purged 2 entries\n")
    kept = subset(es, lambda e: not (e.path == "/api/items" and e.query == "a=1"))
    expect_db(c, expected(es, kept), "purge ?a=1")
    # the query is matched as given: reordered, it is another query
    expect_ok(run(c, "purge", "/api/items?a=1&b=2"), "purged 0 entries\n")
    # a percent escape is not decoded
    expect_ok(run(c, "purge", "/api/users/7?x=A"), "purged 0 entries\n")
    expect_db(c, expected(es, kept), "no-op purges")
    expect_ok(run(c, "purge", "/api/users/7?x=%41"), "purged 2 entries\n")
    kept = subset(kept, lambda e: not (e.path == "/api/users/7" and e.query == "x=%41"))
    expect_db(c, expected(es, kept), "purge ?x=%41")


@test
def purge_empty_query(c):
    """'/x?' is the empty query string, distinct from no query at all."""
    es = layout()
    populate(c, es)
    expect_ok(run(c, "purge", "/api/items?"), "purged 2 entries\n")
    kept = subset(es, lambda e: not (e.path == "/api/items" and e.query == ""))
    expect_db(c, expected(es, kept), "purge ?")
    # the request without '?' still cached; then emptying a path zset by
    # queries leaves its name in the route zset (harmless, and the
    # gateway may be refilling it)
    expect_ok(run(c, "purge", "/api/users?"), "purged 1 entry\n")
    expect_ok(run(c, "purge", "/api/users/../users"), "purged 1 entry\n")
    kept = subset(kept, lambda e: e.path != "/api/users")
    pz = subset(es, lambda e: e.path == "/api/users")[0].pz
    expect_db(c, expected(es, kept, dropped_pz={pz}), "purge /api/users? then all")


@test
def purge_route(c):
    es = layout()
    populate(c, es)
    expect_ok(run(c, "purge", "--route", "/api"), "purged 12 entries\n")
    kept = subset(es, lambda e: e.route != "/api")
    rz = "%sc:r:%s" % (PREFIX, route_id("/api"))
    expect_db(c, expected(es, kept, dropped_rz={rz}), "purge --route /api")
    expect_ok(run(c, "purge", "--route=/api"), "purged 0 entries\n")
    expect_ok(run(c, "--route", "/api/users", "purge"), "purged 6 entries\n")
    rz2 = "%sc:r:%s" % (PREFIX, route_id("/api/users"))
    expect_db(c, expected(es, [], dropped_rz={rz, rz2}), "purge both routes")


@test
def purge_skips_foreign_members(c):
    """Members that do not name a cache entry or path zset under the
    prefix are taken out of the index, never used as key names; members
    whose entry has already expired are unindexed but not counted."""
    es = layout()
    items = subset(es, lambda e: e.path == "/api/items")
    other = subset(es, lambda e: e.path == "/api/other")
    rz = items[0].rz
    precious = {PREFIX + "precious": "keep", "elsewhere:{c:%s}:e:%s" % ("0" * 64, "0" * 40): "keep",
                PREFIX + "c:p:" + "1" * 64 + "x": "keep"}
    foreign = [PREFIX + "precious " + qh40(None),
               "elsewhere:{c:%s}:e:%s %s" % ("0" * 64, "0" * 40, qh40(None)),
               "garbage", items[0].name]  # no query hash
    extra = [("SET", k, v) for k, v in precious.items()]
    extra += [("ZADD", items[0].pz, FAR, m) for m in foreign]
    extra += [("ZADD", rz, FAR, PREFIX + "precious"),
              ("ZADD", rz, FAR, PREFIX + "c:p:" + "1" * 64 + "x"),
              # an entry that expired: its key is gone, its members stay
              ("DEL", other[0].name)]
    populate(c, es, extra)
    # a query purge never matches them
    expect_ok(run(c, "purge", "/api/items?"), "purged 2 entries\n")
    kept = subset(es, lambda e: not (e.path == "/api/items" and e.query == ""))
    want = expected(es, kept, extra=precious)
    want[items[0].pz] |= set(foreign)
    want[rz] |= {PREFIX + "precious", PREFIX + "c:p:" + "1" * 64 + "x"}
    del want[other[0].name]
    expect_db(c, want, "query purge beside foreign members")
    # purging the path takes them out of the index, deleting only entries
    expect_ok(run(c, "purge", "/api/items"), "purged 7 entries\n")
    # the route purge: one of /api/other's 3 entries had expired
    expect_ok(run(c, "purge", "--route", "/api"), "purged 2 entries\n")
    kept = subset(es, lambda e: e.route != "/api")
    expect_db(c, expected(es, kept, dropped_rz={rz}, extra=precious),
              "route purge beside foreign members")


@test
def many_entries(c):
    """More members than one ZSCAN page (and a hashtable-encoded zset):
    every page is purged, a query purge finds its members across pages."""
    es = [Entry("/api", "/api/big", "q=%d" % i, i % 3, 1) for i in range(1500)]
    es += [Entry("/api", "/api/big", "q=7", 5, 1), Entry("/api", "/api/big", None, 0, 1)]
    populate(c, es)
    o = expect_ok(run(c, "stats", "--json"))
    eq(json.loads(o), {"entries": len(es), "bytes": sum(len(e.body) for e in es)}, "stats")
    expect_ok(run(c, "purge", "/api/big?q=7"), "purged 2 entries\n")
    kept = subset(es, lambda e: e.query != "q=7")
    expect_db(c, expected(es, kept), "query purge in a big zset")
    expect_ok(run(c, "purge", "/api/big"), "purged %d entries\n" % len(kept))
    expect_db(c, expected(es, [], dropped_pz={es[0].pz}), "big purge")


@test
def stats(c):
    es = layout()
    past = [Entry("/api", "/api/old", None, i, 3, exp=1000) for i in range(2)]
    populate(c, es + past)
    nbytes = sum(len(e.body) for e in es)
    expect_ok(run(c, "stats"), "entries: %d\nbytes: %d\n" % (len(es), nbytes))
    # expired members left c:live (the gateway's expiry did the rest)
    eq(set(c.redis.command("ZRANGE", LIVE, "0", "-1")), {e.name for e in es}, "c:live")
    o = expect_ok(run(c, "stats", "--json", config=False, env_config=c.conf))
    eq(json.loads(o), {"entries": len(es), "bytes": nbytes}, "stats --json")
    c.redis.command("FLUSHALL")
    expect_ok(run(c, "stats"), "entries: 0\nbytes: 0\n")


@test
def usage_errors(c):
    es = layout()
    populate(c, es)
    before = snapshot(c)
    expect_error(run(c, config=False), 1, "missing command")
    expect_error(run(c), 1, "missing command")
    expect_error(run(c, "frob"), 1, "unknown command")
    expect_error(run(c, "purge"), 1, "missing PATH or --route")
    expect_error(run(c, "purge", "/api/x", "--route", "/api"), 1, "not both")
    expect_error(run(c, "purge", "/api", "/api"), 1, "unexpected argument")
    expect_error(run(c, "stats", "--route", "/api"), 1, "does not apply")
    expect_error(run(c, "purge", "/nope/x"), 1, "no route matches '/nope/x'")
    expect_error(run(c, "purge", "--route", "/nope"), 1, "no route has the prefix '/nope'")
    expect_error(run(c, "purge", "--route", "/api/"), 1, "no route has the prefix")
    expect_error(run(c, "purge", "/plain/x"), 1, "route '/plain' does not cache")
    expect_error(run(c, "purge", "--route", "/plain"), 1, "does not cache")
    expect_error(run(c, "purge", "/a/../.."), 1, "climbs above the root")
    expect_error(run(c, "purge", "/api/%2f"), 1, "forbidden escape")
    expect_error(run(c, "purge", "api/items"), 1, "not absolute")
    expect_error(run(c, "purge", "/api/\x1b[2J"), 1, "control character")
    missing = c.td.join("nope.conf")
    expect_error(run(c, "--config", missing, "stats", config=False), 1, "nope.conf")
    expect_error(run(c, "stats", config=False, env_config=missing), 1, "nope.conf")
    bad = c.td.write("bad.conf", "redis = { url = 42; };\nthis is not libconfig\n")
    expect_error(run(c, "--config", bad, "purge", "/api", config=False), 1)
    eq(snapshot(c), before, "database after usage errors")


@test
def redis_down(c):
    c.redis.stop()
    expect_error(run(c, "stats"), 2, "redis")
    expect_error(run(c, "stats", "--json"), 2, "redis")
    expect_error(run(c, "purge", "/api/items"), 2, "redis")
    expect_error(run(c, "purge", "/api/items?a=1"), 2, "redis")
    expect_error(run(c, "purge", "--route", "/api"), 2, "redis")
    # usage errors are found before Redis is asked
    expect_error(run(c, "purge", "/plain/x"), 1, "does not cache")
    expect_error(run(c, "purge"), 1)


if __name__ == "__main__":
    h.main(setup)
