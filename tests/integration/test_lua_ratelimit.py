#!/usr/bin/env python3
"""Drives src/lua/ratelimit.lua in a private redis-server with a fake clock.

Every request passes "now" (microseconds) as ARGV[1], so the tests control
time exactly and never sleep.  Besides fixed scenarios, each algorithm is
compared request by request against a reference model in exact rational
arithmetic.  Python 3 standard library only; needs redis-server on PATH
(a missing redis-server is a failure, not a skip).

Environment: top_srcdir (default: two directories above this file).
Prints one line "N passed, M failed"; exits non-zero on any failure.
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from fractions import Fraction

TOP = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPT = os.path.join(TOP, "src", "lua", "ratelimit.lua")

US = 1000000
T0 = 1699920000 * US        # a fixed "now" in the past, on a day boundary
WIN_SECS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class RespError(Exception):
    pass


class Redis:
    """A minimal RESP2 client over a unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    def _read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise RespError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2].decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise RespError("bad reply type %r" % kind)

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._read()
        if isinstance(r, RespError):
            raise r
        return r


def start_redis(tmp):
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found on PATH")
    sock = os.path.join(tmp, "redis.sock")
    proc = subprocess.Popen(
        [exe, "--port", "0", "--unixsocket", sock, "--save", "",
         "--appendonly", "no", "--dir", tmp],
        stdout=open(os.path.join(tmp, "redis.log"), "wb"),
        stderr=subprocess.STDOUT)
    for _ in range(200):
        if os.path.exists(sock):
            try:
                r = Redis(sock)
                if r.call("PING") == "PONG":
                    return proc, r
                r.close()
            except OSError:
                pass
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited early")
        time.sleep(0.025)
    proc.kill()
    raise RuntimeError("redis-server did not start")


# ---- calling the script -------------------------------------------------

class Policy:
    def __init__(self, name, alg, windows, flags=0):
        """windows: list of (seconds, limit, burst, counter key name)."""
        self.name, self.alg, self.windows, self.flags = \
            name, alg, windows, flags


def pol(name, alg, *windows, flags=0, prefix=None):
    """pol("route", "gcra", (60, 10, 3), ...) with keys named for the test."""
    prefix = prefix or name
    ws = [(s, l, b, "%s:%d" % (prefix, s)) for (s, l, b) in windows]
    return Policy(name, alg, ws, flags)


class Result:
    def __init__(self, raw):
        assert isinstance(raw, list) and len(raw) >= 5, raw
        self.raw = raw
        self.status, self.now_ms, self.retry_ms, self.record, n = raw[:5]
        assert len(raw) in (5 + 9 * n, 5 + 9 * n + 4), raw
        self.lease = raw[5 + 9 * n:] if len(raw) == 5 + 9 * n + 4 else None
        self.win = []
        for i in range(n):
            v = raw[5 + 9 * i: 14 + 9 * i]
            self.win.append(dict(
                name=v[0], secs=v[1], alg=v[2], limit=v[3], burst=v[4],
                remaining=v[5], reset_ms=v[6], shadow=v[7], rejected=v[8]))

    def __repr__(self):
        return "Result(%r)" % (self.raw,)


class Lua:
    def __init__(self, r):
        self.r = r
        with open(SCRIPT, "rb") as f:
            self.sha = r.call("SCRIPT", "LOAD", f.read())

    def run(self, now, policies, lookup=False, default_alg="sliding_window",
            record="rec", key_counters=None, lease=None, giveback=None):
        keys = [record]
        mode = "R" if giveback else ("1" if lookup else "0")
        argv = ["" if now is None else str(now), mode, default_alg]
        kc_index = 0
        if lookup:
            kc_index = len(keys) + 1
            keys.extend(key_counters or
                        ["k:%s" % c for c in "smhd"])
        argv.append(str(kc_index))
        argv.append(str(len(policies)))
        for p in policies:
            argv += [p.name, str(p.flags), p.alg, str(len(p.windows))]
            for (secs, limit, burst, key) in p.windows:
                keys.append(key)
                argv += [str(secs), str(limit), str(burst), str(len(keys))]
        if lease:
            argv += [str(lease[0]), str(lease[1])]
        if giveback:
            argv += [str(x) for x in giveback]
            return self.r.call("EVALSHA", self.sha, len(keys), *(keys + argv))
        raw = self.r.call("EVALSHA", self.sha, len(keys), *(keys + argv))
        return Result(raw)


# ---- reference models (exact rational arithmetic) ------------------------

class SlidingModel:
    def __init__(self, secs, limit, burst):
        self.w, self.l, self.log = secs * US, limit, []

    def check(self, now):
        c = sum(1 for t in self.log if t > now - self.w)
        return c < self.l

    def consume(self, now):
        self.log.append(now)

    def remaining(self, now):
        return max(0, self.l - sum(1 for t in self.log if t > now - self.w))

    def reset_us(self, now):
        live = [t for t in self.log if t > now - self.w]
        return min(live) + self.w - now if live else 0


class FixedModel:
    def __init__(self, secs, limit, burst):
        self.w, self.l, self.n = secs * US, limit, {}

    def check(self, now):
        return self.n.get(now // self.w, 0) < self.l

    def consume(self, now):
        k = now // self.w
        self.n[k] = self.n.get(k, 0) + 1

    def remaining(self, now):
        return max(0, self.l - self.n.get(now // self.w, 0))

    def reset_us(self, now):
        return (now // self.w + 1) * self.w - now


class BucketModel:
    """Tokens refilled continuously at L/W per second, capacity B."""

    def __init__(self, secs, limit, burst):
        self.b = burst or limit
        self.rate = Fraction(limit, secs * US)
        self.tokens, self.at = Fraction(self.b), None

    def _refill(self, now):
        if self.at is not None:
            self.tokens = min(Fraction(self.b),
                              self.tokens + (now - self.at) * self.rate)
        self.at = now

    def check(self, now):
        self._refill(now)
        return self.tokens >= 1

    def consume(self, now):
        self._refill(now)
        self.tokens -= 1

    def remaining(self, now):
        self._refill(now)
        return int(self.tokens)

    def reset_us(self, now):
        self._refill(now)
        return (self.b - self.tokens) / self.rate


class GcraModel:
    """Virtual scheduling: TAT, emission interval T, tolerance (B-1) T."""

    def __init__(self, secs, limit, burst):
        self.t = Fraction(secs * US, limit)
        self.tau = ((burst or limit) - 1) * self.t
        self.tat = Fraction(0)

    def check(self, now):
        return max(self.tat, now) - now <= self.tau

    def consume(self, now):
        self.tat = max(self.tat, now) + self.t

    def remaining(self, now):
        x = max(self.tat, now) - now
        return int((self.tau - x) / self.t) + 1 if x <= self.tau else 0

    def reset_us(self, now):
        return max(self.tat, now) - now


MODELS = {"sliding_window": SlidingModel, "fixed_window": FixedModel,
          "token_bucket": BucketModel, "gcra": GcraModel}
ALGS = list(MODELS)


# ---- tests ---------------------------------------------------------------

def check_ttls(r, keys, bound_ms):
    for k in keys:
        t = r.call("PTTL", k)
        assert 0 < t <= bound_ms, (k, t, bound_ms)


def t_sliding_exact(r, lua):
    p = pol("route", "sliding_window", (60, 5, 0))
    seen = []
    for i in range(8):
        res = lua.run(T0, [p])
        seen.append((res.status, res.win[0]["remaining"]))
    assert seen == [(0, 4), (0, 3), (0, 2), (0, 1), (0, 0),
                    (1, 0), (1, 0), (1, 0)], seen
    # Equal timestamps still give distinct members.
    assert r.call("ZCARD", "route:60") == 5
    res = lua.run(T0, [p])
    assert res.retry_ms == 60000 and res.win[0]["reset_ms"] == 60000, res
    assert res.win[0]["rejected"] == 1 and res.win[0]["name"] == "route"


def t_sliding_interval(r, lua):
    p = pol("route", "sliding_window", (60, 5, 0))
    for i in range(5):
        assert lua.run(T0 + i * 10 * US, [p]).status == 0
    res = lua.run(T0 + 50 * US, [p])
    assert res.status == 1 and res.retry_ms == 10000, res
    # (now - W, now]: the entry at T0 still counts just before T0 + 60 s
    # and no longer at T0 + 60 s exactly.
    assert lua.run(T0 + 60 * US - 1, [p]).status == 1
    res = lua.run(T0 + 60 * US, [p])
    assert res.status == 0 and res.win[0]["remaining"] == 0, res
    assert res.win[0]["reset_ms"] == 10000, res
    assert lua.run(T0 + 60 * US, [p]).status == 1
    # Old entries are trimmed when writing.
    assert r.call("ZCARD", "route:60") == 5


def t_fixed_boundary(r, lua):
    p = pol("route", "fixed_window", (60, 3, 0))
    edge = T0 + 60 * US        # T0 is a multiple of 60 s
    now = edge - 500000
    got = [lua.run(now, [p]).status for _ in range(5)]
    assert got == [0, 0, 0, 1, 1], got
    res = lua.run(now, [p])
    assert res.retry_ms == 500 and res.win[0]["reset_ms"] == 500, res
    assert lua.run(edge - 1, [p]).status == 1
    got = [lua.run(edge, [p]).status for _ in range(4)]
    assert got == [0, 0, 0, 1], got
    res = lua.run(edge, [p])
    assert res.win[0]["remaining"] == 0 and res.win[0]["reset_ms"] == 60000
    check_ttls(r, ["route:60"], 60000)


def t_token_bucket_refill(r, lua):
    p = pol("route", "token_bucket", (60, 10, 5))     # T = 6 s, B = 5
    got = [lua.run(T0, [p]) for _ in range(6)]
    assert [x.status for x in got] == [0, 0, 0, 0, 0, 1], got
    assert [x.win[0]["remaining"] for x in got] == [4, 3, 2, 1, 0, 0]
    assert got[0].win[0]["burst"] == 5 and got[0].win[0]["limit"] == 10
    assert got[0].win[0]["reset_ms"] == 6000, got[0]
    assert got[4].win[0]["reset_ms"] == 30000, got[4]
    assert got[5].retry_ms == 6000, got[5]
    assert lua.run(T0 + 6 * US - 1, [p]).status == 1
    res = lua.run(T0 + 6 * US, [p])
    assert res.status == 0 and res.win[0]["remaining"] == 0, res
    # 30 s after that the bucket is full again: exactly B.
    full = T0 + 36 * US
    got = [lua.run(full, [p]).status for _ in range(6)]
    assert got == [0, 0, 0, 0, 0, 1], got
    # Half refilled after 12 s: 2 tokens.
    res = lua.run(full + 12 * US, [p])
    assert res.status == 0 and res.win[0]["remaining"] == 1, res


def t_gcra_burst(r, lua):
    p = pol("route", "gcra", (60, 60, 3))    # T = 1 s, B = 3
    got = [lua.run(T0, [p]).status for _ in range(5)]
    assert got == [0, 0, 0, 1, 1], got
    res = lua.run(T0, [p])
    assert res.retry_ms == 1000 and res.win[0]["burst"] == 3, res
    assert res.win[0]["reset_ms"] == 3000, res
    assert lua.run(T0 + US, [p]).status == 0
    assert lua.run(T0 + US, [p]).status == 1
    # An emission interval that does not divide: W = 60 s, L = 7.
    q = pol("odd", "gcra", (60, 7, 0))
    got = [lua.run(T0, [q]).status for _ in range(8)]
    assert got == [0] * 7 + [1], got
    res = lua.run(T0, [q])
    assert res.retry_ms == 8572, res            # ceil(60/7 s)
    assert res.win[0]["reset_ms"] == 60000, res
    # Exactly W later the bucket is full, with no drift.
    res = lua.run(T0 + 60 * US, [q])
    assert res.status == 0 and res.win[0]["remaining"] == 6, res
    state = r.call("HGETALL", "odd:60")
    st = dict(zip(state[::2], state[1::2]))
    assert int(st["t"]) * 7 + int(st["r"]) == (T0 + 60 * US) * 7 + 60 * US


def t_multi_window(r, lua):
    p = pol("route", "sliding_window", (60, 100, 0), (3600, 3, 0))
    got = [lua.run(T0 + i * US, [p]) for i in range(5)]
    assert [x.status for x in got] == [0, 0, 0, 1, 1], got
    last = got[3]
    assert [w["rejected"] for w in last.win] == [0, 1], last
    assert [w["remaining"] for w in last.win] == [97, 0], last
    assert last.retry_ms == 3597000, last       # T0 + 3600 s - now
    assert r.call("ZCARD", "route:60") == 3
    assert r.call("ZCARD", "route:3600") == 3


def t_rejected_consumes_nothing(r, lua):
    for alg in ALGS:
        r.call("FLUSHDB")
        a = pol("a", alg, (60, 1, 0))
        b = pol("b", alg, (60, 10, 0))
        assert lua.run(T0, [a, b]).status == 0
        before = {k: r.call("DUMP", k) for k in ("a:60", "b:60")}
        for i in range(5):
            res = lua.run(T0 + i, [a, b])
            assert res.status == 1, (alg, res)
            assert res.win[1]["remaining"] == 9, (alg, res)
            assert res.win[1]["rejected"] == 0, (alg, res)
        after = {k: r.call("DUMP", k) for k in ("a:60", "b:60")}
        assert before == after, alg


def t_shadow(r, lua):
    for alg in ALGS:
        r.call("FLUSHDB")
        s = pol("trial", alg, (60, 2, 0), flags=1)
        n = pol("route", alg, (60, 100, 0))
        for i in range(6):
            res = lua.run(T0 + i, [s, n])
            assert res.status == 0, (alg, res)
            w = res.win[0]
            assert w["shadow"] == 1 and w["remaining"] >= 0, (alg, res)
            assert w["rejected"] == (1 if i >= 2 else 0), (alg, i, res)
            assert res.win[1]["remaining"] == 99 - i, (alg, res)
        # A shadow window past its limit consumes nothing.
        assert lua.run(T0 + 10, [s]).win[0]["remaining"] == 0
        if alg == "sliding_window":
            assert r.call("ZCARD", "trial:60") == 2
    # A shadow-only request is never rejected.
    r.call("FLUSHDB")
    s = pol("trial", "fixed_window", (1, 1, 0), flags=1)
    assert all(lua.run(T0, [s]).status == 0 for _ in range(4))


def t_shadow_with_rejection(r, lua):
    # When a real window rejects, the shadow one consumes nothing either.
    s = pol("trial", "sliding_window", (60, 10, 0), flags=1)
    n = pol("route", "sliding_window", (60, 1, 0))
    assert lua.run(T0, [s, n]).status == 0
    res = lua.run(T0, [s, n])
    assert res.status == 1 and res.win[0]["remaining"] == 9, res
    assert r.call("ZCARD", "trial:60") == 1


def t_retry_truthful(r, lua):
    rnd = random.Random(7)
    for alg in ALGS:
        for trial in range(12):
            r.call("FLUSHDB")
            secs = rnd.choice([1, 60, 3600, 86400])
            limit = rnd.randint(1, 9)
            burst = rnd.randint(0, 12)
            p = pol("route", alg, (secs, limit, burst))
            now = T0 + rnd.randint(0, 10 * US)
            rejections = 0
            for _ in range(40):
                res = lua.run(now, [p])
                if res.status == 1:
                    rejections += 1
                    assert res.retry_ms > 0, res
                    # Not a microsecond too early: 1 ms less is rejected.
                    early = now + (res.retry_ms - 1) * 1000
                    assert lua.run(early, [p]).status == 1, (alg, res)
                    # Retry-After in whole seconds is admitted.
                    now += -(-res.retry_ms // 1000) * US
                    res2 = lua.run(now, [p])
                    assert res2.status == 0, (alg, secs, limit, burst, res2)
                now += rnd.choice([0, 0, 1, 1000, 37 * 1000])
            assert rejections > 0, (alg, secs, limit, burst)


def t_models(r, lua):
    """Every decision and remaining count equals an exact reference model."""
    rnd = random.Random(11)
    for alg in ALGS:
        for trial in range(6):
            r.call("FLUSHDB")
            wins = rnd.sample([(1, 3), (60, 7), (3600, 50)], rnd.randint(1, 3))
            wins.sort()
            burst = rnd.randint(0, 5)
            spec = [(s, l, burst if i == 0 else l) for i, (s, l) in
                    enumerate(wins)]
            if alg in ("sliding_window", "fixed_window"):
                spec = [(s, l, 0) for (s, l, b) in spec]
            p = pol("m", alg, *spec)
            models = [MODELS[alg](s, l, b) for (s, l, b) in spec]
            now = T0 + rnd.randint(0, 3600 * US)
            for i in range(300):
                now += rnd.choice([0, 1, 999, 100000, 333333, 1000000,
                                   7 * US, 61 * US])
                res = lua.run(now, [p])
                oks = [m.check(now) for m in models]
                want = 0 if all(oks) else 1
                assert res.status == want, (alg, spec, i, res, oks)
                if want == 0:
                    for m in models:
                        m.consume(now)
                for m, w, ok in zip(models, res.win, oks):
                    assert w["remaining"] == m.remaining(now), \
                        (alg, spec, i, res)
                    assert w["rejected"] == (0 if ok else 1)
                    want_reset = -(-Fraction(m.reset_us(now)) // 1000)
                    assert w["reset_ms"] == want_reset, \
                        (alg, spec, i, res, want_reset)


def t_ttls(r, lua):
    now = T0 + 1234567
    for alg in ALGS:
        r.call("FLUSHDB")
        p = pol("t", alg, (1, 5, 2), (60, 10, 0), (3600, 100, 0),
                (86400, 1000, 0))
        for _ in range(3):
            res = lua.run(now, [p])
        for w, (secs, limit, burst, key) in zip(res.win, p.windows):
            t = r.call("PTTL", key)
            if alg == "fixed_window":
                bound = ((now // (secs * US) + 1) * secs * US - now) // 1000 + 1
            elif alg == "sliding_window":
                bound = secs * 1000
            else:
                bound = w["reset_ms"]       # time until full
            assert 0 < t <= bound, (alg, key, t, bound)
        # Rejected requests do not extend any TTL.
        r.call("FLUSHDB")
        q = pol("x", alg, (60, 1, 0))
        lua.run(now, [q])
        t1 = r.call("PTTL", "x:60")
        lua.run(now + 30 * US, [q])
        assert r.call("PTTL", "x:60") <= t1


def t_concurrent_clients(r, lua):
    """Many connections at once, server time: never more than the limit."""
    import threading
    path = r.sock.getpeername()
    for alg in ALGS:
        r.call("FLUSHDB")
        secs = 86400 if alg == "fixed_window" else 3600
        p = pol("c", alg, (secs, 50, 0))
        day0 = int(r.call("TIME")[0]) // secs
        counts = []

        def worker():
            c = Redis(path)
            mine = Lua.__new__(Lua)
            mine.r, mine.sha = c, lua.sha
            n = 0
            for _ in range(40):
                n += mine.run(None, [p]).status == 0
            counts.append(n)
            c.close()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        crossed = int(r.call("TIME")[0]) // secs != day0
        total = sum(counts)
        assert total == 50 or (crossed and total <= 100), (alg, counts)


def make_record(r, key="rec", **fields):
    d = {"id": "0123456789abcdef", "name": "svc", "created": "1700000000",
         "expires": "0", "revoked": "0", "alg": "", "rps": "0", "rpm": "0",
         "rph": "0", "rpd": "0", "burst": "0"}
    d.update({k: str(v) for k, v in fields.items()})
    args = []
    for k, v in d.items():
        args += [k, v]
    r.call("HSET", key, *args)


def t_lookup_unknown_revoked_expired(r, lua):
    route = pol("route", "sliding_window", (60, 5, 0))
    res = lua.run(T0, [route], lookup=True)
    assert res.status == 2 and res.record == [] and res.win == [], res
    make_record(r, revoked=1, rpm=5)
    res = lua.run(T0, [route], lookup=True)
    assert res.status == 3 and res.record[0] == "0123456789abcdef", res
    r.call("DEL", "rec")
    make_record(r, expires=T0 // US)
    res = lua.run(T0, [route], lookup=True)
    assert res.status == 4 and res.win == [], res
    res = lua.run(T0 - 1, [route], lookup=True)
    assert res.status == 0, res
    r.call("DEL", "rec", "route:60")
    # Nothing but the record exists: statuses 2-4 consumed nothing.
    assert r.call("KEYS", "*") == [], r.call("KEYS", "*")


def t_lookup_key_policy(r, lua):
    make_record(r, rpm=2, rph=10, burst=0, expires=T0 // US + 3600)
    route = pol("route", "sliding_window", (60, 100, 0))
    got = [lua.run(T0, [route], lookup=True) for _ in range(3)]
    assert [x.status for x in got] == [0, 0, 1], got
    w = got[0].win
    assert [(x["name"], x["secs"], x["alg"]) for x in w] == [
        ("key", 60, "sliding_window"), ("key", 3600, "sliding_window"),
        ("route", 60, "sliding_window")], w
    assert got[0].record == ["0123456789abcdef", "svc", str(T0 // US + 3600),
                             "", "0", "2", "10", "0", "0"], got[0].record
    assert r.call("ZCARD", "k:m") == 2 and r.call("ZCARD", "k:h") == 2
    assert r.call("EXISTS", "k:s") == 0 and r.call("EXISTS", "k:d") == 0


def t_lookup_key_burst(r, lua):
    # alg "" takes the default algorithm; burst goes to the shortest window.
    make_record(r, rpm=10, rph=100, burst=3)
    res = lua.run(T0, [], lookup=True, default_alg="gcra")
    assert [(w["alg"], w["limit"], w["burst"]) for w in res.win] == [
        ("gcra", 10, 3), ("gcra", 100, 100)], res
    got = [lua.run(T0, [], lookup=True, default_alg="gcra").status
           for _ in range(3)]
    assert got == [0, 0, 1], got
    r.call("FLUSHDB")
    make_record(r, alg="token_bucket", rps=1, rpd=5, burst=2)
    res = lua.run(T0, [], lookup=True, default_alg="gcra")
    assert [(w["alg"], w["secs"], w["burst"]) for w in res.win] == [
        ("token_bucket", 1, 2), ("token_bucket", 86400, 5)], res


def t_lookup_default_flag(r, lua):
    default = pol("default", "sliding_window", (60, 1, 0), flags=2)
    # The key has a policy: the default is skipped.
    make_record(r, rpm=3)
    got = [lua.run(T0, [default], lookup=True) for _ in range(4)]
    assert [x.status for x in got] == [0, 0, 0, 1], got
    assert all(w["name"] == "key" for x in got for w in x.win), got
    assert r.call("EXISTS", "default:60") == 0
    # The key has none: the default applies.
    r.call("FLUSHDB")
    make_record(r)
    got = [lua.run(T0, [default], lookup=True) for _ in range(2)]
    assert [x.status for x in got] == [0, 1], got
    assert [w["name"] for w in got[0].win] == ["default"], got
    # Flag 2 without lookup mode: the policy applies.
    r.call("FLUSHDB")
    assert lua.run(T0, [default]).win[0]["name"] == "default"


def t_wrong_type(r, lua):
    # A counter left by another algorithm is treated as empty and replaced.
    for alg, other in [("sliding_window", "fixed_window"),
                       ("fixed_window", "sliding_window"),
                       ("gcra", "sliding_window"),
                       ("token_bucket", "sliding_window")]:
        r.call("FLUSHDB")
        for _ in range(3):
            lua.run(T0, [pol("p", other, (60, 3, 0))])
        got = [lua.run(T0, [pol("p", alg, (60, 2, 0))]).status
               for _ in range(3)]
        assert got == [0, 0, 1], (alg, got)


def t_server_time(r, lua):
    p = pol("route", "sliding_window", (60, 5, 0))
    res = lua.run(None, [p])
    assert res.status == 0 and abs(res.now_ms - time.time() * 1000) < 5000


def t_no_policies(r, lua):
    res = lua.run(T0, [])
    assert res.status == 0 and res.win == [] and res.raw == [0, T0 // 1000,
                                                             0, [], 0], res


def t_bad_arguments(r, lua):
    cases = [
        ["rec", "x", "0", "sliding_window", "0", "0"],
        ["rec", str(T0), "0", "sliding_window", "0", "1", "p", "0",
         "nope", "1", "60", "5", "0", "1"],
        ["rec", "c", str(T0), "0", "sliding_window", "0", "1", "p", "0",
         "gcra", "1", "60", "0", "0", "2"],
        ["rec", "c", str(T0), "0", "sliding_window", "0", "1", "p", "0",
         "gcra", "1", "60", "5", "0", "9"],
        ["rec", "c", str(T0), "0", "sliding_window", "0", "1", "p", "0",
         "gcra", "2", "60", "5", "0", "2"],
        ["rec", "c", str(T0), "0", "sliding_window", "0", "0", "extra"],
    ]
    for c in cases:
        nkeys = 2 if c[1] == "c" else 1
        try:
            r.call("EVALSHA", lua.sha, nkeys, *c)
        except RespError as e:
            assert "ratelimit.lua" in str(e), e
        else:
            raise AssertionError("accepted %r" % (c,))




# ---- leases ---------------------------------------------------------------

def t_lease_fixed(r, lua):
    p = pol("route", "fixed_window", (60, 1000, 0))
    res = lua.run(T0, [p], lease=(64, 200))
    k, until_ms, end_us, granted_us = res.lease
    assert res.status == 0 and k == 64, res
    assert until_ms == (T0 + 200000) // 1000 and end_us == T0 + 200000 and granted_us == T0
    # charged at once: this request and the 64 leased units
    assert r.call("HGET", "route:60", "n") == "65"
    assert res.win[0]["remaining"] == 1000 - 65, res
    # a lease never crosses the window's end
    edge = T0 + 60 * US
    res = lua.run(edge - 100000, [p], lease=(64, 200))
    assert res.lease[0] == 64 and res.lease[2] == edge, res
    # too short to be worth it: none
    res = lua.run(edge - 5000, [p], lease=(64, 200))
    assert res.status == 0 and res.lease[0] == 0, res
    # give back: the units come off the count in the same window only
    n = int(r.call("HGET", "route:60", "n"))
    assert lua.run(edge - 4000, [p], giveback=(64, edge, edge - 100000)) == [64]
    assert int(r.call("HGET", "route:60", "n")) == n - 64
    lua.run(edge + 1000, [p], giveback=(10, edge, edge - 100000))  # next window
    assert int(r.call("HGET", "route:60", "n")) == n - 64


def t_lease_shrinks_near_the_limit(r, lua):
    for alg in ("fixed_window", "sliding_window", "token_bucket", "gcra"):
        r.call("FLUSHDB")
        p = pol("route", alg, (3600, 200, 0))
        admitted = leased = 0
        grants = []
        for i in range(400):
            res = lua.run(T0 + i * 1000, [p], lease=(64, 200))
            if res.status == 0:
                admitted += 1
                leased += res.lease[0]
                grants.append(res.lease[0])
        # every unit handed out (admitted or leased) is one of the 200
        assert admitted + leased <= 200 + 1, (alg, admitted, leased)
        assert admitted + leased >= 190, (alg, admitted, leased)
        # k is at most 1/8 of what is left, so it falls to 0 near the end
        assert grants[0] <= (200 - 1) // 8 and grants[-1] == 0, (alg, grants)
        assert max(grants) <= 64


def t_lease_small_limit_never(r, lua):
    for alg in ("fixed_window", "sliding_window", "token_bucket", "gcra"):
        r.call("FLUSHDB")
        p = pol("route", alg, (60, 5, 0))
        got = [lua.run(T0, [p], lease=(64, 200)) for _ in range(7)]
        assert [x.status for x in got] == [0] * 5 + [1] * 2, (alg, got)
        assert all(x.lease[0] == 0 for x in got if x.lease), (alg, got)


def t_lease_sliding_stamped_at_end(r, lua):
    p = pol("route", "sliding_window", (60, 100, 0))
    res = lua.run(T0, [p], lease=(64, 200))
    k = res.lease[0]
    assert k == (100 - 1) // 8, res
    end = T0 + 200000
    assert r.call("ZCOUNT", "route:60", end, end) == k
    # the leased units count until lease end + W, so a use at the lease's
    # end is still inside every window that follows it
    res = lua.run(T0 + 60 * US + 100000, [p])
    assert res.win[0]["remaining"] == 100 - k - 1, res
    res = lua.run(end + 60 * US, [p])
    assert res.win[0]["remaining"] == 100 - 2, res   # both T0 entries gone
    # give back removes that many of the lease's entries
    r.call("FLUSHDB")
    res = lua.run(T0, [p], lease=(64, 200))
    assert lua.run(T0 + 1000, [p], giveback=(5, res.lease[2], res.lease[3])) == [5]
    assert r.call("ZCOUNT", "route:60", end, end) == res.lease[0] - 5


def t_lease_bucket_reserve(r, lua):
    # 600 per minute = 10 per second, burst 600; a 1 s lease must leave
    # rate x 1 s = 10 tokens in the bucket
    p = pol("route", "gcra", (60, 600, 0))
    res = lua.run(T0, [p], lease=(1000, 1000))
    k = res.lease[0]
    assert k == (600 - 1 - 10) // 8, res
    assert res.win[0]["remaining"] == 600 - 1 - k, res
    # near empty: no lease once what is left minus the reserve is < 8
    r.call("FLUSHDB")
    for _ in range(600 - 17):
        lua.run(T0, [p])
    res = lua.run(T0, [p], lease=(1000, 1000))
    assert res.status == 0 and res.lease[0] == 0, res
    # give back: tokens return, never beyond full
    r.call("FLUSHDB")
    res = lua.run(T0, [p], lease=(1000, 1000))
    lua.run(T0, [p], giveback=(res.lease[0] + 50, res.lease[2], res.lease[3]))
    res = lua.run(T0, [p])
    assert res.win[0]["remaining"] == 600 - 1, res


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("t_")]
    if not os.path.exists(SCRIPT):
        print("missing %s" % SCRIPT)
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="apigw-lua-")
    proc = None
    passed = failed = 0
    try:
        proc, r = start_redis(tmp)
        lua = Lua(r)
        for t in tests:
            r.call("FLUSHDB")
            try:
                t(r, lua)
                passed += 1
                print("ok   %s" % t.__name__)
            except Exception:
                failed += 1
                print("FAIL %s" % t.__name__)
                traceback.print_exc()
        r.close()
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
