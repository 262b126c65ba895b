"""Integration test harness for apigw (Python 3 standard library only).

Pieces the test_*.py files import:

  TempDir             a private 0755 temp dir with ordered cleanups
  free_port()         a free TCP port on 127.0.0.1
  start_redis(td)     private redis-server on a unix socket in td
  start_backend(td)   tests/integration/backend.py on a free port
  write_gateway_config(td, cfg)   libconfig file from a dict or raw text
  base_config(...)    a gateway config dict with test-friendly defaults
  Lighttpd            lighttpd + mod_fastcgi, bin-path or socket mode
  Apache              private apache2 (mpm_event) + mod_fcgid wrapper
  ApigwListen         `apigw --listen ADDR --workers N` prefork pool
  Nginx               private nginx with contrib/nginx/apigw.conf in front
                      of a FastCGI address (ApigwListen's)
  request(), raw_request(), stream_get()   a small HTTP client
  @test, main()       the test registry and runner

Every server listens on 127.0.0.1 or a unix socket inside a temp dir and
is stopped by PID (never by name).  A server that fails to start raises
HarnessError carrying the tail of its log.

A test file (tests/integration/test_*.py, run by run.sh) looks like:

    import harness as h
    from harness import eq, expect_status, test

    def setup(td):                      # once per file; td is a TempDir
        c = type("Ctx", (), {})()
        c.redis = h.start_redis(td)
        c.b = h.start_backend(td)
        cfg = h.base_config(c.redis, [{"prefix": "/api", "backend": c.b.url}])
        c.lt = h.Lighttpd(td, config=h.write_gateway_config(td, cfg), max_procs=2)
        return c

    @test
    def forwards(c):
        r = h.request(c.lt.port, "GET", "/api/x")
        expect_status(r, 200)
        eq(r.json()["path"], "/api/x", "path at the backend")

    if __name__ == "__main__":
        h.main(setup)

`python3 test_x.py [test names...]` runs one file; APIGW_IT_KEEP=1 keeps
the temp dirs (logs, configs) for a look afterwards.  After the tests,
main() stops every server and fails the run if any log holds a sanitizer
report.

Environment: top_srcdir, top_builddir (set by `make check`; default: the
repository root), APIGW (the binary; default $top_builddir/apigw),
APIGW_IT_RSS_LIMIT_MB (peak RSS bound for the streaming test, default 30).
"""

import atexit
import hashlib
import http.client
import inspect
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.abspath(os.environ.get("top_srcdir") or os.path.join(HERE, "..", ".."))
TOP_BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or TOP_SRCDIR)
APACHE_MODULES = "/usr/lib/apache2/modules"

sys.path.insert(0, HERE)
import backend as _backend  # noqa: E402  (shared /big pattern)

big_digest = _backend.big_digest


class HarnessError(Exception):
    """A server or tool needed by a test could not be started or found."""


# ---------------------------------------------------------------------------
# tools and files

def apigw_bin():
    path = os.environ.get("APIGW") or os.path.join(TOP_BUILDDIR, "apigw")
    if not os.access(path, os.X_OK):
        raise HarnessError("apigw binary not found or not executable: %s "
                           "(build it first; top_builddir=%s)" % (path, TOP_BUILDDIR))
    return path


def find_tool(name, package):
    """Absolute path of a program, also looked up in the sbin dirs; a
    missing tool is an error (the suite never skips)."""
    p = shutil.which(name)
    if p:
        return p
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"):
        c = os.path.join(d, name)
        if os.access(c, os.X_OK):
            return c
    raise HarnessError("%s not found: install the Debian package %s" % (name, package))


def log_tail(path, n=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError as e:
        return "(no log %s: %s)" % (path, e)
    return "\n".join("    | " + l for l in lines) or "    | (empty log %s)" % path


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


_open_tempdirs = []


class TempDir:
    """A temp dir (mode 0755 so that www-data can traverse it) with
    cleanups run in reverse order by close(), then removed."""

    def __init__(self, prefix="apigw-it-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)
        self._cleanups = []
        _open_tempdirs.append(self)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def mkdir(self, name, mode=0o755, owner=None):
        p = self.join(name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        if owner:
            chown(p, owner)
        return p

    def write(self, name, text, mode=0o644):
        p = self.join(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def defer(self, fn, *args):
        self._cleanups.append((fn, args))

    def close(self):
        self.run_cleanups()
        if self in _open_tempdirs:
            _open_tempdirs.remove(self)
        if os.environ.get("APIGW_IT_KEEP"):
            sys.stderr.write("# kept %s\n" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def run_cleanups(self):
        """Stops everything started in this dir (reverse order)."""
        errors = []
        while self._cleanups:
            fn, args = self._cleanups.pop()
            try:
                fn(*args)
            except Exception as e:  # keep cleaning up
                errors.append("%s: %s" % (getattr(fn, "__qualname__", fn), e))
        if errors:
            sys.stderr.write("# cleanup errors: %s\n" % "; ".join(errors))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@atexit.register
def _close_all_tempdirs():
    for td in list(_open_tempdirs):
        td.close()


def chown(path, user):
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port(td):
    """A port where a connect is refused for as long as td lives: a socket
    stays bound to it without listening, so no server (and no outgoing
    connection, which could self-connect) can take it meanwhile."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    td.defer(s.close)
    return s.getsockname()[1]


def wait_for(cond, timeout=5.0, interval=0.05, what="condition"):
    """Polls cond() until it returns a true value (returned) or raises
    HarnessError after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:
            last_exc = e
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, " (last error: %s)" % last_exc if last_exc else ""))
        time.sleep(interval)


class _Died(Exception):
    pass


def wait_alive(proc, cond, timeout, what):
    """wait_for(cond) that gives up at once when proc (a Proc) has exited."""
    def c():
        if not proc.alive():
            raise _Died()
        return cond()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = c()
            except _Died:
                raise
            except Exception:
                v = None
            if v:
                return v
            if time.monotonic() >= deadline:
                raise HarnessError("timed out after %.1fs waiting for %s" % (timeout, what))
            time.sleep(0.05)
    except _Died:
        raise HarnessError("exited while waiting for %s" % what)


def check_gateway_config(path):
    """Raises HarnessError with apigw's messages when path is invalid."""
    p = subprocess.run([apigw_bin(), "--check-config", "--config", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    if p.returncode != 0:
        raise HarnessError("gateway config %s is invalid (apigw --check-config exit %d):\n%s" % (
            path, p.returncode, p.stdout.decode(errors="replace")))


def tcp_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unix_open(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------------------
# processes (by PID only)

def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    return int(st[st.rindex(")") + 2:].split()[1])


def proc_children(pid):
    """Live direct children of pid, found by scanning /proc (never by name)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and proc_ppid(int(d)) == pid and pid_alive(int(d)):
            out.append(int(d))
    return sorted(out)


def proc_descendants(pid):
    """Every live descendant of pid (children, grandchildren, ...)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            pp = proc_ppid(int(d))
            if pp is not None:
                parent[int(d)] = pp
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out.extend(kids)
        todo.extend(kids)
    return sorted(c for c in out if pid_alive(c))


def proc_exe(pid):
    """The resolved path of pid's executable (without " (deleted)")."""
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None
    return exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe


def proc_status_kb(pid, field):
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM, ...) or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def kill_pid(pid, sig=signal.SIGTERM):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_pid(pid, timeout=5.0, sig=signal.SIGTERM):
    """Sends sig to pid, waits for it to go, then SIGKILL."""
    if not kill_pid(pid, sig):
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        kill_pid(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def kill_stray(pids, exe, grace=3.0):
    """Gives those of pids that still run exe (a guard against PID reuse)
    grace seconds to exit, then SIGKILLs them."""
    ours = lambda: [p for p in pids if pid_alive(p) and proc_exe(p) == exe]
    deadline = time.monotonic() + grace
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in ours():
        kill_pid(p, signal.SIGKILL)


# Logs that may hold apigw's stderr; main() scans them for sanitizer
# reports once every server has stopped.
server_logs = []
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: ")


def sanitizer_reports():
    """Lines of sanitizer reports found in server_logs."""
    out = []
    for path in server_logs:
        for line in read_text(path).splitlines():
            if SANITIZER_RE.search(line):
                out.append("%s: %s" % (os.path.basename(os.path.dirname(path)) + "/" +
                                       os.path.basename(path), line.strip()))
    return out


class Proc:
    """A child process whose stdout/stderr go to a log file."""

    def __init__(self, name, argv, log_path, env=None, stdout_pipe=False, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        server_logs.append(log_path)
        self._log = open(log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else self._log,
                stderr=self._log, env=env, cwd=cwd, start_new_session=True)
        except OSError as e:
            self._log.close()
            raise HarnessError("%s: cannot run %s: %s" % (name, argv[0], e))
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def fail(self, why):
        return HarnessError("%s %s (pid %d, exit %s); %s:\n%s" % (
            self.name, why, self.pid, self.popen.poll(), self.log_path, log_tail(self.log_path)))

    def stop(self, timeout=5.0, sig=signal.SIGTERM):
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self.popen.stdout:
            self.popen.stdout.close()
        self._log.close()

    def read_line(self, timeout=5.0):
        """One line of the piped stdout, or raises after timeout."""
        fd = self.popen.stdout
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            raise self.fail("printed nothing within %.0fs" % timeout)
        line = fd.readline()
        if not line:
            raise self.fail("exited before printing its port")
        return line.decode().strip()


# ---------------------------------------------------------------------------
# redis

class Redis:
    def __init__(self, td, name="redis"):
        self.td = td
        self.dir = td.mkdir(name)
        self.socket = os.path.join(self.dir, "redis.sock")
        self.url = "unix://%s?db=0" % self.socket
        argv = [find_tool("redis-server", "redis-server"),
                "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "777",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--loglevel", "warning"]
        self.proc = Proc("redis-server", argv, os.path.join(self.dir, "redis.log"))
        td.defer(self.stop)
        try:
            wait_alive(self.proc, lambda: self.command("PING") == "PONG", 5,
                       "redis-server to answer PING")
        except HarnessError as e:
            raise self.proc.fail("did not start: %s" % e)

    def command(self, *args, timeout=2.0):
        """Runs one command over RESP; returns str/int/list/None, raises
        RedisError on an error reply."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.socket)
            s.sendall(resp_encode(args))
            f = s.makefile("rb")
            return resp_read(f)
        finally:
            s.close()

    def stop(self):
        self.proc.stop()


class RedisError(Exception):
    pass


def redis_reads_during(redis, fn, settle=0.0):
    """Round trips clients made while fn() ran: Redis's count of socket
    reads (INFO stats total_reads_processed; a pipelined batch of several
    commands arrives in one read).  The counts are taken on one kept
    connection, so the measurement adds exactly one read (the second INFO,
    taken off) and no connection's end.  settle: seconds to wait after fn()
    for writes sent after the last response (deferred stores).  Returns
    (reads, seconds from the first count to the second)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(redis.socket)
    f = s.makefile("rb")

    def reads():
        s.sendall(resp_encode(["INFO", "stats"]))
        m = re.search(r"^total_reads_processed:(\d+)", resp_read(f), re.M)
        check(m, "INFO stats without total_reads_processed")
        return int(m.group(1))

    try:
        t0 = time.monotonic()
        before = reads()
        fn()
        if settle:
            time.sleep(settle)
        return reads() - before - 1, time.monotonic() - t0
    finally:
        f.close()
        s.close()


def redis_commandstats(redis):
    """{command: calls} from INFO commandstats (subcommands such as
    "config|resetstat" counted under their command; commands a script ran
    are counted too)."""
    out = {}
    for line in redis.command("INFO", "commandstats").splitlines():
        m = re.match(r"^cmdstat_([^:]+):calls=(\d+),", line)
        if m:
            name = m.group(1).split("|")[0].lower()
            out[name] = out.get(name, 0) + int(m.group(2))
    return out


def resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def resp_read(f):
    line = f.readline()
    if not line:
        raise RedisError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RedisError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise RedisError("bad reply %r" % line)


class RestartableRedis(Redis):
    """redis-server that can be stopped and started again on its socket
    (for Redis outage tests).  debug: the value of --enable-debug-command
    ("local", "yes") for tests that send DEBUG, else None; start=False
    leaves it down until start()."""

    def __init__(self, td, name="redis", debug=None, start=True):  # not super(): restartable
        self.td = td
        self.name = name
        self.dir = td.mkdir(name)
        self.socket = os.path.join(self.dir, "redis.sock")
        self.url = "unix://%s?db=0" % self.socket
        self.argv = [find_tool("redis-server", "redis-server"),
                     "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "777",
                     "--save", "", "--appendonly", "no", "--dir", self.dir,
                     "--daemonize", "no", "--loglevel", "warning"]
        if debug:
            self.argv += ["--enable-debug-command", debug]
        self.proc = None
        td.defer(self.stop)
        if start:
            self.start()

    def start(self):
        self.proc = Proc("redis-server " + self.name, self.argv,
                         os.path.join(self.dir, "redis.log"))
        try:
            wait_for(lambda: self.proc.alive() and self.command("PING") == "PONG",
                     timeout=5, interval=0.01, what="redis-server to answer PING")
        except HarnessError:
            raise self.proc.fail("did not start")

    def stop(self):
        if self.proc is not None and self.proc.alive():
            self.proc.stop()

    def restart(self):
        self.stop()
        self.start()


def start_redis(td, name="redis"):
    return Redis(td, name)


# ---------------------------------------------------------------------------
# stub backend

class Backend:
    def __init__(self, td, name="backend"):
        self.name = name
        argv = [sys.executable, os.path.join(HERE, "backend.py"), "--name", name]
        self.proc = Proc("backend " + name, argv, td.join("%s.log" % name), stdout_pipe=True)
        td.defer(self.stop)
        line = self.proc.read_line()
        if not line.startswith("PORT "):
            raise self.proc.fail("printed %r instead of its port" % line)
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def calls(self, key):
        """How many requests reached the backend with key=<key>."""
        return request(self.port, "GET", "/_calls?key=%s" % key).json()["calls"]

    def stop(self):
        self.proc.stop()


def start_backend(td, name="backend"):
    return Backend(td, name)


# ---------------------------------------------------------------------------
# gateway config (libconfig syntax)

class Raw(str):
    """A value written verbatim into the libconfig file."""


def _cfg_value(v, indent):
    pad = "  " * indent
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) + ("L" if abs(v) > 0x7FFFFFFF else "")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if isinstance(v, dict):
        inner = "".join("%s  %s = %s;\n" % (pad, k, _cfg_value(x, indent + 1)) for k, x in v.items())
        return "{\n%s%s}" % (inner, pad)
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):
            items = (",\n").join("%s  %s" % (pad, _cfg_value(x, indent + 1)) for x in v)
            return "(\n%s\n%s)" % (items, pad)
        return "[ %s ]" % ", ".join(_cfg_value(x, indent) for x in v)
    raise TypeError("cannot write %r into a libconfig file" % (v,))


def config_text(cfg):
    """libconfig text for a dict of top-level settings."""
    return "".join("%s = %s;\n" % (k, _cfg_value(v, 0)) for k, v in cfg.items())


def write_gateway_config(td, cfg, name="apigw.conf"):
    """Writes cfg (a dict, see config_text, or raw text) to td/name, mode
    0644; returns the path."""
    text = cfg if isinstance(cfg, str) else config_text(cfg)
    return td.write(name, text)


def deep_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not isinstance(v, Raw):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def base_config(redis, routes, **groups):
    """A gateway config dict: the given routes, Redis, and limits high
    enough that rate limiting and the circuit breaker stay out of the way
    of forwarding tests.  groups (gateway=..., log=..., cors=...) are merged
    over the defaults."""
    cfg = {
        # a loaded test machine can take longer than the 100 ms default
        # to answer; tests of the timeout itself set it explicitly
        "redis": {"url": redis.url, "command_timeout_ms": 1000},
        "rate_limit": {"algorithm": "fixed_window", "requests_per_minute": 1000000},
        "circuit_breaker": {"failure_threshold": 1000},
        "log": {"access": "off"},
        "routes": routes,
    }
    return deep_merge(cfg, groups)


# ---------------------------------------------------------------------------
# lighttpd

class Lighttpd:
    """lighttpd with mod_fastcgi on the "/" prefix, streaming responses
    (server.stream-response-body = 1).

    Lighttpd(td, config=PATH, max_procs=N): bin-path mode, lighttpd spawns
    N `apigw --config PATH` processes on unix sockets in the temp dir (their
    stderr is lighttpd's: see log_text()).  Lighttpd(td, socket_path=P) or
    Lighttpd(td, host_port=(H, PORT)): socket mode, lighttpd connects to an
    existing FastCGI socket such as ApigwListen's.  extra is appended to
    lighttpd.conf."""

    def __init__(self, td, config=None, max_procs=2, socket_path=None, host_port=None,
                 name="lighttpd", extra="", check=True):
        self.td = td
        self.name = name
        self.dir = td.mkdir(name)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.apigw = os.path.realpath(apigw_bin()) if config else None
        self.error_log = os.path.join(self.dir, "error.log")
        server_logs.append(self.error_log)
        if config:
            fcgi = ('"bin-path" => "%s --config %s",\n'
                    '      "socket" => "%s",\n'
                    '      "max-procs" => %d,\n'
                    % (self.apigw, config, os.path.join(self.dir, "apigw.sock"), max_procs))
        elif socket_path:
            fcgi = '"socket" => "%s",\n' % socket_path
        elif host_port:
            fcgi = '"host" => "%s",\n      "port" => %d,\n' % host_port
        else:
            raise ValueError("Lighttpd needs config, socket_path or host_port")
        htdocs = td.mkdir(name + "-htdocs")
        upload = td.mkdir(name + "-upload")
        conf = """server.modules += ( "mod_fastcgi" )
server.document-root = "%(htdocs)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(errlog)s"
server.upload-dirs = ( "%(upload)s" )
server.stream-response-body = 1
server.max-request-size = 65536
fastcgi.server = ( "/" => ( (
      %(fcgi)s      "check-local" => "disable"
    ) ) )
%(extra)s
""" % dict(htdocs=htdocs, port=self.port, errlog=self.error_log, upload=upload,
           fcgi=fcgi, extra=extra)
        self.conf = td.write(os.path.join(name, "lighttpd.conf"), conf)
        lighttpd = find_tool("lighttpd", "lighttpd")
        if config and check:
            check_gateway_config(config)
        self.proc = Proc(name, [lighttpd, "-D", "-f", self.conf], os.path.join(self.dir, "stderr.log"))
        self.pid = self.proc.pid
        td.defer(self.stop)
        try:
            wait_alive(self.proc, lambda: tcp_open(self.port), 10,
                       "%s to listen on port %d" % (name, self.port))
        except HarnessError as e:
            raise HarnessError("%s did not start (%s); %s:\n%s\n%s" % (
                name, e, self.error_log, log_tail(self.error_log), log_tail(self.proc.log_path)))
        if config:
            try:
                wait_alive(self.proc, lambda: len(self.worker_pids()) >= max_procs, 10,
                           "%d apigw processes under lighttpd" % max_procs)
            except HarnessError as e:
                raise HarnessError("%s: %s; %s" % (name, e, self.log_tail()))

    def worker_pids(self):
        """PIDs of the apigw processes lighttpd spawned (its children)."""
        return [p for p in proc_children(self.pid) if proc_exe(p) == self.apigw]

    def log_text(self):
        """lighttpd's error log, then its stderr (which the spawned apigw
        processes inherit, so their log lines land there)."""
        return read_text(self.error_log) + read_text(self.proc.log_path)

    def log_tail(self):
        return "%s:\n%s\n%s:\n%s" % (self.error_log, log_tail(self.error_log),
                                     self.proc.log_path, log_tail(self.proc.log_path))

    def stop(self):
        kids = proc_descendants(self.pid) if self.proc.alive() else []
        self.proc.stop()
        if self.apigw:
            kill_stray(kids, self.apigw)


# ---------------------------------------------------------------------------
# Apache + mod_fcgid

class Apache:
    """A private apache2 (mpm_event) with the gateway as a mod_fcgid
    virtual wrapper on <Location />.  The binary and config are copied
    into the 0755 temp dir so that www-data can run and read them wherever
    the build tree lives."""

    def __init__(self, td, config, max_procs=8, max_request_len=1 << 20, name="apache",
                 extra="", check=True):
        self.td = td
        self.name = name
        apache2 = find_tool("apache2", "apache2")
        for mod in ("mod_mpm_event.so", "mod_authz_core.so", "mod_fcgid.so"):
            if not os.path.exists(os.path.join(APACHE_MODULES, mod)):
                raise HarnessError("%s/%s missing: install apache2 and libapache2-mod-fcgid"
                                   % (APACHE_MODULES, mod))
        d = td.path
        while d != "/":
            if not os.stat(d).st_mode & 0o001:
                raise HarnessError("www-data cannot traverse %s (mode %o): Apache's apigw processes "
                                   "could not reach %s; set TMPDIR to a world-searchable dir"
                                   % (d, os.stat(d).st_mode & 0o7777, td.path))
            d = os.path.dirname(d)
        self.dir = td.mkdir(name)
        self.apigw = os.path.realpath(os.path.join(self.dir, "apigw"))
        shutil.copy2(apigw_bin(), self.apigw)
        os.chmod(self.apigw, 0o755)
        if check:
            check_gateway_config(config)
        self.config = os.path.join(self.dir, "apigw.conf")
        shutil.copy2(config, self.config)
        os.chmod(self.config, 0o644)
        ipc = td.mkdir(os.path.join(name, "fcgid"), 0o755, owner="www-data")
        htdocs = td.mkdir(os.path.join(name, "htdocs"))
        td.mkdir(os.path.join(name, "run"))
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.pidfile = os.path.join(self.dir, "apache.pid")
        self.error_log = os.path.join(self.dir, "error.log")
        server_logs.append(self.error_log)
        conf = """ServerRoot "%(dir)s"
DefaultRuntimeDir "%(dir)s/run"
PidFile "%(pidfile)s"
ServerName 127.0.0.1
Listen 127.0.0.1:%(port)d
User www-data
Group www-data
ErrorLog "%(errlog)s"
LogLevel warn
Mutex pthread
LoadModule mpm_event_module %(mods)s/mod_mpm_event.so
LoadModule authz_core_module %(mods)s/mod_authz_core.so
LoadModule fcgid_module %(mods)s/mod_fcgid.so
LoadModule setenvif_module %(mods)s/mod_setenvif.so
StartServers 1
ServerLimit 2
ThreadsPerChild 25
MaxRequestWorkers 50
Timeout 60
KeepAlive On
DocumentRoot "%(htdocs)s"
AllowEncodedSlashes NoDecode
FcgidIPCDir "%(ipc)s"
FcgidProcessTableFile "%(ipc)s/fcgid_shm"
FcgidMaxProcesses %(maxp)d
FcgidMaxProcessesPerClass %(maxp)d
FcgidMinProcessesPerClass 0
FcgidSpawnScoreUpLimit 100
FcgidOutputBufferSize 0
FcgidMaxRequestLen %(maxlen)d
FcgidIOTimeout 60
FcgidConnectTimeout 10
<Directory />
  AllowOverride None
  Require all granted
</Directory>
<Location />
  SetHandler fcgid-script
  Options +ExecCGI
  CGIPassAuth On
  SetEnvIf Connection "(.*)" APIGW_CONNECTION=$1
  FcgidWrapper "%(apigw)s --config %(config)s" virtual
  Require all granted
</Location>
%(extra)s
""" % dict(dir=self.dir, pidfile=self.pidfile, port=self.port, errlog=self.error_log,
           mods=APACHE_MODULES, htdocs=htdocs, ipc=ipc, maxp=max_procs,
           maxlen=max_request_len, apigw=self.apigw, config=self.config, extra=extra)
        self.conf = td.write(os.path.join(name, "httpd.conf"), conf)
        self.pid = None
        td.defer(self.stop)
        out = subprocess.run([apache2, "-d", self.dir, "-f", self.conf, "-k", "start"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30, env=_apache_env())
        if out.returncode != 0:
            raise HarnessError("apache2 -k start failed (exit %d): %s\n%s" % (
                out.returncode, out.stdout.decode(errors="replace"), log_tail(self.error_log)))
        try:
            self.pid = wait_for(self._read_pid, timeout=10, what="apache2 pid file")
            wait_for(lambda: pid_alive(self.pid) and tcp_open(self.port), timeout=10,
                     what="apache2 to listen on port %d" % self.port)
        except HarnessError as e:
            raise HarnessError("apache2 did not start (%s); %s:\n%s" % (
                e, self.error_log, log_tail(self.error_log)))

    def _read_pid(self):
        try:
            return int(read_text(self.pidfile).strip() or 0)
        except ValueError:
            return 0

    def worker_pids(self):
        """apigw processes that mod_fcgid spawned (anywhere below apache)."""
        if not self.pid:
            return []
        return [p for p in proc_descendants(self.pid) if proc_exe(p) == self.apigw]

    def log_tail(self):
        return "%s:\n%s" % (self.error_log, log_tail(self.error_log))

    def stop(self):
        pid = self.pid or self._read_pid()
        if not pid or not pid_alive(pid):
            return
        kids = proc_descendants(pid)
        stop_pid(pid, timeout=8)
        kill_stray(kids, self.apigw)


def _apache_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["LANG"] = "C"
    return env


# ---------------------------------------------------------------------------
# apigw --listen

class ApigwListen:
    """`apigw --listen ADDR --workers N --config FILE` started by the test;
    addr is a unix socket path or "127.0.0.1:PORT"."""

    def __init__(self, td, config, workers=2, addr=None, name="apigw-listen", check=True,
                 args=()):
        self.td = td
        self.name = name
        self.apigw = os.path.realpath(apigw_bin())
        if addr is None:
            addr = td.join(name + ".sock")
        self.addr = addr
        self.unix = addr.startswith("/")
        self.workers = workers
        self.config = config
        self.log_path = td.join(name + ".log")
        argv = [self.apigw, "--listen", addr, "--workers", str(workers), "--config", config]
        argv += list(args)  # --socket-mode, --user, ...
        if check:
            check_gateway_config(config)
        self.proc = Proc(name, argv, self.log_path)
        self.pid = self.proc.pid
        td.defer(self.stop)
        if self.unix:
            ready = lambda: unix_open(addr)
        else:
            host, port = addr.rsplit(":", 1)
            ready = lambda: tcp_open(int(port), host)
        try:
            wait_alive(self.proc, ready, 10, "apigw --listen %s to accept" % addr)
            wait_alive(self.proc, lambda: len(self.worker_pids()) >= workers, 10,
                       "%d apigw workers" % workers)
        except HarnessError as e:
            raise self.proc.fail("did not start: %s" % e)

    @property
    def host_port(self):
        host, port = self.addr.rsplit(":", 1)
        return host, int(port)

    def worker_pids(self):
        return [p for p in proc_children(self.pid) if proc_exe(p) == self.apigw]

    def log_tail(self):
        return "%s:\n%s" % (self.log_path, log_tail(self.log_path))

    def stop(self):
        kids = proc_descendants(self.pid) if self.proc.alive() else []
        self.proc.stop(timeout=8)
        kill_stray(kids, self.apigw)


# ---------------------------------------------------------------------------
# nginx

NGINX_RECIPE = os.path.join(TOP_SRCDIR, "contrib", "nginx", "apigw.conf")


def nginx_recipe(upstream, port, keepalive=None, keep_conn=None, path=NGINX_RECIPE):
    """The shipped recipe (its upstream and server blocks) with the upstream
    address replaced by upstream ("unix:/path" or "HOST:PORT") and the
    server listening on 127.0.0.1:port.  keepalive=N (0: none) replaces the
    recipe's keepalive line in the upstream block, keep_conn=True/False its
    fastcgi_keep_conn; None keeps what the recipe says."""
    text = read_text(path)
    if not text:
        raise HarnessError("nginx recipe %s missing" % path)
    m = re.search(r"^upstream apigw \{\n(.*?)^\}", text, re.S | re.M)
    if not m:
        raise HarnessError("%s: no `upstream apigw { ... }` block" % path)
    body = m.group(1)
    body, n = re.subn(r"^(\s*)server \S+;", lambda x: "%sserver %s;" % (x.group(1), upstream),
                      body, count=1, flags=re.M)
    if n != 1:
        raise HarnessError("%s: no server line in the upstream block" % path)
    if keepalive is not None:
        body = re.sub(r"^\s*keepalive\s+\d+;.*\n", "", body, flags=re.M)
        if keepalive:
            body += "\tkeepalive %d;\n" % keepalive
    text = text[:m.start(1)] + body + text[m.end(1):]
    text, n = re.subn(r"^(\s*)listen\s+80;", r"\1listen 127.0.0.1:%d;" % port, text,
                      count=1, flags=re.M)
    if n != 1:
        raise HarnessError("%s: no `listen 80;` line in the server block" % path)
    if keep_conn is not None:
        text = re.sub(r"^\s*fastcgi_keep_conn\s+\w+;.*\n", "", text, flags=re.M)
        text, n = re.subn(r"^(\s*)fastcgi_pass apigw;",
                          r"\g<0>\n\1fastcgi_keep_conn %s;" % ("on" if keep_conn else "off"),
                          text, count=1, flags=re.M)
        if n != 1:
            raise HarnessError("%s: no `fastcgi_pass apigw;` line" % path)
    return text


class Nginx:
    """A private nginx (master + worker_processes workers) serving the
    shipped recipe contrib/nginx/apigw.conf on 127.0.0.1:<free port> in
    front of upstream ("unix:/path.sock" or "127.0.0.1:PORT").  As root
    its workers run as `user` (www-data), which must be able to connect to
    a unix upstream.  Logs, pid file and temp dirs are in td/<name>;
    stopped by PID."""

    def __init__(self, td, upstream, name="nginx", keepalive=None, keep_conn=None,
                 user="www-data", worker_processes=1, recipe=NGINX_RECIPE):
        self.td = td
        self.name = name
        self.nginx = os.path.realpath(find_tool("nginx", "nginx-light"))
        self.dir = td.mkdir(name)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.pid_file = os.path.join(self.dir, "nginx.pid")
        self.user = user if os.geteuid() == 0 else None
        site = nginx_recipe(upstream, self.port, keepalive, keep_conn, recipe)
        temps = "".join("\t%s_temp_path %s;\n" % (k, os.path.join(self.dir, k))
                        for k in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))
        conf = ("%s"
                "worker_processes %d;\n"
                "pid %s;\n"
                "error_log %s info;\n"
                "events { worker_connections 1024; }\n"
                "http {\n"
                "\taccess_log %s;\n%s"
                "%s\n}\n") % ("user %s;\n" % self.user if self.user else "", worker_processes,
                                self.pid_file, self.error_log, self.access_log, temps, site)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        argv = [self.nginx, "-p", self.dir + "/", "-c", self.conf, "-e", self.error_log,
                "-g", "daemon off;"]
        t = subprocess.run(argv + ["-t", "-q"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        if t.returncode != 0:
            raise HarnessError("nginx -t failed on %s:\n%s" % (self.conf, t.stdout.decode(errors="replace")))
        self.proc = Proc(name, argv, os.path.join(self.dir, "stderr.log"))
        self.pid = self.proc.pid
        td.defer(self.stop)
        try:
            wait_alive(self.proc, lambda: tcp_open(self.port), 10, "nginx to listen")
            wait_alive(self.proc, lambda: len(self.worker_pids()) >= worker_processes, 10,
                       "nginx workers")
        except HarnessError as e:
            raise HarnessError("%s did not start: %s\n%s" % (name, e, log_tail(self.error_log)))

    def worker_pids(self):
        return [p for p in proc_children(self.pid) if proc_exe(p) == self.nginx]

    def log_text(self):
        return read_text(self.error_log)

    def stop(self):
        if not self.proc.alive():
            return
        kids = proc_descendants(self.pid)
        self.proc.stop(timeout=8)
        kill_stray(kids, self.nginx)


# ---------------------------------------------------------------------------
# HTTP client

class Headers:
    """Response headers in order; lookups ignore case; get_all() returns
    every value of a repeated header."""

    def __init__(self, items):
        self.items = [(k, v) for k, v in items]

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self.items:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.items if k.lower() == n]

    def __contains__(self, name):
        return self.get(name) is not None

    def __getitem__(self, name):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __repr__(self):
        return "Headers(%r)" % self.items


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError("response body is not JSON (status %d): %r"
                                 % (self.status, self.body[:300]))

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.headers.get("content-type"), self.body[:200])


def _header_items(headers):
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def request(port, method, path, headers=None, body=None, timeout=10.0, host="127.0.0.1",
            conn=None, source=None):
    """One HTTP/1.1 request; headers is a dict or a list of (name, value)
    pairs (repeats allowed).  A Host header in headers replaces the default.
    Pass conn (an http.client.HTTPConnection) to reuse a connection, or
    source="127.0.0.2" to connect from another loopback address."""
    items = _header_items(headers)
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
    try:
        names = {k.lower() for k, _ in items}
        conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        for k, v in items:
            conn.putheader(k, v)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            if isinstance(body, str):
                body = body.encode()
            conn.putheader("Content-Length", str(len(body)))
        if isinstance(body, str):
            body = body.encode()
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, Headers(r.getheaders()), data)
    finally:
        if own:
            conn.close()


def stream_get(port, path, headers=None, timeout=30.0, stop_after=None, chunk=1 << 20):
    """GET that hashes the body as it arrives; returns (response with an
    empty body, length, sha256 hex).  stop_after=N drops the connection
    (with a RST) after N body bytes: a client disconnect."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    r = None
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in _header_items(headers):
            conn.putheader(k, v)
        conn.endheaders()
        sock = conn.sock
        r = conn.getresponse()
        hsh = hashlib.sha256()
        n = 0
        while stop_after is None or n < stop_after:
            data = r.read(chunk)
            if not data:
                break
            hsh.update(data)
            n += len(data)
        if stop_after is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return Response(r.status, r.reason, Headers(r.getheaders()), b""), n, hsh.hexdigest()
    finally:
        if r is not None:
            r.close()
        conn.close()


def raw_request(port, data, timeout=10.0, host="127.0.0.1"):
    """Sends raw bytes (a whole request, e.g. with an odd request line) and
    parses the response (read until close; Content-Length or chunked)."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            buf += d
            resp = _parse_response(buf)
            if resp is not None:
                return resp
    resp = _parse_response(buf, eof=True)
    if resp is None:
        raise AssertionError("incomplete HTTP response: %r" % buf[:300])
    return resp


def _parse_response(buf, eof=False):
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = Headers([tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l])
    if status in (204, 304) or 100 <= status < 200:
        return Response(status, parts[2] if len(parts) > 2 else "", headers, b"")
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        body, pos = b"", 0
        while True:
            nl = rest.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(rest[pos:nl].split(b";")[0], 16)
            if size == 0:
                return Response(status, parts[2] if len(parts) > 2 else "", headers, body)
            if len(rest) < nl + 2 + size + 2:
                return None
            body += rest[nl + 2:nl + 2 + size]
            pos = nl + 2 + size + 2
    cl = headers.get("content-length")
    if cl is not None:
        if len(rest) < int(cl):
            return None
        return Response(status, parts[2] if len(parts) > 2 else "", headers, rest[:int(cl)])
    if eof:
        return Response(status, parts[2] if len(parts) > 2 else "", headers, rest)
    return None


# ---------------------------------------------------------------------------
# assertions

def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(actual, expected, what="value"):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def expect_status(resp, status, what=""):
    if resp.status != status:
        raise AssertionError("%sexpected status %d, got %d; headers %r; body %r" % (
            what + ": " if what else "", status, resp.status, resp.headers.items, resp.body[:400]))


REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def expect_problem(resp, status, what=""):
    """An apigw error: status, application/problem+json, and the fields
    type, title, status, detail, error, request_id."""
    expect_status(resp, status, what)
    ct = resp.headers.get("content-type", "")
    check(ct.split(";")[0].strip().lower() == "application/problem+json",
          "%s: Content-Type %r, want application/problem+json" % (what or status, ct))
    doc = resp.json()
    for f in ("type", "title", "status", "detail", "error", "request_id"):
        check(f in doc, "%s: problem document lacks %r: %r" % (what or status, f, doc))
    eq(doc["status"], status, "problem status field")
    check(isinstance(doc["request_id"], str) and REQUEST_ID_RE.match(doc["request_id"]),
          "problem request_id %r is not a sane id" % doc.get("request_id"))
    return doc


def header_pairs(echo):
    """Lower-cased [name, value] pairs from a backend echo."""
    return [(k.lower(), v) for k, v in echo["headers"]]


def echo_header(echo, name):
    vals = [v for k, v in header_pairs(echo) if k == name.lower()]
    return vals[0] if len(vals) == 1 else (vals or None)


# ---------------------------------------------------------------------------
# test registry and runner

_tests = []
TEST_TIMEOUT_S = 60


def test(fn):
    """Registers fn as a test; tests run in definition order.  A test takes
    no argument or one: the object returned by main()'s setup."""
    _tests.append(fn)
    return fn


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("test took longer than %d s" % TEST_TIMEOUT_S)


def dump_diagnostics(td, out=sys.stderr):
    """After a first failure: what every process of ours was doing and the
    tail of every log in the temp dir, so a failure in CI explains itself."""
    out.write("---- diagnostics ----\n")
    me = os.getpid()
    for pid in proc_descendants(me):
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read().split(")")[-1].split()
            with open("/proc/%d/wchan" % pid) as f:
                wchan = f.read().strip()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
            out.write("pid %d state %s wchan %s: %s\n" % (pid, stat[0], wchan, cmd))
        except OSError:
            pass
    for root, _dirs, files in os.walk(td.path):
        for name in sorted(files):
            if name.endswith(".log") or name.endswith(".json"):
                path = os.path.join(root, name)
                out.write("-- %s\n%s\n" % (path, log_tail(path, 25)))
    out.write("---- end of diagnostics ----\n")
    out.flush()


def main(setup=None):
    """Runs the registered tests (or those named on the command line),
    printing "ok - name" or "FAIL - name: reason" for each and a closing
    "N passed, M failed" line; exits 1 if any failed.  setup(td), if given,
    runs once with a TempDir and returns the object passed to tests that
    take an argument; the TempDir (and every server in it) is closed at the
    end."""
    wanted = set(sys.argv[1:])
    tests = [t for t in _tests if not wanted or t.__name__ in wanted]
    passed = failed = 0
    signal.signal(signal.SIGALRM, _alarm)
    td = TempDir()
    ctx, setup_err = None, None
    try:
        if setup:
            try:
                signal.alarm(TEST_TIMEOUT_S)
                ctx = setup(td)
            except Exception as e:
                setup_err = "setup failed: %s" % _reason(e)
                traceback.print_exc(file=sys.stderr)
            finally:
                signal.alarm(0)
        for t in tests:
            name = t.__name__
            if setup_err:
                print("FAIL - %s: %s" % (name, setup_err), flush=True)
                failed += 1
                continue
            t0 = time.monotonic()
            try:
                signal.alarm(TEST_TIMEOUT_S)
                if len(inspect.signature(t).parameters) >= 1:
                    t(ctx)
                else:
                    t()
                signal.alarm(0)
                print("ok - %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
                passed += 1
            except BaseException as e:
                signal.alarm(0)
                if isinstance(e, KeyboardInterrupt):
                    raise
                print("FAIL - %s: %s" % (name, _reason(e)), flush=True)
                sys.stderr.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
                if failed == 0:
                    try:
                        dump_diagnostics(td)
                    except Exception as de:  # diagnostics must not mask the failure
                        sys.stderr.write("diagnostics failed: %r\n" % de)
                failed += 1
        # stop every server (so that exiting processes report leaks), then
        # look for sanitizer reports in their logs: each is a failure
        td.run_cleanups()
        reports = sanitizer_reports()
        if reports:
            print("FAIL - sanitizer_reports: %d line(s), first: %s" % (len(reports), reports[0]),
                  flush=True)
            sys.stderr.write("\n".join(reports[:50]) + "\n")
            failed += 1
    finally:
        td.close()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def _reason(e):
    msg = str(e) or type(e).__name__
    if isinstance(e, (HarnessError, AssertionError, _Timeout)):
        return msg
    return "%s: %s" % (type(e).__name__, msg)
