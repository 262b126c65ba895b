#!/usr/bin/env python3
"""`apigw --listen ADDR --workers N`: the gateway's own prefork pool, with
lighttpd in socket mode in front (unix socket and TCP), SIGHUP reload,
SIGTERM graceful stop and restart of a killed worker."""

import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, echo_header, test  # noqa: E402


class Ctx:
    pass


def routes(c, extra=()):
    return [{"prefix": "/api", "backend": c.b1.url}] + list(extra)


def setup(td):
    c = Ctx()
    c.td = td
    c.redis = h.start_redis(td)
    c.b1 = h.start_backend(td, "b1")
    c.cfg = h.base_config(c.redis, routes(c))
    c.config = h.write_gateway_config(td, c.cfg)
    c.pool = h.ApigwListen(td, c.config, workers=2)
    c.lt = h.Lighttpd(td, socket_path=c.pool.addr)
    c.port = c.lt.port
    return c


def get(port, path, **kw):
    return h.request(port, "GET", path, **kw)


def echo(port, path, method="GET", **kw):
    r = h.request(port, method, path, **kw)
    expect_status(r, 200, "%s %s" % (method, path))
    return r.json()


@test
def forwarding_over_unix_socket(c):
    doc = echo(c.port, "/api//a/./b?q=1", headers={"X-Request-ID": "listen-1"})
    eq(doc["path"], "/api/a/b", "normalized path")
    eq(doc["query"], "q=1", "query")
    eq(echo_header(doc, "x-request-id"), "listen-1", "request id")
    eq(echo_header(doc, "x-forwarded-for"), "127.0.0.1", "X-Forwarded-For")
    doc = echo(c.port, "/api/echo", "POST", body="hello listen")
    eq(doc["body"], "hello listen", "body")
    expect_problem(get(c.port, "/nope"), 404)
    r = get(c.port, "/_health")
    expect_status(r, 200, "/_health")
    eq(r.json().get("redis"), "up", "/_health redis")


@test
def workers_are_children_of_master(c):
    pids = c.pool.worker_pids()
    eq(len(pids), 2, "worker processes of the --workers 2 master")
    for _ in range(6):
        echo(c.port, "/api/echo")
    check(c.pool.proc.alive(), "master died")


@test
def listen_on_tcp(c):
    port = h.free_port()
    pool = h.ApigwListen(c.td, c.config, workers=1, addr="127.0.0.1:%d" % port, name="apigw-tcp")
    lt = h.Lighttpd(c.td, host_port=("127.0.0.1", port), name="lighttpd-tcp")
    doc = echo(lt.port, "/api/tcp?x=y")
    eq((doc["path"], doc["query"]), ("/api/tcp", "x=y"), "forwarded over TCP FastCGI")
    # keep-alive to the backend works in the pool's workers too
    a = echo(lt.port, "/api/echo")["client_port"]
    b = echo(lt.port, "/api/echo")["client_port"]
    eq(a, b, "backend connection reused by the single worker")
    lt.stop()
    pool.stop()


@test
def killed_worker_restarted(c):
    before = c.pool.worker_pids()
    eq(len(before), 2, "workers before")
    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        now = c.pool.worker_pids()
        return now if len(now) == 2 and victim not in now else None
    now = h.wait_for(replaced, timeout=5, what="the master to replace killed worker %d (%s)"
                     % (victim, c.pool.log_tail()))
    check(before[1] in now, "the surviving worker %d was replaced too: %r" % (before[1], now))
    for _ in range(6):
        echo(c.port, "/api/echo")


@test
def sighup_reloads_config(c):
    master = c.pool.pid
    old_workers = set(c.pool.worker_pids())
    new = h.base_config(c.redis, routes(c, [{"prefix": "/hup", "backend": c.b1.url,
                                             "strip_prefix": True}]))
    h.write_gateway_config(c.td, new)
    # Workers may also notice the new file by themselves (its mtime, at most
    # once a second): what only SIGHUP does is replace every worker, after
    # validating the file, with the master staying put.
    os.kill(master, signal.SIGHUP)

    def reloaded():
        rs = [get(c.port, "/hup/x") for _ in range(4)]  # reach every worker
        now = set(c.pool.worker_pids())
        return all(r.status == 200 for r in rs) and len(now) == 2 and not (now & old_workers)
    h.wait_for(reloaded, timeout=5, interval=0.2,
               what="new workers serving /hup after SIGHUP (%s)" % c.pool.log_tail())
    eq(echo(c.port, "/hup/x")["path"], "/x", "new route strips its prefix")
    eq(echo(c.port, "/api/y")["path"], "/api/y", "old route still served")
    check(c.pool.proc.alive() and c.pool.pid == master, "master changed on SIGHUP")


@test
def sighup_with_invalid_config_keeps_old(c):
    workers = set(c.pool.worker_pids())
    try:
        h.write_gateway_config(c.td, "redis = { url = 42; };\nroutes = ( { prefix = \"/broken\"; } );\nbogus_key = 1;\n")
        os.kill(c.pool.pid, signal.SIGHUP)
        time.sleep(1.5)
        check(c.pool.proc.alive(), "master died on SIGHUP with an invalid config: %s" % c.pool.log_tail())
        for _ in range(4):
            echo(c.port, "/api/still")
        eq(echo(c.port, "/hup/z")["path"], "/z", "route from the last valid config")
        eq(set(c.pool.worker_pids()), workers, "workers replaced after a rejected SIGHUP")
    finally:
        h.write_gateway_config(c.td, c.cfg)  # valid again for later tests


EXAMPLE_PLUGIN = os.path.join(h.TOP_BUILDDIR, "tests", "plugins", "require_authorization.so")


def failed_starts(c):
    return h.read_text(c.pool.log_path).count("failed to start")


@test
def sighup_with_broken_plugin_keeps_old_workers(c):
    # The file parses, so the master takes it, but no worker can load the
    # plugin: the old generation must go on serving.
    check(os.path.exists(EXAMPLE_PLUGIN), "%s not built (make check builds it)" % EXAMPLE_PLUGIN)
    not_elf = c.td.write("not-a-plugin.so", "this is not a shared object\n")
    workers = set(c.pool.worker_pids())
    eq(len(workers), 2, "workers before")
    try:
        for n, bad in enumerate([c.td.join("no-such-plugin.so"), not_elf], 1):
            h.write_gateway_config(c.td, h.base_config(c.redis, routes(c), plugins=[{"path": bad}]))
            os.kill(c.pool.pid, signal.SIGHUP)
            h.wait_for(lambda: failed_starts(c) >= n, timeout=10,
                       what="the master to report the failed start (%s)" % c.pool.log_tail())
            for _ in range(4):
                echo(c.port, "/api/still")
            check(c.pool.proc.alive(), "master died: %s" % c.pool.log_tail())
            eq(set(c.pool.worker_pids()), workers, "workers after a SIGHUP whose workers failed")
            check("plugins: %s: cannot load" % bad in h.read_text(c.pool.log_path),
                  "the worker's error names the plugin: %s" % c.pool.log_tail())
        # No retry until the next SIGHUP.
        time.sleep(1.5)
        eq(failed_starts(c), 2, "failed starts reported (one per SIGHUP)")
        eq(set(c.pool.worker_pids()), workers, "workers a while later")
        for _ in range(4):
            echo(c.port, "/api/still")

        # A config whose plugin loads replaces them.
        good = h.base_config(c.redis, routes(c), plugins=[{"path": EXAMPLE_PLUGIN,
                                                           "config": {"realm": "hup"}}])
        h.write_gateway_config(c.td, good)
        os.kill(c.pool.pid, signal.SIGHUP)

        def replaced():
            now = set(c.pool.worker_pids())
            rs = [get(c.port, "/api/auth") for _ in range(4)]
            return len(now) == 2 and not (now & workers) and all(r.status == 401 for r in rs)
        h.wait_for(replaced, timeout=10, interval=0.2, what="new workers with the plugin")
        r = get(c.port, "/api/auth")
        eq(r.headers.get("WWW-Authenticate"), 'Bearer realm="hup"', "the new plugin answers")
        eq(echo(c.port, "/api/auth", headers={"Authorization": "Bearer x"})["path"], "/api/auth",
           "authorized request forwarded")
        eq(failed_starts(c), 2, "failed starts after the good SIGHUP")
    finally:
        h.write_gateway_config(c.td, c.cfg)
        before = set(c.pool.worker_pids())
        os.kill(c.pool.pid, signal.SIGHUP)
        h.wait_for(lambda: get(c.port, "/api/auth").status == 200
                   and not (set(c.pool.worker_pids()) & before)
                   and len(c.pool.worker_pids()) == 2, timeout=10, interval=0.2,
                   what="workers without the plugin again (%s)" % c.pool.log_tail())


@test
def sigterm_is_graceful(c):
    pool = h.ApigwListen(c.td, c.config, workers=1, name="apigw-term")
    lt = h.Lighttpd(c.td, socket_path=pool.addr, name="lighttpd-term")
    result = {}

    def slow():
        try:
            result["r"] = get(lt.port, "/api/slow?ms=1500&key=term1", timeout=15)
        except Exception as e:
            result["e"] = e
    t = threading.Thread(target=slow)
    t.start()
    h.wait_for(lambda: c.b1.calls("term1") == 1, timeout=5, what="the slow request to reach the backend")
    workers = pool.worker_pids()
    os.kill(pool.pid, signal.SIGTERM)
    t.join(15)
    check("e" not in result, "in-flight request failed on SIGTERM: %r (%s)"
          % (result.get("e"), pool.log_tail()))
    expect_status(result["r"], 200, "in-flight request during SIGTERM")
    eq(result["r"].json()["query"], "ms=1500&key=term1", "in-flight response body")
    try:
        pool.proc.popen.wait(8)
    except Exception:
        raise AssertionError("master still running 8 s after SIGTERM (%s)" % pool.log_tail())
    h.wait_for(lambda: not any(h.pid_alive(p) for p in workers), timeout=5,
               what="workers %r to exit after SIGTERM" % workers)
    lt.stop()
    pool.stop()


if __name__ == "__main__":
    h.main(setup)
