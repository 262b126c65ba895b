#!/usr/bin/env python3
"""Backend faults through lighttpd (2 apigw processes): refused,
blackholed (connect ok, never an answer), slow first byte, slow body
after the head, Content-Length cut short, chunked without its last chunk,
reset mid-body, garbage status line, status 999, CR/LF/NUL in header
fields, conflicting Content-Length.

Every route has cache_ttl_s 30 and timeout_ms 1000.  Each case is sent
twice: the outcome must be the expected error status or an aborted
transfer (a body shorter than announced, a chunked body without its end,
or a dropped connection), never a complete 2xx, and the second answer must
not be a cache hit.  Header fields with a bare CR or LF are the exception:
the field is dropped or split, the body is intact, so a 200 is right (and
may be cached); no raw control character may reach the client.  A case that passes prints its outcome as a "# " line.
"""

import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
from faults import figure, h  # noqa: E402
from harness import check, test  # noqa: E402

TIMEOUT_MS = 1000


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    common = {"cache_ttl_s": 30, "timeout_ms": TIMEOUT_MS, "connect_timeout_ms": 500}
    routes = [dict(common, prefix="/refused", backend="http://127.0.0.1:%d" % h.closed_port(td)),
              dict(common, prefix="/blackhole", backend="http://127.0.0.1:%d" % f.blackhole(td)),
              dict(common, prefix="/b", backend=c.b.url)]
    cfg = h.base_config(c.redis, routes)
    c.lt = h.Lighttpd(td, config=h.write_gateway_config(td, cfg), max_procs=2)
    return c


def fetch(port, path, timeout=15):
    """(outcome, status, headers, body): outcome "complete" when the body
    ended as framed, "aborted" when the transfer was cut (or the
    connection dropped before a status line: status None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request("GET", path)
        try:
            r = conn.getresponse()
        except (OSError, http.client.HTTPException):
            return "aborted", None, None, b"", time.monotonic() - t0
        try:
            body = r.read()
            return "complete", r.status, h.Headers(r.getheaders()), body, time.monotonic() - t0
        except (OSError, http.client.HTTPException) as e:
            part = getattr(e, "partial", b"")
            return "aborted", r.status, h.Headers(r.getheaders()), part, time.monotonic() - t0
    finally:
        conn.close()


def case(c, name, path, statuses, abort_ok=False, max_s=None, cacheable=False):
    outs = []
    for i in range(2):
        out, st, hd, body, dt = fetch(c.lt.port, path)
        outs.append("%s %s %.2fs" % (out, st, dt))
        if out == "complete":
            check(st in statuses, "%s: complete response with status %s (want %s): %r" % (
                name, st, statuses, body[:200]))
            for k, v in hd.items:
                check(not any(ch in v for ch in "\r\n\0"), "%s: raw control in %s: %r" % (name, k, v))
        else:
            check(abort_ok, "%s: transfer aborted (status %s), want %s" % (name, st, statuses))
            check(st is None or st in statuses or 200 <= st < 300,
                  "%s: aborted with status %s" % (name, st))
        if hd is not None and not cacheable:
            check(hd.get("X-Cache") != "HIT", "%s: request %d was a cache HIT" % (name, i + 1))
        if max_s is not None:
            check(dt <= max_s, "%s: took %.2f s (bound %.1f s)" % (name, dt, max_s))
    figure("%-22s %s", name, "; ".join(outs))


@test
def refused(c):
    case(c, "refused", "/refused/x", (502,), max_s=2)


@test
def blackholed(c):
    case(c, "blackholed", "/blackhole/x", (504,), max_s=TIMEOUT_MS / 1000.0 + 1)


@test
def slow_first_byte(c):
    case(c, "slow first byte", "/b/slow?ms=3000", (504,), max_s=TIMEOUT_MS / 1000.0 + 1)


@test
def slow_body(c):
    case(c, "slow body", "/b/slowbody?ms=3000", (502, 504), abort_ok=True, max_s=4)


@test
def content_length_short(c):
    case(c, "Content-Length short", "/b/truncate", (502,), abort_ok=True)


@test
def chunked_no_last(c):
    # The gateway sees the cut, waits a moment so lighttpd sends the head
    # chunked as for any live response, then ends the FastCGI connection
    # without FCGI_END_REQUEST: the client must see a cut transfer, never
    # a complete-looking 200 (lighttpd, reading the head, the body and the
    # end at once, used to answer close-delimited).
    before = c.lt.log_text().count("response cut short")
    outs = []
    for i in range(4):
        out, st, hd, body, dt = fetch(c.lt.port, "/b/truncate?chunked=1&i=%d" % i)
        outs.append("%s %s %dB" % (out, st, len(body)))
        check(out == "aborted", "chunked cut %d: a %s %s response (a false success)" % (i, out, st))
        check(hd is None or hd.get("X-Cache") != "HIT", "chunked cut: cache HIT")
    time.sleep(0.2)
    seen = c.lt.log_text().count("response cut short") - before
    figure("%-22s %s; gateway logged the cut %d/4", "chunked, no last chunk", "; ".join(outs), seen)
    check(seen == 4, "the gateway logged %d cuts of 4" % seen)


@test
def reset_mid_body(c):
    case(c, "reset mid-body", "/b/truncate?reset=1", (502,), abort_ok=True)


@test
def garbage_status_line(c):
    case(c, "garbage status line", "/b/garbage", (502,))


@test
def status_999(c):
    case(c, "status 999", "/b/raw?kind=status999", (502,))


@test
def cr_in_header(c):
    # the field with a bare CR is dropped (or the response refused): the
    # body is intact, so a 200 without that field (and its caching) is
    # right; a raw control character must never reach the client
    case(c, "CR in header", "/b/raw?kind=crlf", (200, 502), cacheable=True)


@test
def lf_in_header(c):
    # a bare LF ends a field line for lenient parsers (HTTP allows it): the
    # second half is then a field of its own, sent as such
    case(c, "LF in header", "/b/raw?kind=lf", (200, 502), cacheable=True)


@test
def nul_in_header(c):
    case(c, "NUL in header", "/b/raw?kind=nul", (502,))


@test
def conflicting_content_length(c):
    case(c, "conflicting C-L", "/b/raw?kind=dupcl", (502,), abort_ok=True)


@test
def still_serving(c):
    pids = c.lt.worker_pids()
    check(len(pids) == 2, "workers %r" % pids)
    out, st, _, _, _ = fetch(c.lt.port, "/b/echo")
    check(out == "complete" and st == 200, "echo after the faults: %s %s" % (out, st))
    figure("workers after the backend faults: %d alive, echo 200", len(pids))


if __name__ == "__main__":
    h.main(setup)
