"""Helpers shared by the fault-injection tests (tests/faults/test_*.py).

The tests use tests/integration/harness.py (servers, HTTP client, runner);
this module adds what fault injection needs on top of it:

  RestartableRedis   redis-server that can be killed, stopped and restarted
                     on the same unix socket
  Load               a bounded closed-loop client: N threads of
                     http.client, each recording (start, latency, status)
  StaticNginx        a private nginx serving a directory on 127.0.0.1 (a
                     backend that is never the bottleneck)
  fd_count(pid), rss_kb(pid), socket_counts(pid)   /proc figures of one
                     process
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


def socket_inodes():
    """{"tcp": set of inodes, "unix": set of inodes} of every socket in
    /proc/net/tcp, tcp6 and unix (this network namespace)."""
    out = {"tcp": set(), "unix": set()}
    for name, kind, col in (("tcp", "tcp", 9), ("tcp6", "tcp", 9), ("unix", "unix", 6)):
        try:
            with open("/proc/net/" + name) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) > col:
                        out[kind].add(cols[col])
        except OSError:
            pass
    return out


def socket_counts(pid, inodes=None):
    """(tcp, unix) sockets that pid has open: its /proc/PID/fd links of the
    form socket:[INODE] looked up in /proc/net/{tcp,tcp6,unix} (inodes, as
    socket_inodes() returns, may be passed in to share one read)."""
    inodes = inodes or socket_inodes()
    tcp = unix = 0
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except OSError:
        return None, None
    for n in names:
        try:
            t = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if t.startswith("socket:["):
            ino = t[8:-1]
            if ino in inodes["tcp"]:
                tcp += 1
            elif ino in inodes["unix"]:
                unix += 1
    return tcp, unix


class StaticNginx:
    """nginx serving the files of www on 127.0.0.1:<free port>, one worker,
    keep-alive connections never closed by nginx (so that each gateway
    process keeps one backend connection), no access log.  Stopped by PID."""

    def __init__(self, td, www, name="nginx-static"):
        self.nginx = os.path.realpath(h.find_tool("nginx", "nginx-light"))
        self.dir = td.mkdir(name)
        self.port = h.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.error_log = os.path.join(self.dir, "error.log")
        temps = "".join("  %s_temp_path %s;\n" % (k, os.path.join(self.dir, k))
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = """worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(log)s warn;
events { worker_connections 1024; }
http {
  access_log off;
%(temps)s  types { application/json json; }
  default_type application/octet-stream;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  server {
    listen 127.0.0.1:%(port)d;
    root %(www)s;
  }
}
""" % dict(d=self.dir, log=self.error_log, temps=temps, port=self.port, www=www)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        argv = [self.nginx, "-p", self.dir + "/", "-c", self.conf, "-e", self.error_log,
                "-g", "daemon off;"]
        self.proc = h.Proc(name, argv, os.path.join(self.dir, "stderr.log"))
        td.defer(self.stop)
        try:
            h.wait_alive(self.proc, lambda: h.tcp_open(self.port), 10, "nginx to listen")
        except h.HarnessError as e:
            raise h.HarnessError("%s did not start: %s\n%s" % (name, e, h.log_tail(self.error_log)))

    def stop(self):
        if not self.proc.alive():
            return
        kids = h.proc_descendants(self.proc.pid)
        self.proc.stop(timeout=8)
        h.kill_stray(kids, self.nginx)


class RestartableRedis(h.RestartableRedis):
    """redis-server that can be stopped (or killed) and started again on its
    socket; DEBUG is enabled for the DEBUG SLEEP case."""

    def __init__(self, td, name="redis", start=True):
        super().__init__(td, name, debug="yes", start=start)

    def kill(self, sig):
        os.kill(self.proc.pid, sig)

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
