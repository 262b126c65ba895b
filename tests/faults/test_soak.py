#!/usr/bin/env python3
"""Soak: FAULTS_SOAK_SECONDS (default 300) of wrk through lighttpd (4
apigw processes, wrk -c8) and, at the same time, through Apache mod_fcgid
(16 processes, wrk -c16), after a warm-up of WARMUP_S (checked, not
counted).  The backend is a static nginx, so the gateway (not the
backend) sets the pace; the route is a realistic one: an API key
(apigw-keys), a gcra policy far too large to ever deny (one Redis round
trip per request), the access log written to a file.

FAULTS_SOAK_MODE=serial runs the two stacks one after the other, half the
seconds each, instead of at once (for a machine too small for both).

Asserted:
  - requests in total (both stacks) >= 300,000 when the run is 300 s or
    longer, else >= 1,000 per second of the run;
  - no non-2xx/3xx response and no socket error (wrk), no 5xx in the
    access logs, no mod_fcgid error in Apache's error log;
  - per worker, at the start (1 s into the load), middle and end: VmRSS
    within 1 % of its start value; fds, TCP sockets and unix sockets
    (/proc/PID/fd links socket:[INODE] looked up in
    /proc/net/tcp, tcp6 and unix) within max(1 %, 1) of their start value
    (1: the FastCGI connection of the one request a worker may have in
    flight: lighttpd opens one per request, and a worker under load has
    one open about 80 % of the time).  Each sample is the least of
    SAMPLE_READS readings 0.1 s apart, which removes that connection from
    most samples; a leak does not go away between readings.  Every worker
    alive at all three samples is checked, and at least one that was alive
    at the end of the warm-up must be; a worker started after the warm-up
    is judged from the middle sample on (its first requests grow it).
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
from faults import figure, h  # noqa: E402
from harness import check, test  # noqa: E402

SECONDS = int(os.environ.get("FAULTS_SOAK_SECONDS", "300"))
MODE = os.environ.get("FAULTS_SOAK_MODE", "parallel")
WARMUP_S = 10
TARGET_TOTAL = 300000           # requests in a run of 300 s or longer
TARGET_RATE = 1000              # requests per second for shorter runs
# RSS: 1 % of its start value, no absolute floor (1 % of an 11 MB worker is
# about 110 kB; the workers move by 0 to 12 kB in a run).
RSS_FLOOR_KB = 0
SAMPLE_READS = 5
CONNS = {"lighttpd": 8, "apache": 16}
h.TEST_TIMEOUT_S = SECONDS + 2 * WARMUP_S + 180

SMALL_JSON = b'{"id":42,"name":"soak","tags":["a","b","c"],"ok":true}\n'
KEY_HEADER = "X-API-Key"


class Ctx:
    pass


def www_data_file(path):
    """An empty file the gateway can append to when Apache runs it as www-data."""
    open(path, "w").close()
    h.chown(path, "www-data")
    return path


def gateway_config(c, access_log):
    routes = [{"prefix": "/b", "backend": c.backend.url, "strip_prefix": True,
               "require_auth": True,
               "rate_limit": {"algorithm": "gcra", "requests_per_minute": 100000000,
                              "requests_per_hour": 1000000000}}]
    return h.base_config(c.redis, routes,
                         api_keys={"header": KEY_HEADER, "cache_ttl_s": 5},
                         log={"access": access_log, "format": "combined", "level": "warn"})


def setup(td):
    check(MODE in ("parallel", "serial"), "FAULTS_SOAK_MODE must be parallel or serial")
    c = Ctx()
    c.redis = h.start_redis(td)
    www = td.mkdir("www")
    with open(os.path.join(www, "small.json"), "wb") as fh:
        fh.write(SMALL_JSON)
    os.chmod(os.path.join(www, "small.json"), 0o644)
    c.backend = f.StaticNginx(td, www)
    c.logs = {"lighttpd": td.join("access-lighttpd.log"),
              "apache": www_data_file(td.join("access-apache.log"))}
    lt_conf = h.write_gateway_config(td, gateway_config(c, c.logs["lighttpd"]),
                                     "apigw-lighttpd.conf")
    ap_conf = h.write_gateway_config(td, gateway_config(c, c.logs["apache"]),
                                     "apigw-apache.conf")
    keys = os.path.join(os.path.dirname(h.apigw_bin()), "apigw-keys")
    p = subprocess.run([keys, "--config", lt_conf, "create", "soak"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(p.returncode == 0, "apigw-keys create: %s" % p.stderr.decode(errors="replace"))
    c.key = p.stdout.decode().strip()
    c.stacks = {"lighttpd": h.Lighttpd(td, config=lt_conf, max_procs=4),
                "apache": h.Apache(td, ap_conf, max_procs=16)}
    c.wrk = h.find_tool("wrk", "wrk")
    for n, s in c.stacks.items():
        r = h.wait_for(lambda: h.request(s.port, "GET", "/b/small.json",
                                         headers={KEY_HEADER: c.key}, timeout=10),
                       timeout=20, interval=0.3, what="the first request through " + n)
        check(r.status == 200, "%s: first request answered %d: %r" % (n, r.status, r.body[:300]))
    return c


def sample(stack):
    """{pid: (rss_kb, fds, tcp, unix)}, each the least of SAMPLE_READS
    readings, for the workers alive at every reading."""
    reads = []
    for i in range(SAMPLE_READS):
        if i:
            time.sleep(0.1)
        inodes = f.socket_inodes()
        one = {}
        for p in stack.worker_pids():
            tcp, unix = f.socket_counts(p, inodes)
            vals = (f.rss_kb(p), f.fd_count(p), tcp, unix)
            if None not in vals:
                one[p] = vals
        reads.append(one)
    pids = set(reads[0]).intersection(*reads[1:])
    return {p: tuple(min(r[p][k] for r in reads) for k in range(4)) for p in pids}


def wrk(c, name, secs):
    port = c.stacks[name].port
    return subprocess.Popen([c.wrk, "-t1", "-c%d" % CONNS[name], "-d%ds" % secs,
                             "--timeout", "10s", "-H", "%s: %s" % (KEY_HEADER, c.key),
                             "http://127.0.0.1:%d/b/small.json" % port],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def wrk_figures(text):
    m = re.search(r"(\d+) requests in ", text)
    total = int(m.group(1)) if m else 0
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return total, float(rps.group(1)) if rps else 0.0, non2xx, errors


def access_log_statuses(path):
    """{status: lines} of a combined access log."""
    out = {}
    st = re.compile(rb'" (\d{3}) ')
    with open(path, "rb") as fh:
        for line in fh:
            m = st.search(line)
            k = int(m.group(1)) if m else 0
            out[k] = out.get(k, 0) + 1
    return out


def fcgid_errors(path):
    """Lines of Apache's error log from mod_fcgid ([fcgid:...]) or of level
    error and above.  AH10159 ("within MinSpareThreads of
    MaxRequestWorkers", the harness's small thread pool) is advice, not a
    failed request, and is left out."""
    bad = re.compile(r"\[fcgid:|:(error|crit|alert|emerg)\]|End of script output|"
                     r"Premature end", re.I)
    return [l for l in h.read_text(path).splitlines() if bad.search(l) and "AH10159" not in l]


def redis_reads(redis):
    """Requests Redis has read from its clients (round trips; the commands
    a script runs are not counted)."""
    for line in redis.command("INFO", "stats").splitlines():
        if line.startswith("total_reads_processed:"):
            return int(line.split(":")[1])
    return 0


def growth(vals, floor):
    """(grew, bound): the largest rise over the start value and the bound
    max(1 % of the start value, floor)."""
    return max(vals) - vals[0], max(vals[0] / 100.0, floor)


def check_flat(name, samples, warmed):
    """warmed: the workers alive when the warm-up ended.  A worker the web
    server started later (mod_fcgid adds processes as load comes) had
    served only its first requests at the start sample, which is not a
    steady state: it is judged from the middle sample to the end."""
    common = set(samples[0]) & set(samples[1]) & set(samples[2])
    check(common & warmed, "%s: no worker alive from the warm-up to the end (%s)"
          % (name, [sorted(s) for s in samples]))
    fields = (("VmRSS kB", RSS_FLOOR_KB), ("fds", 1), ("TCP sockets", 1), ("unix sockets", 1))
    worst = [0] * len(fields)
    failures = []
    late = sorted(common - warmed)
    if late:
        figure("soak %s: workers started after the warm-up, judged from the middle sample: %s",
               name, late)
    for p in sorted(common):
        series = [[s[p][k] for s in samples] for k in range(len(fields))]
        figure("soak %s worker %d start/middle/end: VmRSS kB %s, fds %s, tcp %s, unix %s",
               name, p, *series)
        for k, (what, floor) in enumerate(fields):
            grew, bound = growth(series[k] if p in warmed else series[k][1:], floor)
            worst[k] = max(worst[k], grew)
            if grew > bound:
                failures.append("%s worker %d: %s %s grew %s (bound %s)"
                                % (name, p, what, series[k], grew, bound))
    figure("soak %s: %d workers at all three samples (%s at the end); largest rise over the "
           "start: VmRSS %d kB, fds %d, tcp %d, unix %d", name, len(common),
           len(samples[2]), *worst)
    check(not failures, "; ".join(failures))


def run_stacks(c, names, secs):
    """A warm-up of WARMUP_S (its wrk output is checked, its requests not
    counted), then wrk on names at once for secs, their workers sampled at
    the start, middle and end; returns ({name: [warm-up output, output]},
    {name: [3 samples]}, {name: workers alive after the warm-up})."""
    warm = {n: wrk(c, n, WARMUP_S) for n in names}
    outs = {n: [p.communicate(timeout=WARMUP_S + 60)[0].decode(errors="replace")]
            for n, p in warm.items()}
    warmed = {n: set(c.stacks[n].worker_pids()) for n in names}
    procs = {n: wrk(c, n, secs) for n in names}
    samples = {n: [] for n in names}
    start = time.monotonic()
    for at in (1, secs / 2.0, max(secs - 3, 2)):
        time.sleep(max(0, start + at - time.monotonic()))
        for n in names:
            samples[n].append(sample(c.stacks[n]))
    for n, p in procs.items():
        outs[n].append(p.communicate(timeout=secs + 60)[0].decode(errors="replace"))
    return outs, samples, warmed


@test
def soak(c):
    t0 = time.monotonic()
    names = list(c.stacks)
    reads0 = redis_reads(c.redis)
    if MODE == "parallel":
        outs, samples, warmed = run_stacks(c, names, SECONDS)
    else:
        outs, samples, warmed = {}, {}, {}
        for n in names:
            o, s, w = run_stacks(c, [n], SECONDS // 2)
            outs.update(o)
            samples.update(s)
            warmed.update(w)
    figure("soak: %s, %d s of load after a %d s warm-up, %.0f s in all; load average "
           "at the end %s", MODE, SECONDS, WARMUP_S, time.monotonic() - t0,
           " ".join("%.2f" % x for x in os.getloadavg()))
    total = warm_total = 0
    problems = []
    for n in names:
        for what, out in zip(("warm-up", "load"), outs[n]):
            t, rps, non2xx, errors = wrk_figures(out)
            if what == "load":
                total += t
            else:
                warm_total += t
            figure("soak %s %s: wrk -c%d %d requests, %.0f req/s, non-2xx %s, "
                   "socket errors %s", n, what, CONNS[n], t, rps,
                   non2xx.group(1) if non2xx else 0,
                   errors.group(1).strip() if errors else "none")
            if t == 0 or non2xx or errors:
                problems.append("%s %s: wrk:\n%s" % (n, what, out))
        st = access_log_statuses(c.logs[n])
        figure("soak %s: access log %d lines, statuses %s", n, sum(st.values()), st)
        if any(k >= 500 or k == 0 for k in st):
            problems.append("%s: access log statuses %s" % (n, st))
    reads = redis_reads(c.redis) - reads0
    figure("soak: Redis read %d requests from its clients, %.2f per gateway request "
           "(warm-up included)", reads, reads / float(max(1, total + warm_total)))
    need = TARGET_TOTAL if SECONDS >= 300 else TARGET_RATE * SECONDS
    figure("soak: %d requests in total in the %d s of load (%.0f req/s); needed %d",
           total, SECONDS, total / float(SECONDS), need)
    errs = fcgid_errors(c.stacks["apache"].error_log)
    figure("soak apache: %d mod_fcgid/error lines in the error log", len(errs))
    if errs:
        problems.append("Apache error log:\n" + "\n".join(errs[:20]))
    check(not problems, "\n".join(problems))
    check(total >= need, "only %d requests in total, needed %d" % (total, need))
    for n in names:
        check_flat(n, samples[n], warmed[n])


if __name__ == "__main__":
    h.main(setup)
