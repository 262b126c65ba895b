#!/usr/bin/env python3
"""GET /_status: the HTML status page, loaded in headless Chromium.

Stacks (one redis-server):
  lt     lighttpd with 2 apigw processes, internal_allow 127.0.0.0/8;
         routes /s (plain) and /lim (2 requests an hour, sliding window)
  deny   lighttpd whose internal_allow leaves 127.0.0.1 out: /_status is
         an ordinary path there (no route: 404)

The browser test sends known traffic, waits until /_metrics shows all of
it, then lets Chromium run the page for 5 s of virtual time (the page polls
/_metrics every 2 s) and reads the numbers back from the DOM it dumps.  The
test's own /_metrics requests are internal, so they are not counted and the
page must show exactly what the test read.  A screenshot is left in
$top_builddir/tests/integration/artifacts/status.png.

Chromium (Debian package chromium) is required: without it the test fails.
"""

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_status, test  # noqa: E402

ARTIFACTS = os.path.join(h.TOP_BUILDDIR, "tests", "integration", "artifacts")
N_OK, N_404 = 10, 3


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.td = td
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    routes = [
        {"prefix": "/s", "backend": c.b.url},
        {"prefix": "/lim", "backend": c.b.url,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_hour": 2}},
    ]
    cfg = h.base_config(c.redis, routes, gateway={"internal_allow": ["127.0.0.0/8"]})
    c.lt = h.Lighttpd(td, config=h.write_gateway_config(td, cfg, "apigw.conf"),
                      max_procs=2, name="lighttpd")
    deny = h.base_config(c.redis, routes, gateway={"internal_allow": ["10.0.0.0/8"]})
    deny["redis"]["key_prefix"] = "deny:"
    c.deny = h.Lighttpd(td, config=h.write_gateway_config(td, deny, "deny.conf"),
                        max_procs=1, name="lighttpd-deny")
    return c


def metrics(port):
    r = h.request(port, "GET", "/_metrics")
    expect_status(r, 200, "/_metrics")
    return r.json()


def chromium(c, *args):
    """Runs headless Chromium on the page with a fresh profile; returns
    its stdout."""
    exe = h.find_tool("chromium", "chromium")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=c.td.path)
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--user-data-dir=" + profile, "--virtual-time-budget=5000"]
    argv += list(args) + ["http://127.0.0.1:%d/_status" % c.lt.port]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    shutil.rmtree(profile, ignore_errors=True)
    check(p.returncode == 0, "chromium exited %d: %s" % (
        p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    return p.stdout.decode(errors="replace")


def by_id(dom, ident):
    """The text of the element with id ident (no nested elements)."""
    m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(ident), dom)
    check(m, "no element id=%s in the page's DOM" % ident)
    return html.unescape(m.group(1)).strip()


def quantile(q, buckets, count):
    """Same estimate as the page: linear within the bucket reached."""
    lo = below = 0.0
    want = q * count
    for le, cum in buckets.items():
        if cum >= want:
            if le == "+Inf":
                return None
            hi = float(le)
            return lo + (hi - lo) * ((want - below) / (cum - below) if cum > below else 1)
        lo, below = float(le), cum
    return None


def send_traffic(c):
    for i in range(N_OK):
        expect_status(h.request(c.lt.port, "GET", "/s/ok/%d" % i), 200, "/s")
    for _ in range(N_404):
        expect_status(h.request(c.lt.port, "GET", "/s/status/404"), 404, "/s/status/404")
    for want in (200, 200, 429):
        expect_status(h.request(c.lt.port, "GET", "/lim/x"), want, "/lim")


# ---------------------------------------------------------------------------

@test
def status_headers_and_size(c):
    r = h.request(c.lt.port, "GET", "/_status")
    expect_status(r, 200, "/_status")
    eq(r.headers.get("Content-Type"), "text/html; charset=utf-8", "Content-Type")
    eq(r.headers.get("Cache-Control"), "no-store", "Cache-Control")
    csp = r.headers.get("Content-Security-Policy") or ""
    for part in ("default-src 'none'", "script-src 'unsafe-inline'",
                 "style-src 'unsafe-inline'", "connect-src 'self'"):
        check(part in csp, "CSP %r lacks %s" % (csp, part))
    body = r.body.decode()
    check(len(r.body) < 16384, "page is %d bytes" % len(r.body))
    eq(int(r.headers.get("Content-Length")), len(r.body), "Content-Length")
    check(body.startswith("<!DOCTYPE html>"), "not an HTML document")
    # self-contained: nothing loaded from elsewhere
    for m in re.finditer(r'\b(src|href)\s*=\s*"([^"]*)"', body):
        check(m.group(2).startswith("data:"), "page loads %s" % m.group(2))
    check('fetch("_metrics' in body, "page does not poll the relative _metrics")
    r = h.request(c.lt.port, "HEAD", "/_status")
    expect_status(r, 200, "HEAD /_status")
    eq(r.body, b"", "HEAD body")


@test
def status_only_for_internal_allow(c):
    r = h.request(c.deny.port, "GET", "/_status")
    expect_status(r, 404, "/_status outside internal_allow")
    check(b"apigw status" not in r.body, "the page was served outside internal_allow")


@test
def page_shows_metrics_in_chromium(c):
    send_traffic(c)
    total = N_OK + N_404 + 3
    m = h.wait_for(lambda: (lambda d: d if d["requests_total"] == total else None)(
        metrics(c.lt.port)), timeout=5, what="/_metrics to count the traffic")
    dom = chromium(c, "--dump-dom")
    after = metrics(c.lt.port)
    eq(after["requests_total"], m["requests_total"], "requests_total moved during the test")
    # the page's polling ran (more than once) and shows what /_metrics says
    check(int(by_id(dom, "polls")) >= 2, "page polled %s times" % by_id(dom, "polls"))
    eq(by_id(dom, "requests_total"), str(total), "requests_total on the page")
    eq(by_id(dom, "count_2xx"), str(m["status_classes"]["2xx"]), "2xx on the page")
    eq(by_id(dom, "count_2xx"), str(N_OK + 2), "2xx count")
    eq(by_id(dom, "count_4xx"), str(N_404 + 1), "4xx on the page")
    eq(by_id(dom, "requests_rate_limited"), "1", "429s on the page")
    eq(by_id(dom, "requests_client_error"), str(m["requests_client_error"]), "4xx total")
    rejected = sum(w["rejected"] for p in m["rate_limit"].values() for w in p.values())
    check(rejected >= 1, "no rejection in /_metrics: %r" % m["rate_limit"])
    eq(by_id(dom, "rl_rejected"), str(rejected), "rejections on the page")
    eq(by_id(dom, "rl-route-h-rejected"), str(m["rate_limit"]["route"]["h"]["rejected"]),
       "route policy, hour window rejections")
    eq(by_id(dom, "redis"), "up", "Redis state on the page")
    # no traffic between the page's polls: every rate is 0
    eq(by_id(dom, "rate_2xx"), "0.00", "2xx rate between idle polls")
    eq(by_id(dom, "rate_total"), "0.00", "total rate between idle polls")
    # latency: the page's estimate from the same buckets
    lat = m["latency"]
    for q, ident in ((0.5, "p50"), (0.99, "p99")):
        want = quantile(q, lat["buckets"], lat["count"])
        got = by_id(dom, ident)
        gm = re.match(r"^([0-9.]+) (ms|s)$", got)
        check(gm and want is not None, "%s on the page: %r (expected about %r s)" % (ident, got, want))
        sec = float(gm.group(1)) / (1000 if gm.group(2) == "ms" else 1)
        check(abs(sec - want) <= max(0.01 * want, 0.00002),
              "%s: page %r, estimate from /_metrics %.6f s" % (ident, got, want))
    eq(by_id(dom, "latency_count"), str(lat["count"]), "requests timed")
    eq(by_id(dom, "cache_hits"), str(m["cache_hits"]), "cache hits")
    eq(by_id(dom, "cache_hit_ratio"), "\u2013" if not m["cache_hits"] + m["cache_misses"]
       else "%.1f %%" % (100.0 * m["cache_hits"] / (m["cache_hits"] + m["cache_misses"])),
       "cache hit ratio")
    # both processes served traffic within the last 5 s, and one answered
    procs = int(by_id(dom, "processes"))
    check(1 <= procs <= 2, "processes on the page: %d" % procs)
    check(m["processes"] >= 1, "/_metrics processes: %r" % m["processes"])
    # the breakers: one row per backend /_metrics reports
    for i, (backend, b) in enumerate(m["circuit_breakers"].items()):
        eq(by_id(dom, "breaker-%d" % i), b["state"], "breaker of %s" % backend)


@test
def screenshot(c):
    os.makedirs(ARTIFACTS, exist_ok=True)
    out = os.path.join(ARTIFACTS, "status.png")
    if os.path.exists(out):
        os.unlink(out)
    chromium(c, "--screenshot=" + out, "--window-size=1200,900", "--hide-scrollbars")
    check(os.path.exists(out), "no screenshot written")
    with open(out, "rb") as f:
        head = f.read(8)
    eq(head, b"\x89PNG\r\n\x1a\n", "screenshot is a PNG")
    check(os.path.getsize(out) > 10000, "screenshot is only %d bytes" % os.path.getsize(out))


if __name__ == "__main__":
    h.main(setup)
