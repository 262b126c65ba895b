#!/usr/bin/env python3
"""GET /_metrics: pool-wide counters through real servers.

Stacks (built once by setup(), all on one redis-server):
  A, B   two lighttpd stacks of 4 apigw processes each, same config
         (key prefix "apigw:"); traffic is spread over both, and the
         counts read from either must be the sum.
  ap     Apache + mod_fcgid, same config and prefix, FcgidIdleTimeout 2:
         its processes are reaped when idle, and what they counted must
         not be lost with them.
  deny   lighttpd whose internal_allow leaves 127.0.0.1 out (own prefix):
         /_metrics is an ordinary path there.
  exit   lighttpd with its own prefix, stopped gracefully right after
         traffic: the counts flushed at exit must all be there.

Counts reach Redis at least once a second from each process (and the
process that answers /_metrics sends its own first), so every check polls
for up to 2 s after the last response.
"""

import json
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


POLL_S = 2.0
PROMTOOL = "/usr/bin/promtool"
DASHBOARD = os.path.join(h.TOP_SRCDIR, "contrib", "grafana", "apigw-dashboard.json")


class Ctx:
    pass


def routes(be):
    return [
        {"prefix": "/m", "backend": be},
        {"prefix": "/other", "backend": be},
        {"prefix": "/lim", "backend": be,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_hour": 2}},
    ]


def setup(td):
    c = Ctx()
    c.td = td
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    cfg = h.base_config(c.redis, routes(c.b.url),
                        gateway={"internal_allow": ["127.0.0.0/8"]})
    c.config = h.write_gateway_config(td, cfg, "apigw.conf")
    c.a = h.Lighttpd(td, config=c.config, max_procs=4, name="lighttpd-a")
    c.bb = h.Lighttpd(td, config=c.config, max_procs=4, name="lighttpd-b")
    c.ap = h.Apache(td, c.config, max_procs=4,
                    extra="FcgidIdleTimeout 2\nFcgidIdleScanInterval 1\n")
    deny = h.base_config(c.redis, routes(c.b.url),
                         gateway={"internal_allow": ["10.0.0.0/8"]})
    deny["redis"]["key_prefix"] = "deny:"
    c.deny = h.Lighttpd(td, config=h.write_gateway_config(td, deny, "deny.conf"),
                        max_procs=2, name="lighttpd-deny")
    ex = h.base_config(c.redis, routes(c.b.url))
    ex["redis"]["key_prefix"] = "exit:"
    c.exit_cfg = h.write_gateway_config(td, ex, "exit.conf")
    return c


# ---------------------------------------------------------------------------
# helpers

def metrics(port, **kw):
    r = h.request(port, "GET", "/_metrics", **kw)
    expect_status(r, 200, "/_metrics")
    eq(r.headers.get("Content-Type"), "application/json", "/_metrics Content-Type")
    return r.json()


def prometheus(port, accept=False):
    if accept:
        r = h.request(port, "GET", "/_metrics", headers={"Accept": "text/plain"})
    else:
        r = h.request(port, "GET", "/_metrics?format=prometheus")
    expect_status(r, 200, "/_metrics as Prometheus text")
    check(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
          "Prometheus Content-Type: %r" % r.headers.get("Content-Type"))
    return r.body.decode()


def flat(doc):
    """The numbers of a /_metrics document as {dotted.path: value}."""
    out = {}

    def walk(p, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(p + (k,), x)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[".".join(p)] = v
    walk((), doc)
    return out


def delta(before, after):
    fb, fa = flat(before), flat(after)
    return {k: fa[k] - fb.get(k, 0) for k in fa if fa[k] != fb.get(k, 0)
            and not k.endswith("sum_seconds") and ".buckets." not in k
            and k != "processes"}  # a gauge: processes seen lately


def poll(fn, want, what, timeout=POLL_S):
    """Calls fn() until it returns want (an exact match) or timeout s
    pass; fails with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == want:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%s: after %.1f s expected %r, got %r"
                                 % (what, timeout, want, got))
        time.sleep(0.1)


def spread_get(ports, path, n, status):
    """n GETs of path, from 4 threads, over ports in turn; every answer
    must be status."""
    errors = []

    def one(k):
        try:
            for i in range(k, n, 4):
                r = h.request(ports[i % len(ports)], "GET", path)
                if r.status != status:
                    errors.append("%s: %d, want %d" % (path, r.status, status))
        except Exception as e:  # re-raised below
            errors.append(repr(e))
    ts = [threading.Thread(target=one, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "; ".join(errors[:3]))


def reads_during(redis, fn):
    return h.redis_reads_during(redis, fn)[0]

def hgetall(redis, key):
    v = redis.command("HGETALL", key) or []
    return {v[i]: int(v[i + 1]) for i in range(0, len(v), 2)}


# ---------------------------------------------------------------------------

@test
def document_shape(c):
    doc = metrics(c.a.port)
    for k in ("requests_total", "requests_success", "requests_failed",
              "requests_rate_limited", "requests_client_error", "cache_hits",
              "cache_misses", "cache_size", "redis_errors", "fail_open"):
        check(isinstance(doc.get(k), int), "%s missing or not an integer: %r" % (k, doc.get(k)))
    # every configured backend has a breaker entry (closed until it fails)
    cb = doc["circuit_breakers"]
    check(isinstance(cb, dict) and cb, "circuit_breakers: %r" % (cb,))
    for url, st in cb.items():
        check(url.startswith("http://127.0.0.1:"), "breaker key %r" % url)
        eq(st.get("state"), "closed", "breaker state of %s" % url)
        check(isinstance(st.get("failures"), int), "breaker failures of %s: %r" % (url, st))
    eq(doc["redis"], "up", "redis")
    eq(sorted(doc["status_classes"]), ["1xx", "2xx", "3xx", "4xx", "5xx", "other"],
       "status classes")
    eq(sorted(doc["latency"]["buckets"]),
       sorted(["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
               "0.5", "1", "2.5", "5", "10", "30", "+Inf"]), "latency buckets")
    check("buckets" in doc["redis_round_trip"], "no Redis round-trip histogram")


@test
def exact_counts_over_processes_and_stacks(c):
    ports = [c.a.port, c.bb.port, c.ap.port]
    before = metrics(c.a.port)
    spread_get(ports, "/m/ok", 30, 200)              # 2xx
    spread_get(ports, "/other/x", 6, 200)            # 2xx on another route
    spread_get(ports, "/nowhere", 5, 404)            # 404: no route
    spread_get(ports, "/m/status/404", 4, 404)       # 4xx from the backend
    spread_get(ports, "/m/status/500", 3, 500)       # 5xx from the backend
    spread_get(ports, "/m/status/302", 2, 302)       # 3xx: success
    st = [h.request(c.a.port, "GET", "/lim/x").status for _ in range(3)]
    eq(st, [200, 200, 429], "statuses on the limited route (2 per hour)")
    # internal requests in between are not counted
    for p in ports:
        expect_status(h.request(p, "GET", "/_health"), 200, "/_health")
    want = {
        "requests_total": 53,
        "requests_success": 30 + 6 + 2 + 2,
        "requests_client_error": 5 + 4 + 1,
        "requests_failed": 3,
        "requests_rate_limited": 1,
        "status_classes.2xx": 38,
        "status_classes.3xx": 2,
        "status_classes.4xx": 10,
        "status_classes.5xx": 3,
        "routes./m.2xx": 30,
        "routes./m.3xx": 2,
        "routes./m.4xx": 4,
        "routes./m.5xx": 3,
        "routes./m.requests_total": 39,
        "routes./other.2xx": 6,
        "routes./other.requests_total": 6,
        "routes./lim.2xx": 2,
        "routes./lim.4xx": 1,
        "routes./lim.requests_total": 3,
        "latency.count": 53,
        # every request but the 5 without a route ran the rate-limit call
        "redis_round_trip.count": 48,
        "rate_limit.default.m.allowed": 45,
        "rate_limit.route.h.allowed": 2,
        "rate_limit.route.h.rejected": 1,
    }
    for p in ports:  # the same totals whichever stack answers
        poll(lambda: delta(before, metrics(p)), want, "deltas read through port %d" % p)
    doc = metrics(c.bb.port)
    check(re.match(r"^[0-9a-f]{16}$", doc["routes"]["/m"]["route_id"]),
          "route_id: %r" % doc["routes"]["/m"]["route_id"])
    b = doc["latency"]["buckets"]
    eq(b["+Inf"], doc["latency"]["count"], "+Inf bucket = count")
    check(b["0.001"] <= b["0.01"] <= b["1"] <= b["30"] <= b["+Inf"], "buckets are cumulative: %r" % b)


@test
def internal_requests_not_counted(c):
    before = metrics(c.a.port)
    for p in (c.a.port, c.bb.port, c.ap.port):
        for _ in range(4):
            expect_status(h.request(p, "GET", "/_health"), 200, "/_health")
            expect_status(h.request(p, "GET", "/_metrics"), 200, "/_metrics")
            expect_status(h.request(p, "GET", "//_metrics?format=prometheus"), 200,
                          "//_metrics (normalized)")
    time.sleep(1.5)  # every process has had its chance to flush
    eq(delta(before, metrics(c.bb.port)), {}, "counters moved by internal requests only")


@test
def internal_allow_enforced(c):
    before = hgetall(c.redis, "deny:m:counters")
    r = h.request(c.deny.port, "GET", "/_metrics")
    doc = expect_problem(r, 404, "/_metrics outside internal_allow")
    eq(doc.get("error"), "route not found", "error field")
    r = h.request(c.deny.port, "GET", "/_metrics?format=prometheus")
    expect_problem(r, 404, "/_metrics?format=prometheus outside internal_allow")
    # an ordinary request, so it is counted (as a 404) under this prefix
    poll(lambda: {k: v - before.get(k, 0) for k, v in hgetall(c.redis, "deny:m:counters").items()
                  if k in ("requests_total", "class:4xx", "requests_client_error")},
         {"requests_total": 2, "class:4xx": 2, "requests_client_error": 2},
         "the refused /_metrics requests, counted as ordinary 404s")


def exported_names(text):
    """Metric family names and types from the exposition's # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


@test
def prometheus_exposition(c):
    spread_get([c.a.port, c.bb.port], "/m/p", 4, 200)
    text = prometheus(c.a.port)
    eq(prometheus(c.bb.port, accept=True).split("\n")[0], text.split("\n")[0],
       "Accept: text/plain gives the same exposition")
    check(os.path.exists(PROMTOOL),
          "%s not found: install the Debian package prometheus" % PROMTOOL)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    eq((p.returncode, p.stdout.decode()), (0, ""), "promtool check metrics")
    types = exported_names(text)
    for name, typ in (("apigw_requests_total", "counter"),
                      ("apigw_requests_success_total", "counter"),
                      ("apigw_requests_failed_total", "counter"),
                      ("apigw_requests_rate_limited_total", "counter"),
                      ("apigw_route_requests_total", "counter"),
                      ("apigw_request_duration_seconds", "histogram"),
                      ("apigw_redis_round_trip_seconds", "histogram"),
                      ("apigw_redis_errors_total", "counter"),
                      ("apigw_cache_hits_total", "counter"),
                      ("apigw_cache_misses_total", "counter"),
                      ("apigw_cache_entries", "gauge"),
                      ("apigw_circuit_breaker_state", "gauge")):
        eq(types.get(name), typ, "type of " + name)
    les = re.findall(r'^apigw_request_duration_seconds_bucket\{le="([^"]+)"\} \d+$', text, re.M)
    eq(les, ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
             "1", "2.5", "5", "10", "30", "+Inf"], "duration buckets")
    check(re.search(r'^apigw_route_requests_total\{route="/m",route_id="[0-9a-f]{16}",'
                    r'class="2xx"\} [1-9]\d*$', text, re.M),
          "no per-route series for /m:\n" + text[:2000])
    doc = metrics(c.a.port)
    m = re.search(r'^apigw_requests_success_total (\d+)$', text, re.M)
    check(m and int(m.group(1)) <= doc["requests_success"], "success total in both formats")


PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "on",
    "ignoring", "group_left", "group_right", "max", "min", "avg", "count", "topk",
    "bottomk", "clamp_min", "clamp_max", "vector", "scalar", "and", "or", "unless",
    "le", "offset", "abs", "time", "label_replace", "sort", "sort_desc", "bool",
}


def promql_metric_names(expr):
    """Identifiers of expr that name series: outside {...} label matchers
    and [..] ranges, not functions, keywords or grouping labels."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"(?<![\w:])\d[\d.]*(?:[eE][-+]?\d+)?", "", expr)  # numbers
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        w = m.group(0)
        rest = expr[m.end():].lstrip()
        if w in PROMQL_WORDS or rest.startswith("(") or re.match(r"^\d", w):
            continue
        if w.startswith("$"):
            continue
        names.add(w)
    return names


@test
def grafana_dashboard_names_exported_metrics(c):
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)  # valid JSON, or this raises
    check(dash.get("panels"), "dashboard without panels")
    exprs = []

    def walk(v):
        if isinstance(v, dict):
            if isinstance(v.get("expr"), str):
                exprs.append(v["expr"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(dash)
    check(len(exprs) >= 6, "too few PromQL expressions: %r" % exprs)
    types = exported_names(prometheus(c.a.port))
    series = set()
    for name, typ in types.items():
        series.add(name)
        if typ == "histogram":
            series.update({name + "_bucket", name + "_sum", name + "_count"})
    for e in exprs:
        names = promql_metric_names(e)
        check(names, "no metric name found in %r" % e)
        for n in names:
            check(n in series, "dashboard expression %r names %s, which apigw does not export"
                  % (e, n))
    text = json.dumps(dash)
    for what in ("histogram_quantile(0.5", "histogram_quantile(0.99", "apigw_circuit_breaker_state",
                 "apigw_cache_hits_total", "apigw_redis_errors_total",
                 "apigw_requests_rate_limited_total"):
        check(what in text, "dashboard lacks %s" % what)


@test
def one_redis_round_trip_per_request(c):
    """Counting adds no round trip to a request: each of the 8 processes
    sends its counts at most once a second, one write of its own (Redis
    counts one socket read for it); the requests still cost one read each.
    So over N requests taking T seconds, reads are at least N and at most
    N + processes x (T + 1) (a process may flush once at the start of the
    window and then once in each second that follows)."""
    ports = [c.a.port, c.bb.port]
    spread_get(ports, "/m/warm", 16, 200)
    time.sleep(1.2)  # the warm-up's flushes are out
    n = 40
    t0 = time.monotonic()
    reads = reads_during(c.redis, lambda: spread_get(ports, "/m/rt", n, 200))
    elapsed = time.monotonic() - t0
    procs = len(c.a.worker_pids()) + len(c.bb.worker_pids())
    bound = n + procs * (int(elapsed) + 2)
    check(n <= reads <= bound, "Redis reads for %d requests in %.2f s over %d processes: %d, "
          "want %d..%d" % (n, elapsed, procs, reads, n, bound))
    # and with no requests at all, idle processes send nothing.  The
    # burst's last counts go out within a second of each process's last
    # request (later on a loaded machine): wait for a quiet 1.2 s first.
    for _ in range(10):
        if reads_during(c.redis, lambda: time.sleep(1.2)) == 0:
            break
    idle = reads_during(c.redis, lambda: time.sleep(2.5))
    eq(idle, 0, "Redis reads while the pool was idle")


@test
def exit_flush_lighttpd(c):
    lt = h.Lighttpd(c.td, config=c.exit_cfg, max_procs=4, name="lighttpd-exit")
    n = 24
    spread_get([lt.port], "/m/bye", n, 200)
    spread_get([lt.port], "/m/status/503", 2, 503)
    lt.stop()  # SIGTERM: each process flushes on its way out
    eq({k: v for k, v in hgetall(c.redis, "exit:m:counters").items()
        if k in ("requests_total", "requests_success", "requests_failed", "dur_count")},
       {"requests_total": n + 2, "requests_success": n, "requests_failed": 2,
        "dur_count": n + 2},
       "counts in Redis once lighttpd has stopped")


@test
def apache_reaped_processes_lose_nothing(c):
    before = metrics(c.a.port)
    spread_get([c.ap.port], "/other/reap", 12, 200)
    check(c.ap.worker_pids(), "no mod_fcgid processes after traffic")
    h.wait_for(lambda: not c.ap.worker_pids(), timeout=20,
               what="mod_fcgid to reap its idle apigw processes")
    poll(lambda: delta(before, metrics(c.a.port)).get("routes./other.2xx"), 12,
         "requests through Apache whose processes were reaped")


if __name__ == "__main__":
    h.main(setup)
