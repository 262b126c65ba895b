#!/usr/bin/env python3
"""Rate limiting through the whole gateway.

The Lua script alone is covered by test_lua_ratelimit.py; here every
request goes client -> lighttpd (mod_fastcgi, max-procs 4) -> apigw ->
redis-server (unix socket) -> stub backend.

Stacks (all built once by setup()):
  main   its own Redis, lighttpd with 4 apigw processes, trusted_proxies
         127.0.0.1/32, a huge default policy; one route prefix per test
         and algorithm, so tests never share a counter.
  pair   one Redis (DEBUG enabled, so that it can be made to hang) shared
         by two lighttpd stacks of 4 processes each with the same routes:
         "A" (on_failure open, trusted_proxies 127.0.0.1/32) and "B"
         (on_failure closed, trusted_proxies empty); default policy
         sliding_window 4/minute.  The Redis failure tests come last.

Clients are told apart through X-Forwarded-For (127.0.0.1 is a trusted
proxy on main and A), so each test uses addresses of its own.

Notes on exactness:
  - fixed_window tests first make sure they do not straddle a window
    boundary (Redis TIME), since counts restart there.
  - The concurrency tests of token_bucket/gcra use a limit per hour: per
    minute a token is earned every 1.2 s, which a slow machine can reach
    during the burst, so "exactly 50" would not be the right answer.
  - Redis counts the commands a script runs in INFO commandstats too, so
    the round-trip tests also read MONITOR: every command not run by a
    script ("lua") must be one rate-limit EVALSHA per request, plus the
    circuit breaker's check in the same batch (one socket read) at most
    once a second per process, and the commandstats deltas must be
    exactly those plus what the scripts ran.  The metric
    counters each process sends (HINCRBY/HSETNX, at most once a second, not
    waited for) are left out of both, and round trips are counted as
    socket reads with room for those flushes.
"""

import collections
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, test  # noqa: E402

QUOTA_TYPE = "https://iana.org/assignments/http-problem-types#quota-exceeded"
ALGS = ("sliding_window", "token_bucket", "fixed_window", "gcra")
SHORT = {"sliding_window": "sw", "token_bucket": "tb", "fixed_window": "fw", "gcra": "gcra"}
BURST_ALGS = ("token_bucket", "gcra")
RL_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
              "RateLimit-Policy", "RateLimit")
CONC_LIMIT = 50
CONC_TOTAL = 208        # 16 threads x 13
CONC_THREADS = 16


class Ctx:
    pass


# ---------------------------------------------------------------------------
# Redis time

def redis_now(redis):
    s, us = redis.command("TIME")
    return int(s) + int(us) / 1e6


def clear_of_boundary(redis, window, need):
    """Sleeps, if needed, so that at least `need` seconds remain in the
    current aligned window of `window` seconds (Redis time): fixed_window
    counts restart at every boundary."""
    left = window - (redis_now(redis) % window)
    if left < need:
        time.sleep(left + 0.05)


def start_of_second(redis, lo=0.02, hi=0.2):
    """Sleeps until Redis time is lo..hi s past a whole second."""
    frac = redis_now(redis) % 1
    if not lo <= frac <= hi:
        time.sleep((1 - frac) + lo + 0.01)


# ---------------------------------------------------------------------------
# INFO commandstats and MONITOR

commandstats = h.redis_commandstats


class Monitor:
    """A MONITOR connection; lines() returns (source, command) for every
    command Redis ran until it sees the marker ECHO.  source is "lua" for
    commands a script ran, else the client's address."""

    LINE_RE = re.compile(r'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "((?:[^"\\]|\\.)*)"')

    def __init__(self, redis):
        self.redis = redis
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(redis.socket)
        self.sock.sendall(h.resp_encode(["MONITOR"]))
        self.f = self.sock.makefile("rb")
        eq(self.f.readline(), b"+OK\r\n", "MONITOR reply")

    def lines(self):
        marker = "apigw-it-marker-%d-%d" % (os.getpid(), time.monotonic_ns())
        eq(self.redis.command("ECHO", marker), marker, "ECHO marker")
        out = []
        while True:
            raw = self.f.readline()
            check(raw, "MONITOR connection closed before the marker")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if marker in line:
                return out
            m = self.LINE_RE.match(line)
            check(m, "unparsed MONITOR line %r" % line)
            cmd = m.group(2).lower()
            if cmd == "evalsha" and '"apigw:{b:' in line:
                cmd = "evalsha:breaker"  # the breaker's script (its keys)
            out.append((m.group(1), cmd))

    def close(self):
        self.f.close()
        self.sock.close()


def reads_during(redis, fn):
    return h.redis_reads_during(redis, fn)[0]

METRIC_WRITES = {"hincrby", "hsetnx", "expire"}  # no script runs these


def request_reads(redis, fn, n, what):
    """Checks that fn(), n requests spread over the stack's 4 processes,
    cost one Redis round trip each: Redis's socket reads are at least n,
    and at most n plus one per process and second (each process sends its
    metric counters, one write of their own, at most once a second; the
    window may catch one more at its start)."""
    t0 = time.monotonic()
    reads = reads_during(redis, fn)
    bound = n + 4 * (int(time.monotonic() - t0) + 2)
    check(n <= reads <= bound, "%s: Redis round trips (socket reads) for %d requests: %d, "
          "want %d..%d (one per request, plus metric flushes)" % (what, n, reads, n, bound))


def round_trips(redis, fn):
    """Runs fn() and returns (commands clients sent, commands scripts ran,
    commandstats deltas, breaker checks, seconds fn took), the first three
    as Counters, leaving out INFO/MONITOR/ECHO that the measurement itself
    sends.  Breaker checks (EVALSHAs of the breaker's script) are counted
    apart and left out of the commands sent; commandstats counts them in
    "evalsha"."""
    before = commandstats(redis)
    mon = Monitor(redis)
    t0 = time.monotonic()
    try:
        fn()
        took = time.monotonic() - t0
        seen = mon.lines()
    finally:
        mon.close()
    after = commandstats(redis)
    checks = sum(1 for src, c in seen if c == "evalsha:breaker")
    seen = [(src, "evalsha" if c == "evalsha:breaker" else c) for src, c in seen]
    # the metric counters each process sends at most once a second
    # (deferred writes, no round trip of a request) are left out too
    ours = {"info", "monitor", "echo"} | METRIC_WRITES
    client = collections.Counter(c for src, c in seen if src != "lua" and c not in ours)
    lua = collections.Counter(c for src, c in seen if src == "lua")
    delta = collections.Counter()
    for c in set(before) | set(after):
        d = after.get(c, 0) - before.get(c, 0)
        if d and c not in ours:
            delta[c] = d
    client["evalsha"] -= checks
    if client["evalsha"] <= 0:
        del client["evalsha"]
    delta_checks = collections.Counter({"evalsha": checks})
    # the commands sent, the breaker's checks left out, and the checks
    # (each a script call commandstats counts as one evalsha)
    return client, lua, delta - delta_checks, checks, took


def breaker_checks_bound(took):
    """Breaker checks 4 processes may send while requests ran for took
    seconds: each asks Redis again once its copy is a second old."""
    return 4 * (int(took) + 2)


# ---------------------------------------------------------------------------
# HTTP helpers

_client_n = [0]
_client_lock = threading.Lock()


def new_client():
    """A fresh documentation-range address for X-Forwarded-For."""
    with _client_lock:
        _client_n[0] += 1
        n = _client_n[0]
    return "198.18.%d.%d" % (n // 250, n % 250 + 1)


def get(port, path, client=None, source=None, headers=None, timeout=10.0):
    hd = dict(headers or {})
    if client is not None:
        hd["X-Forwarded-For"] = client
    return h.request(port, "GET", path, headers=hd, source=source, timeout=timeout)


def sf_list(value, what):
    """A Structured-Field list of strings with integer parameters:
    [(name, {param: int})]."""
    check(value is not None, "%s missing" % what)
    items = []
    for part in value.split(","):
        m = re.match(r'^\s*"([^"\\]*)"((?:;[a-z*][a-z0-9_.*-]*=-?\d+)*)\s*$', part)
        check(m, "%s: malformed item %r in %r" % (what, part, value))
        params = {}
        for p in m.group(2).split(";")[1:]:
            k, v = p.split("=", 1)
            check(k not in params, "%s: parameter %s twice in %r" % (what, k, value))
            params[k] = int(v)
        items.append((m.group(1), params))
    return items


def no_rl_headers(r, what):
    for name in RL_HEADERS + ("Retry-After",):
        check(name not in r.headers, "%s: unexpected %s: %r" % (what, name, r.headers.get(name)))


def expect_rl(r, windows, what, t_before, xlimit=None, xremaining=None):
    """Checks the rate-limit headers of r.  windows: [(name, q, w, burst or
    None, remaining or None)] in order; xlimit/xremaining: the expected
    X-RateLimit-Limit/-Remaining (default: from the single window)."""
    t_after = time.time()
    pol = sf_list(r.headers.get("RateLimit-Policy"), what + ": RateLimit-Policy")
    cur = sf_list(r.headers.get("RateLimit"), what + ": RateLimit")
    want_pol = []
    for name, q, w, burst, _ in windows:
        p = {"q": q, "w": w}
        if burst is not None:
            p["apigw-burst"] = burst
        want_pol.append((name, p))
    eq(pol, want_pol, what + ": RateLimit-Policy %r" % r.headers.get("RateLimit-Policy"))
    eq([n for n, _ in cur], [n for n, *_ in windows], what + ": RateLimit items")
    for (name, params), (_, q, w, burst, rem) in zip(cur, windows):
        eq(sorted(params), ["r", "t"], "%s: RateLimit parameters of %s" % (what, name))
        if rem is not None:
            eq(params["r"], rem, "%s: RateLimit r of %s" % (what, name))
        check(0 <= params["r"] <= (burst or q), "%s: r out of range: %r" % (what, params))
        check(0 <= params["t"] <= w, "%s: RateLimit t of %s out of 0..%d: %r"
              % (what, name, w, params))
    if len(windows) == 1:
        _, q, w, burst, rem = windows[0]
        if xlimit is None:
            xlimit = burst if burst is not None else q
        if xremaining is None:
            xremaining = rem
    lim = r.headers.get("X-RateLimit-Limit")
    remv = r.headers.get("X-RateLimit-Remaining")
    reset = r.headers.get("X-RateLimit-Reset")
    for n, v in (("Limit", lim), ("Remaining", remv), ("Reset", reset)):
        check(v is not None and re.match(r"^\d+$", v),
              "%s: X-RateLimit-%s %r not a non-negative integer" % (what, n, v))
    if xlimit is not None:
        eq(int(lim), xlimit, what + ": X-RateLimit-Limit")
    if xremaining is not None:
        eq(int(remv), xremaining, what + ": X-RateLimit-Remaining")
    wmax = max(w for _, _, w, _, _ in windows)
    check(int(t_before) - 1 <= int(reset) <= t_after + wmax + 1,
          "%s: X-RateLimit-Reset %s not within now..now+%d+1 (now %.1f)"
          % (what, reset, wmax, t_after))


def expect_429(r, violated, what):
    doc = expect_problem(r, 429, what)
    eq(doc.get("type"), QUOTA_TYPE, what + ": problem type")
    eq(doc.get("title"), "Too Many Requests", what + ": problem title")
    eq(doc.get("error"), "rate limit exceeded", what + ": problem error field")
    eq(doc.get("violated-policies"), violated, what + ": violated-policies")
    ra = r.headers.get("Retry-After")
    check(ra is not None and re.match(r"^\d+$", ra) and int(ra) >= 1,
          "%s: Retry-After %r, want an integer >= 1" % (what, ra))
    return int(ra)


def parallel(fns):
    """Runs the callables in threads at once; re-raises the first error;
    returns their results in order."""
    results = [None] * len(fns)
    errors = []

    def run(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # re-raised by the caller
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(50)
    check(not any(t.is_alive() for t in ts), "a worker thread did not finish")
    if errors:
        raise errors[0]
    return results


def hammer(targets, total_per_target, threads_per_target=CONC_THREADS, headers=None):
    """Fires total_per_target GETs at each (port, path) from
    threads_per_target threads per target, all started together.  Returns
    a Counter of statuses."""
    statuses = collections.Counter()
    lock = threading.Lock()
    nthreads = threads_per_target * len(targets)
    barrier = threading.Barrier(nthreads)
    errors = []

    def worker(port, path, n):
        try:
            barrier.wait(10)
            for _ in range(n):
                r = h.request(port, "GET", path, headers=headers)
                with lock:
                    statuses[r.status] += 1
        except BaseException as e:  # re-raised by the caller
            errors.append(e)

    ts = []
    for port, path in targets:
        base, extra = divmod(total_per_target, threads_per_target)
        for i in range(threads_per_target):
            ts.append(threading.Thread(target=worker, daemon=True,
                                       args=(port, path, base + (1 if i < extra else 0))))
    for t in ts:
        t.start()
    for t in ts:
        t.join(50)
    check(not any(t.is_alive() for t in ts), "hammer threads did not finish")
    if errors:
        raise errors[0]
    return statuses


def keys_bin():
    p = os.environ.get("APIGW_KEYS") or os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    if not os.access(p, os.X_OK):
        raise h.HarnessError("apigw-keys not found next to apigw: %s" % p)
    return p


def create_key(config, name, *flags):
    out = subprocess.run([keys_bin(), "--config", config, "create", name] + list(flags),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=20)
    check(out.returncode == 0, "apigw-keys create %s: exit %d: %s" % (
        name, out.returncode, out.stderr.decode(errors="replace")))
    key = out.stdout.decode().strip()
    check(re.match(r"^gw_[A-Za-z0-9_-]{43}$", key), "apigw-keys printed %r" % key)
    return key


# ---------------------------------------------------------------------------
# set-up

def rl(alg=None, **kw):
    p = {}
    if alg:
        p["algorithm"] = alg
    p.update(kw)
    return p


def setup(td):
    c = Ctx()
    c.td = td
    c.backend = h.start_backend(td, "rlb")
    be = c.backend.url

    # ---- main stack
    c.redis = h.RestartableRedis(td, "redis-main", debug="local")
    routes = []
    for alg in ALGS:
        s = SHORT[alg]
        routes += [
            {"prefix": "/seq-" + s, "backend": be, "rate_limit": rl(alg, requests_per_minute=5)},
            {"prefix": "/ra-" + s, "backend": be, "rate_limit": rl(alg, requests_per_second=2)},
            {"prefix": "/nc-" + s, "backend": be, "rate_limit": rl(alg, requests_per_second=2)},
        ]
        # token_bucket/gcra refill one unit per W/L: per hour (72 s) so that
        # a slow machine cannot earn a token during the burst
        conc = rl(alg, requests_per_hour=CONC_LIMIT) if alg in BURST_ALGS else \
            rl(alg, requests_per_minute=CONC_LIMIT)
        routes.append({"prefix": "/conc-" + s, "backend": be, "rate_limit": conc})
    for alg in BURST_ALGS:
        routes.append({"prefix": "/burst-" + SHORT[alg], "backend": be,
                       "rate_limit": rl(alg, requests_per_minute=5, burst_size=3)})
    routes += [
        {"prefix": "/multi", "backend": be,
         "rate_limit": rl("sliding_window", requests_per_minute=100, requests_per_hour=3)},
        {"prefix": "/shadow", "backend": be,
         "rate_limit": rl("sliding_window", requests_per_minute=3, shadow=True)},
        {"prefix": "/trust", "backend": be, "rate_limit": rl("sliding_window", requests_per_minute=2)},
        {"prefix": "/flush", "backend": be,
         "rate_limit": rl("sliding_window", requests_per_minute=1000)},
        {"prefix": "/rt", "backend": be, "rate_limit": rl("sliding_window", requests_per_minute=1000)},
        {"prefix": "/rtkey", "backend": be, "require_auth": True,
         "rate_limit": rl("sliding_window", requests_per_minute=1000)},
        {"prefix": "/kp2", "backend": be, "require_auth": True},
    ]
    cfg = h.base_config(c.redis, routes,
                        gateway={"trusted_proxies": ["127.0.0.1/32"],
                                 "internal_allow": ["127.0.0.0/8"]},
                        api_keys={"cache_ttl_s": 5})
    c.config = h.write_gateway_config(td, cfg, "apigw-main.conf")
    c.lt = h.Lighttpd(td, config=c.config, max_procs=4, name="lighttpd-main")
    c.port = c.lt.port

    # ---- pair: two stacks sharing one Redis
    c.predis = h.RestartableRedis(td, "redis-pair", debug="local")
    proutes = [
        {"prefix": "/dual-sw", "backend": be,
         "rate_limit": rl("sliding_window", requests_per_minute=CONC_LIMIT)},
        {"prefix": "/dual-gcra", "backend": be,
         "rate_limit": rl("gcra", requests_per_hour=CONC_LIMIT)},
        {"prefix": "/plain", "backend": be},
        {"prefix": "/plain2", "backend": be},
        {"prefix": "/trust-b", "backend": be,
         "rate_limit": rl("sliding_window", requests_per_minute=3)},
        {"prefix": "/fail", "backend": be,
         "rate_limit": rl("sliding_window", requests_per_minute=1000000)},
    ]
    common = {"rate_limit": {"algorithm": "sliding_window", "requests_per_minute": 4}}
    # (base_config's first parameter is named redis: merge that group after)
    cfg_a = h.deep_merge(h.base_config(c.predis, proutes,
                                       gateway={"trusted_proxies": ["127.0.0.1/32"]}, **common),
                         {"redis": {"on_failure": "open", "command_timeout_ms": 100}})
    cfg_b = h.deep_merge(h.base_config(c.predis, proutes,
                                       gateway={"trusted_proxies": h.Raw("[ ]")}, **common),
                         {"redis": {"on_failure": "closed", "command_timeout_ms": 100}})
    c.config_a = h.write_gateway_config(td, cfg_a, "apigw-a.conf")
    c.config_b = h.write_gateway_config(td, cfg_b, "apigw-b.conf")
    c.lta = h.Lighttpd(td, config=c.config_a, max_procs=4, name="lighttpd-a")
    c.ltb = h.Lighttpd(td, config=c.config_b, max_procs=4, name="lighttpd-b")
    c.port_a, c.port_b = c.lta.port, c.ltb.port
    return c


# ---------------------------------------------------------------------------
# sequences, headers, 429

def sequence(c, alg, prefix, limit, burst):
    """`burst`+1 requests from one client: exactly `burst` admitted with
    Remaining counting down, then a 429."""
    if alg == "fixed_window":
        clear_of_boundary(c.redis, 60, 4)
    client = new_client()
    key = "seq%s%d" % (SHORT[alg], time.monotonic_ns())
    b = burst if alg in BURST_ALGS else None
    cap = burst
    for i in range(cap):
        t0 = time.time()
        r = get(c.port, "%s/x?key=%s" % (prefix, key), client)
        what = "%s request %d" % (prefix, i + 1)
        expect_status(r, 200, what)
        expect_rl(r, [("route-minute", limit, 60, b, cap - i - 1)], what, t0)
    t0 = time.time()
    r = get(c.port, "%s/x?key=%s" % (prefix, key), client)
    what = "%s request %d" % (prefix, cap + 1)
    ra = expect_429(r, ["route-minute"], what)
    check(ra <= 61, "%s: Retry-After %d > window" % (what, ra))
    expect_rl(r, [("route-minute", limit, 60, b, 0)], what, t0)
    t = sf_list(r.headers.get("RateLimit"), "RateLimit")[0][1]["t"]
    check(t >= 1, "%s: RateLimit t=%d on a 429" % (what, t))
    # a different client is not affected
    r = get(c.port, "%s/x?key=%s" % (prefix, key), new_client())
    expect_status(r, 200, prefix + " from another client")
    eq(c.backend.calls(key), cap + 1, "backend calls (the 429 never reaches the backend)")


def _seq_test(alg):
    def fn(c):
        sequence(c, alg, "/seq-" + SHORT[alg], 5, 5)
    fn.__name__ = "exact_sequence_" + alg
    return fn


for _alg in ALGS:
    test(_seq_test(_alg))


@test
def burst_size_admits_exactly_burst(c):
    for alg in BURST_ALGS:
        sequence(c, alg, "/burst-" + SHORT[alg], 5, 3)


@test
def multi_window_hour_rejects(c):
    client = new_client()
    for i in range(3):
        t0 = time.time()
        r = get(c.port, "/multi/x", client)
        what = "/multi request %d" % (i + 1)
        expect_status(r, 200, what)
        expect_rl(r, [("route-minute", 100, 60, None, 99 - i), ("route-hour", 3, 3600, None, 2 - i)],
                  what, t0, xlimit=3, xremaining=2 - i)
    t0 = time.time()
    r = get(c.port, "/multi/x", client)
    expect_429(r, ["route-hour"], "/multi request 4")
    expect_rl(r, [("route-minute", 100, 60, None, 97), ("route-hour", 3, 3600, None, 0)],
              "/multi request 4", t0, xlimit=3, xremaining=0)


@test
def retry_after_is_truthful(c):
    """Per-second limit 2: wait Retry-After seconds after the 429 and the
    next request is admitted (every algorithm, in parallel)."""
    def one(alg):
        prefix = "/ra-" + SHORT[alg]
        client = new_client()
        admitted = 0
        for _ in range(6):
            r = get(c.port, prefix + "/x", client)
            if r.status != 200:
                break
            admitted += 1
        else:
            raise AssertionError("%s: 6 requests admitted under a limit of 2/s" % prefix)
        # fixed_window: the first requests may straddle a second boundary
        if alg == "fixed_window":
            check(2 <= admitted <= 4, "%s: %d admitted before the first 429" % (prefix, admitted))
        else:
            eq(admitted, 2, "%s: admitted before the first 429" % prefix)
        ra = expect_429(r, ["route-second"], prefix)
        check(ra <= 2, "%s: Retry-After %d for a 1 s window" % (prefix, ra))
        time.sleep(ra)
        r = get(c.port, prefix + "/x", client)
        expect_status(r, 200, "%s after sleeping Retry-After=%d s" % (prefix, ra))
    parallel([lambda a=alg: one(a) for alg in ALGS])


@test
def rejected_requests_consume_nothing(c):
    """Per-second limit 2: 2 admitted, then rejections for 0.3 to 0.7 s;
    1.15 s after the first request exactly 2 are
    admitted again (rejections that counted would still fill the window /
    drain the bucket)."""
    def one(alg):
        prefix = "/nc-" + SHORT[alg]
        client = new_client()
        if alg == "fixed_window":
            start_of_second(c.redis)
        t0 = time.monotonic()
        for i in range(2):
            expect_status(get(c.port, prefix + "/x", client), 200, "%s request %d" % (prefix, i + 1))
        # token_bucket/gcra earn a token every W/L = 0.5 s: reject only
        # before that (each rejection that took a unit would push the
        # bucket's full time 0.5 s further out)
        # (fixed_window: stay well inside the aligned second)
        until = {"sliding_window": 0.7, "fixed_window": 0.5}.get(alg, 0.3)
        rejected = 0
        while time.monotonic() < t0 + until:
            r = get(c.port, prefix + "/x", client)
            expect_429(r, ["route-second"], "%s rejection %d" % (prefix, rejected + 1))
            rejected += 1
            time.sleep(0.05)
        check(rejected >= 3, "%s: only %d rejections sent" % (prefix, rejected))
        time.sleep(max(0, t0 + 1.15 - time.monotonic()))
        for i in range(2):
            r = get(c.port, prefix + "/x", client)
            expect_status(r, 200, "%s: request %d of the next window after %d rejections"
                          % (prefix, i + 1, rejected))
        expect_429(get(c.port, prefix + "/x", client), ["route-second"],
                   prefix + ": third request of the next window")
    parallel([lambda a=alg: one(a) for alg in ALGS])


@test
def shadow_never_rejects(c):
    client = new_client()
    for i in range(7):
        r = get(c.port, "/shadow/x", client)
        what = "/shadow request %d" % (i + 1)
        expect_status(r, 200, what)
        want = max(0, 2 - i)
        items = dict(sf_list(r.headers.get("RateLimit"), what + ": RateLimit"))
        check("route-minute" in items, "%s: no route-minute in RateLimit %r"
              % (what, r.headers.get("RateLimit")))
        eq(items["route-minute"]["r"], want, what + ": RateLimit r of route-minute")
        pol = dict(sf_list(r.headers.get("RateLimit-Policy"), what + ": RateLimit-Policy"))
        eq(pol.get("route-minute"), {"q": 3, "w": 60}, what + ": route-minute policy")
        rem = r.headers.get("X-RateLimit-Remaining")
        check(rem is not None and re.match(r"^\d+$", rem),
              "%s: X-RateLimit-Remaining %r (never negative)" % (what, rem))
        eq(int(rem), want, what + ": X-RateLimit-Remaining")
        check("Retry-After" not in r.headers, what + ": Retry-After on a shadow-only overrun")


@test
def default_policy_per_client(c):
    """Pair stack A: default sliding_window 4/minute applies to routes
    without a policy, counted per client (across routes)."""
    a, b = new_client(), new_client()
    for i in range(4):
        t0 = time.time()
        r = get(c.port_a, "/plain/x", a)
        expect_status(r, 200, "default policy request %d" % (i + 1))
        expect_rl(r, [("default-minute", 4, 60, None, 3 - i)], "default request %d" % (i + 1), t0)
    r = get(c.port_a, "/plain/x", a)
    expect_429(r, ["default-minute"], "default policy request 5")
    expect_status(get(c.port_a, "/plain/x", b), 200, "default policy, another client")
    # one client's default counter covers every route without a policy:
    # b has used 1 of 4 on /plain; 3 more on /plain2, then both reject
    for i in range(3):
        expect_status(get(c.port_a, "/plain2/y", b), 200, "client b on /plain2, %d" % (i + 1))
    expect_429(get(c.port_a, "/plain2/y", b), ["default-minute"],
               "client b's 5th request (/plain2)")
    expect_429(get(c.port_a, "/plain/y", b), ["default-minute"],
               "client b's 6th request (back on /plain)")
    # a route with its own policy is not limited by the default
    expect_status(get(c.port_a, "/trust-b/x", a), 200, "own-policy route for a default-limited client")


@test
def trusted_proxy_client_identity(c):
    # main: 127.0.0.1 is trusted -> each X-Forwarded-For address is a client
    a, b = new_client(), new_client()
    for i in range(2):
        expect_status(get(c.port, "/trust/x", a), 200, "client a request %d" % (i + 1))
    expect_429(get(c.port, "/trust/x", a), ["route-minute"], "client a request 3")
    for i in range(2):
        expect_status(get(c.port, "/trust/x", b), 200, "client b (other XFF) request %d" % (i + 1))
    # the client is the last untrusted address of X-Forwarded-For
    d = new_client()
    expect_status(get(c.port, "/trust/x", "203.0.113.7, " + d), 200, "XFF spoofed, d")
    expect_status(get(c.port, "/trust/x", d), 200, "d")
    expect_429(get(c.port, "/trust/x", "192.0.2.99, " + d), ["route-minute"],
               "third request of d behind a forged left-hand entry")
    # from 127.0.0.2 (not trusted) X-Forwarded-For is ignored
    for i in range(2):
        expect_status(get(c.port, "/trust/x", new_client(), source="127.0.0.2"), 200,
                      "untrusted peer, request %d" % (i + 1))
    expect_429(get(c.port, "/trust/x", new_client(), source="127.0.0.2"), ["route-minute"],
               "untrusted peer, third request with yet another XFF")
    # pair B has trusted_proxies = [ ]: every XFF value counts as one client
    for i in range(3):
        expect_status(get(c.port_b, "/trust-b/x", new_client()), 200,
                      "trusted_proxies=[], request %d" % (i + 1))
    expect_429(get(c.port_b, "/trust-b/x", new_client()), ["route-minute"],
               "trusted_proxies=[], 4th request with a 4th XFF address")


@test
def api_key_policy_counted_per_key_across_routes(c):
    """A key's own policy (3/minute) counts across routes; the route policy
    applies beside it; the default does not apply to a keyed request whose
    key has a policy."""
    key = create_key(c.config, "kp", "--requests-per-minute", "3",
                     "--algorithm", "sliding_window")
    hd = {"X-API-Key": key}
    t0 = time.time()
    r = get(c.port, "/kp2/a", headers=hd)
    expect_status(r, 200, "key policy request 1 (/kp2)")
    expect_rl(r, [("key-minute", 3, 60, None, 2)], "key policy request 1 (/kp2)", t0)
    t0 = time.time()
    r = get(c.port, "/rtkey/b", headers=hd)
    expect_status(r, 200, "key policy request 2 (/rtkey)")
    expect_rl(r, [("key-minute", 3, 60, None, 1), ("route-minute", 1000, 60, None, 999)],
              "key policy request 2 (/rtkey)", t0, xlimit=3, xremaining=1)
    expect_status(get(c.port, "/kp2/c", headers=hd), 200, "key policy request 3 (/kp2)")
    t0 = time.time()
    r = get(c.port, "/rtkey/d", headers=hd)
    expect_429(r, ["key-minute"], "key policy request 4 (/rtkey)")
    expect_rl(r, [("key-minute", 3, 60, None, 0), ("route-minute", 1000, 60, None, 999)],
              "key policy request 4 (/rtkey): the route window consumed nothing", t0,
              xlimit=3, xremaining=0)
    expect_429(get(c.port, "/kp2/e", headers=hd), ["key-minute"], "key policy request 5 (/kp2)")
    other = create_key(c.config, "kp-other", "--requests-per-minute", "3",
                       "--algorithm", "sliding_window")
    expect_status(get(c.port, "/kp2/a", headers={"X-API-Key": other}), 200, "another key")


# ---------------------------------------------------------------------------
# exactness under concurrency

def _conc_test(alg):
    def fn(c):
        prefix = "/conc-" + SHORT[alg]
        if alg == "fixed_window":
            clear_of_boundary(c.redis, 60, 12)
        key = "conc%s%d" % (SHORT[alg], time.monotonic_ns())
        t0 = time.monotonic()
        st = hammer([(c.port, "%s/x?key=%s" % (prefix, key))], CONC_TOTAL,
                    headers={"X-Forwarded-For": new_client()})
        dt = time.monotonic() - t0
        eq(dict(st), {200: CONC_LIMIT, 429: CONC_TOTAL - CONC_LIMIT},
           "%s: statuses of %d requests from %d threads (%.1fs)" % (prefix, CONC_TOTAL, CONC_THREADS, dt))
        eq(c.backend.calls(key), CONC_LIMIT, prefix + ": requests that reached the backend")
    fn.__name__ = "concurrent_exact_" + alg
    return fn


for _alg in ALGS:
    test(_conc_test(_alg))


@test
def two_gateways_share_one_limit(c):
    """Two lighttpd+apigw stacks (4 processes each) on one Redis, hammered
    together: exactly the limit is admitted in total."""
    for prefix in ("/dual-sw", "/dual-gcra"):
        key = "dual%d" % time.monotonic_ns()
        path = "%s/x?key=%s" % (prefix, key)
        st = hammer([(c.port_a, path), (c.port_b, path)], 120)
        eq(dict(st), {200: CONC_LIMIT, 429: 240 - CONC_LIMIT},
           "%s: statuses of 2 x 120 requests through two gateways" % prefix)
        eq(c.backend.calls(key), CONC_LIMIT, prefix + ": requests that reached the backend")


# ---------------------------------------------------------------------------
# Redis round trips

def spread(port, path, headers=None, threads=4, per=5, what="request"):
    """threads x per GETs from parallel threads (so that several of the
    apigw processes answer); every one must be a 200 with RateLimit."""
    def one():
        for i in range(per):
            r = get(port, path, headers=headers)
            expect_status(r, 200, "%s %d" % (what, i + 1))
            check("RateLimit" in r.headers, "%s without RateLimit headers: %r" % (what, r.headers))
    parallel([one] * threads)


@test
def one_redis_command_per_request_anonymous(c):
    hd = {"X-Forwarded-For": new_client()}
    spread(c.port, "/rt/warm", hd, threads=8, per=2, what="warm-up")
    n = 20
    sent, lua, delta, checks, took = round_trips(
        c.redis, lambda: spread(c.port, "/rt/x", hd, what="/rt"))
    # one rate-limit script call per request, in its one batch; the
    # circuit breaker's check joins a batch only when the process's copy
    # of the state is a second old (a closed breaker with no failures
    # needs no report afterwards)
    eq(dict(sent), {"evalsha": n}, "commands the gateway sent for %d requests" % n)
    check(checks <= breaker_checks_bound(took), "breaker checks for %d requests in %.1f s: %d"
          % (n, took, checks))
    eq(delta.get("evalsha"), n, "commandstats evalsha calls (breaker checks apart)")
    eq(dict(delta), dict(sent + lua),
       "commandstats deltas (every call besides EVALSHA must come from the script)")
    # counted as round trips: one socket read per request at Redis
    request_reads(c.redis, lambda: spread(c.port, "/rt/x", hd, what="/rt"), n, "anonymous")


@test
def one_redis_command_per_request_api_key(c):
    n = 20
    key = create_key(c.config, "rt-warm")
    hd = {"X-API-Key": key}
    spread(c.port, "/rtkey/warm", hd, threads=8, per=2, what="key warm-up")
    sent, lua, delta, checks, took = round_trips(
        c.redis, lambda: spread(c.port, "/rtkey/x", hd, what="/rtkey"))
    eq(dict(sent), {"evalsha": n}, "commands the gateway sent for %d keyed requests" % n)
    check(checks <= breaker_checks_bound(took), "breaker checks (keyed): %d" % checks)
    eq(delta.get("evalsha"), n, "commandstats evalsha calls (keyed)")
    eq(dict(delta), dict(sent + lua), "commandstats deltas (keyed)")
    request_reads(c.redis, lambda: spread(c.port, "/rtkey/x", hd, what="/rtkey"), n, "keyed")

    # a key no process has cached: the lookup rides in the same call
    key2 = create_key(c.config, "rt-cold")
    m = 8
    sent, lua, delta, checks, took = round_trips(c.redis, lambda: spread(
        c.port, "/rtkey/y", {"X-API-Key": key2}, threads=4, per=2, what="cold key"))
    eq(dict(sent), {"evalsha": m}, "commands the gateway sent on key-cache misses")
    check(checks <= breaker_checks_bound(took), "breaker checks (cold key): %d" % checks)
    check(lua.get("hgetall", 0) >= 1, "no key lookup (HGETALL) seen in the script: %r" % dict(lua))
    eq(dict(delta), dict(sent + lua), "commandstats deltas (cold key)")
    # an unknown key: 401, still one batch (a breaker check may ride in
    # it; nothing is reported for a request never forwarded)
    sent, lua, delta, checks, took = round_trips(c.redis, lambda: expect_problem(
        get(c.port, "/rtkey/z", headers={"X-API-Key": "gw_" + "A" * 43}), 401, "unknown key"))
    eq(dict(sent), {"evalsha": 1}, "commands the gateway sent for an unknown key")
    check(checks <= 1, "breaker checks for one request: %d" % checks)


@test
def script_flush_is_invisible(c):
    client = new_client()
    r = get(c.port, "/flush/x", client)
    expect_status(r, 200, "/flush before SCRIPT FLUSH")
    prev = int(r.headers["X-RateLimit-Remaining"])
    for i in range(4):
        eq(c.redis.command("SCRIPT", "FLUSH"), "OK", "SCRIPT FLUSH")
        r = get(c.port, "/flush/x", client)
        expect_status(r, 200, "request %d after SCRIPT FLUSH" % (i + 1))
        check("RateLimit" in r.headers,
              "request after SCRIPT FLUSH was not rate limited (failed open?): %r" % r.headers)
        rem = int(r.headers["X-RateLimit-Remaining"])
        eq(rem, prev - 1, "X-RateLimit-Remaining after SCRIPT FLUSH (counted exactly once)")
        prev = rem
    # on_failure = "closed" (pair B) does not turn NOSCRIPT into a 503
    eq(c.predis.command("SCRIPT", "FLUSH"), "OK", "SCRIPT FLUSH (pair)")
    for i in range(3):
        r = get(c.port_b, "/fail/x")
        expect_status(r, 200, "closed stack after SCRIPT FLUSH, request %d" % (i + 1))
        check("RateLimit" in r.headers, "closed stack after SCRIPT FLUSH: no RateLimit header")


# ---------------------------------------------------------------------------
# Redis failure (pair stacks; these run last)

def ok_open(c, key=None):
    r = get(c.port_a, "/fail/x" + ("?key=" + key if key else ""), timeout=5)
    return r.status == 200 and "RateLimit" in r.headers


def ok_closed(c):
    r = get(c.port_b, "/fail/x", timeout=5)
    return r.status == 200 and "RateLimit" in r.headers


def health_up(port):
    r = get(port, "/_health", timeout=5)
    return r.status == 200 and r.json().get("redis") == "up"


def wait_recovered(c, timeout=12.0):
    """Polls with 8 parallel requests per stack (so every process is hit)
    until all of them go through Redis again, and /_health is 200."""
    def batch():
        res = parallel([lambda: ok_open(c)] * 8 + [lambda: ok_closed(c)] * 8)
        return all(res) and health_up(c.port_a) and health_up(c.port_b)
    t0 = time.monotonic()
    h.wait_for(batch, timeout=timeout, interval=0.25, what="the gateways to use Redis again")
    return time.monotonic() - t0


@test
def redis_hang_costs_at_most_command_timeout(c):
    wait_recovered(c)
    done = threading.Event()
    err = []

    def sleeper():
        try:
            c.predis.command("DEBUG", "SLEEP", "2", timeout=6)
        except Exception as e:  # re-raised by the caller
            err.append(e)
        done.set()
    th = threading.Thread(target=sleeper, daemon=True)
    th.start()
    time.sleep(0.2)
    key = "hang%d" % time.monotonic_ns()

    def timed(port, path):
        t0 = time.monotonic()
        r = get(port, path, timeout=5)
        return r, time.monotonic() - t0
    res = parallel([lambda: timed(c.port_a, "/fail/x?key=" + key)] * 4 +
                   [lambda: timed(c.port_b, "/fail/x")] * 4)
    check(not done.is_set(), "Redis woke up before the requests finished: test inconclusive")
    for i, (r, dt) in enumerate(res):
        what = "%s request %d while Redis hangs" % ("open" if i < 4 else "closed", i % 4 + 1)
        check(dt < 1.5, "%s took %.2fs (command_timeout_ms = 100)" % (what, dt))
        if i < 4:
            expect_status(r, 200, what)
            no_rl_headers(r, what)
        else:
            expect_problem(r, 503, what)
    eq(c.backend.calls(key), 4, "requests forwarded while Redis hangs (on_failure open)")
    th.join(10)
    check(not err, "DEBUG SLEEP failed: %s" % (err[0] if err else ""))
    wait_recovered(c)


@test
def redis_down_and_restart(c):
    wait_recovered(c)
    c.predis.stop()
    key = "down%d" % time.monotonic_ns()
    res = parallel([lambda: get(c.port_a, "/fail/x?key=" + key, timeout=5)] * 4 +
                   [lambda: get(c.port_b, "/fail/x", timeout=5)] * 4)
    for i, r in enumerate(res[:4]):
        what = "on_failure=open, Redis down, request %d" % (i + 1)
        expect_status(r, 200, what)
        no_rl_headers(r, what)
    eq(c.backend.calls(key), 4, "requests forwarded with Redis down (on_failure open)")
    for i, r in enumerate(res[4:]):
        expect_problem(r, 503, "on_failure=closed, Redis down, request %d" % (i + 1))
    for name, port in (("A", c.port_a), ("B", c.port_b)):
        r = get(port, "/_health", timeout=5)
        expect_status(r, 503, "/_health on %s with Redis down" % name)
        eq(r.json().get("redis"), "down", "/_health redis field on %s" % name)
    c.predis.start()  # same unix socket path
    dt = wait_recovered(c, timeout=12)
    check(dt < 10, "recovery took %.1fs" % dt)


if __name__ == "__main__":
    h.main(setup)
