#!/usr/bin/env python3
"""Soak: FAULTS_SOAK_SECONDS (default 120) of wrk -t1 -c8 through lighttpd
(4 apigw processes) and, at the same time, through Apache mod_fcgid (16
processes at most).  Per worker RSS (VmRSS) and fd counts are sampled at
the start (after a warm-up), the middle and the end: they must stay flat
(within 1 MB and 2 fds) for every worker alive at all three samples, and
wrk must report no non-2xx/3xx response and no socket error."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
from faults import figure, h  # noqa: E402
from harness import check, test  # noqa: E402

SECONDS = int(os.environ.get("FAULTS_SOAK_SECONDS", "120"))
WARMUP_S = 5
RSS_SLACK_KB = 1024
FD_SLACK = 2
h.TEST_TIMEOUT_S = SECONDS + WARMUP_S + 120


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    cfg = h.base_config(c.redis, [{"prefix": "/b", "backend": c.b.url}])
    conf = h.write_gateway_config(td, cfg)
    c.lt = h.Lighttpd(td, config=conf, max_procs=4)
    c.ap = h.Apache(td, conf, max_procs=16)
    c.wrk = h.find_tool("wrk", "wrk")
    return c


def sample(stack):
    return {p: (f.rss_kb(p), f.fd_count(p)) for p in stack.worker_pids()}


def wrk(c, port, secs):
    return subprocess.Popen([c.wrk, "-t1", "-c8", "-d%ds" % secs, "--timeout", "10s",
                             "http://127.0.0.1:%d/b/echo" % port],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def check_wrk(name, out):
    text = out.decode(errors="replace")
    m = re.search(r"(\d+) requests in", text)
    total = int(m.group(1)) if m else 0
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    figure("soak %s: wrk %d requests, %s req/s, non-2xx %s, socket errors %s", name, total,
           rps.group(1) if rps else "?", non2xx.group(1) if non2xx else 0,
           errors.group(1).strip() if errors else "none")
    check(total > 0, "%s: wrk made no requests:\n%s" % (name, text))
    check(not non2xx, "%s: wrk saw non-2xx responses:\n%s" % (name, text))
    check(not errors, "%s: wrk saw socket errors:\n%s" % (name, text))


def check_flat(name, samples):
    common = set(samples[0]) & set(samples[1]) & set(samples[2])
    check(common, "%s: no worker alive at all three samples" % name)
    for p in sorted(common):
        rss = [s[p][0] for s in samples]
        fds = [s[p][1] for s in samples]
        figure("soak %s worker %d: VmRSS kB start/middle/end %s, fds %s", name, p, rss, fds)
        check(rss[2] - rss[0] <= RSS_SLACK_KB, "%s worker %d RSS grew %s" % (name, p, rss))
        check(max(fds) - fds[0] <= FD_SLACK, "%s worker %d fds grew %s" % (name, p, fds))


@test
def soak(c):
    total = SECONDS + WARMUP_S
    procs = {"lighttpd": wrk(c, c.lt.port, total), "apache": wrk(c, c.ap.port, total)}
    stacks = {"lighttpd": c.lt, "apache": c.ap}
    samples = {n: [] for n in stacks}
    time.sleep(WARMUP_S)
    start = time.monotonic()
    for at in (0, SECONDS / 2.0, max(SECONDS - 2, 1)):
        time.sleep(max(0, start + at - time.monotonic()))
        for n, s in stacks.items():
            samples[n].append(sample(s))
    outs = {n: p.communicate(timeout=total + 60)[0] for n, p in procs.items()}
    figure("soak: %d s of load (after a %d s warm-up)", SECONDS, WARMUP_S)
    for n in stacks:
        check_wrk(n, outs[n])
    for n in stacks:
        check_flat(n, samples[n])


if __name__ == "__main__":
    h.main(setup)
