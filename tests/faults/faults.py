"""Helpers shared by the fault-injection tests (tests/faults/test_*.py).

The tests use tests/integration/harness.py (servers, HTTP client, runner);
this module adds what fault injection needs on top of it:

  RestartableRedis   redis-server that can be killed, stopped and restarted
                     on the same unix socket
  Load               a bounded closed-loop client: N threads of
                     http.client, each recording (start, latency, status)
  fd_count(pid), rss_kb(pid)   /proc figures of one process
  figure(fmt, ...)   prints a "# " line (the figures the README quotes)
"""

import http.client
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402


def figure(fmt, *args):
    print("# " + (fmt % args if args else fmt), flush=True)


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def rss_kb(pid):
    return h.proc_status_kb(pid, "VmRSS")


class RestartableRedis(h.Redis):
    """redis-server that can be stopped (or killed) and started again on its
    socket; DEBUG is enabled for the DEBUG SLEEP case."""

    def __init__(self, td, name="redis", start=True):  # not super(): restartable
        self.td = td
        self.dir = td.mkdir(name)
        self.socket = os.path.join(self.dir, "redis.sock")
        self.url = "unix://%s?db=0" % self.socket
        self.argv = [h.find_tool("redis-server", "redis-server"),
                     "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "777",
                     "--save", "", "--appendonly", "no", "--dir", self.dir,
                     "--daemonize", "no", "--loglevel", "warning",
                     "--enable-debug-command", "yes"]
        self.proc = None
        td.defer(self.stop)
        if start:
            self.start()

    def start(self):
        self.proc = h.Proc("redis-server", self.argv, os.path.join(self.dir, "redis.log"))
        h.wait_for(lambda: self.proc.alive() and self.command("PING") == "PONG",
                   timeout=5, interval=0.01, what="redis-server to answer PING")

    def kill(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self):
        if self.proc is not None and self.proc.alive():
            self.proc.stop()

    def info(self, field):
        for line in self.command("INFO").splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
        return None


class Load:
    """threads clients, each sending GETs on a keep-alive connection (a new
    one after an error) to port, path chosen by paths[i % len(paths)], until
    stop(); records (t_start, latency_s, status) with status 0 for a
    connection error or timeout."""

    def __init__(self, port, paths, threads=4, headers=None, timeout=10.0):
        self.port = port
        self.paths = paths
        self.headers = headers or {}
        self.timeout = timeout
        self.results = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        conn = None
        n = i
        while not self._stop.is_set():
            path = self.paths[n % len(self.paths)]
            n += 1
            t0 = time.monotonic()
            status = 0
            body = b""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                conn.request("GET", path, headers=dict(self.headers))
                r = conn.getresponse()
                body = r.read()
                status = r.status
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.results.append((t0, time.monotonic() - t0, status, path,
                                     body[:160] if status != 200 else b""))
        if conn is not None:
            conn.close()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        return self.results

    def since(self, t):
        with self.lock:
            return [r for r in self.results if r[0] >= t]


def counts(results):
    out = {}
    for r in results:
        out[r[2]] = out.get(r[2], 0) + 1
    return dict(sorted(out.items()))


def first_ok_after(results, t, path=None):
    """Seconds from t to the start of the first 200 that began after t."""
    oks = [r[0] for r in results if r[0] >= t and r[2] == 200 and (path is None or r[3] == path)]
    return (min(oks) - t) if oks else None


def blackhole(td):
    """A TCP port that accepts connections into its backlog but never
    accept()s or answers: connect succeeds, no response ever comes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    td.defer(s.close)
    return s.getsockname()[1]
