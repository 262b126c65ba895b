#!/usr/bin/env python3
"""nginx in front of `apigw --listen`, with the shipped recipe
contrib/nginx/apigw.conf (read from the file; only the upstream address and
the listen port are replaced):

  - over a unix socket made with --socket-mode 0660 --socket-owner
    www-data:www-data, which nginx's workers (www-data) connect to, and
    over TCP: problem documents, path normalization, API keys, 429 with
    RateLimit headers, a 10 MiB streamed response byte for byte, a request
    body, a client that disconnects mid-stream;
  - fastcgi_keep_conn on with an upstream keepalive block: 50 requests on
    fewer FastCGI connections, and no request stuck behind a worker that
    holds an idle kept connection;
  - the socket itself: mode and owner, a stale socket file replaced, a
    live one refused, --user dropping the workers' privileges, and
    one-line errors for an unknown owner and for --user without root.
"""

import os
import pwd
import re
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, echo_header, test  # noqa: E402

WEB_USER = "www-data"  # nginx's workers, as the harness starts it as root
SOCK_ARGS = ["--socket-mode", "0660", "--socket-owner", "%s:%s" % (WEB_USER, WEB_USER)]


class Ctx:
    pass


def setup(td):
    check(os.geteuid() == 0, "test_nginx runs as root (nginx workers run as %s)" % WEB_USER)
    c = Ctx()
    c.td = td
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    routes = [
        {"prefix": "/api", "backend": c.b.url},
        {"prefix": "/x", "backend": c.b.url},
        {"prefix": "/ro", "backend": c.b.url, "methods": ["GET", "HEAD"]},
        {"prefix": "/auth", "backend": c.b.url, "require_auth": True},
        {"prefix": "/limited", "backend": c.b.url,
         "rate_limit": {"algorithm": "sliding_window", "requests_per_minute": 3}},
    ]
    c.cfg = h.base_config(c.redis, routes)
    c.config = h.write_gateway_config(td, c.cfg)
    keys = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    p = subprocess.run([keys, "--config", c.config, "create", "nginx-test"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode())
    c.key = p.stdout.decode().strip()

    c.pool = h.ApigwListen(td, c.config, workers=2, args=SOCK_ARGS)
    c.ng = h.Nginx(td, "unix:" + c.pool.addr)
    tcp = "127.0.0.1:%d" % h.free_port()
    c.pool_tcp = h.ApigwListen(td, c.config, workers=2, addr=tcp, name="apigw-tcp")
    c.ng_tcp = h.Nginx(td, tcp, name="nginx-tcp")
    c.servers = {"unix": c.ng.port, "tcp": c.ng_tcp.port}
    return c


def echo(port, path, method="GET", **kw):
    r = h.request(port, method, path, **kw)
    expect_status(r, 200, "%s %s" % (method, path))
    return r.json()


def uid_of(pid):
    """The four uids (real, effective, saved, fs) of pid."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:5]]
    return None


def gid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Gid:"):
                return [int(x) for x in line.split()[1:5]]
    return None


def run_apigw(args, timeout=15, **kw):
    """apigw run to completion; (exit status, stderr lines)."""
    p = subprocess.run([h.apigw_bin()] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, **kw)
    return p.returncode, p.stderr.decode(errors="replace").splitlines()


# ---------------------------------------------------------------------------
# through nginx

@test
def socket_mode_and_owner(c):
    st = os.stat(c.pool.addr)
    web = pwd.getpwnam(WEB_USER)
    check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % c.pool.addr)
    eq(oct(stat.S_IMODE(st.st_mode)), oct(0o660), "socket mode")
    eq((st.st_uid, st.st_gid), (web.pw_uid, web.pw_gid), "socket owner")
    workers = c.ng.worker_pids()
    check(workers, "no nginx workers")
    for p in workers:
        eq(uid_of(p)[0], web.pw_uid, "uid of nginx worker %d" % p)
    doc = echo(c.ng.port, "/api/hello?a=1")
    eq((doc["path"], doc["query"]), ("/api/hello", "a=1"), "forwarded by nginx's worker")


@test
def problems_404_405(c):
    for name, port in c.servers.items():
        doc = expect_problem(h.request(port, "GET", "/nope"), 404, name + " 404")
        check("route" in (doc["error"] + doc["detail"]).lower() or doc["title"] == "Not Found",
              "%s: 404 document %r" % (name, doc))
        r = h.request(port, "POST", "/ro/x", body="z")
        expect_problem(r, 405, name + " 405")
        allow = r.headers.get("Allow") or ""
        check("GET" in allow and "POST" not in allow, "%s: Allow %r" % (name, allow))


@test
def path_normalization(c):
    for name, port in c.servers.items():
        eq(echo(port, "/api/../x/y")["path"], "/x/y", name + ": /api/../x/y")
        eq(echo(port, "//api//a///b")["path"], "/api/a/b", name + ": //api//a///b")
        eq(echo(port, "/api/./c/d/../e?q=%2F")["path"], "/api/c/e", name + ": dot segments")
        eq(echo(port, "/api/./c?q=%2F")["query"], "q=%2F", name + ": query as received")
        expect_problem(h.request(port, "GET", "/api/a%2Fb"), 400, name + ": %2F")


@test
def api_key_auth(c):
    for name, port in c.servers.items():
        r = h.request(port, "GET", "/auth/x")
        expect_problem(r, 401, name + " no key")
        check("ApiKey" in (r.headers.get("WWW-Authenticate") or ""),
              "%s: WWW-Authenticate %r" % (name, r.headers.get("WWW-Authenticate")))
        expect_problem(h.request(port, "GET", "/auth/x", headers={"X-API-Key": "gw_" + "x" * 43}),
                       401, name + " unknown key")
        doc = echo(port, "/auth/x", headers={"X-API-Key": c.key})
        eq(echo_header(doc, "X-API-Key"), None, name + ": key forwarded")
        check(echo_header(doc, "X-Consumer-ID"), "%s: no X-Consumer-ID at the backend" % name)
        eq(echo_header(doc, "X-Consumer-Name"), "nginx-test", name + ": X-Consumer-Name")


@test
def rate_limited_429(c):
    port = c.ng.port  # both servers' clients are 127.0.0.1: one budget
    for i in range(3):
        r = h.request(port, "GET", "/limited/a")
        expect_status(r, 200, "request %d under the limit" % (i + 1))
        check(r.headers.get("RateLimit") and r.headers.get("RateLimit-Policy"),
              "RateLimit headers on a 200: %r" % r.headers)
    r = h.request(port, "GET", "/limited/a")
    doc = expect_problem(r, 429, "4th request")
    check(r.headers.get("Retry-After"), "429 without Retry-After")
    check(r.headers.get("RateLimit") and r.headers.get("RateLimit-Policy"),
          "429 without RateLimit headers: %r" % r.headers)
    check("r=0" in r.headers.get("RateLimit"), "RateLimit %r" % r.headers.get("RateLimit"))
    check(doc.get("violated-policies"), "429 without violated-policies: %r" % doc)
    # the TCP pool shares Redis: the same client is limited there too
    expect_problem(h.request(c.ng_tcp.port, "GET", "/limited/a"), 429, "over TCP")


@test
def big_response_streamed(c):
    want_len, want_sha = h.big_digest(10)
    for name, port in c.servers.items():
        r, n, sha = h.stream_get(port, "/api/big?mb=10")
        expect_status(r, 200, name + " /big")
        eq(n, want_len, name + ": length of the 10 MiB body")
        eq(sha, want_sha, name + ": sha256 of the body")


@test
def request_body_forwarded(c):
    body = secrets.token_hex(150000)  # 300 kB
    for name, port in c.servers.items():
        doc = echo(port, "/api/post", "POST", body=body,
                   headers={"Content-Type": "text/plain"})
        eq(doc["body_len"], len(body), name + ": body length at the backend")
        check(doc["body"] == body, name + ": body differs at the backend")
        eq(echo_header(doc, "Content-Type"), "text/plain", name + ": Content-Type")


@test
def client_disconnect_mid_stream(c):
    for name, port, pool in (("unix", c.ng.port, c.pool), ("tcp", c.ng_tcp.port, c.pool_tcp)):
        before = pool.worker_pids()
        r, n, _ = h.stream_get(port, "/api/big?mb=10", stop_after=1 << 20, chunk=65536)
        expect_status(r, 200, name + " /big")
        check(n < 10 << 20, "%s: read %d bytes" % (name, n))
        for _ in range(4):  # every worker serves again
            eq(echo(port, "/api/after")["path"], "/api/after", name + ": next request")
        eq(pool.worker_pids(), before, name + ": workers after the disconnect (%s)"
           % pool.log_tail())


# ---------------------------------------------------------------------------
# fastcgi_keep_conn

def fastcgi_conns(pool):
    """Inodes of the accepted (server side) connections of pool's unix
    socket: in /proc/net/unix they carry the name the listener was bound
    to, the temporary one it had before the master renamed it."""
    path = os.path.join(os.path.dirname(pool.addr), ".apigw-%d.sock" % pool.pid)
    out = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == path and parts[5] == "03":
                out.add(parts[6])
    return out


@test
def keep_conn_reuses_connections(c):
    pool = h.ApigwListen(c.td, c.config, workers=2, args=SOCK_ARGS, name="apigw-kc")
    ng = h.Nginx(c.td, "unix:" + pool.addr, keepalive=8, keep_conn=True, name="nginx-kc")
    check("fastcgi_keep_conn on;" in h.read_text(ng.conf), "keep_conn not in %s" % ng.conf)
    seen = set()
    body = "k" * 5000
    for i in range(50):
        if i % 5 == 4:
            doc = echo(ng.port, "/api/kc/%d" % i, "POST", body=body)
            eq(doc["body_len"], len(body), "request %d body" % i)
        else:
            doc = echo(ng.port, "/api/kc/%d?i=%d" % (i, i))
            eq(doc["query"], "i=%d" % i, "request %d query" % i)
        eq(doc["path"], "/api/kc/%d" % i, "request %d path" % i)
        seen |= fastcgi_conns(pool)
    # Between requests the kept connection stays open: each sample sees
    # it, and 50 requests used far fewer than 50 connections.
    check(seen, "no FastCGI connection stayed open between requests")
    check(len(seen) <= 10, "50 requests over %d FastCGI connections with keep_conn" % len(seen))
    # Errors and early answers (a 401 before the body is read) keep the
    # connection usable: the next requests are fine.
    expect_problem(h.request(ng.port, "GET", "/nope"), 404, "404 on a kept connection")
    expect_problem(h.request(ng.port, "POST", "/auth/x", body="b" * 20000), 401,
                   "401 with an unread body")
    for i in range(5):
        eq(echo(ng.port, "/api/after/%d" % i, "POST", body="p%d" % i)["body"], "p%d" % i,
           "POST after a 401 with an unread body")
    # Right after such an answer nginx may send the next request on the
    # same connection; it must not be lost with the rest of the body (it
    # hung when the worker drained the body after ending the request).
    for i in range(100):
        expect_problem(h.request(ng.port, "POST", "/auth/x", body="b" * 20000), 401,
                       "401 with an unread body, round %d" % i)
        eq(echo(ng.port, "/api/next/%d" % i, "POST", body="n%d" % i, timeout=5)["body"],
           "n%d" % i, "the request right after a 401 with an unread body, round %d" % i)


@test
def keep_conn_no_stuck_requests(c):
    # One worker, concurrent clients: nginx opens several connections;
    # the worker must not sit on an idle kept one while another waits.
    pool = h.ApigwListen(c.td, c.config, workers=1, args=SOCK_ARGS, name="apigw-kc1")
    ng = h.Nginx(c.td, "unix:" + pool.addr, keepalive=8, keep_conn=True, name="nginx-kc1")
    results, errors = [], []

    def client(k):
        try:
            for i in range(5):
                r = h.request(ng.port, "GET", "/api/slow?ms=20&c=%d&i=%d" % (k, i), timeout=8)
                results.append(r.status)
        except Exception as e:
            errors.append("client %d: %s" % (k, e))
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    check(not errors, "requests failed or hung: %s (%s)" % (errors[:3], pool.log_tail()))
    eq(results, [200] * 20, "statuses")
    check(time.monotonic() - t0 < 8, "20 requests of 20 ms took %.1fs" % (time.monotonic() - t0))


# ---------------------------------------------------------------------------
# the socket

@test
def stale_socket_replaced(c):
    path = c.td.join("stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.close()  # the file stays, nobody listens: a master that crashed
    check(os.path.exists(path) and not h.unix_open(path), "stale socket set-up")
    pool = h.ApigwListen(c.td, c.config, workers=1, addr=path, args=SOCK_ARGS, name="apigw-stale")
    eq(oct(stat.S_IMODE(os.stat(path).st_mode)), oct(0o660), "mode of the new socket")
    ng = h.Nginx(c.td, "unix:" + path, name="nginx-stale")
    eq(echo(ng.port, "/api/stale")["path"], "/api/stale", "served on the replaced socket")
    leftovers = [n for n in os.listdir(c.td.path) if n.startswith(".apigw-")]
    eq(leftovers, [], "temporary socket names left behind")
    ng.stop()
    pool.stop()
    check(not os.path.exists(path), "socket not removed when the master stopped")


@test
def live_socket_refused(c):
    before = os.stat(c.pool.addr).st_ino
    rc, err = run_apigw(["--config", c.config, "--listen", c.pool.addr, "--workers", "1"]
                        + SOCK_ARGS)
    eq(rc, 1, "exit status of a second master on a live socket")
    eq(len(err), 1, "stderr lines: %r" % err)
    check("another process is listening" in err[0] and c.pool.addr in err[0],
          "message: %r" % err[0])
    eq(os.stat(c.pool.addr).st_ino, before, "the live socket was replaced")
    eq(echo(c.ng.port, "/api/still")["path"], "/api/still", "first master still serves")


@test
def not_a_socket_refused(c):
    path = c.td.write("plain-file.sock", "data\n")
    rc, err = run_apigw(["--config", c.config, "--listen", path])
    eq(rc, 1, "exit status")
    eq(len(err), 1, "stderr lines: %r" % err)
    check("not a socket" in err[0], "message: %r" % err[0])
    eq(h.read_text(path), "data\n", "the file was changed")


@test
def user_drops_privileges(c):
    web = pwd.getpwnam(WEB_USER)
    pool = h.ApigwListen(c.td, c.config, workers=2, args=SOCK_ARGS + ["--user", WEB_USER],
                         name="apigw-user")
    ng = h.Nginx(c.td, "unix:" + pool.addr, name="nginx-user")
    for _ in range(4):
        eq(echo(ng.port, "/api/u")["path"], "/api/u", "served by unprivileged workers")
    workers = pool.worker_pids()
    eq(len(workers), 2, "workers")
    for p in workers:
        eq(uid_of(p), [web.pw_uid] * 4, "uids of worker %d" % p)
        eq(gid_of(p), [web.pw_gid] * 4, "gids of worker %d" % p)
    eq(uid_of(pool.pid)[0], 0, "the master keeps root (to remove the socket)")
    # a restarted worker drops too
    os.kill(workers[0], 9)
    h.wait_for(lambda: len(pool.worker_pids()) == 2 and workers[0] not in pool.worker_pids(),
               timeout=5, what="a replacement worker")
    # (a new worker is root for the moment between fork and the drop,
    # before it serves anything: wait for the drop, then check)
    for p in pool.worker_pids():
        h.wait_for(lambda: uid_of(p) == [web.pw_uid] * 4, timeout=5,
                   what="worker %d to drop to %s" % (p, WEB_USER))
        eq(uid_of(p), [web.pw_uid] * 4, "uids of worker %d after a restart" % p)
    ng.stop()
    pool.stop()
    check(not os.path.exists(pool.addr), "socket not removed by the master")


@test
def unknown_owner_is_one_line_error(c):
    path = c.td.join("owner.sock")
    rc, err = run_apigw(["--config", c.config, "--listen", path,
                         "--socket-owner", "no-such-user-apigw:www-data"])
    eq(rc, 1, "exit status")
    eq(len(err), 1, "stderr lines: %r" % err)
    check("unknown user 'no-such-user-apigw'" in err[0], "message: %r" % err[0])
    check(not os.path.exists(path), "socket created anyway")
    rc, err = run_apigw(["--config", c.config, "--listen", path, "--user", "no-such-user-apigw"])
    eq((rc, len(err)), (1, 1), "unknown --user: %r" % err)
    check("unknown user" in err[0], "message: %r" % err[0])
    rc, err = run_apigw(["--config", c.config, "--listen", path, "--socket-mode", "0999"])
    eq((rc, len(err)), (1, 1), "bad --socket-mode: %r" % err)
    check("octal" in err[0], "message: %r" % err[0])
    rc, err = run_apigw(["--config", c.config, "--socket-mode", "0660"])
    eq((rc, len(err)), (1, 1), "--socket-mode without --listen: %r" % err)
    check("--listen" in err[0], "message: %r" % err[0])


@test
def user_needs_root(c):
    path = c.td.join("nonroot.sock")
    web = pwd.getpwnam(WEB_USER)
    rc, err = run_apigw(["--config", c.config, "--listen", path, "--user", WEB_USER],
                        user=web.pw_uid, group=web.pw_gid, extra_groups=[])
    eq(rc, 1, "exit status of --user without root")
    eq(len(err), 1, "stderr lines: %r" % err)
    check("need root" in err[0], "message: %r" % err[0])
    check(not os.path.exists(path), "socket created anyway")


@test
def config_keys_apply(c):
    # listen.socket_mode / socket_owner from the file; the command line
    # overrides them.
    cfg = h.deep_merge(c.cfg, {"listen": {"socket_mode": "0640",
                                          "socket_owner": "%s:%s" % (WEB_USER, WEB_USER)}})
    conf = h.write_gateway_config(c.td, cfg, name="apigw-listen-keys.conf")
    web = pwd.getpwnam(WEB_USER)
    pool = h.ApigwListen(c.td, conf, workers=1, name="apigw-keys")
    st = os.stat(pool.addr)
    eq((oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid), (oct(0o640), web.pw_uid, web.pw_gid),
       "socket from listen.*")
    pool.stop()
    pool = h.ApigwListen(c.td, conf, workers=1, name="apigw-keys2", args=["--socket-mode", "0600"])
    st = os.stat(pool.addr)
    eq((oct(stat.S_IMODE(st.st_mode)), st.st_uid), (oct(0o600), web.pw_uid),
       "--socket-mode over listen.socket_mode")
    pool.stop()


if __name__ == "__main__":
    h.main(setup)
