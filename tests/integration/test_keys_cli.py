#!/usr/bin/env python3
"""Integration test of apigw-keys against a private redis-server.

Starts redis-server on a unix socket in a temporary directory, writes a
minimal gateway config pointing at it, and drives the built apigw-keys
through create / list / show / update / revoke / delete, checking exit
codes, output formats, and that Redis never holds a plaintext key.

Environment: top_builddir (where apigw-keys was built, default "."),
top_srcdir (unused but accepted), REDIS_SERVER (default "redis-server").
Python 3 standard library only.  Prints "N passed, M failed".
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILDDIR = os.environ.get("top_builddir", ".")
KEYS_BIN = os.path.join(BUILDDIR, "apigw-keys")
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
PREFIX = "apigwtest:"
KEY_RE = re.compile(r"^gw_[A-Za-z0-9_-]{43}$")
ID_RE = re.compile(r"^[0-9a-f]{16}$")
RECORD_FIELDS = {"id", "name", "created", "expires", "revoked", "alg",
                 "rps", "rpm", "rph", "rpd", "burst"}


# ---- a tiny RESP client over the unix socket ----

class Redis:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad RESP line %r" % line)

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def dump(self):
        """Every key with its type and contents, as bytes."""
        result = {}
        cursor = b"0"
        while True:
            cursor, keys = self.cmd("SCAN", cursor, "COUNT", "1000")
            for k in keys:
                t = self.cmd("TYPE", k).decode()
                if t == "string":
                    v = [self.cmd("GET", k)]
                elif t == "hash":
                    v = self.cmd("HGETALL", k)
                elif t == "set":
                    v = self.cmd("SMEMBERS", k)
                elif t == "list":
                    v = self.cmd("LRANGE", k, "0", "-1")
                elif t == "zset":
                    v = self.cmd("ZRANGE", k, "0", "-1", "WITHSCORES")
                else:
                    v = [self.cmd("DUMP", k) or b""]
                result[k] = (t, v)
            if cursor == b"0":
                return result


# ---- the environment ----

class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="apigw-keys-")
        self.sock = os.path.join(self.tmp, "redis.sock")
        self.conf = os.path.join(self.tmp, "apigw.conf")
        self.redis = None
        self.logf = None

    def start_redis(self):
        self.logf = open(os.path.join(self.tmp, "redis.log"), "wb")
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--unixsocket", self.sock,
             "--save", "", "--appendonly", "no", "--dir", self.tmp],
            stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.redis.poll() is not None:
                raise RuntimeError("redis-server exited; see %s/redis.log"
                                   % self.tmp)
            if os.path.exists(self.sock):
                try:
                    r = Redis(self.sock)
                    if r.cmd("PING") == b"PONG":
                        r.close()
                        return
                    r.close()
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop_redis(self):
        if self.redis is None:
            return
        if self.redis.poll() is None:
            os.kill(self.redis.pid, signal.SIGTERM)
            try:
                self.redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.redis.pid, signal.SIGKILL)
                self.redis.wait()
        self.redis = None
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write('redis = {\n'
                    '  url = "unix://%s?db=0";\n'
                    '  connect_timeout_ms = 1000;\n'
                    '  command_timeout_ms = 2000;\n'
                    '  key_prefix = "%s";\n'
                    '};\n'
                    'routes = (\n'
                    '  { prefix = "/api"; backend = "http://127.0.0.1:9"; }\n'
                    ');\n' % (self.sock, PREFIX))

    def client(self):
        return Redis(self.sock)

    def cleanup(self):
        try:
            self.stop_redis()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


ENV = None
STATE = {}


def run(*args, config=True, env_config=None):
    """Runs apigw-keys; returns (exit code, stdout, stderr)."""
    argv = [KEYS_BIN]
    if config:
        argv += ["--config", ENV.conf]
    argv += list(args)
    env = dict(os.environ)
    env.pop("APIGW_CONFIG", None)
    if env_config is not None:
        env["APIGW_CONFIG"] = env_config
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def expect_error(res, code, contains=None):
    """An error: the exit code, no stdout, exactly one stderr line."""
    rc, out, err = res
    assert rc == code, "exit %d, wanted %d (stderr %r)" % (rc, code, err)
    assert out == "", "stdout not empty: %r" % out
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), \
        "stderr is not one line: %r" % err
    assert lines[0].startswith("apigw-keys: "), "bad prefix: %r" % err
    if contains is not None:
        assert contains in lines[0], "%r not in %r" % (contains, lines[0])


def expect_ok(res):
    rc, out, err = res
    assert rc == 0, "exit %d (stderr %r)" % (rc, err)
    return out, err


def list_json():
    out, _ = expect_ok(run("list", "--json"))
    data = json.loads(out)
    assert isinstance(data, list)
    return {k["id"]: k for k in data}


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


# ---- the tests, run in order ----

def test_help_version():
    out, err = expect_ok(run("--help", config=False))
    assert "usage: apigw-keys" in out and "create NAME" in out
    assert "--no-policy" in out
    assert err == ""
    out, err = expect_ok(run("--version", config=False))
    assert re.match(r"^apigw-keys \S+\n$", out), out


def test_usage_errors():
    expect_error(run(config=False), 1, "missing command")
    expect_error(run("frobnicate"), 1, "unknown command")
    expect_error(run("create"), 1, "missing NAME")
    expect_error(run("create", "x", "--bogus"), 1, "unknown option")
    expect_error(run("create", "x", "--burst", "5"), 1, "--burst")
    expect_error(run("create", "x", "--requests-per-minute", "0"), 1)
    expect_error(run("create", "x", "--requests-per-minute",
                     "1000000001"), 1)
    expect_error(run("create", "x", "--expires-in", "5x"), 1)
    expect_error(run("create", "x", "--expires-in", "0"), 1)
    expect_error(run("create", "x", "--algorithm", "leaky",
                     "--requests-per-minute", "5"), 1, "--algorithm")
    expect_error(run("create", "a\nb"), 1, "NAME")
    expect_error(run("create", "n" * 129), 1, "NAME")
    expect_error(run("list", "extra"), 1)
    expect_error(run("show"), 1, "missing ID")
    expect_error(run("update", "0123456789abcdef"), 1, "nothing to change")
    # with stdout closed, a new key could only be lost (or worse, written
    # to whatever file the process opens next): refused
    p = subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', KEYS_BIN,
                        "--config", ENV.conf, "create", "lost"],
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 1, p
    assert p.stderr.decode().startswith("apigw-keys: standard output")
    # nothing was created by any of these
    r = ENV.client()
    assert r.cmd("DBSIZE") == 0
    r.close()


def test_config_errors():
    missing = os.path.join(ENV.tmp, "nope.conf")
    expect_error(run("--config", missing, "list", config=False), 1)
    expect_error(run("list", config=False, env_config=missing), 1)
    bad = os.path.join(ENV.tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("redis = { url = 42; };\nthis is not libconfig\n")
    expect_error(run("--config", bad, "list", config=False), 1)


def test_create_basic():
    rc, out, err = run("create", "Basic App")
    assert rc == 0, err
    assert out.endswith("\n") and out.count("\n") == 1, repr(out)
    key = out[:-1]
    assert KEY_RE.match(key), repr(out)
    assert key not in err, "the key leaked to stderr"
    m = re.search(r"\b([0-9a-f]{16})\b", err)
    assert m, "no id on stderr: %r" % err
    STATE["basic"] = (key, m.group(1))


def test_create_policy_env_config():
    before = int(time.time())
    rc, out, err = run("create", "Premium App", "--requests-per-minute",
                       "1000", "--requests-per-hour=20000", "--burst", "50",
                       "--algorithm", "token_bucket", "--expires-in", "30d",
                       config=False, env_config=ENV.conf)
    after = int(time.time())
    assert rc == 0, err
    assert out.count("\n") == 1 and KEY_RE.match(out[:-1]), repr(out)
    key = out[:-1]
    m = re.search(r"\b([0-9a-f]{16})\b", err)
    assert m
    STATE["premium"] = (key, m.group(1))
    STATE["premium_window"] = (before, after)
    assert key != STATE["basic"][0]
    # a third key, inheriting the algorithm, seconds-only expiry
    rc, out, err = run("create", "-dash name", "--requests-per-second", "3",
                       "--expires-in", "90")
    assert rc != 0  # "-dash name" is an option; needs "--"
    rc, out, err = run("create", "--requests-per-second", "3",
                       "--expires-in", "90", "--", "-dash name")
    assert rc == 0, err
    STATE["third"] = (out.strip(), re.search(r"\b([0-9a-f]{16})\b",
                                             err).group(1))


def test_list_table():
    out, err = expect_ok(run("list"))
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["ID", "NAME"], lines[0]
    assert len(lines) == 4, out
    for name, (key, kid) in (("Basic App", STATE["basic"]),
                             ("Premium App", STATE["premium"]),
                             ("-dash name", STATE["third"])):
        row = [l for l in lines if l.startswith(kid)]
        assert len(row) == 1, "%s missing from list" % kid
        assert name in row[0]
        assert "active" in row[0]
        assert key not in out
    assert "token_bucket" in out


def test_list_json():
    keys = list_json()
    assert len(keys) == 3
    _, bid = STATE["basic"]
    _, pid = STATE["premium"]
    _, tid = STATE["third"]
    b, p, t = keys[bid], keys[pid], keys[tid]
    for k in (b, p, t):
        assert set(k) >= {"id", "name", "created", "expires", "revoked",
                          "policy"}, k
        assert ID_RE.match(k["id"])
        assert isinstance(k["created"], int) and isinstance(k["expires"],
                                                            int)
        assert k["revoked"] is False
    assert b["name"] == "Basic App"
    assert b["expires"] == 0
    assert b["policy"] is None
    before, after = STATE["premium_window"]
    assert before <= p["created"] <= after
    assert p["expires"] == p["created"] + 30 * 86400, p
    assert p["policy"]["algorithm"] == "token_bucket"
    assert p["policy"]["requests_per_minute"] == 1000
    assert p["policy"]["requests_per_hour"] == 20000
    assert p["policy"]["burst_size"] == 50
    assert "requests_per_second" not in p["policy"]
    assert t["name"] == "-dash name"
    assert t["expires"] == t["created"] + 90
    assert t["policy"]["algorithm"] is None  # inherits the default
    assert t["policy"]["requests_per_second"] == 3
    STATE["json"] = keys


def test_show():
    _, pid = STATE["premium"]
    out, _ = expect_ok(run("show", pid))
    assert pid in out and "Premium App" in out and "token_bucket" in out
    assert STATE["premium"][0] not in out
    out, _ = expect_ok(run("show", pid, "--json"))
    assert json.loads(out) == STATE["json"][pid]


def test_redis_holds_no_secret():
    r = ENV.client()
    data = r.dump()
    r.close()
    blob = b"\n".join(k + b"\n" + b"\n".join(v) for k, (t, v) in
                      data.items())
    for label in ("basic", "premium", "third"):
        key, kid = STATE[label]
        assert key.encode() not in blob, "plaintext %s key in Redis" % label
        # nor its random part alone
        assert key[3:].encode() not in blob
        h = sha(key)
        assert h.encode() in blob, "sha256 of %s key not in Redis" % label
        rec = (PREFIX + "{k:%s}:rec" % h).encode()
        assert rec in data and data[rec][0] == "hash", sorted(data)
        fields = dict(zip(data[rec][1][::2], data[rec][1][1::2]))
        assert {f.decode() for f in fields} == RECORD_FIELDS, fields
        assert fields[b"id"] == kid.encode()
        idx = (PREFIX + "keyid:" + kid).encode()
        assert data[idx] == ("string", [h.encode()])
    members = data[(PREFIX + "keys").encode()]
    assert members[0] == "set"
    assert sorted(members[1]) == sorted(
        STATE[l][1].encode() for l in ("basic", "premium", "third"))
    # nothing outside the prefix
    for k in data:
        assert k.startswith(PREFIX.encode()), k
    b_rec = dict(zip(*[iter(data[(PREFIX + "{k:%s}:rec" %
                                  sha(STATE["basic"][0])).encode()][1])] * 2))
    assert b_rec[b"alg"] == b"" and b_rec[b"rpm"] == b"0"
    assert b_rec[b"revoked"] == b"0" and b_rec[b"expires"] == b"0"


def test_update():
    _, bid = STATE["basic"]
    _, pid = STATE["premium"]
    # --burst on a key without a policy: nothing to apply it to
    expect_error(run("update", bid, "--burst", "5"), 1, "no own policy")
    out, _ = expect_ok(run("update", bid, "--requests-per-minute", "7"))
    assert out == ""
    k = list_json()[bid]
    assert k["policy"] == {"algorithm": None, "requests_per_minute": 7,
                           "burst_size": 0}, k
    # only the given fields change
    expect_ok(run("update", pid, "--requests-per-day", "99999",
                  "--algorithm", "gcra"))
    k = list_json()[pid]
    assert k["policy"] == {"algorithm": "gcra", "requests_per_minute": 1000,
                           "requests_per_hour": 20000,
                           "requests_per_day": 99999, "burst_size": 50}, k
    assert k["name"] == "Premium App"
    assert k["created"] == STATE["json"][pid]["created"]
    assert k["expires"] == STATE["json"][pid]["expires"]
    # expiry
    before = int(time.time())
    expect_ok(run("update", pid, "--expires-in", "12h"))
    k = list_json()[pid]
    assert before + 43200 <= k["expires"] <= int(time.time()) + 43200
    expect_ok(run("update", pid, "--no-expiry"))
    assert list_json()[pid]["expires"] == 0
    # --no-policy clears it
    expect_ok(run("update", pid, "--no-policy"))
    k = list_json()[pid]
    assert k["policy"] is None, k
    r = ENV.client()
    rec = PREFIX + "{k:%s}:rec" % sha(STATE["premium"][0])
    f = r.cmd("HGETALL", rec)
    r.close()
    f = dict(zip(f[::2], f[1::2]))
    for w in (b"rps", b"rpm", b"rph", b"rpd", b"burst"):
        assert f[w] == b"0", f
    assert f[b"alg"] == b""


def test_revoke():
    _, bid = STATE["basic"]
    out, _ = expect_ok(run("revoke", bid))
    assert out == ""
    k = list_json()[bid]
    assert k["revoked"] is True
    assert k["policy"]["requests_per_minute"] == 7
    out, _ = expect_ok(run("show", bid))
    assert "revoked" in out
    out, _ = expect_ok(run("list"))
    assert "revoked" in [l for l in out.splitlines()
                         if l.startswith(bid)][0]
    expect_ok(run("revoke", bid))  # again: still fine


def test_unknown_ids():
    for cmd in (["show"], ["revoke"], ["delete"],
                ["update", "--no-expiry"]):
        argv = cmd[:1] + ["0123456789abcdef"] + cmd[1:]
        expect_error(run(*argv), 1, "no key with id 0123456789abcdef")
    for bad in ("ZZZZ", "0123456789ABCDEF", "*", "../x",
                "0123456789abcdef0", "{k:x}", "a\x1b[2Jb"):
        for cmd in ("show", "revoke", "delete"):
            expect_error(run(cmd, bad), 1, "no key with id")
    # nothing was written by those
    assert len(list_json()) == 3


def test_delete():
    key, tid = STATE["third"]
    h = sha(key)
    r = ENV.client()
    counters = [PREFIX + "{k:%s}:rl:k:%s" % (h, w) for w in "smhd"]
    for c in counters:
        r.cmd("SET", c, "1")
    out, _ = expect_ok(run("delete", tid))
    assert out == ""
    for c in counters:
        assert r.cmd("EXISTS", c) == 0, c
    assert r.cmd("EXISTS", PREFIX + "{k:%s}:rec" % h) == 0
    assert r.cmd("EXISTS", PREFIX + "keyid:" + tid) == 0
    assert r.cmd("SISMEMBER", PREFIX + "keys", tid) == 0
    r.close()
    expect_error(run("show", tid), 1, "no key with id")
    expect_error(run("delete", tid), 1, "no key with id")
    keys = list_json()
    assert tid not in keys and len(keys) == 2


def test_delete_route_counters():
    """Counters the gateway made for a key on a route with its own policy
    (and the key's own policy) all go with the key; so does a counter of a
    route that is no longer configured.  Names as in src/keyspace.h."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness as h

    out, _ = expect_ok(run("create", "routed", "--requests-per-minute", "50"))
    key = out.strip()
    assert KEY_RE.match(key), out
    kid = [i for i, k in list_json().items() if k["name"] == "routed"][0]
    tag = "{k:%s}" % sha(key)
    r = ENV.client()
    td = h.TempDir(prefix="apigw-keys-gw-")
    try:
        backend = h.start_backend(td)
        redis = type("R", (), {"url": "unix://%s?db=0" % ENV.sock})()
        cfg = h.base_config(
            redis,
            [{"prefix": "/limited", "backend": backend.url, "require_auth": True,
              "rate_limit": {"algorithm": "sliding_window",
                             "requests_per_minute": 100,
                             "requests_per_hour": 1000}},
             {"prefix": "/open", "backend": backend.url, "require_auth": True}],
            api_keys={"header": "X-API-Key", "cache_ttl_s": 1})
        cfg["redis"]["key_prefix"] = PREFIX
        lt = h.Lighttpd(td, config=h.write_gateway_config(td, cfg), max_procs=1)
        for path in ("/limited/a", "/limited/b", "/open/c"):
            resp = h.request(lt.port, "GET", path, headers={"X-API-Key": key})
            h.expect_status(resp, 200, path)
        mine = [k.decode() for k in r.dump() if tag in k.decode()]
        route = [k for k in mine if ":rl:r:" in k]
        assert len(route) == 2, mine          # minute and hour
        assert any(":rl:k:" in k for k in mine), mine
        assert any(":rl:d:" in k for k in mine) is False, mine
        # a route that has since left the config
        r.cmd("SET", PREFIX + tag + ":rl:r:ffffffffffffffff:m", "1")
        # another key's counter stays
        other = PREFIX + "{k:%s}:rl:r:ffffffffffffffff:m" % sha("other")
        r.cmd("SET", other, "1")
    finally:
        td.close()
    expect_ok(run("delete", kid))
    left = [k.decode() for k in r.dump() if tag in k.decode()]
    assert left == [], left
    assert r.cmd("EXISTS", other) == 1
    r.cmd("DEL", other)
    r.close()


def test_redis_down():
    _, bid = STATE["basic"]
    ENV.stop_redis()
    expect_error(run("list"), 2)
    expect_error(run("list", "--json"), 2)
    expect_error(run("create", "while down"), 2)
    expect_error(run("show", bid), 2)
    expect_error(run("revoke", bid), 2)
    expect_error(run("delete", bid), 2)
    expect_error(run("update", bid, "--no-expiry"), 2)
    # a malformed id is "not found" without asking Redis
    expect_error(run("show", "not-an-id"), 1, "no key with id")
    # usage errors stay usage errors
    expect_error(run("create"), 1)


TESTS = [
    test_help_version,
    test_usage_errors,
    test_config_errors,
    test_create_basic,
    test_create_policy_env_config,
    test_list_table,
    test_list_json,
    test_show,
    test_redis_holds_no_secret,
    test_update,
    test_revoke,
    test_unknown_ids,
    test_delete,
    test_delete_route_counters,
    test_redis_down,
]


def main():
    global ENV
    if not os.access(KEYS_BIN, os.X_OK):
        print("FAIL: %s not built" % KEYS_BIN)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    ENV = Env()
    try:
        ENV.write_config()
        ENV.start_redis()
        for t in TESTS:
            try:
                t()
                passed += 1
                print("ok   %s" % t.__name__)
            except Exception:
                failed += 1
                print("FAIL %s" % t.__name__)
                traceback.print_exc(file=sys.stdout)
    finally:
        ENV.cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
