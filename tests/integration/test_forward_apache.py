#!/usr/bin/env python3
"""Forwarding through a private Apache (mpm_event) + mod_fcgid, the gateway
run as an FcgidWrapper "virtual" on <Location />: a representative subset of
test_forward_lighttpd.py.  Apache itself rewrites Connection and drops
Keep-Alive/TE/Upgrade and header names with underscores, so
hop-by-hop removal is asserted through lighttpd instead."""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, echo_header, test  # noqa: E402

MAX_BODY = 200000


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b1 = h.start_backend(td, "b1")
    routes = [
        {"prefix": "/api", "backend": c.b1.url},
        {"prefix": "/ro", "backend": c.b1.url, "methods": ["GET"]},
        {"prefix": "/dead", "backend": "http://127.0.0.1:%d" % h.closed_port(td),
         "connect_timeout_ms": 500},
        {"prefix": "/retry", "backend": c.b1.url, "retries": 2},
    ]
    c.access_log = td.join("access.json")
    # the gateway runs as www-data under Apache: it must be able to append
    open(c.access_log, "w").close()
    h.chown(c.access_log, "www-data")
    cfg = h.base_config(c.redis, routes, gateway={"max_body_bytes": MAX_BODY},
                        log={"access": c.access_log, "format": "json"})
    c.config = h.write_gateway_config(td, cfg)
    c.ap = h.Apache(td, c.config, max_procs=6, max_request_len=1 << 20)
    c.port = c.ap.port
    # mod_fcgid spawns lazily: the first request may take a moment
    h.wait_for(lambda: h.request(c.port, "GET", "/_health", timeout=10).status == 200,
               timeout=15, interval=0.3, what="the first request through Apache (%s)" % c.ap.log_tail())
    return c


def get(c, path, **kw):
    return h.request(c.port, "GET", path, **kw)


def echo(c, path, method="GET", **kw):
    r = h.request(c.port, method, path, **kw)
    expect_status(r, 200, "%s %s" % (method, path))
    return r.json()


@test
def health_ok(c):
    r = get(c, "/_health")
    expect_status(r, 200)
    doc = r.json()
    eq(doc.get("status"), "ok", "/_health status")
    eq(doc.get("redis"), "up", "/_health redis")


@test
def runs_as_fcgid_children(c):
    pids = c.ap.worker_pids()
    check(pids, "no apigw process below apache2 pid %s" % c.ap.pid)


@test
def no_route_404(c):
    for path in ("/nope", "/apiX", "/"):
        expect_problem(get(c, path), 404, path)


@test
def method_not_allowed_405(c):
    r = h.request(c.port, "DELETE", "/ro/x?key=ap405")
    expect_problem(r, 405)
    allow = {m.strip() for m in (r.headers.get("allow") or "").split(",")}
    check("GET" in allow and "DELETE" not in allow, "Allow header %r" % r.headers.get("allow"))
    eq(c.b1.calls("ap405"), 0, "backend calls for a 405")


@test
def forwarding(c):
    doc = echo(c, "/api//x/./y/../z?a=1&b=%20x&&c", headers={
        "Host": "front.example", "X-Forwarded-For": "10.9.8.7", "X-Custom": "v",
        "X-Consumer-ID": "evil"})
    eq(doc["server"], "b1", "backend")
    eq(doc["path"], "/api/x/z", "normalized path")
    eq(doc["query"], "a=1&b=%20x&&c", "query string")
    eq(echo_header(doc, "x-custom"), "v", "custom header")
    eq(echo_header(doc, "host"), "127.0.0.1:%d" % c.b1.port, "Host")
    eq(echo_header(doc, "x-forwarded-host"), "front.example", "X-Forwarded-Host")
    eq(echo_header(doc, "x-forwarded-proto"), "http", "X-Forwarded-Proto")
    eq(echo_header(doc, "x-forwarded-for"), "10.9.8.7, 127.0.0.1", "X-Forwarded-For")
    check(echo_header(doc, "x-consumer-id") is None, "client X-Consumer-ID forwarded")


@test
def authorization_passed(c):
    # CGIPassAuth On
    doc = echo(c, "/api/echo", headers={"Authorization": "Bearer abc"})
    eq(echo_header(doc, "authorization"), "Bearer abc", "Authorization at the backend")


@test
def request_body(c):
    body = "".join(chr(48 + i % 60) for i in range(150000))  # above mod_fcgid's 128 KiB default
    doc = echo(c, "/api/echo", "POST", body=body, headers={"Content-Type": "text/plain"})
    eq(doc["body_len"], len(body), "body length")
    check(doc["body"] == body, "body differs")


@test
def request_body_limit_413(c):
    r = h.request(c.port, "POST", "/api/echo?key=ap413", body="x" * (MAX_BODY + 1))
    expect_problem(r, 413)
    eq(c.b1.calls("ap413"), 0, "backend calls for a 413")


@test
def backend_unreachable_502(c):
    expect_problem(get(c, "/dead/x"), 502)


@test
def backend_503_passed_through(c):
    r = get(c, "/retry/flaky?key=ap503&fail=10")
    expect_status(r, 503)
    eq(r.json().get("from"), "backend", "backend body")
    eq(c.b1.calls("ap503"), 3, "attempts")


@test
def request_id(c):
    r = get(c, "/api/echo", headers={"X-Request-ID": "apache-rid-1"})
    expect_status(r, 200)
    eq(echo_header(r.json(), "x-request-id"), "apache-rid-1", "id at the backend")
    eq(r.headers.get("x-request-id"), "apache-rid-1", "id echoed")
    r = get(c, "/api/echo")
    gen = r.headers.get("x-request-id")
    check(gen and h.REQUEST_ID_RE.match(gen), "generated id %r" % gen)
    eq(echo_header(r.json(), "x-request-id"), gen, "generated id at the backend")


@test
def encoded_slash_rejected(c):
    # AllowEncodedSlashes NoDecode lets %2F reach apigw, which must refuse it
    r = h.raw_request(c.port, "GET /api/a%2Fb?key=ap2f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    expect_problem(r, 400, "/api/a%2Fb")
    r = h.raw_request(c.port, "GET /api/a%5Cb?key=ap2f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    expect_problem(r, 400, "/api/a%5Cb")
    eq(c.b1.calls("ap2f"), 0, "backend calls")


@test
def big_response_streams(c):
    r, n, sha = h.stream_get(c.port, "/api/big?mb=20", timeout=60)
    eq((r.status, n, sha), (200,) + h.big_digest(20), "20 MB download through Apache")


@test
def concurrent_requests(c):
    import threading
    results = []

    def one(i):
        try:
            results.append(echo(c, "/api/slow?ms=300&i=%d" % i)["query"])
        except Exception as e:
            results.append(e)
    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    errors = [r for r in results if isinstance(r, Exception)]
    check(not errors, "concurrent requests failed: %r" % errors)
    eq(len(results), 4, "answers")


@test
def access_log_written(c):
    expect_status(get(c, "/api/echo", headers={"X-Request-ID": "apache-log-1"}), 200)
    h.wait_for(lambda: "apache-log-1" in h.read_text(c.access_log), timeout=3,
               what="access log line for apache-log-1")


if __name__ == "__main__":
    h.main(setup)
