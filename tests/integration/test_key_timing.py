#!/usr/bin/env python3
"""API keys: the time to reject a wrong key does not depend on how many
leading characters it shares with a valid one.

Setup: lighttpd with one apigw process (so every request meets the same
process, the same key cache and the same Redis connection), a route with
require_auth, and a valid key K made by apigw-keys.  Two wrong keys of
K's length (46 characters, well-formed, so that both take the full path:
SHA-256, the per-process key cache, the Redis lookup, 401):

  A  shares no character of K's secret part: only the fixed "gw_" that
     every key starts with (A[i] != K[i] for every i >= 3);
  B  shares K's first 42 characters (B[i] != K[i] for i >= 42).

A key that shares not even "gw_" is malformed and is refused before the
lookup, without Redis; that shows only that the key format is public, so
it is measured (the "malformed" figure, which also shows what size of
difference this test sees) but not compared.

After WARMUP requests, ROUNDS rounds of PAIRS pairs go over one kept-alive
connection, each pair an A and a B in random order (so that a slow patch of
the machine falls on both alike), each request timed from its first byte
sent to its last byte read.  A round passes when the medians of A and B,
their 20 % trimmed means and the median of the paired differences B - A
are all within max(5 % of the median, 50 us) of each other, and the
difference of the medians is also under half the interquartile range of
the latencies (the spread of a single request).  A second round is run
only when the first fails; the test fails when both fail (a real leak is
systematic and fails both; a load spike rarely hits two rounds).

What it can detect: a difference between the two keys of about 50 us or
more (less on a quiet machine, where half the IQR, some 20 to 30 us, is
the tighter bound), e.g. a byte-by-byte early-exit compare of the
presented key with a plaintext copy of K costing 1.5 us or more per
matching byte (B has 39 more matching bytes than A).  Checked by patching
such a compare into the gateway: at 2 us per byte (B - A about 90 us)
every round of three runs failed; at 1 us per byte (about 45 us) one run
of two failed and the other passed on its second round.

What it cannot detect: differences of nanoseconds, such as those of a
plain memcmp() or strcmp() of 46 bytes, far below the jitter of a request
through lighttpd and FastCGI (tens of us at best); those would need
millions of samples on a quiet machine.  The gateway never holds K itself:
it hashes the presented key (SHA-256) and compares hashes with a
constant-time compare (keys_equal, unit-tested in tests/unit/test_keys.c),
so the shared prefix of A or B with K does not carry over to their hashes.
This test guards that design end to end; the unit test and reading the
code guard the compare itself.
"""

import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

HEADER = "X-API-Key"
PAIRS = int(os.environ.get("APIGW_KEY_TIMING_PAIRS", "2000"))
WARMUP = 300
ROUNDS = 2
BOUND_FRACTION = 0.05
BOUND_FLOOR_US = 50.0
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
h.TEST_TIMEOUT_S = 600


class Ctx:
    pass


def other_char(c, rng):
    return rng.choice([x for x in B64URL if x != c])


def wrong_key(k, shared, rng):
    """A key of k's length sharing exactly its first `shared` characters."""
    return k[:shared] + "".join(other_char(c, rng) for c in k[shared:])


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    cfg = h.base_config(c.redis, [{"prefix": "/k", "backend": c.b.url, "require_auth": True}],
                        api_keys={"header": HEADER, "cache_ttl_s": 60},
                        log={"access": "off", "level": "warn"})
    conf = h.write_gateway_config(td, cfg)
    keys = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    p = subprocess.run([keys, "--config", conf, "create", "timing"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode(errors="replace"))
    c.key = p.stdout.decode().strip()
    check(re.match(r"^gw_[A-Za-z0-9_-]{43}$", c.key), "unexpected key format %r" % c.key)
    rng = random.Random(0x5eed)
    c.wrong = {"A": wrong_key(c.key, 3, rng), "B": wrong_key(c.key, 42, rng),
               "malformed": wrong_key(c.key, 0, rng)}
    c.lt = h.Lighttpd(td, config=conf, max_procs=1)
    return c


class Conn:
    """One kept-alive connection: timed GETs, the response read to its end
    (Content-Length or chunked)."""

    def __init__(self, port):
        self.port = port
        self.s = None

    def _open(self):
        self.s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self, path, key):
        """(status, seconds) of one GET with the key header."""
        if self.s is None:
            self._open()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s: %s\r\n\r\n"
               % (path, HEADER, key)).encode()
        t0 = time.perf_counter()
        self.s.sendall(req)
        head = self._until(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3})", head)
        status = int(m.group(1)) if m else 0
        cl = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        if cl:
            self._exact(int(cl.group(1)))
        elif re.search(rb"\r\ntransfer-encoding:\s*chunked", head, re.I):
            self._until(b"\r\n0\r\n\r\n", with_head=True)
        else:
            raise AssertionError("response without a length: %r" % head)
        dt = time.perf_counter() - t0
        if re.search(rb"\r\nconnection:\s*close", head, re.I):
            self.close()
        return status, dt

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise AssertionError("connection closed by the server")
        self.buf += d

    def _until(self, mark, with_head=False):
        if with_head:
            # the chunked body's end may sit right after the head: "0\r\n\r\n"
            self.buf = b"\r\n" + self.buf
        while mark not in self.buf:
            self._fill()
        i = self.buf.index(mark) + len(mark)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self):
        if self.s is not None:
            self.s.close()
        self.s = None


def trimmed_mean(xs, cut=0.2):
    xs = sorted(xs)
    k = int(len(xs) * cut)
    return statistics.mean(xs[k:len(xs) - k])


def iqr(xs):
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


def us(x):
    return x * 1e6


def measure(c, conn, rng, pairs):
    """{"A": [s...], "B": [s...]} and the paired differences B - A."""
    t = {"A": [], "B": []}
    diffs = []
    for _ in range(pairs):
        order = ["A", "B"] if rng.random() < 0.5 else ["B", "A"]
        got = {}
        for label in order:
            status, dt = conn.get("/k/x", c.wrong[label])
            eq(status, 401, "status for wrong key %s" % label)
            got[label] = dt
            t[label].append(dt)
        diffs.append(got["B"] - got["A"])
    return t, diffs


def judge(t, diffs):
    """(ok, figures line, reasons)."""
    ma, mb = statistics.median(t["A"]), statistics.median(t["B"])
    ta, tb = trimmed_mean(t["A"]), trimmed_mean(t["B"])
    md = statistics.median(diffs)
    spread = iqr(t["A"] + t["B"])
    bound = max(BOUND_FRACTION * min(ma, mb), BOUND_FLOOR_US / 1e6)
    line = ("median A %.0f us, B %.0f us (B - A %+.1f us); 20%% trimmed mean A %.0f us, "
            "B %.0f us (%+.1f us); median of paired B - A %+.1f us; IQR %.0f us; "
            "bound %.1f us" % (us(ma), us(mb), us(mb - ma), us(ta), us(tb), us(tb - ta),
                               us(md), us(spread), us(bound)))
    reasons = []
    if abs(mb - ma) > bound:
        reasons.append("medians differ by %.1f us" % us(mb - ma))
    if abs(tb - ta) > bound:
        reasons.append("trimmed means differ by %.1f us" % us(tb - ta))
    if abs(md) > bound:
        reasons.append("median paired difference %.1f us" % us(md))
    if abs(mb - ma) > spread / 2:
        reasons.append("medians differ by more than half the IQR")
    return not reasons, line, reasons


@test
def valid_key_is_accepted(c):
    conn = Conn(c.lt.port)
    status, _ = conn.get("/k/x", c.key)
    eq(status, 200, "status for the valid key")
    conn.close()


@test
def wrong_keys_take_the_same_time(c):
    eq(os.path.commonprefix([c.key, c.wrong["A"]]), "gw_", "A's prefix shared with K")
    eq(len(os.path.commonprefix([c.key, c.wrong["B"]])), 42, "characters B shares with K")
    eq(len(c.wrong["A"]), len(c.key), "A's length")
    eq(len(c.wrong["B"]), len(c.key), "B's length")
    check(len(c.lt.worker_pids()) == 1, "one apigw process")
    rng = random.Random()
    conn = Conn(c.lt.port)
    # the valid key is in the process's key cache, as on a live gateway
    eq(conn.get("/k/x", c.key)[0], 200, "status for the valid key")
    for i in range(WARMUP):
        conn.get("/k/x", c.wrong["AB"[i % 2]])
    # what the test can see: a malformed key skips the Redis lookup
    mal, ok_a = [], []
    for _ in range(200):
        status, dt = conn.get("/k/x", c.wrong["malformed"])
        eq(status, 401, "status for the malformed key")
        mal.append(dt)
        ok_a.append(conn.get("/k/x", c.wrong["A"])[1])
    print("# key timing: malformed key (no Redis lookup) median %.0f us, well-formed wrong key "
          "A %.0f us: a difference of %.0f us is what a lookup costs here"
          % (us(statistics.median(mal)), us(statistics.median(ok_a)),
             us(statistics.median(ok_a) - statistics.median(mal))), flush=True)
    failures = []
    for r in range(1, ROUNDS + 1):
        t0 = time.monotonic()
        t, diffs = measure(c, conn, rng, PAIRS)
        ok, line, reasons = judge(t, diffs)
        print("# key timing round %d (%d pairs, %.1f s, load %.2f): %s%s"
              % (r, PAIRS, time.monotonic() - t0, os.getloadavg()[0], line,
                 "" if ok else " -- FAILED: " + "; ".join(reasons)), flush=True)
        if ok:
            break
        failures.append("round %d: %s (%s)" % (r, "; ".join(reasons), line))
    conn.close()
    check(len(failures) < ROUNDS, "wrong keys sharing 3 and 42 leading characters with a valid "
          "one take measurably different times in every round: " + " | ".join(failures))


if __name__ == "__main__":
    h.main(setup)
