#!/usr/bin/env python3
"""redis.on_failure = "local" through lighttpd with 4 apigw processes:
while Redis is stopped each process enforces the route's 60/min
sliding_window alone with limit / local_share (4) = 15, so one client's
requests spread over the pool are admitted at least 15 and at most 60
times a minute, rejections carry the rate-limit headers and Retry-After,
a key cached while Redis was up still works and an uncached one gets 503;
once Redis is back, every process uses it again within a second and a
fresh client gets exactly Redis's sequence."""

import os
import sys
import threading
import subprocess
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, test  # noqa: E402

PROCS = 4
SHARE = 4
LIMIT = 60
KEY_HEADER = "X-API-Key"


class Ctx:
    pass




def setup(td):
    c = Ctx()
    c.keys_bin = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    if not os.access(c.keys_bin, os.X_OK):
        raise h.HarnessError("apigw-keys not found next to apigw: %s" % c.keys_bin)
    c.redis = h.RestartableRedis(td)
    c.b = h.start_backend(td)
    routes = [
        {"prefix": "/rl", "backend": c.b.url, "strip_prefix": True,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_minute": LIMIT}},
        {"prefix": "/auth", "backend": c.b.url, "strip_prefix": True, "require_auth": True},
    ]
    cfg = h.base_config(c.redis, routes, api_keys={"cache_ttl_s": 600})
    cfg["redis"].update({"on_failure": "local", "local_share": SHARE,
                         "command_timeout_ms": 100})
    c.config = h.write_gateway_config(td, cfg)
    c.lt = h.Lighttpd(td, config=c.config, max_procs=PROCS)
    return c


def create_key(c, name):
    p = subprocess.run([c.keys_bin, "--config", c.config, "create", name],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=15)
    if p.returncode != 0:
        raise AssertionError("apigw-keys create: %s" % p.stderr.decode(errors="replace"))
    return p.stdout.decode().strip()


def parallel(fns):
    out = [None] * len(fns)

    def run(i):
        out[i] = fns[i]()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def get(c, path, client=None, key=None):
    hdrs = []
    if client is not None:
        hdrs.append(("X-Forwarded-For", client))
    if key is not None:
        hdrs.append((KEY_HEADER, key))
    return h.request(c.lt.port, "GET", path, headers=hdrs)


def spread(c, path, n, threads=8, **kw):
    """n GETs from `threads` concurrent clients (slow backend answers, so
    that lighttpd hands them to every process); returns the responses."""
    per = n // threads

    def one():
        return [get(c, path, **kw) for _ in range(per)]
    return [r for rs in parallel([one] * threads) for r in rs]


def check_rl_headers(r, what):
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                 "RateLimit-Policy", "RateLimit"):
        check(r.headers.get(name) is not None, "%s: no %s" % (what, name))


def fresh_client():
    u = uuid.uuid4().bytes
    return "198.51.100.%d, 203.0.%d.%d" % (u[0] % 250 + 1, u[1], u[2] % 250 + 1)


@test
def redis_down_then_back(c):
    local_q = '"route-minute";q=%d;w=60' % (LIMIT // SHARE)
    cached = create_key(c, "cached")
    uncached = create_key(c, "uncached")
    # Every process caches the key while Redis is up: concurrent slow
    # requests keep all of them busy.
    for _ in range(3):
        for r in parallel([lambda: get(c, "/auth/slow?ms=300", key=cached)] * (4 * PROCS)):
            expect_status(r, 200, "cached key with Redis up")

    c.redis.stop()
    client = fresh_client()
    rs = spread(c, "/rl/slow?ms=50", 40, client=client)
    admitted = sum(1 for r in rs if r.status == 200)
    print("Redis down: %d of 40 requests admitted (each of %d processes: %d/min)"
          % (admitted, PROCS, LIMIT // SHARE))
    # More until every process has used its share: the pool as a whole
    # stays within the limit, whatever the spread.
    more = spread(c, "/rl/slow?ms=50", 40, client=client)
    total = admitted + sum(1 for r in more if r.status == 200)
    print("Redis down: %d of 80 requests admitted" % total)
    check(LIMIT // SHARE <= admitted, "admitted %d of 40 < %d" % (admitted, LIMIT // SHARE))
    check(total <= LIMIT, "admitted %d of 80 > %d" % (total, LIMIT))
    rejected = [r for r in rs + more if r.status == 429]
    check(len(rejected) > 0, "no 429 in 80 requests with a local limit of %d x %d"
          % (PROCS, LIMIT // SHARE))
    for r in rs + more:
        check(r.status in (200, 429), "status %d with Redis down" % r.status)
        check_rl_headers(r, "status %d with Redis down" % r.status)
        eq(r.headers.get("RateLimit-Policy"), local_q, "local RateLimit-Policy")
        eq(r.headers.get("X-RateLimit-Limit"), str(LIMIT // SHARE), "local X-RateLimit-Limit")
    for r in rejected:
        expect_problem(r, 429, "local rejection")
        ra = r.headers.get("Retry-After")
        check(ra is not None and ra.isdigit() and 1 <= int(ra) <= 63,
              "local 429: Retry-After %r" % ra)
        eq(r.headers.get("X-RateLimit-Remaining"), "0", "local 429: remaining")

    # Authentication never fails open; a key cached while Redis was up works.
    for r in parallel([lambda: get(c, "/auth/slow?ms=100", key=cached)] * (2 * PROCS)):
        expect_status(r, 200, "cached key with Redis down")
    for r in parallel([lambda: get(c, "/auth/echo", key=uncached)] * PROCS):
        expect_problem(r, 503, "uncached key with Redis down")

    # Redis back (empty: it keeps nothing): within a second every process
    # uses it again, so a fresh client gets exactly the Redis sequence.
    c.redis.start()
    time.sleep(1.0)
    client = fresh_client()
    for i in range(LIMIT):
        r = get(c, "/rl/echo", client=client)
        expect_status(r, 200, "Redis back, request %d" % (i + 1))
        eq(r.headers.get("X-RateLimit-Limit"), str(LIMIT), "Redis back: limit")
        eq(r.headers.get("X-RateLimit-Remaining"), str(LIMIT - 1 - i),
           "Redis back: remaining after request %d" % (i + 1))
    r = get(c, "/rl/echo", client=client)
    expect_problem(r, 429, "Redis back, request %d" % (LIMIT + 1))
    eq(r.headers.get("RateLimit-Policy"), '"route-minute";q=%d;w=60' % LIMIT,
       "Redis back: RateLimit-Policy")


if __name__ == "__main__":
    h.main(setup)
