#!/usr/bin/env python3
"""Rate-limit leases through two lighttpd stacks (4 apigw processes each)
on one redis-server: limits stay exact whatever the number of processes,
also when processes restart midway; far from the limit most requests are
admitted without a Redis round trip; a small limit behaves exactly as
without leases."""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_status, test  # noqa: E402

LIMIT = 2000
SENT = 2600
THREADS = 16
LEASE = {"lease_max_units": 64, "lease_ms": 200}
ALGS = ("sliding_window", "fixed_window", "token_bucket", "gcra")


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    routes = []
    for alg in ALGS:
        # fixed_window on an hour window: a minute boundary in the middle
        # of the run would legitimately admit more
        win = "requests_per_hour" if alg == "fixed_window" else "requests_per_minute"
        pol = {"algorithm": alg, win: LIMIT}
        pol.update(LEASE)
        routes.append({"prefix": "/" + alg, "backend": c.b.url, "rate_limit": pol})
        small = {"algorithm": alg, "requests_per_minute": 5}
        small.update(LEASE)
        routes.append({"prefix": "/small-" + alg, "backend": c.b.url, "rate_limit": small})
    far = {"algorithm": "gcra", "requests_per_minute": 1000000,
           "lease_max_units": 256, "lease_ms": 1000}
    routes.append({"prefix": "/far", "backend": c.b.url, "rate_limit": far})
    routes.append({"prefix": "/nolease", "backend": c.b.url,
                   "rate_limit": {"algorithm": "gcra", "requests_per_minute": 1000000}})
    cfg = h.base_config(c.redis, routes)
    c.config = h.write_gateway_config(td, cfg)
    c.stacks = [h.Lighttpd(td, config=c.config, max_procs=4, name="lt%d" % i) for i in (1, 2)]
    return c


_n = [0]
_lock = threading.Lock()


def new_client():
    with _lock:
        _n[0] += 1
        return "198.51.%d.%d" % (_n[0] // 250, _n[0] % 250 + 1)


def hammer(c, path, client, total, during=None):
    """total GETs from THREADS threads spread over both stacks; returns
    (admitted, rejected, seconds).  during() runs once, halfway."""
    counts = {"ok": 0, "429": 0, "other": []}
    lock = threading.Lock()
    per = total // THREADS
    half = threading.Event()
    done = [0]

    def one(i):
        for _ in range(per):
            port = c.stacks[i % 2].port
            try:
                st = h.request(port, "GET", path, headers={"X-Forwarded-For": client}).status
            except Exception:  # noqa: BLE001 (refused, reset, cut short)
                # a stack being restarted: the request goes to the other
                # one, so that every request is counted somewhere
                try:
                    st = h.request(c.stacks[(i + 1) % 2].port, "GET", path,
                                   headers={"X-Forwarded-For": client}).status
                except Exception as e:  # noqa: BLE001
                    st = "error %s" % e
            with lock:
                if st == 200:
                    counts["ok"] += 1
                elif st == 429:
                    counts["429"] += 1
                else:
                    counts["other"].append(st)
                done[0] += 1
                if done[0] == total // 2:
                    half.set()

    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(THREADS)]
    for t in ts:
        t.start()
    if during:
        half.wait(60)
        during()
    for t in ts:
        t.join(120)
    return counts, time.monotonic() - t0


def check_limit(alg, counts, secs):
    ok = counts["ok"]
    bound = LIMIT
    if alg in ("token_bucket", "gcra"):
        bound += int(LIMIT * (secs + 1) / 60) + 1   # what refills meanwhile
    print("# %s: %d admitted, %d rejected of %d in %.1fs (bound %d)"
          % (alg, ok, counts["429"], SENT, secs, bound))
    check(ok <= bound, "%s: %d admitted, limit %d" % (alg, ok, bound))
    check(ok >= 1600, "%s: only %d admitted of a limit of %d" % (alg, ok, LIMIT))


def wait_off_hour_edge():
    # fixed_window counts per aligned hour: do not straddle one
    left = 3600 - time.time() % 3600
    if left < 90:
        time.sleep(left + 1)


def exact_under_concurrency(c, alg):
    if alg == "fixed_window":
        wait_off_hour_edge()
    counts, secs = hammer(c, "/%s/echo" % alg, new_client(), SENT)
    eq(counts["other"], [], "%s: statuses other than 200/429" % alg)
    check_limit(alg, counts, secs)


for _alg in ALGS:
    def _t(c, alg=_alg):
        exact_under_concurrency(c, alg)
    _t.__name__ = "exact_with_leases_" + _alg
    test(_t)


@test
def exact_when_processes_restart(c):
    wait_off_hour_edge()

    def restart():
        # every process of the first stack ends (leases and all) and a
        # new set starts with nothing in hand
        c.stacks[0].stop()
        c.stacks[0] = h.Lighttpd(c.stacks[0].td, config=c.config, max_procs=4, name="lt1r")

    for alg in ("sliding_window",):
        counts, secs = hammer(c, "/%s/echo" % alg, new_client(), SENT, during=restart)
        check_limit(alg + " (restart)", counts, secs)
        for st in counts["other"]:
            check(str(st).startswith("error") or st in (502, 503),
                  "%s: status %r while a stack restarted" % (alg, st))


def wait_off_minute_edge():
    # fixed_window counts per aligned minute: 8 requests must not straddle one
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 1)


@test
def small_limit_is_exact(c):
    for alg in ALGS:
        if alg == "fixed_window":
            wait_off_minute_edge()
        client = new_client()
        port = c.stacks[0].port
        got = [h.request(port, "GET", "/small-%s/echo" % alg,
                         headers={"X-Forwarded-For": client}).status for _ in range(8)]
        eq(got, [200] * 5 + [429] * 3, "%s: 5 per minute with leases on" % alg)


def script_calls(redis):
    """EVALSHA calls Redis has run: the rate-limit scripts and the
    breaker's checks, without the metric counters."""
    return h.redis_commandstats(redis).get("evalsha", 0)


@test
def far_from_the_limit_few_round_trips(c):
    """800 requests from 8 threads over both stacks (8 processes): with
    leases, most are admitted without a script call.  Each process may
    also check the breaker once a second and lease again when its lease
    ends (1 s): the bound leaves room for that on a slow machine."""
    client = new_client()
    n = 800
    threads = 8

    def run(path):
        def one(i):
            for j in range(n // threads):
                r = h.request(c.stacks[(i + j) % 2].port, "GET", path,
                              headers={"X-Forwarded-For": client})
                expect_status(r, 200, path)
                check("RateLimit" in r.headers, "RateLimit headers on a leased admission")
                rem = int(r.headers["X-RateLimit-Remaining"])
                check(rem <= 1000000, "remaining %d" % rem)

        def go():
            ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(120)
        before = script_calls(c.redis)
        reads, secs = h.redis_reads_during(c.redis, go)
        return script_calls(c.redis) - before, reads, secs

    with_lease, reads_with, secs_with = run("/far/echo")
    without, reads_without, secs_without = run("/nolease/echo")
    print("# %d requests: %d script calls with leases (%.3f per request; %d round trips in all "
          "with the metric flushes) in %.1fs; %d script calls without (%d round trips) in %.1fs"
          % (n, with_lease, with_lease / n, reads_with, secs_with,
             without, reads_without, secs_without))
    per_second = 2 * 8  # breaker check and lease renewal, per process and second
    check(n <= without <= n + per_second * (int(secs_without) + 2),
          "script calls without leases: %d for %d requests" % (without, n))
    check(with_lease <= per_second * (int(secs_with) + 2) + n // 64,
          "%d script calls for %d requests with leases" % (with_lease, n))
    check(reads_with < reads_without / 2, "round trips with leases %d, without %d"
          % (reads_with, reads_without))


if __name__ == "__main__":
    h.main(setup)
