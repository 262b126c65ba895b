#!/usr/bin/env python3
"""`apigw --check-config`, --version/--help, and live reload of a changed
config file by responders that lighttpd spawned (bin-path mode)."""

import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, expect_problem, expect_status, test  # noqa: E402

ERR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<key>[^:\s]+): (?P<reason>.+)$")


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.td = td
    c.redis = h.start_redis(td)
    c.b1 = h.start_backend(td, "b1")
    return c


def run_apigw(args, env=None, timeout=10):
    e = dict(os.environ)
    e.pop("APIGW_CONFIG", None)
    e.update(env or {})
    p = subprocess.run([h.apigw_bin()] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=e)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check_config(c, text, name="check.conf"):
    path = c.td.write(name, text)
    rc, out, err = run_apigw(["--check-config", "--config", path])
    return path, rc, out + err


FULL = """# every section of the configuration
redis = {
  url = "%(redis)s";
  connect_timeout_ms = 200;
  command_timeout_ms = 100;
  key_prefix = "apigw:";
  on_failure = "open";
};
gateway = {
  trusted_proxies = [ "127.0.0.1/32", "::1/128" ];
  internal_allow  = [ "127.0.0.0/8", "::1/128" ];
  max_body_bytes = 10485760;
  request_id_header = "X-Request-ID";
};
rate_limit = {
  algorithm = "sliding_window";
  requests_per_minute = 60;
  burst_size = 0;
};
api_keys = { header = "X-API-Key"; cache_ttl_s = 5; };
circuit_breaker = {
  failure_threshold = 5; recovery_timeout_s = 60; success_threshold = 3;
  failure_statuses = [ 502, 503, 504 ];
};
cache = { max_object_bytes = 1048576; };
cors = { enabled = false; allow_origins = [ "*" ];
         allow_methods = [ "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" ];
         allow_headers = [ "Content-Type", "Authorization", "X-API-Key" ]; max_age_s = 600; };
log = { access = "stderr"; format = "combined"; level = "info"; };
plugins = ( );
routes = (
  { prefix = "/api/users"; backend = "http://users-service:8001";
    methods = [ "GET", "POST" ];
    require_auth = true; cache_ttl_s = 300; strip_prefix = false;
    connect_timeout_ms = 2000; timeout_ms = 30000; retries = 2;
    rate_limit = { requests_per_minute = 10; requests_per_hour = 100;
                   algorithm = "token_bucket"; burst_size = 20; };
  },
  { prefix = "/"; backend = "https://example.com/base"; }
);
"""

MINIMAL = 'redis = { url = "%(redis)s"; };\nroutes = ( { prefix = "/api"; backend = "http://127.0.0.1:1"; } );\n'


@test
def check_config_valid(c):
    for name, text in (("minimal.conf", MINIMAL), ("full.conf", FULL)):
        path, rc, out = check_config(c, text % {"redis": c.redis.url}, name)
        eq(rc, 0, "--check-config exit status for valid %s (output %r)" % (name, out))
        eq(out, "", "--check-config output for valid %s" % name)


# (config text, line of the error, key the message must name)
INVALID = [
    ('redis = { url = "unix:///x.sock"; };\nroutes = ( { prefix = "/a"; backend = "http://h:1"; } );\n'
     'bogus = 1;\n', 3, "bogus"),
    ('redis = { url = "unix:///x.sock"; };\ngateway = {\n  max_body_byte = 10;\n};\n'
     'routes = ( { prefix = "/a"; backend = "http://h:1"; } );\n', 3, "max_body_byte"),
    ('redis = { url = "unix:///x.sock"; };\ngateway = {\n  max_body_bytes = "big";\n};\n'
     'routes = ( { prefix = "/a"; backend = "http://h:1"; } );\n', 3, "max_body_bytes"),
    ('redis = { url = "unix:///x.sock"; };\nroutes = (\n  { prefix = "/a"; backend = "http://h:1";\n'
     '    retries = -1; }\n);\n', 4, "retries"),
    ('redis = { url = "unix:///x.sock"; };\nroutes = (\n  { prefix = "/a";\n'
     '    backend = "ftp://h:1"; }\n);\n', 4, "backend"),
    ('redis = { url = "unix:///x.sock"; };\nroutes = (\n  { prefix = "/a"; backend = "http://h:1";\n'
     '    methods = [ "GETT" ]; }\n);\n', 4, "methods"),
    ('redis = {\n  url = "mysql://h";\n};\nroutes = ( { prefix = "/a"; backend = "http://h:1"; } );\n',
     2, "url"),
    ('redis = { url = "unix:///x.sock"; };\nrate_limit = {\n  algorithm = "leaky";\n'
     '  requests_per_minute = 5; };\nroutes = ( { prefix = "/a"; backend = "http://h:1"; } );\n',
     3, "algorithm"),
    ('redis = { url = "unix:///x.sock"; };\nlog = {\n  format = "xml";\n};\n'
     'routes = ( { prefix = "/a"; backend = "http://h:1"; } );\n', 3, "format"),
]


@test
def check_config_reports_file_line_key(c):
    for i, (text, line, key) in enumerate(INVALID):
        path, rc, out = check_config(c, text, "bad%d.conf" % i)
        eq(rc, 1, "exit status for invalid config %d (%s; output %r)" % (i, key, out))
        lines = [l for l in out.splitlines() if l.strip()]
        check(lines, "no error printed for invalid config %d (%s)" % (i, key))
        hits = [m for m in map(ERR_LINE.match, lines) if m]
        check(hits, "config %d: no 'file:line: key: reason' line in %r" % (i, out))
        ok = [m for m in hits if m.group("file").endswith("bad%d.conf" % i)
              and int(m.group("line")) == line and key in m.group("key")]
        check(ok, "config %d: want %s:%d: ...%s...: reason, got %r" % (i, path, line, key, out))


@test
def check_config_reports_every_error(c):
    text = ('redis = { url = "unix:///x.sock"; };\n'
            'gateway = { max_body_bytes = -5; };\n'
            'cors = { enabled = 3; };\n'
            'routes = ( { prefix = "/a"; backend = "http://h:1"; timeout_ms = "x"; } );\n')
    path, rc, out = check_config(c, text, "multi.conf")
    eq(rc, 1, "exit status (%r)" % out)
    found = {int(m.group("line")) for m in map(ERR_LINE.match, out.splitlines()) if m}
    check({2, 3, 4} <= found, "errors on lines 2, 3 and 4 expected, got lines %r in %r"
          % (sorted(found), out))


@test
def check_config_syntax_and_missing(c):
    path, rc, out = check_config(c, 'redis = { url = "unix:///x.sock";\nroutes = (\n', "syntax.conf")
    eq(rc, 1, "exit status for a syntax error")
    check(re.search(r"syntax\.conf:\d+: ", out), "syntax error without file:line: %r" % out)
    path, rc, out = check_config(c, 'redis = { url = "unix:///x.sock"; };\n', "noroutes.conf")
    eq(rc, 1, "exit status without routes")
    check("routes" in out, "missing routes not named: %r" % out)
    path, rc, out = check_config(c, 'routes = ( { prefix = "/a"; backend = "http://h:1"; } );\n',
                                 "noredis.conf")
    eq(rc, 1, "exit status without redis")
    check("redis" in out, "missing redis not named: %r" % out)
    rc, out, err = run_apigw(["--check-config", "--config", c.td.join("does-not-exist.conf")])
    eq(rc, 1, "exit status for a missing file")
    check("does-not-exist.conf" in out + err, "missing file not named: %r" % (out + err))


@test
def config_from_environment(c):
    good = c.td.write("env-good.conf", MINIMAL % {"redis": c.redis.url})
    bad = c.td.write("env-bad.conf", "routes = 5;\n")
    rc, out, err = run_apigw(["--check-config"], env={"APIGW_CONFIG": good})
    eq(rc, 0, "APIGW_CONFIG valid file (%r)" % (out + err))
    rc, out, err = run_apigw(["--check-config"], env={"APIGW_CONFIG": bad})
    eq(rc, 1, "APIGW_CONFIG invalid file")
    check("env-bad.conf" in out + err, "APIGW_CONFIG file not named: %r" % (out + err))


@test
def version_and_help(c):
    rc, out, err = run_apigw(["--version"])
    eq(rc, 0, "--version exit status")
    check(re.search(r"\d+\.\d+", out), "--version output %r" % out)
    rc, out, err = run_apigw(["--help"])
    eq(rc, 0, "--help exit status")
    for opt in ("--config", "--listen", "--workers", "--check-config"):
        check(opt in out, "--help does not mention %s: %r" % (opt, out))


# ---- live reload ----------------------------------------------------------------

def write_with_new_mtime(path, text):
    """Rewrites path with an mtime at least 2 s after the previous one, so
    that a change is visible even to a check with one-second resolution."""
    old = os.stat(path).st_mtime
    with open(path, "w") as f:
        f.write(text)
    t = max(time.time(), old + 2)
    os.utime(path, (t, t))


def cfg_with(c, extra_routes):
    return h.config_text(h.base_config(c.redis, [{"prefix": "/api", "backend": c.b1.url}]
                                       + extra_routes))


@test
def responder_reloads_changed_config(c):
    path = c.td.join("reload.conf")
    with open(path, "w") as f:
        f.write(cfg_with(c, []))
    t = time.time() - 10
    os.utime(path, (t, t))
    lt = h.Lighttpd(c.td, config=path, max_procs=2, name="lighttpd-reload")
    pids = lt.worker_pids()
    expect_status(h.request(lt.port, "GET", "/api/x"), 200, "initial route")
    expect_problem(h.request(lt.port, "GET", "/new/x"), 404, "route not yet configured")

    write_with_new_mtime(path, cfg_with(c, [{"prefix": "/new", "backend": c.b1.url}]))

    def all_ok(p, n=6):
        return all(h.request(lt.port, "GET", p).status == 200 for _ in range(n))
    h.wait_for(lambda: all_ok("/new/x"), timeout=5, interval=0.2,
               what="the added route to work in every process (%s)" % lt.log_tail())

    # an invalid file is logged and the old config stays in force
    write_with_new_mtime(path, 'redis = { url = "unix:///x.sock"; };\nroutes = ( { prefix = 7; } );\n')
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        expect_status(h.request(lt.port, "GET", "/new/x"), 200, "old config after an invalid reload")
        expect_status(h.request(lt.port, "GET", "/api/x"), 200, "old config after an invalid reload")
        time.sleep(0.1)
    eq(lt.worker_pids(), pids, "apigw processes after an invalid config (none should die)")
    check(re.search(r"reload\.conf:2: ", lt.log_text()),
          "the invalid config was not logged with file:line: %s" % lt.log_tail())

    # and a valid file after that is picked up again
    write_with_new_mtime(path, cfg_with(c, [{"prefix": "/newer", "backend": c.b1.url}]))
    h.wait_for(lambda: all_ok("/newer/x"), timeout=5, interval=0.2, what="the /newer route")
    h.wait_for(lambda: all(h.request(lt.port, "GET", "/new/x").status == 404 for _ in range(6)),
               timeout=5, interval=0.2, what="the removed /new route to give 404")
    eq(lt.worker_pids(), pids, "apigw processes after reloads (reload happens in place)")


if __name__ == "__main__":
    h.main(setup)
