#!/usr/bin/env python3
"""Redis faults under load: two lighttpd stacks of 4 apigw processes each,
one with redis.on_failure "open", one "closed", same Redis and backend.

Routes: /open (no key), /auth (require_auth), /limited (5 per minute).
redis: connect_timeout_ms 200, command_timeout_ms 100; api_keys
cache_ttl_s 1.  The cases run in order on the same stacks: Redis down at
start, SIGKILL + restart, SIGSTOP 5 s, DEBUG SLEEP 0.5, SCRIPT FLUSH,
FLUSHALL, maxmemory reached, then resources (fds per worker, Redis
connected_clients) compared with their values once Redis first came up.
Every case also checks that no worker process exited (same pids).
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
from faults import figure, h  # noqa: E402
from harness import check, eq, expect_status, test  # noqa: E402

PROCS = 4
CONNECT_MS = 200
COMMAND_MS = 100
# A request makes a few Redis round trips, each bounded by the timeouts;
# with Redis gone, one request may wait for a connect and a command.
LATENCY_BOUND_S = 2.0
BACK_WITHIN_S = 1.0


class Ctx:
    pass


def config(c, mode):
    routes = [
        {"prefix": "/open", "backend": c.b.url},
        {"prefix": "/auth", "backend": c.b.url, "require_auth": True},
        {"prefix": "/limited", "backend": c.b.url,
         "rate_limit": {"name": "lim", "algorithm": "fixed_window", "requests_per_minute": 5}},
    ]
    cfg = h.base_config(c.redis, routes, api_keys={"cache_ttl_s": 1})
    cfg = h.deep_merge(cfg, {"redis": {"connect_timeout_ms": CONNECT_MS,
                                       "command_timeout_ms": COMMAND_MS, "on_failure": mode}})
    return h.write_gateway_config(c.td, cfg, name="apigw-%s.conf" % mode)


def setup(td):
    c = Ctx()
    c.td = td
    c.b = h.start_backend(td)
    c.redis = f.RestartableRedis(td, start=False)   # down at start
    c.conf = {m: config(c, m) for m in ("open", "closed")}
    c.lt = {m: h.Lighttpd(td, config=c.conf[m], max_procs=PROCS, name="lt-" + m)
            for m in ("open", "closed")}
    c.keys_bin = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    c.key = None
    c.baseline = None
    return c


def pids(c):
    return {m: sorted(c.lt[m].worker_pids()) for m in c.lt}


def get(c, mode, path, key=None, timeout=10):
    hdrs = {"X-API-Key": key} if key else None
    return h.request(c.lt[mode].port, "GET", path, headers=hdrs, timeout=timeout)


def random_key():
    return "gw_" + secrets.token_urlsafe(32)


def create_key(c):
    p = subprocess.run([c.keys_bin, "--config", c.conf["open"], "create", "k-%d" % time.time_ns()],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=15)
    check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode(errors="replace"))
    return p.stdout.decode().strip()


def wait_ok(c, mode, path, key=None, timeout=5.0):
    """Seconds until path answers 200 (polled every 20 ms)."""
    t0 = time.monotonic()
    h.wait_for(lambda: get(c, mode, path, key, timeout=3).status == 200, timeout=timeout,
               interval=0.02, what="%s %s to answer 200" % (mode, path))
    return time.monotonic() - t0


def warm(c):
    """Concurrent load, so that every worker (not only the first one
    lighttpd picks) has its Redis and backend connections open."""
    ls = [f.Load(c.lt[m].port, ["/open/w"], threads=8) for m in c.lt]
    time.sleep(1.5)
    for l in ls:
        l.stop()


def resources(c):
    fds = {p: f.fd_count(p) for m in c.lt for p in c.lt[m].worker_pids()}
    return fds, int(c.redis.info("connected_clients"))


def load(c, key):
    """Two loads: the open stack on /open and /auth (with a valid key), the
    closed stack on /open."""
    c.load_headers = {"X-API-Key": key}
    return (f.Load(c.lt["open"].port, ["/open/x", "/auth/x"], threads=3,
                   headers=c.load_headers),
            f.Load(c.lt["closed"].port, ["/open/x"], threads=2))


def fault_under_load(c, name, inject, restore, also=()):
    """Runs inject() then restore() under load; asserts no worker exited,
    latencies bounded, and the service back within BACK_WITHIN_S of
    restore() returning; prints the figures."""
    before = pids(c)
    lo, lc = load(c, c.key)
    time.sleep(0.5)
    inject()
    t_ret = restore()       # when Redis returned (monotonic)
    back = {}
    for m in ("open", "closed"):
        wait_ok(c, m, "/open/y")
        back[m] = time.monotonic() - t_ret
    wait_ok(c, "open", "/auth/y", c.key)
    back["auth"] = time.monotonic() - t_ret
    time.sleep(0.5)
    ro, rc = lo.stop(), lc.stop()
    after = pids(c)
    eq(after, before, "%s: worker pids after the fault" % name)
    mx = max(r[1] for r in ro + rc)
    figure("%s: requests open-stack %d %s, closed-stack %d %s", name, len(ro), f.counts(ro),
           len(rc), f.counts(rc))
    figure("%s: max latency %.3f s (bound %.1f s); back after Redis returned: "
           "open %.3f s, closed %.3f s, auth %.3f s", name, mx, LATENCY_BOUND_S,
           back["open"], back["closed"], back["auth"])
    check(mx <= LATENCY_BOUND_S, "%s: max latency %.3f s > %.1f s" % (name, mx, LATENCY_BOUND_S))
    for m, v in back.items():
        check(v <= BACK_WITHIN_S, "%s: %s back only after %.3f s" % (name, m, v))
    # no 0 (connection error) and nothing but 200/503 from the gateway
    bad = [r for r in ro + rc if r[2] not in (200, 503) + also]
    check(not bad, "%s: unexpected outcomes %r" % (name, bad[:5]))
    return ro, rc


@test
def redis_down_at_start(c):
    eq(pids(c)["open"].__len__(), PROCS, "open-stack workers running with Redis down")
    for m in ("open", "closed"):
        expect_status(get(c, m, "/_health"), 503, "%s /_health with Redis down" % m)
        expect_status(get(c, m, "/auth/x", random_key()), 503, "%s /auth, uncached key" % m)
    expect_status(get(c, "open", "/open/x"), 200, "open stack forwards with Redis down")
    expect_status(get(c, "closed", "/open/x"), 503, "closed stack answers 503 with Redis down")
    before = pids(c)
    c.redis.start()
    t0 = time.monotonic()
    for m in ("open", "closed"):
        wait_ok(c, m, "/_health")
    figure("down at start: /_health 200 %.3f s after Redis started", time.monotonic() - t0)
    c.key = create_key(c)
    expect_status(get(c, "open", "/auth/x", c.key), 200, "valid key once Redis is up")
    eq(pids(c), before, "worker pids")
    # warm every worker's connections, then the baseline for the last case
    warm(c)
    c.baseline = resources(c)
    figure("baseline: worker fds %s, redis connected_clients %d",
           sorted(c.baseline[0].values()), c.baseline[1])


@test
def redis_sigkill_restart(c):
    def inject():
        c.redis.kill(signal.SIGKILL)
        c.redis.proc.popen.wait(5)
        time.sleep(1.0)

    def restore():
        c.redis.start()
        t = time.monotonic()
        # no persistence: the key died with Redis; the load switches to
        # a new one (the old one gets 401 meanwhile)
        c.key = create_key(c)
        c.load_headers["X-API-Key"] = c.key
        return t
    fault_under_load(c, "SIGKILL", inject, restore, also=(401,))


@test
def redis_sigstop(c):
    def inject():
        c.redis.kill(signal.SIGSTOP)
        time.sleep(5.0)

    def restore():
        c.redis.kill(signal.SIGCONT)
        return time.monotonic()
    fault_under_load(c, "SIGSTOP 5s", inject, restore)


@test
def redis_debug_sleep(c):
    th = []

    def inject():
        t = threading.Thread(target=lambda: c.redis.command("DEBUG", "SLEEP", "0.5", timeout=5),
                             daemon=True)
        t.start()
        th.append(t)

    def restore():
        th[0].join(5)
        return time.monotonic()
    fault_under_load(c, "DEBUG SLEEP 0.5", inject, restore)


@test
def redis_script_flush(c):
    before = pids(c)
    lo, lc = load(c, c.key)
    time.sleep(0.5)
    t0 = time.monotonic()
    c.redis.command("SCRIPT", "FLUSH")
    time.sleep(1.5)
    ro, rc = lo.stop(), lc.stop()
    eq(pids(c), before, "worker pids")
    after = [r for r in ro + rc if r[0] >= t0]
    figure("SCRIPT FLUSH: %d requests after the flush: %s", len(after), f.counts(after))
    check(after and all(r[2] == 200 for r in after), "SCRIPT FLUSH visible: %s; first: %r" % (
        f.counts(after), [r for r in after if r[2] != 200][:2]))


@test
def redis_flushall(c):
    before = pids(c)
    st = [get(c, "open", "/limited/x").status for _ in range(8)]
    check(429 in st, "the 5/min route limits (statuses %r)" % st)
    c.redis.command("FLUSHALL")
    t0 = time.monotonic()
    lim = wait_ok(c, "open", "/limited/x", timeout=5)
    h.wait_for(lambda: get(c, "open", "/auth/x", c.key).status == 401, timeout=5,
               interval=0.02, what="deleted key to get 401")
    gone = time.monotonic() - t0
    figure("FLUSHALL: limit restarted after %.3f s; key gone -> 401 after %.3f s "
           "(api_keys.cache_ttl_s 1)", lim, gone)
    eq(pids(c), before, "worker pids")
    c.key = create_key(c)


@test
def redis_maxmemory(c):
    before = pids(c)
    c.redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    c.redis.command("CONFIG", "SET", "maxmemory", "1mb")
    try:
        # fill past the limit so that every write fails with OOM
        try:
            for i in range(2000):
                c.redis.command("SET", "filler:%d" % i, "x" * 1024)
        except h.RedisError as e:
            check("OOM" in str(e), "Redis refuses writes with OOM: %s" % e)
        else:
            raise AssertionError("Redis never reached maxmemory")
        lo, lc = load(c, c.key)
        time.sleep(2.0)
        ro, rc = lo.stop(), lc.stop()
        figure("maxmemory 1mb noeviction: open-stack %s, closed-stack %s", f.counts(ro),
               f.counts(rc))
        bad = [r for r in ro + rc if r[2] not in (200, 503)]
        check(not bad, "maxmemory: outcomes other than 200/503: %r" % bad[:5])
        eq(pids(c), before, "worker pids with Redis out of memory")
    finally:
        c.redis.command("CONFIG", "SET", "maxmemory", "0")
        c.redis.command("FLUSHALL")
    c.key = create_key(c)
    for m in ("open", "closed"):
        wait_ok(c, m, "/open/z")
    wait_ok(c, "open", "/auth/z", c.key)


@test
def resources_flat(c):
    warm(c)
    fds, clients = resources(c)
    base_fds, base_clients = c.baseline
    figure("after all: worker fds %s (before %s); redis connected_clients %d (before %d)",
           sorted(fds.values()), sorted(base_fds.values()), clients, base_clients)
    eq(sorted(fds), sorted(base_fds), "worker pids")
    for p, n in fds.items():
        check(n <= base_fds[p] + 2, "worker %d fds %d, was %d" % (p, n, base_fds[p]))
    # this test's own INFO connection is counted in both
    check(clients <= base_clients + 1, "connected_clients %d, was %d" % (clients, base_clients))


if __name__ == "__main__":
    h.main(setup)
