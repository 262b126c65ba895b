#!/usr/bin/env python3
"""Plugins through lighttpd spawning 2 apigw processes:
the example contrib/plugins/require_authorization.c (built by `make check`
as tests/plugins/require_authorization.so), a probe plugin compiled here
for the host callbacks, and plugins that must be refused (missing file,
wrong ABI) at startup and on reload."""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, echo_header, expect_problem, expect_status, test  # noqa: E402

EXAMPLE = os.path.join(h.TOP_BUILDDIR, "tests", "plugins", "require_authorization.so")

# Exercises the host callbacks: reports what it saw and what set_header
# accepted in a request header the backend echoes.
PROBE_C = r"""
#include <stdio.h>
#include <apigw/plugin.h>

static const struct apigw_host *host;

static int
init(const struct apigw_host *h, const void *conf, void **state)
{
	long long n = 0;

	host = h;
	if (h->config_int(conf, "answer", &n) != 0 || n != 42) {
		h->log(3, "answer must be 42");
		return -1;
	}
	*state = NULL;
	return 0;
}

static enum apigw_plugin_result
on_request(void *state, struct apigw_req *req)
{
	char seen[512];
	const char *ua = host->header(req, "user-agent");

	if (host->header(req, "X-Probe") == NULL)
		return APIGW_CONTINUE;
	snprintf(seen, sizeof seen, "%s %s %s ua=%s crlf=%d badname=%d "
	    "host=%d cl=%d",
	    host->method(req), host->path(req), host->client_ip(req),
	    ua != NULL ? ua : "-",
	    host->set_header(req, "X-Evil", "a\r\nInjected: 1"),
	    host->set_header(req, "Bad Name", "x"),
	    host->set_header(req, "Host", "elsewhere"),
	    host->set_header(req, "content-length", "5"));
	host->set_header(req, "X-Probe-Seen", seen);
	host->set_header(req, "User-Agent", "");      /* removed */
	host->set_header(req, "X-Replace", "new");    /* replaced */
	host->add_response_header(req, "X-Probe-Response", "1");
	return APIGW_CONTINUE;
}

const struct apigw_plugin apigw_plugin = {
	.abi = APIGW_PLUGIN_ABI, .name = "probe", .init = init,
	.on_request = on_request,
};
"""

WRONG_ABI_C = r"""
struct fake { int abi; const char *name; };
const struct fake apigw_plugin = { 99, "from_the_future" };
"""


class Ctx:
    pass


def cc(td, name, source):
    """Compiles source into td/name.so with the system cc."""
    src = td.write(name + ".c", source)
    out = td.join(name + ".so")
    p = subprocess.run(["cc", "-shared", "-fPIC", "-I", os.path.join(h.TOP_SRCDIR, "include"),
                        "-o", out, src], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise h.HarnessError("cc %s failed:\n%s" % (src, p.stdout.decode(errors="replace")))
    return out


def plugin_config(c, plugins):
    return h.base_config(c.redis, [{"prefix": "/api", "backend": c.b.url}],
                         plugins=plugins or h.Raw("( )"))


def setup(td):
    c = Ctx()
    c.td = td
    if not os.path.exists(EXAMPLE):
        raise h.HarnessError("%s not built (make check builds it)" % EXAMPLE)
    c.probe = cc(td, "probe", PROBE_C)
    c.wrong_abi = cc(td, "wrong_abi", WRONG_ABI_C)
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    c.plugins = [{"path": EXAMPLE, "config": {"realm": "api"}},
                 {"path": c.probe, "config": {"answer": 42}}]
    c.config = h.write_gateway_config(td, plugin_config(c, c.plugins))
    c.lt = h.Lighttpd(td, config=c.config, max_procs=2)
    c.port = c.lt.port
    return c


@test
def missing_authorization_gets_plugin_401(c):
    r = h.request(c.port, "GET", "/api/echo?key=noauth")
    doc = expect_problem(r, 401, "no Authorization")
    eq(doc["error"], "missing authorization", "error field")
    eq(r.headers.get("WWW-Authenticate"), 'Bearer realm="api"', "challenge")
    eq(r.headers.get("X-Plugin"), "require_authorization", "on_response on the plugin's own 401")
    eq(r.headers.get("X-Request-ID"), doc["request_id"], "request id header and body agree")
    eq(c.b.calls("noauth"), 0, "backend calls without Authorization")
    # HEAD: same status and headers, no body
    r = h.request(c.port, "HEAD", "/api/echo?key=noauth")
    expect_status(r, 401, "HEAD without Authorization")
    eq(r.body, b"", "HEAD body")
    eq(c.b.calls("noauth"), 0, "backend calls without Authorization")


@test
def authorization_is_forwarded(c):
    r = h.request(c.port, "GET", "/api/echo?key=auth", headers={"Authorization": "Bearer t0k"})
    expect_status(r, 200, "with Authorization")
    eq(echo_header(r.json(), "Authorization"), "Bearer t0k", "Authorization at the backend")
    eq(r.headers.get("X-Plugin"), "require_authorization", "X-Plugin on a forwarded 200")
    check(r.headers.get("WWW-Authenticate") is None, "no challenge on a 200")
    eq(c.b.calls("auth"), 1, "backend calls with Authorization")


@test
def gateway_errors_pass_on_response(c):
    r = h.request(c.port, "GET", "/nowhere")
    expect_problem(r, 404, "no route")
    eq(r.headers.get("X-Plugin"), "require_authorization", "X-Plugin on a gateway 404")
    r = h.request(c.port, "GET", "/api/a%2Fb")
    expect_problem(r, 400, "bad path")
    eq(r.headers.get("X-Plugin"), "require_authorization", "X-Plugin on a gateway 400")


@test
def host_callbacks(c):
    r = h.request(c.port, "GET", "/api//a/./b?key=probe",
                  headers=[("Authorization", "Bearer x"), ("X-Probe", "1"),
                           ("User-Agent", "probe-ua"), ("X-Replace", "old1"),
                           ("X-Replace", "old2")])
    expect_status(r, 200, "probe request")
    echo = r.json()
    eq(echo_header(echo, "X-Probe-Seen"),
       "GET /api/a/b 127.0.0.1 ua=probe-ua crlf=-1 badname=-1 host=-1 cl=-1",
       "what the probe saw and which set_header calls it was refused")
    eq(echo_header(echo, "User-Agent"), None, "header removed by the plugin")
    eq(echo_header(echo, "X-Replace"), "new", "header replaced by the plugin (once)")
    eq(echo_header(echo, "X-Evil"), None, "refused header")
    check(echo_header(echo, "Injected") is None, "no header injection")
    check(echo_header(echo, "Host").startswith("127.0.0.1:"), "Host is the backend's")
    eq(r.headers.get("X-Probe-Response"), "1", "response header added in on_request")
    eq(r.headers.get("X-Plugin"), "require_authorization", "X-Plugin")


def log_text(td, name):
    d = td.join(name)
    return h.read_text(os.path.join(d, "error.log")) + h.read_text(os.path.join(d, "stderr.log"))


def refused_at_startup(c, name, plugin_path, expect_in_log):
    """A stack whose only plugin cannot load: no request is served as if
    the plugin were absent, and apigw's one-line error names the plugin."""
    cfg = h.write_gateway_config(c.td, plugin_config(c, [{"path": plugin_path}]), name + ".conf")
    try:
        # check=False: --check-config would refuse the file first.
        port = h.Lighttpd(c.td, config=cfg, max_procs=2, name=name, check=False).port
    except h.HarnessError:
        # Workers that exit at once may never be counted; lighttpd itself
        # runs (and is stopped by the temp dir's cleanup).
        conf = h.read_text(c.td.join(name, "lighttpd.conf"))
        port = int(conf.split("server.port = ")[1].split()[0])
    for _ in range(3):
        try:
            r = h.request(port, "GET", "/api/echo?key=" + name, timeout=10)
        except OSError:
            continue  # no answer at all is fine too
        check(500 <= r.status <= 599, "%s: request got %d, want 5xx" % (name, r.status))
    eq(c.b.calls(name), 0, "backend calls with a broken plugin")
    want = "plugins: %s: %s" % (plugin_path, expect_in_log)
    h.wait_for(lambda: want in log_text(c.td, name), timeout=10,
               what="log line %r in %s" % (want, name))
    line = [l for l in log_text(c.td, name).splitlines() if want in l][0]
    check(line.startswith("apigw: " + cfg + ":"), "error line names the config file: %r" % line)


@test
def missing_plugin_file_is_fatal(c):
    refused_at_startup(c, "lt-missing", c.td.join("no-such-plugin.so"), "cannot load")


@test
def wrong_abi_is_refused(c):
    refused_at_startup(c, "lt-abi", c.wrong_abi, "built for plugin ABI 99, this apigw needs ABI 1")


@test
def refused_config_is_fatal(c):
    refused_at_startup(c, "lt-init", c.probe, "plugin probe refused its configuration")
    check("plugin probe: answer must be 42" in log_text(c.td, "lt-init"),
          "the plugin's own log line")


def check_config(path):
    p = subprocess.run([h.apigw_bin(), "--check-config", "--config", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@test
def check_config_loads_plugins(c):
    # Like `nginx -t` with modules: each plugin is loaded, initialised and
    # unloaded, so a broken one is reported before a reload or a restart.
    rc, out, err = check_config(c.config)
    eq((rc, out, err), (0, "", ""), "--check-config with loadable plugins")
    not_elf = c.td.write("not-elf.so", "not a shared object\n")
    cases = [
        ("missing", [{"path": c.td.join("no-such-plugin.so")}], "cannot load: "),
        ("not-elf", [{"path": not_elf}], "cannot load: "),
        ("wrong-abi", [{"path": c.wrong_abi}], "built for plugin ABI 99, this apigw needs ABI 1"),
        ("refused", [{"path": EXAMPLE, "config": {"realm": "api"}},
                     {"path": c.probe, "config": {"answer": 41}}],
         "plugin probe refused its configuration"),
    ]
    for name, plugins, reason in cases:
        path = h.write_gateway_config(c.td, plugin_config(c, plugins), "check-%s.conf" % name)
        rc, out, err = check_config(path)
        eq(rc, 1, "--check-config exit status with a %s plugin (stderr %r)" % (name, err))
        eq(out, "", "--check-config stdout with a %s plugin" % name)
        bad = plugins[-1]["path"]
        # The line of the plugin's group: the "{" before its path.
        lines = h.read_text(path).splitlines()
        line = [i for i, l in enumerate(lines) if 'path = "%s"' % bad in l][0]
        want = "%s:%d: plugins: %s: %s" % (path, line, bad, reason)
        check(any(l.startswith(want) for l in err.splitlines()),
              "%s: want a line starting %r in %r" % (name, want, err))


def write_with_new_mtime(path, text):
    """Rewrites path with an mtime at least 2 s after the previous one."""
    old = os.stat(path).st_mtime
    with open(path, "w") as f:
        f.write(text)
    t = max(time.time(), old + 2)
    os.utime(path, (t, t))


@test
def reload_keeps_old_plugins_when_new_fail(c):
    # Runs last: it rewrites the main stack's config.
    pids = c.lt.worker_pids()
    bad = c.plugins + [{"path": c.wrong_abi}]
    write_with_new_mtime(c.config, h.config_text(plugin_config(c, bad)))
    time.sleep(1.1)  # the mtime check runs at most once a second
    for _ in range(6):
        r = h.request(c.port, "GET", "/api/echo?key=reload")
        expect_problem(r, 401, "old plugins still answer")
    eq(c.b.calls("reload"), 0, "backend calls")
    h.wait_for(lambda: "reload: %s" % c.config in c.lt.log_text(), timeout=5,
               what="the reload error")
    check("plugins: %s: built for plugin ABI 99" % c.wrong_abi in c.lt.log_text(),
          "reload error names the plugin: %s" % c.lt.log_tail())
    eq(sorted(c.lt.worker_pids()), sorted(pids), "workers kept running")

    # A valid new list replaces the old one: no plugins, no 401.
    write_with_new_mtime(c.config, h.config_text(plugin_config(c, [])))

    def plugin_gone():
        return all(h.request(c.port, "GET", "/api/echo?key=gone").status == 200
                   for _ in range(6))
    h.wait_for(plugin_gone, timeout=10, what="every worker to drop the plugins")
    r = h.request(c.port, "GET", "/api/echo")
    check(r.headers.get("X-Plugin") is None, "X-Plugin after the plugins were removed")


if __name__ == "__main__":
    h.main(setup)
