#!/usr/bin/env python3
"""Process lifecycle under load.

  fcgid_recycling   Apache mod_fcgid with FcgidMaxRequestsPerProcess 100
                    and FcgidIdleTimeout 2 (scanned every second): 2,000
                    requests from 8 threads, zero failed, while processes
                    are recycled (distinct pids counted)
  sigterm_finishes  `apigw --listen` with 4 workers behind lighttpd, 4
                    slow requests (1.5 s) in flight: SIGTERM to one worker;
                    every request succeeds, that worker exits within 3 s
  sigkill_inflight  the same with SIGKILL: exactly one request fails (the
                    killed worker's), the other three succeed
  master_restarts   after both, the master has replaced the dead workers
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
from faults import figure, h  # noqa: E402
from harness import check, eq, test  # noqa: E402

SLOW_MS = 1500


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    cfg = h.base_config(c.redis, [{"prefix": "/b", "backend": c.b.url}])
    c.config = h.write_gateway_config(td, cfg)
    c.ap = h.Apache(td, c.config, max_procs=8,
                    extra="FcgidMaxRequestsPerProcess 100\nFcgidIdleTimeout 2\n"
                          "FcgidIdleScanInterval 1\nFcgidErrorScanInterval 1\n"
                          "FcgidZombieScanInterval 1\n")
    c.gw = h.ApigwListen(td, c.config, workers=4)
    c.lt = h.Lighttpd(td, socket_path=c.gw.addr, name="lt-listen")
    return c


@test
def fcgid_recycling(c):
    seen = set()
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            seen.update(c.ap.worker_pids())
            time.sleep(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    load = f.Load(c.ap.port, ["/b/echo"], threads=8, timeout=30)
    h.wait_for(lambda: len(load.results) >= 2000, timeout=50, interval=0.1,
               what="2,000 requests through Apache")
    res = load.stop()
    stop.set()
    t.join()
    figure("fcgid recycling: %d requests %s, %d distinct apigw pids seen", len(res),
           f.counts(res), len(seen))
    bad = [r for r in res if r[2] != 200]
    check(not bad, "failed requests: %r" % bad[:5])
    check(len(seen) > 8, "processes were recycled (pids seen: %d)" % len(seen))


def in_flight(c, n):
    """Starts n slow requests; returns (threads, results list)."""
    out = []

    def one():
        try:
            r = h.request(c.lt.port, "GET", "/b/slow?ms=%d" % SLOW_MS, timeout=15)
            out.append(r.status)
        except Exception as e:  # a cut connection counts as a failure
            out.append(repr(e)[:60])
    ts = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    return ts, out


@test
def sigterm_finishes(c):
    workers = c.gw.worker_pids()
    eq(len(workers), 4, "workers")
    ts, out = in_flight(c, 4)
    time.sleep(0.5)
    victim = workers[0]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGTERM)
    h.wait_for(lambda: not h.pid_alive(victim), timeout=3, interval=0.02,
               what="worker %d to exit after SIGTERM" % victim)
    gone = time.monotonic() - t0
    for t in ts:
        t.join(10)
    figure("SIGTERM mid-request: in-flight results %s, worker exited %.2f s after the signal",
           sorted(map(str, out)), gone)
    eq(sorted(out), [200] * 4, "requests in flight during SIGTERM")
    check(gone >= (SLOW_MS - 500) / 1000.0 - 0.2, "worker exited before finishing (%.2f s)" % gone)


@test
def sigkill_inflight(c):
    h.wait_for(lambda: len(c.gw.worker_pids()) == 4, timeout=5, what="4 workers")
    workers = c.gw.worker_pids()
    ts, out = in_flight(c, 4)
    time.sleep(0.5)
    os.kill(workers[0], signal.SIGKILL)
    for t in ts:
        t.join(10)
    figure("SIGKILL mid-request: in-flight results %s", sorted(map(str, out)))
    eq(sum(1 for x in out if x == 200), 3, "requests that succeeded")
    r = h.request(c.lt.port, "GET", "/b/echo")
    eq(r.status, 200, "next request")


@test
def master_restarts(c):
    t0 = time.monotonic()
    h.wait_for(lambda: len(c.gw.worker_pids()) == 4, timeout=5, interval=0.02,
               what="the master to restart dead workers")
    figure("apigw --listen: 4 workers again %.2f s after the check began; pids %s",
           time.monotonic() - t0, c.gw.worker_pids())
    res = [h.request(c.lt.port, "GET", "/b/echo").status for _ in range(20)]
    eq(res, [200] * 20, "requests after the restarts")


if __name__ == "__main__":
    h.main(setup)
