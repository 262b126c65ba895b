#!/usr/bin/env python3
"""Circuit breaker and bulkhead through the whole gateway.

Stacks (all built once by setup(), on one Redis and one stub backend):
  lt     lighttpd with 4 apigw processes (JSON access log to a file)
  lt2    a second lighttpd stack of 2 processes, same routes and Redis:
         breakers are shared between gateways
  ap     Apache with mod_fcgid, same routes and Redis (access log off)

Every test uses routes of its own whose backend URLs differ (the stub
backend matches endpoints on the last path segments, so
http://127.0.0.1:P/<name> is the same backend under another breaker).
circuit_breaker: failure_threshold 3, recovery_timeout_s 2,
success_threshold 2.  Backend calls are counted with the stub's key=
query counters.  The Redis failure test comes last.
"""

import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, test  # noqa: E402

FAIL_THRESHOLD = 3
RECOVERY_S = 2
SUCCESS_THRESHOLD = 2
PREFIX = "apigw:"

ROUTES = {
    # name: extra route settings
    "open": {}, "open2": {"backend_as": "open"},
    "conn": {"closed": True},
    "half": {"timeout_ms": 1500}, "reopen": {}, "shared": {},
    "hung": {"timeout_ms": 400},
    "bulk": {"max_concurrent": 2, "timeout_ms": 5000}, "healthy": {},
    "rt": {}, "rtbulk": {"max_concurrent": 10}, "rtfail": {},
    "local": {},
    "ap": {}, "ap2": {"backend_as": "ap"},
    "stalecache": {"cache_ttl_s": 1, "cache_stale_if_error_s": 60},
}


class Ctx:
    pass




def backend_url(c, name):
    spec = ROUTES[name]
    if spec.get("closed"):
        return "http://127.0.0.1:%d/%s" % (c.closed, name)
    return "%s/%s" % (c.b.url, spec.get("backend_as", name))


def routes(c):
    out = []
    for name, spec in ROUTES.items():
        r = {"prefix": "/" + name, "backend": backend_url(c, name), "strip_prefix": True}
        for k in ("timeout_ms", "max_concurrent", "cache_ttl_s", "cache_stale_if_error_s"):
            if k in spec:
                r[k] = spec[k]
        if spec.get("closed"):
            r["connect_timeout_ms"] = 500
        out.append(r)
    return out


def setup(td):
    c = Ctx()
    c.td = td
    c.redis = h.RestartableRedis(td)
    c.b = h.start_backend(td)
    c.closed = h.closed_port(td)
    c.access_log = td.join("access.log")
    cb = {"failure_threshold": FAIL_THRESHOLD, "recovery_timeout_s": RECOVERY_S,
          "success_threshold": SUCCESS_THRESHOLD, "failure_statuses": [502, 503, 504]}
    cfg = h.base_config(c.redis, routes(c), circuit_breaker=cb,
                        log={"access": c.access_log, "format": "json"})
    c.lt = h.Lighttpd(td, config=h.write_gateway_config(td, cfg), max_procs=4)
    c.lt2 = h.Lighttpd(td, config=h.write_gateway_config(td, cfg, "apigw2.conf"),
                       max_procs=2, name="lighttpd2")
    apcfg = h.base_config(c.redis, routes(c), circuit_breaker=cb)
    c.ap = h.Apache(td, h.write_gateway_config(td, apcfg, "apigw-apache.conf"), max_procs=4)
    return c


_n = [0]
_lock = threading.Lock()


def new_key(what):
    with _lock:
        _n[0] += 1
        return "%s%d-%d" % (what, _n[0], time.monotonic_ns())


def get(port, path, timeout=10.0):
    return h.request(port, "GET", path, timeout=timeout)


def expect_open(r, what, retry_after=None):
    """A 503 from the breaker, not from a backend."""
    doc = expect_problem(r, 503, what)
    eq(doc["error"], "circuit breaker open", what + ": error field")
    ra = r.headers.get("Retry-After")
    check(ra is not None and ra.isdigit() and 1 <= int(ra) <= RECOVERY_S,
          "%s: Retry-After %r" % (what, ra))
    if retry_after is not None:
        eq(int(ra), retry_after, what + ": Retry-After")
    return doc


def fail_n(port, route, key, n=FAIL_THRESHOLD, status=503):
    for i in range(n):
        r = get(port, "/%s/status/%d?key=%s" % (route, status, key))
        expect_status(r, status, "%s failure %d" % (route, i + 1))
        eq(r.json().get("from"), "backend", "failure %d came from the backend" % (i + 1))


def parallel(fns):
    out, errs = [None] * len(fns), []

    def run(i, f):
        try:
            out[i] = f()
        except BaseException as e:  # reported below
            errs.append(e)
    ts = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    if errs:
        raise errs[0]
    return out


def wait_half_open():
    time.sleep(RECOVERY_S + 0.2)


def open_then_close(c, port, route, other_route, what):
    """Threshold failures open the breaker of route's backend; every route
    of that backend short-circuits without a backend call; after the
    recovery timeout success_threshold trials close it."""
    key = new_key(route)
    fail_n(port, route, key)
    k2 = new_key(route)
    r = get(port, "/%s/echo?key=%s" % (route, k2))
    expect_open(r, what + ": request after %d failures" % FAIL_THRESHOLD)
    r = get(port, "/%s/echo?key=%s" % (other_route, k2))
    expect_open(r, what + ": another route on the same backend")
    eq(c.b.calls(key), FAIL_THRESHOLD, what + ": backend calls of the failures")
    eq(c.b.calls(k2), 0, what + ": backend calls while open")
    wait_half_open()
    for i in range(SUCCESS_THRESHOLD):
        r = get(port, "/%s/echo?key=%s" % (route, k2))
        expect_status(r, 200, what + ": trial %d" % (i + 1))
    eq(c.b.calls(k2), SUCCESS_THRESHOLD, what + ": trials that reached the backend")
    st = parallel([lambda: get(port, "/%s/echo?key=%s" % (other_route, k2)).status] * 8)
    eq(st, [200] * 8, what + ": statuses once closed")


@test
def threshold_opens_every_route_short_circuits_lighttpd(c):
    open_then_close(c, c.lt.port, "open", "open2", "lighttpd")


@test
def threshold_opens_every_route_short_circuits_apache(c):
    open_then_close(c, c.ap.port, "ap", "ap2", "apache")


@test
def connect_errors_count(c):
    for i in range(FAIL_THRESHOLD):
        doc = expect_problem(get(c.lt.port, "/conn/echo"), 502, "connect error %d" % (i + 1))
        eq(doc["error"], "backend unreachable", "connect error's error field")
    expect_open(get(c.lt.port, "/conn/echo"), "after connect errors", retry_after=RECOVERY_S)
    # the access log tells the breaker's 503 from the backend errors
    def errors():
        out = []
        for line in h.read_text(c.access_log).splitlines():
            e = json.loads(line)
            if e.get("route") == "/conn":
                out.append((e["status"], e["error"]))
        return out
    h.wait_for(lambda: len(errors()) >= FAIL_THRESHOLD + 1, what="access log lines")
    eq(errors(), [(502, "backend unreachable")] * FAIL_THRESHOLD +
       [(503, "circuit breaker open")], "access log status and error of /conn")


@test
def half_open_admits_one_trial_under_load(c):
    key = new_key("half")
    fail_n(c.lt.port, "half", key)
    wait_half_open()
    k2 = new_key("half")
    # The trial hangs until the route's timeout (1.5 s): a failure, so the
    # breaker opens again.  lighttpd queues some of the 16 behind the
    # trial on its process; those come after it and find the breaker
    # open again, so whatever the order exactly one reaches the backend.
    rs = parallel([lambda: get(c.lt.port, "/half/slow?ms=3000&key=%s" % k2)] * 16)
    statuses = sorted(r.status for r in rs)
    eq(statuses, [503] * 15 + [504], "statuses of 16 requests while half-open")
    for r in rs:
        if r.status == 503:
            expect_open(r, "half-open, trial taken")
    check(any(r.headers.get("Retry-After") == "1" for r in rs if r.status == 503),
          "no Retry-After: 1 while the trial ran")
    eq(c.b.calls(k2), 1, "backend calls during the half-open burst")
    # successes close it
    wait_half_open()
    for i in range(SUCCESS_THRESHOLD):
        expect_status(get(c.lt.port, "/half/echo?key=%s" % k2), 200, "trial %d" % (i + 1))
    st = parallel([lambda: get(c.lt.port, "/half/echo?key=%s" % k2).status] * 8)
    eq(st, [200] * 8, "statuses once closed")
    eq(c.b.calls(k2), 1 + SUCCESS_THRESHOLD + 8, "backend calls in all")


@test
def failed_trial_reopens(c):
    key = new_key("reopen")
    fail_n(c.lt.port, "reopen", key)
    wait_half_open()
    # one successful trial, then a failed one: open again, for the whole
    # recovery timeout
    expect_status(get(c.lt.port, "/reopen/echo?key=%s" % key), 200, "first trial")
    r = get(c.lt.port, "/reopen/status/503?key=%s" % key)
    expect_status(r, 503, "failed trial")
    eq(r.json().get("from"), "backend", "the failed trial's answer is the backend's")
    expect_open(get(c.lt.port, "/reopen/echo?key=%s" % key), "after the failed trial",
                retry_after=RECOVERY_S)
    eq(c.b.calls(key), FAIL_THRESHOLD + 2, "backend calls")


def lease_key(c, route):
    url = backend_url(c, route)
    return "%s{b:%s}:t" % (PREFIX, hashlib.sha256(url.encode()).hexdigest()[:32])


@test
def hung_or_crashed_trial_does_not_wedge(c):
    key = new_key("hung")
    fail_n(c.lt.port, "hung", key)
    wait_half_open()
    # a trial that hangs: the route's timeout ends it, a failure
    t0 = time.monotonic()
    doc = expect_problem(get(c.lt.port, "/hung/slow?ms=3000&key=%s" % key), 504, "hung trial")
    eq(doc["error"], "backend timeout", "hung trial's error")
    check(time.monotonic() - t0 < 2, "the hung trial took %.1fs" % (time.monotonic() - t0))
    expect_open(get(c.lt.port, "/hung/echo?key=%s" % key), "after the hung trial",
                retry_after=RECOVERY_S)
    wait_half_open()
    # a trial whose process died: its lease (as a crashed process leaves
    # it) holds the trial until it expires, never longer
    eq(c.redis.command("SET", lease_key(c, "hung"), "crashed", "PX", "1500"), "OK", "SET lease")
    expect_open(get(c.lt.port, "/hung/echo?key=%s" % key), "lease of a crashed trial",
                retry_after=1)
    time.sleep(1.6)
    expect_status(get(c.lt.port, "/hung/echo?key=%s" % key), 200, "trial after the lease expired")
    expect_status(get(c.lt.port, "/hung/echo?key=%s" % key), 200, "second trial")
    eq(c.redis.command("EXISTS", lease_key(c, "hung")), 0, "lease left behind")
    eq(c.b.calls(key), FAIL_THRESHOLD + 3, "backend calls")


@test
def shared_across_two_gateways(c):
    key = new_key("shared")
    fail_n(c.lt.port, "shared", key)
    k2 = new_key("shared")
    for i in range(4):
        expect_open(get(c.lt2.port, "/shared/echo?key=%s" % k2), "second gateway %d" % i)
    eq(c.b.calls(k2), 0, "backend calls through the second gateway while open")
    wait_half_open()
    for i in range(SUCCESS_THRESHOLD):
        expect_status(get(c.lt2.port, "/shared/echo?key=%s" % k2), 200, "trial via lt2")
    st = parallel([lambda: get(c.lt.port, "/shared/echo?key=%s" % k2).status] * 8)
    eq(st, [200] * 8, "first gateway once the second closed it")


@test
def bulkhead_bounds_a_hung_route(c):
    key = new_key("bulk")
    results = {}

    def slow(i):
        results[i] = get(c.lt.port, "/bulk/slow?ms=3000&key=%s" % key)
    ts = [threading.Thread(target=slow, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    h.wait_for(lambda: c.b.calls(key) == 2, what="two slow requests at the backend")
    for i in range(2):
        t0 = time.monotonic()
        r = get(c.lt.port, "/bulk/slow?ms=3000&key=%s" % key)
        doc = expect_problem(r, 503, "third slow request")
        eq(doc["error"], "too many concurrent requests", "bulkhead error")
        eq(r.headers.get("Retry-After"), "1", "bulkhead Retry-After")
        check(time.monotonic() - t0 < 1, "the bulkhead's 503 took %.1fs" % (time.monotonic() - t0))
    for i in range(5):
        t0 = time.monotonic()
        expect_status(get(c.lt.port, "/healthy/echo"), 200, "healthy route while /bulk hangs")
        check(time.monotonic() - t0 < 1, "healthy route took %.1fs" % (time.monotonic() - t0))
    for t in ts:
        t.join(20)
    eq([results[i].status for i in range(2)], [200, 200], "the two slow requests")
    eq(c.b.calls(key), 2, "backend calls of /bulk")
    # their slots are given back
    st = parallel([lambda: get(c.lt.port, "/bulk/echo").status] * 2)
    eq(st, [200, 200], "after the slow ones")


def reads_during(redis, fn):
    """Redis reads while fn() ran, a deferred write after the last response
    included; the time it took goes to _elapsed."""
    got, _elapsed[0] = h.redis_reads_during(redis, fn, settle=0.2)
    return got

_elapsed = [0.0]
PROCS = 4


def reads_near(got, want, what, upto=None):
    """got is want (or in [want, upto]) plus the metric flushes: each of
    the PROCS processes sends its counts in one write at most once a
    second, never on a request's path."""
    flushes = PROCS * (int(_elapsed[0]) + 2)
    hi = (upto if upto is not None else want) + flushes
    check(want <= got <= hi, "%s: %d, expected %d%s (+ up to %d metric flushes)"
          % (what, got, want, "" if upto is None else " to %d" % upto, flushes))


def seq(port, paths, what, pause=0):
    for i, (p, status) in enumerate(paths):
        expect_status(get(port, p), status, "%s %d" % (what, i + 1))
        time.sleep(pause)


@test
def one_redis_round_trip_per_request(c):
    n = 20
    seq(c.lt.port, [("/rt/echo", 200)] * 8, "warm-up")
    # A healthy backend behind a closed breaker: the check rides in the
    # request's one batch and a success needs no report.
    reads_near(reads_during(c.redis, lambda: parallel(
        [lambda: seq(c.lt.port, [("/rt/echo", 200)] * 5, "/rt")] * 4)), n,
        "Redis reads for %d requests" % n)
    # A bulkhead route: the slot is given back by a deferred write sent
    # right after the response (never waited for), so Redis reads each
    # request twice: its batch, then the release.  The client has its
    # answer before that write goes out, so a next request that follows at
    # once may find its batch read together with the release (one read
    # for both): sequential requests with a pause make the count exact.
    seq(c.lt.port, [("/rtbulk/echo", 200)] * 4, "warm-up")
    m = 10
    reads_near(reads_during(c.redis, lambda: seq(c.lt.port, [("/rtbulk/echo", 200)] * m,
                                                 "/rtbulk", pause=0.05)),
               2 * m, "Redis reads for %d bulkhead requests (batch + deferred release)" % m)
    # Failures are reported by a deferred write each; the first success
    # after them too (it resets the count), the next one costs nothing.
    seq(c.lt.port, [("/rtfail/echo", 200)] * 4, "warm-up")
    reads_near(reads_during(c.redis, lambda: seq(c.lt.port, [
        ("/rtfail/status/503", 503), ("/rtfail/status/503", 503),
        ("/rtfail/echo", 200), ("/rtfail/echo", 200)], "/rtfail", pause=0.05)),
        2 + 2 + 2 + 1, "Redis reads for fail, fail, ok, ok")
    # and without the pause: never more reads than that, never fewer
    # than one per request
    seq(c.lt.port, [("/rtbulk/echo", 200)] * 2, "warm-up")
    got = reads_during(c.redis, lambda: seq(c.lt.port, [("/rtbulk/echo", 200)] * m, "/rtbulk"))
    reads_near(got, m, "Redis reads for %d back-to-back bulkhead requests" % m, upto=2 * m)
    # every request waited for exactly one round trip
    lines = [json.loads(l) for l in h.read_text(c.access_log).splitlines()]
    rts = {e["redis_rt"] for e in lines if e.get("route") in ("/rt", "/rtbulk", "/rtfail")}
    eq(rts, {1}, "redis_rt in the access log")


@test
def per_process_fallback_when_redis_is_down(c):
    """Last: stops Redis.  Each process counts failures on its own, so a
    dead backend sees at most processes x threshold calls (plus one trial
    per process per recovery timeout); when Redis is back its (absent,
    closed) state takes over at once."""
    c.redis.stop()
    key = new_key("local")
    t0 = time.monotonic()
    statuses = []
    for i in range(10):
        statuses += parallel([lambda: get(c.lt.port, "/local/status/503?key=%s" % key).status] * 4)
    elapsed = time.monotonic() - t0
    calls = c.b.calls(key)
    bound = 4 * FAIL_THRESHOLD + 4 * (1 + int(elapsed / RECOVERY_S))
    check(calls <= bound, "backend calls with Redis down: %d > %d (%.1fs)" % (calls, bound, elapsed))
    check(statuses.count(503) == 40, "statuses %r" % statuses)
    check(calls < 40, "the breaker never opened with Redis down (%d calls)" % calls)
    r = get(c.lt.port, "/local/echo?key=%s" % key)
    expect_open(r, "with Redis down")
    c.redis.start()
    # the store reconnects after its backoff (at most 1 s); then the
    # shared state (absent: closed) decides
    k2 = new_key("local")

    def all_ok():
        st = parallel([lambda: get(c.lt.port, "/local/echo?key=%s" % k2).status] * 8)
        return st == [200] * 8
    h.wait_for(all_ok, timeout=15, interval=0.5, what="Redis's state to take over")


@test
def open_breaker_serves_stale_cache_entry(c):
    # a cached route whose backend starts failing: stale-if-error answers
    # while the failures are counted, and once the breaker is open the
    # stale entry stands in for its 503 without contacting the backend
    k = new_key("stale")
    url = "/stalecache/moded?key=" + k
    r = get(c.lt.port, url)
    expect_status(r, 200, "fill")
    body = r.body
    h.request(c.b.port, "GET", "/_mode?key=%s&status=503" % k)
    n0 = c.b.calls(k)  # the fill and the /_mode call carry the key too
    time.sleep(1.5)
    for i in range(FAIL_THRESHOLD + 2):
        r = get(c.lt.port, url)
        expect_status(r, 200, "request %d while the backend fails" % (i + 1))
        eq(r.headers.get("Cache-Status"), "apigw; hit; detail=stale", "stale entry %d" % (i + 1))
        eq(r.body, body, "the stale body")
    n = c.b.calls(k)
    check(n - n0 <= FAIL_THRESHOLD, "backend reached %d times for %d requests with "
          "a threshold of %d" % (n - n0, FAIL_THRESHOLD + 2, FAIL_THRESHOLD))
    r = get(c.lt.port, url)
    eq(r.headers.get("Cache-Status"), "apigw; hit; detail=stale", "with the breaker open")
    eq(c.b.calls(k), n, "backend calls once the breaker is open")
    h.request(c.b.port, "GET", "/_mode?key=%s&status=200" % k)


if __name__ == "__main__":
    h.main(setup)
