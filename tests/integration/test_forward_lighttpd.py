#!/usr/bin/env python3
"""Forwarding foundation through lighttpd + mod_fastcgi (bin-path mode).

Main stack: redis, two stub backends, lighttpd spawning 2 apigw processes,
CORS on, JSON access log.  A second stack with one apigw process (created
on first use) covers keep-alive, the 100 MB stream, client disconnects, the
combined access log and Redis going down."""

import json
import os
import re
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, echo_header, test  # noqa: E402

MAX_BODY = 65536


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.td = td
    c.redis = h.start_redis(td)
    c.b1 = h.start_backend(td, "b1")
    c.b2 = h.start_backend(td, "b2")
    dead = h.closed_port(td)  # connects are refused there
    c.access_log = td.join("access.json")
    routes = [
        {"prefix": "/api", "backend": c.b1.url},
        {"prefix": "/api/v2", "backend": c.b2.url},
        {"prefix": "/api/public", "backend": c.b2.url},
        {"prefix": "/ro", "backend": c.b1.url, "methods": ["GET", "HEAD"]},
        {"prefix": "/strip", "backend": c.b1.url, "strip_prefix": True},
        {"prefix": "/short", "backend": c.b1.url, "timeout_ms": 500},
        {"prefix": "/dead", "backend": "http://127.0.0.1:%d" % dead, "connect_timeout_ms": 500},
        {"prefix": "/retry", "backend": c.b1.url, "retries": 2},
        {"prefix": "/retryshort", "backend": c.b1.url, "retries": 1, "timeout_ms": 300},
        {"prefix": "/deadretry", "backend": "http://127.0.0.1:%d" % dead, "retries": 2,
         "connect_timeout_ms": 300},
    ]
    cfg = h.base_config(
        c.redis, routes,
        # 127.0.0.2 (also loopback) is an outsider: neither internal nor trusted
        gateway={"max_body_bytes": MAX_BODY, "internal_allow": ["127.0.0.1/32"],
                 "trusted_proxies": ["127.0.0.1/32"]},
        cors={"enabled": True, "allow_origins": ["*"], "max_age_s": 123},
        log={"access": c.access_log, "format": "json"})
    c.config = h.write_gateway_config(td, cfg)
    c.lt = h.Lighttpd(td, config=c.config, max_procs=2)
    c.port = c.lt.port
    c._single = None
    return c


def get(c, path, **kw):
    return h.request(c.port, "GET", path, **kw)


def echo(c, path, method="GET", **kw):
    r = h.request(c.port, method, path, **kw)
    expect_status(r, 200, "%s %s" % (method, path))
    return r.json()


def single(c):
    """The one-process stack (max-procs 1), started on first use."""
    if c._single is None:
        s = Ctx()
        s.redis = h.start_redis(c.td, "redis-single")
        s.access_log = c.td.join("access-single.log")
        cfg = h.base_config(s.redis, [{"prefix": "/api", "backend": c.b1.url}],
                            log={"access": s.access_log, "format": "combined"})
        s.config = h.write_gateway_config(c.td, cfg, "apigw-single.conf")
        s.lt = h.Lighttpd(c.td, config=s.config, max_procs=1, name="lighttpd-single")
        s.port = s.lt.port
        c._single = s
    return c._single


def single_worker(s):
    pids = s.lt.worker_pids()
    eq(len(pids), 1, "apigw processes under the max-procs 1 lighttpd")
    return pids[0]


# ---- internal endpoint ------------------------------------------------------

@test
def health_ok(c):
    r = get(c, "/_health")
    expect_status(r, 200, "/_health")
    doc = r.json()
    eq(doc.get("status"), "ok", "/_health status")
    eq(doc.get("redis"), "up", "/_health redis")


@test
def health_only_for_internal_clients(c):
    # From 127.0.0.2 (not in internal_allow) /_health is an ordinary path:
    # no route matches it.
    expect_problem(get(c, "/_health", source="127.0.0.2"), 404, "/_health from an outsider")
    # an untrusted peer cannot claim to be internal through X-Forwarded-For
    expect_problem(get(c, "/_health", source="127.0.0.2", headers={"X-Forwarded-For": "127.0.0.1"}),
                   404, "/_health from an outsider with a forged X-Forwarded-For")
    # through a trusted proxy (127.0.0.1) the client is the XFF address
    expect_problem(get(c, "/_health", headers={"X-Forwarded-For": "203.0.113.9"}), 404,
                   "/_health for an external client behind a trusted proxy")


# ---- routing ----------------------------------------------------------------

@test
def no_route_404(c):
    for path in ("/nope", "/", "/apiX", "/apiX/y", "/ap"):
        expect_problem(get(c, path), 404, path)


@test
def prefix_segment_boundary(c):
    for path in ("/api", "/api/", "/api/x", "/api/x/y"):
        doc = echo(c, path)
        eq(doc["server"], "b1", "backend for " + path)
        eq(doc["path"], path, "forwarded path for " + path)


@test
def longest_prefix_wins(c):
    eq(echo(c, "/api/v2/users")["server"], "b2", "/api/v2/users -> /api/v2 route")
    eq(echo(c, "/api/v2")["server"], "b2", "/api/v2 -> /api/v2 route")
    eq(echo(c, "/api/v2x")["server"], "b1", "/api/v2x -> /api route (not a segment match)")


@test
def method_not_allowed_405(c):
    r = h.request(c.port, "POST", "/ro/x?key=ro405", body="x")
    expect_problem(r, 405, "POST on a GET/HEAD route")
    allow = r.headers.get("allow")
    check(allow is not None, "405 without an Allow header: %r" % r.headers)
    methods = {m.strip().upper() for m in allow.split(",")}
    check({"GET", "HEAD"} <= methods and "POST" not in methods, "Allow header %r" % allow)
    eq(c.b1.calls("ro405"), 0, "backend calls for a 405")
    eq(echo(c, "/ro/x")["method"], "GET", "GET on the GET/HEAD route")
    r = h.request(c.port, "HEAD", "/ro/x")
    expect_status(r, 200, "HEAD on the GET/HEAD route")
    eq(r.body, b"", "HEAD response body")


# ---- path normalization -------------------------------------------------------

@test
def path_normalized_before_forwarding(c):
    cases = [
        ("/api//x/./y/../z", "/api/x/z", "b1"),
        ("/api/x//y///z", "/api/x/y/z", "b1"),
        ("/api/%7Euser/%41%2D%5f", "/api/~user/A-_", "b1"),
        ("/api/a%20b", "/api/a%20b", "b1"),
        ("/api/public/../admin", "/api/admin", "b1"),
        ("/api/./public/x", "/api/public/x", "b2"),
        ("/x/../api/v2/y", "/api/v2/y", "b2"),
        ("/api/caf%C3%A9", "/api/caf%C3%A9", "b1"),
    ]
    for raw, want, server in cases:
        doc = echo(c, raw)
        eq(doc["path"], want, "path forwarded for %s" % raw)
        eq(doc["server"], server, "backend chosen for %s" % raw)


@test
def bad_paths_400(c):
    # lighttpd itself answers %00 with 400: status only there.
    apigw_cases = ["/api/a%2Fb", "/api/a%2fb", "/api/a%5Cb", "/api/a%5cb", "/api/a\\b",
                   "/../etc/passwd", "/api/../../x", "/api/%zz", "/api/%4", "/api/x%"]
    for path in apigw_cases:
        r = h.raw_request(c.port, "GET %s?key=bad400 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path)
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            expect_problem(r, 400, path)
        else:
            # answered by lighttpd before apigw: still a 400, never forwarded
            expect_status(r, 400, path)
    r = h.raw_request(c.port, "GET /api/a%00b?key=bad400 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    expect_status(r, 400, "/api/a%00b")
    eq(c.b1.calls("bad400"), 0, "backend calls for bad paths")


@test
def bad_paths_answered_by_apigw(c):
    # The cases lighttpd passes through untouched must be apigw's problem documents.
    for path in ("/api/a%2Fb", "/api/a%5Cb", "/api/../../x"):
        r = h.raw_request(c.port, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path)
        expect_problem(r, 400, path)


# ---- request forwarding -----------------------------------------------------------

@test
def query_string_exact(c):
    for q in ("a=1&b=%20x&c=%2F&&d=&e", "x=%zz%2f;y=[1]", "q=caf%C3%A9+au+lait"):
        eq(echo(c, "/api/echo?" + q)["query"], q, "query string")
    eq(echo(c, "/api/echo")["query"], "", "no query string")


@test
def request_body_forwarded(c):
    body = "".join(chr(32 + (i * 7) % 90) for i in range(60000))
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        doc = echo(c, "/api/echo", method, body=body, headers={"Content-Type": "text/plain"})
        eq(doc["method"], method, "method")
        eq(doc["body_len"], len(body), "%s body length" % method)
        check(doc["body"] == body, "%s body differs" % method)
        eq(echo_header(doc, "content-type"), "text/plain", "Content-Type forwarded")
    doc = echo(c, "/api/echo", "POST", body="")
    eq(doc["body_len"], 0, "empty POST body")


@test
def chunked_request_body(c):
    body = b"".join(b"chunk %d;" % i for i in range(2000))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                      for i in range(0, len(body), 1000))
    r = h.raw_request(c.port, b"POST /api/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
                      + chunks + b"0\r\n\r\n")
    expect_status(r, 200, "chunked POST")
    doc = r.json()
    eq(doc["body"].encode(), body, "chunked request body")
    names = [k for k, _ in h.header_pairs(doc)]
    check(not ("transfer-encoding" in names and "content-length" in names),
          "both Transfer-Encoding and Content-Length sent to the backend: %r" % doc["headers"])


@test
def duplicate_request_headers(c):
    r = h.raw_request(c.port, "GET /api/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      "X-Dup: a\r\nX-Dup: b\r\n\r\n")
    expect_status(r, 200)
    vals = [v for k, v in h.header_pairs(r.json()) if k == "x-dup"]
    eq(", ".join(vals), "a, b", "repeated request header values at the backend")


@test
def httpoxy_proxy_header_ignored(c):
    doc = echo(c, "/api/echo?key=oxy", headers={"Proxy": "http://127.0.0.1:%d" % c.b2.port})
    eq(doc["server"], "b1", "request went to the route's backend")
    eq(c.b2.calls("oxy"), 0, "requests through the client-named proxy")


@test
def request_body_limit_413(c):
    doc = echo(c, "/api/echo?key=b413ok", "POST", body="a" * MAX_BODY)
    eq(doc["body_len"], MAX_BODY, "body of exactly max_body_bytes")
    r = h.request(c.port, "POST", "/api/echo?key=b413", body="a" * (MAX_BODY + 1))
    expect_problem(r, 413, "body of max_body_bytes + 1")
    eq(c.b1.calls("b413"), 0, "backend calls for a 413")


@test
def hop_by_hop_request_headers_removed(c):
    hdrs = [("Connection", "X-Drop-Me, X-Drop-Too"), ("X-Drop-Me", "1"), ("X-Drop-Too", "2"),
            ("Keep-Alive", "timeout=300"), ("TE", "trailers"), ("Trailer", "X-Checksum"),
            ("Upgrade", "foo/1"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"), ("X-Keep", "yes"), ("Authorization", "Bearer t")]
    doc = echo(c, "/api/echo", headers=hdrs)
    names = {k for k, _ in h.header_pairs(doc)}
    for gone in ("x-drop-me", "x-drop-too", "keep-alive", "te", "trailer", "upgrade",
                 "proxy-authorization", "proxy-connection"):
        check(gone not in names, "hop-by-hop header %s reached the backend: %r" % (gone, doc["headers"]))
    conn = echo_header(doc, "connection")
    check(conn is None or "drop" not in str(conn).lower(), "client's Connection forwarded: %r" % conn)
    eq(echo_header(doc, "x-keep"), "yes", "ordinary header")
    eq(echo_header(doc, "authorization"), "Bearer t", "Authorization header")


@test
def consumer_headers_from_client_dropped(c):
    doc = echo(c, "/api/echo", headers={"X-Consumer-ID": "admin", "X-Consumer-Name": "root",
                                        "X-Consumer-Whatever": "x"})
    names = {k for k, _ in h.header_pairs(doc)}
    check(not any(n.startswith("x-consumer-") for n in names),
          "client X-Consumer-* reached the backend: %r" % doc["headers"])


@test
def forwarded_headers(c):
    doc = echo(c, "/api/echo", headers={"Host": "client.example:8080"})
    eq(echo_header(doc, "x-forwarded-for"), "127.0.0.1", "X-Forwarded-For without client XFF")
    eq(echo_header(doc, "x-forwarded-proto"), "http", "X-Forwarded-Proto")
    eq(echo_header(doc, "x-forwarded-host"), "client.example:8080", "X-Forwarded-Host")
    eq(echo_header(doc, "host"), "127.0.0.1:%d" % c.b1.port, "Host sent to the backend")
    doc = echo(c, "/api/echo", headers={"X-Forwarded-For": "10.1.2.3, 10.4.5.6"})
    eq(echo_header(doc, "x-forwarded-for"), "10.1.2.3, 10.4.5.6, 127.0.0.1",
       "X-Forwarded-For with client XFF")


@test
def request_id(c):
    rid_re = h.REQUEST_ID_RE
    # sane ids pass through and are echoed
    for rid in ("abc-123", "A.b_c:d-9", "x" * 128):
        r = get(c, "/api/echo", headers={"X-Request-ID": rid})
        expect_status(r, 200)
        eq(echo_header(r.json(), "x-request-id"), rid, "request id at the backend")
        eq(r.headers.get("x-request-id"), rid, "request id echoed")
    # missing or insane: generated, same at the backend and in the response
    for hdrs in ({}, {"X-Request-ID": "has space"}, {"X-Request-ID": "x" * 129},
                 {"X-Request-ID": "<script>"}, {"X-Request-ID": ""}):
        r = get(c, "/api/echo", headers=hdrs)
        expect_status(r, 200)
        sent = echo_header(r.json(), "x-request-id")
        got = r.headers.get("x-request-id")
        check(isinstance(sent, str) and rid_re.match(sent), "generated id %r for %r" % (sent, hdrs))
        eq(got, sent, "generated id echoed for %r" % hdrs)
        check(sent != hdrs.get("X-Request-ID"), "insane id passed through: %r" % sent)
    a = get(c, "/api/echo").headers.get("x-request-id")
    b = get(c, "/api/echo").headers.get("x-request-id")
    check(a != b, "two generated ids are equal: %r" % a)
    # gateway errors carry the id too
    r = get(c, "/nope", headers={"X-Request-ID": "err-id-1"})
    doc = expect_problem(r, 404)
    eq(doc["request_id"], "err-id-1", "problem request_id")
    eq(r.headers.get("x-request-id"), "err-id-1", "request id on a 404")


@test
def strip_prefix(c):
    doc = echo(c, "/strip/a/b?q=1")
    eq(doc["path"], "/a/b", "stripped path")
    eq(doc["query"], "q=1", "query after strip")
    eq(echo(c, "/strip")["path"], "/", "bare prefix stripped")
    eq(echo(c, "/strip/")["path"], "/", "prefix + / stripped")


# ---- responses ----------------------------------------------------------------------

@test
def response_passthrough(c):
    for code in (200, 201, 404, 418, 500, 503):
        r = get(c, "/api/status/%d" % code)
        expect_status(r, code, "backend status %d" % code)
        eq(r.headers.get("content-type"), "application/json", "backend Content-Type for %d" % code)
        eq(r.headers.get("x-backend"), "b1", "backend header for %d" % code)
        eq(r.json(), {"status": code, "from": "backend"}, "backend body for %d" % code)
    r = get(c, "/api/status/204")
    expect_status(r, 204)
    eq(r.body, b"", "204 body")


@test
def redirects_not_followed(c):
    r = get(c, "/api/status/302?location=/api/echo&key=redir")
    expect_status(r, 302, "backend redirect")
    eq(r.headers.get("location"), "/api/echo", "Location passed through")
    eq(c.b1.calls("redir"), 1, "backend calls (the redirect was not followed)")


@test
def repeated_response_headers_kept(c):
    r = get(c, "/api/cookies")
    expect_status(r, 200)
    eq(r.headers.get_all("set-cookie"), ["a=1; Path=/", "b=2, c=3; HttpOnly"], "Set-Cookie headers")
    eq(", ".join(r.headers.get_all("x-multi")), "one, two", "repeated X-Multi")


@test
def head_request(c):
    r = h.request(c.port, "HEAD", "/api/big?mb=1")
    expect_status(r, 200, "HEAD")
    eq(r.body, b"", "HEAD body")
    eq(r.headers.get("content-length"), str(1 << 20), "HEAD Content-Length")


@test
def hop_by_hop_response_headers_removed(c):
    r = get(c, "/api/hop")
    expect_status(r, 200)
    eq(r.body, b"hop body\n", "body")
    eq(r.headers.get("x-normal"), "kept", "ordinary response header")
    check("x-secret" not in r.headers, "header named in Connection passed: %r" % r.headers)
    check("timeout=5" not in (r.headers.get("keep-alive") or ""),
          "backend Keep-Alive passed: %r" % r.headers)
    for v in r.headers.get_all("connection"):
        check("x-secret" not in v.lower(), "backend Connection passed: %r" % v)


@test
def streaming_is_incremental(c):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/api/drip?n=4&ms=400")
        r = conn.getresponse()
        expect_status(h.Response(r.status, r.reason, h.Headers(r.getheaders()), b""), 200)
        first = r.read(7)
        t_first = time.monotonic() - t0
        rest = r.read()
        t_all = time.monotonic() - t0
    finally:
        conn.close()
    eq(first + rest, b"".join(b"drip %d\n" % i for i in range(4)), "drip body")
    check(t_all >= 1.1, "drip took only %.2fs" % t_all)
    check(t_first < 0.9, "first chunk came after %.2fs of %.2fs: response not streamed"
          % (t_first, t_all))


@test
def invalid_backend_response_502(c):
    expect_problem(get(c, "/api/garbage"), 502, "backend that does not speak HTTP")


@test
def truncated_backend_response(c):
    # headers already sent: the client must see an incomplete body (not a
    # complete-looking short one), and the gateway must carry on
    import http.client
    try:
        r = get(c, "/api/truncate")
        raise AssertionError("truncated body delivered as complete: status %d, %d bytes"
                             % (r.status, len(r.body)))
    except (http.client.IncompleteRead, ConnectionError):
        pass
    for _ in range(4):
        echo(c, "/api/echo")


@test
def close_delimited_backend_body(c):
    r = get(c, "/api/eof")
    expect_status(r, 200)
    eq(r.body, b"eof body\n" * 1000, "body delimited by the backend closing")


@test
def large_request_header(c):
    doc = echo(c, "/api/echo", headers={"X-Large": "v" * 6000})
    eq(echo_header(doc, "x-large"), "v" * 6000, "6000-byte header value")


@test
def backend_unreachable_502(c):
    t0 = time.monotonic()
    expect_problem(get(c, "/dead/x"), 502, "closed backend port")
    check(time.monotonic() - t0 < 5, "502 took %.1fs" % (time.monotonic() - t0))


@test
def backend_timeout_504(c):
    t0 = time.monotonic()
    expect_problem(get(c, "/short/slow?ms=3000"), 504, "backend slower than timeout_ms")
    took = time.monotonic() - t0
    check(took < 2.5, "504 took %.1fs with timeout_ms 500" % took)
    eq(echo(c, "/short/slow?ms=50")["method"], "GET", "fast request on the same route")


# ---- retries ------------------------------------------------------------------------

@test
def retry_get_until_success(c):
    doc = echo(c, "/retry/flaky?key=rget&fail=2")
    eq(doc["method"], "GET", "method")
    eq(c.b1.calls("rget"), 3, "attempts (1 + 2 retries)")


@test
def retry_put_resends_body(c):
    doc = echo(c, "/retry/flaky?key=rput&fail=1", "PUT", body="payload-123")
    eq(doc["body"], "payload-123", "body of the retried PUT")
    eq(c.b1.calls("rput"), 2, "attempts")


@test
def retries_spent_pass_backend_503(c):
    r = get(c, "/retry/flaky?key=rspent&fail=10")
    expect_status(r, 503, "retries spent")
    eq(r.headers.get("content-type"), "application/json", "backend's Content-Type kept")
    eq(r.json().get("from"), "backend", "backend's body passed through")
    eq(c.b1.calls("rspent"), 3, "attempts")


@test
def post_never_retried(c):
    r = h.request(c.port, "POST", "/retry/flaky?key=rpost&fail=1", body="once")
    expect_status(r, 503, "POST to a flaky backend")
    eq(r.json().get("from"), "backend", "backend's 503 passed through")
    eq(c.b1.calls("rpost"), 1, "POST attempts")


@test
def retry_on_timeout(c):
    t0 = time.monotonic()
    expect_problem(get(c, "/retryshort/slow?ms=1500&key=rtimeout"), 504, "GET timing out twice")
    eq(c.b1.calls("rtimeout"), 2, "GET attempts with retries = 1")
    check(time.monotonic() - t0 < 2.0, "two 300 ms attempts took %.1fs" % (time.monotonic() - t0))
    expect_problem(h.request(c.port, "POST", "/retryshort/slow?ms=1500&key=rtpost", body="x"), 504,
                   "POST timing out")
    eq(c.b1.calls("rtpost"), 1, "POST attempts")


@test
def retry_on_connect_error(c):
    t0 = time.monotonic()
    expect_problem(get(c, "/deadretry/x"), 502, "GET to a closed port with retries")
    check(time.monotonic() - t0 < 3, "took %.1fs" % (time.monotonic() - t0))


@test
def no_retries_by_default(c):
    r = get(c, "/api/flaky?key=rnone&fail=1")
    expect_status(r, 503)
    eq(c.b1.calls("rnone"), 1, "attempts on a route without retries")


# ---- CORS -----------------------------------------------------------------------------

@test
def cors_preflight(c):
    r = h.request(c.port, "OPTIONS", "/api/things?key=corspre", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-API-Key"})
    expect_status(r, 204, "preflight")
    acao = r.headers.get("access-control-allow-origin")
    check(acao in ("*", "http://app.example"), "Access-Control-Allow-Origin %r" % acao)
    methods = {m.strip() for m in (r.headers.get("access-control-allow-methods") or "").split(",")}
    check("POST" in methods, "Access-Control-Allow-Methods %r" % methods)
    allow_h = (r.headers.get("access-control-allow-headers") or "").lower()
    check("content-type" in allow_h and "x-api-key" in allow_h,
          "Access-Control-Allow-Headers %r" % allow_h)
    eq(r.headers.get("access-control-max-age"), "123", "Access-Control-Max-Age")
    eq(c.b1.calls("corspre"), 0, "backend calls for a preflight")


@test
def cors_on_normal_response(c):
    r = get(c, "/api/echo", headers={"Origin": "http://app.example"})
    expect_status(r, 200)
    acao = r.headers.get("access-control-allow-origin")
    check(acao in ("*", "http://app.example"), "Access-Control-Allow-Origin %r" % acao)
    # a plain OPTIONS (no preflight headers) is forwarded
    r = h.request(c.port, "OPTIONS", "/api/echo?key=corsplain")
    expect_status(r, 200, "plain OPTIONS")
    eq(c.b1.calls("corsplain"), 1, "plain OPTIONS forwarded")


# ---- access log -------------------------------------------------------------------------

def wait_log_lines(path, needle, n=1, timeout=3.0):
    def found():
        lines = [l for l in h.read_text(path).splitlines() if needle in l]
        return lines if len(lines) >= n else None
    return h.wait_for(found, timeout, what="access log line with %r in %s" % (needle, path))


@test
def access_log_json(c):
    expect_status(get(c, "/api/echo?x=1", headers={"X-Request-ID": "log-json-ok"}), 200)
    expect_status(get(c, "/nope", headers={"X-Request-ID": "log-json-404"}), 404)
    for rid, status, path in (("log-json-ok", 200, "/api/echo"), ("log-json-404", 404, "/nope")):
        lines = wait_log_lines(c.access_log, rid)
        eq(len(lines), 1, "lines for request %s" % rid)
        rec = json.loads(lines[0])
        for f in ("time", "client", "method", "path", "status", "bytes", "duration_ms",
                  "route", "key_id", "cache", "request_id"):
            check(f in rec, "json access log lacks %r: %r" % (f, rec))
        eq(rec["request_id"], rid, "request_id")
        eq(int(rec["status"]), status, "status of %s" % rid)
        eq(rec["method"], "GET", "method")
        check(str(rec["path"]).startswith(path), "path %r" % rec["path"])
        eq(rec["client"], "127.0.0.1", "client")
    for line in h.read_text(c.access_log).splitlines():
        json.loads(line)  # every line is JSON


@test
def access_log_json_non_utf8(c):
    # Raw bytes that are not UTF-8 (0xff), overlong and truncated sequences
    # and surrogates in the path, the query and headers: the log line must
    # still be JSON (json.loads on bytes decodes strict UTF-8).  lighttpd
    # refuses such a path unless told not to normalize it (another web
    # server may pass it on), and refuses raw control characters always.
    rid = "log-json-bytes"
    req = (b"GET /api/echo/\xff\xc3\xa9x?q=\xe2\x82 HTTP/1.1\r\n"
           b"Host: 127.0.0.1\r\n"
           b"User-Agent: ua-\xff-\xed\xa0\x80-\r\n"
           b"Referer: http://ref/\xfe\xc0\xaf\r\n"
           b"X-Request-ID: " + rid.encode() + b"\r\n"
           b"Connection: close\r\n\r\n")
    lt = h.Lighttpd(c.td, config=c.config, max_procs=1, name="lighttpd-raw",
                    extra='server.http-parseopts = ( "url-normalize" => "disable" )\n')
    r = h.raw_request(lt.port, req)
    expect_status(r, 200, "raw 0xff path")
    wait_log_lines(c.access_log, rid, timeout=5)
    lt.stop()
    with open(c.access_log, "rb") as f:
        lines = [l for l in f.read().splitlines() if rid.encode() in l]
    eq(len(lines), 1, "log lines for %s" % rid)
    try:
        rec = json.loads(lines[0])
    except ValueError as e:
        raise AssertionError("access log line is not JSON (%s): %r" % (e, lines[0]))
    eq(rec["request_id"], rid, "request_id")
    eq(rec["user_agent"], "ua-\ufffd-\ufffd\ufffd\ufffd-", "user_agent")
    eq(rec["referer"], "http://ref/\ufffd\ufffd\ufffd", "referer")
    check("\ufffd\u00e9x" in rec["path"], "path %r" % rec["path"])
    eq(rec["query"], "q=\ufffd", "query")
    for line in h.read_text(c.access_log).splitlines():
        json.loads(line)  # every line is JSON


@test
def access_log_client_address(c):
    # the client is resolved through trusted proxies
    expect_status(get(c, "/api/echo", headers={"X-Request-ID": "log-xff-1",
                                               "X-Forwarded-For": "203.0.113.9"}), 200)
    expect_status(get(c, "/api/echo", source="127.0.0.2",
                      headers={"X-Request-ID": "log-xff-2", "X-Forwarded-For": "203.0.113.9"}), 200)
    rec = json.loads(wait_log_lines(c.access_log, "log-xff-1")[0])
    eq(rec["client"], "203.0.113.9", "client behind the trusted proxy 127.0.0.1")
    rec = json.loads(wait_log_lines(c.access_log, "log-xff-2")[0])
    eq(rec["client"], "127.0.0.2", "client that is an untrusted peer")


# ---- one-process stack ------------------------------------------------------------

@test
def keepalive_to_backend(c):
    s = single(c)
    a = echo(s, "/api/echo")
    b = echo(s, "/api/echo")
    eq(b["client_port"], a["client_port"], "backend client port of two sequential requests")


@test
def backend_closing_keepalive_connection(c):
    s = single(c)
    a = echo(s, "/api/echo?close=1")["client_port"]  # backend closes after this one
    time.sleep(0.1)
    b = echo(s, "/api/echo")["client_port"]
    check(a != b, "the closed backend connection was reused?")
    eq(echo(s, "/api/echo")["client_port"], b, "the new connection is kept")


@test
def stream_100mb_flat_memory(c):
    s = single(c)
    pid = single_worker(s)
    want_len, want_sha = h.big_digest(100)
    r, n, sha = h.stream_get(s.port, "/api/big?mb=100", timeout=60)
    expect_status(r, 200, "100 MB download")
    eq(n, want_len, "100 MB body length")
    eq(sha, want_sha, "100 MB body sha256")
    r, n, sha = h.stream_get(s.port, "/api/big?mb=20&chunked=1", timeout=60)
    eq((r.status, n, sha), (200, ) + h.big_digest(20), "20 MB chunked download")
    hwm = h.proc_status_kb(pid, "VmHWM")
    limit_mb = int(os.environ.get("APIGW_IT_RSS_LIMIT_MB", "30"))
    check(hwm is not None, "cannot read VmHWM of apigw pid %d" % pid)
    check(hwm < limit_mb * 1024, "apigw peak RSS %d kB after a 100 MB stream (limit %d MB)"
          % (hwm, limit_mb))
    eq(single_worker(s), pid, "apigw process after the streams")


@test
def client_disconnect_mid_stream(c):
    s = single(c)
    pid = single_worker(s)
    for _ in range(2):
        r, n, _ = h.stream_get(s.port, "/api/big?mb=100", stop_after=2 << 20, timeout=30)
        expect_status(r, 200)
        check(n >= 2 << 20, "read only %d bytes" % n)
    t0 = time.monotonic()
    doc = h.wait_for(lambda: get(s, "/api/echo", timeout=5).status == 200 and echo(s, "/api/echo"),
                     timeout=10, what="a request to succeed after the disconnects")
    eq(doc["method"], "GET", "request after disconnects")
    check(h.pid_alive(pid), "apigw pid %d died after a client disconnect; %s" % (pid, s.lt.log_tail()))
    eq(single_worker(s), pid, "apigw process after disconnects")
    check(time.monotonic() - t0 < 10, "recovery took %.1fs" % (time.monotonic() - t0))


@test
def access_log_combined(c):
    s = single(c)
    expect_status(get(s, "/api/echo?a=1", headers={"X-Request-ID": "log-comb-1",
                                                   "User-Agent": "it-agent"}), 200)
    expect_status(get(s, "/zzz", headers={"X-Request-ID": "log-comb-2"}), 404)
    line = wait_log_lines(s.access_log, "log-comb-1")[0]
    check(re.search(r'"GET /api/echo\?a=1 HTTP/1\.[01]" 200 \d+', line),
          "combined line for a 200: %r" % line)
    check(line.startswith("127.0.0.1 "), "combined line starts with the client: %r" % line)
    check("it-agent" in line, "combined line lacks the user agent: %r" % line)
    line = wait_log_lines(s.access_log, "log-comb-2")[0]
    check(re.search(r'"GET /zzz HTTP/1\.[01]" 404 \d+', line), "combined line for a 404: %r" % line)


@test
def health_when_redis_down(c):
    s = single(c)
    expect_status(get(s, "/_health"), 200, "/_health with Redis up")
    s.redis.stop()

    def down():
        r = get(s, "/_health")
        return r if r.status == 503 else None
    r = h.wait_for(down, timeout=5, interval=0.2, what="/_health to report 503")
    eq(r.json().get("redis"), "down", "/_health redis field")
    # on_failure = "open" (the default): forwarding goes on without Redis
    eq(echo(s, "/api/echo")["method"], "GET", "forwarding with Redis down")


if __name__ == "__main__":
    h.main(setup)
