#!/bin/sh
# check-deb.sh -- the Debian packages, end to end (make check-deb).
#
#   1. build apigw and apigw-dev with dpkg-buildpackage in a copy of the
#      source tree (the work tree stays as it is);
#   2. lintian: any error fails;
#   3. install them with apt-get (a policy-rc.d that exits 101 keeps every
#      service from starting meanwhile);
#   4. check the installed files: binaries, --version, --check-config on
#      /etc/apigw/apigw.conf, conffiles, the unit (installed, not enabled),
#      logrotate, the web server snippets and their paths;
#   5. serve one request: a private lighttpd (127.0.0.1, free port) with
#      the installed lighttpd snippet, a private redis-server and a small
#      Python backend, and a 200 from the backend through apigw;
#   6. apt-get purge, and check that everything is gone.
#
# Needs root (or sudo), apt, and the packages debhelper, dh-autoreconf,
# lintian, fakeroot, build-essential, the -dev libraries of debian/control,
# redis-server, lighttpd, python3 and curl.  Refuses to run while apigw is
# installed already, since it purges the package at the end.  Processes it
# starts are stopped by their PIDs.
set -eu

top=$(cd "${top_srcdir:-$(dirname "$0")/../..}" && pwd)
checks=0
work=
run=
installed=
created_policy=
lighttpd_pid=
redis_pid=
backend_pid=

say() { echo "check-deb: $*"; }
ok() { checks=$((checks + 1)); say "ok: $*"; }
die() { echo "check-deb: FAIL: $*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo "$@"
	else die "need root or sudo to run: $*"; fi
}

# stop PID: TERM, then wait up to 5 s for it to go.
stop() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1; i=$((i + 1))
	done
}

stop_servers() {
	# lighttpd stops the apigw processes it spawned.
	stop "$lighttpd_pid"; lighttpd_pid=
	stop "$redis_pid"; redis_pid=
	stop "$backend_pid"; backend_pid=
}

cleanup() {
	rc=$?
	set +e
	stop_servers
	if [ -n "$installed" ]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq apigw apigw-dev >/dev/null 2>&1
	fi
	[ -n "$created_policy" ] && as_root rm -f /usr/sbin/policy-rc.d
	if [ $rc -ne 0 ] && [ -n "$work" ]; then
		for log in "$run"/lighttpd-error.log "$run"/redis.log "$run"/backend.log; do
			[ -s "$log" ] || continue
			echo "---- $log (last lines)"; tail -40 "$log"
		done
		say "failed; files kept in $work"
	elif [ -n "$work" ]; then
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for tool in dpkg-buildpackage dh dh_autoreconf lintian fakeroot apt-get redis-server lighttpd python3 curl; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found (apt-get install debhelper dh-autoreconf lintian fakeroot build-essential redis-server lighttpd python3 curl)"
done
for p in apigw apigw-dev; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		die "$p is installed already and this check purges it: remove it first (apt-get purge $p)"
	fi
done

# The package's version follows configure.ac's.
upstream=$(sed -n 's/^AC_INIT(\[apigw\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
[ "${version%-*}" = "$upstream" ] ||
	die "debian/changelog has $version, configure.ac $upstream"
ok "version $version (configure.ac $upstream)"

# Readable by apt's unprivileged _apt user, which reads local .deb files.
work=$(mktemp -d /tmp/apigw-check-deb.XXXXXX)
chmod 755 "$work"
src="$work/apigw-$upstream"
run="$work/run"
mkdir "$src" "$run"

## 1. build, from a copy: the tracked and new (not ignored) files of a git
## work tree, or the whole tree less build directories otherwise.
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z -c -o --exclude-standard |
		tar -c --null --ignore-failed-read -T - -f -) | tar -x -C "$src" -f -
else
	(cd "$top" && tar -c --exclude='./build*' --exclude=./.git \
		--exclude=./autom4te.cache -f - .) | tar -x -C "$src" -f -
fi
say "building in $src (log: $work/build.log)"
(cd "$src" && dpkg-buildpackage -us -uc -b -Jauto) > "$work/build.log" 2>&1 ||
	{ tail -60 "$work/build.log"; die "dpkg-buildpackage failed"; }
arch=$(dpkg --print-architecture)
deb="$work/apigw_${version}_$arch.deb"
devdeb="$work/apigw-dev_${version}_all.deb"
changes="$work/apigw_${version}_$arch.changes"
for f in "$deb" "$devdeb" "$changes"; do
	[ -f "$f" ] || die "missing $f"
done
# What the package ships in /usr/bin: every program of bin_PROGRAMS.
bins=$(dpkg-deb -c "$deb" | awk '$6 ~ /^\.\/usr\/bin\/./ { sub(/^\./, "", $6); print $6 }')
programs=$(sed -n 's/^bin_PROGRAMS *= *//p' "$top/Makefile.am")
[ -n "$programs" ] || die "no bin_PROGRAMS in Makefile.am"
for b in $programs; do
	echo "$bins" | grep -qx "/usr/bin/$b" || die "$b (bin_PROGRAMS) is not in the package"
	dpkg-deb -c "$deb" | grep -q "/usr/share/man/man[18]/$b\.[18]\.gz$" ||
		die "$b has no man page in the package"
done
ok "built $(basename "$deb") and $(basename "$devdeb"); binaries: $(echo "$bins" | tr "\n" " ")"

## 2. lintian
if ! lintian --fail-on error "$changes" > "$work/lintian.log" 2>&1; then
	cat "$work/lintian.log"
	die "lintian reports errors"
fi
sed 's/^/  lintian: /' "$work/lintian.log"
ok "lintian: no errors"

## 3. install
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
	as_root chmod 755 /usr/sbin/policy-rc.d
	created_policy=1
fi
installed=1
(cd "$work" && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	--no-install-recommends "./$(basename "$deb")" "./$(basename "$devdeb")") \
	> "$work/apt-install.log" 2>&1 ||
	{ cat "$work/apt-install.log"; die "apt-get install failed"; }
if [ -n "$created_policy" ]; then
	as_root rm -f /usr/sbin/policy-rc.d
	created_policy=
fi
ok "installed"

## 4. the installed files
for b in $bins; do
	[ -x "$b" ] || die "$b is not installed"
done
out=$(/usr/bin/apigw --version)
[ "$out" = "apigw $upstream" ] || die "apigw --version said '$out'"
ok "apigw --version: $out"
out=$(/usr/bin/apigw-keys --version)
case "$out" in *"$upstream"*) ;; *) die "apigw-keys --version said '$out'" ;; esac
ok "apigw-keys --version: $out"

# Without --config the compiled-in default is /etc/apigw/apigw.conf.
/usr/bin/apigw --check-config || die "apigw --check-config (default path) failed"
/usr/bin/apigw --check-config --config /etc/apigw/apigw.conf ||
	die "apigw --check-config --config /etc/apigw/apigw.conf failed"
ok "apigw --check-config on /etc/apigw/apigw.conf"

dpkg-query -W -f='${Conffiles}\n' apigw | grep -q '^ /etc/apigw/apigw.conf ' ||
	die "/etc/apigw/apigw.conf is not a conffile"
ok "/etc/apigw/apigw.conf is a conffile"

unit=
for u in /lib/systemd/system/apigw.service /usr/lib/systemd/system/apigw.service; do
	[ -f "$u" ] && unit=$u
done
[ -n "$unit" ] || die "the systemd unit is not installed"
grep -qx 'ExecStartPre=/usr/bin/apigw --check-config --config /etc/apigw/apigw.conf' "$unit" ||
	die "$unit does not check the config before starting"
grep -q '^ExecStart=/usr/bin/apigw --config /etc/apigw/apigw.conf ' "$unit" ||
	die "$unit does not run /usr/bin/apigw with /etc/apigw/apigw.conf"
if ls /etc/systemd/system/*.wants/apigw.service >/dev/null 2>&1; then
	die "apigw.service was enabled by the installation"
fi
ok "unit $unit installed, not enabled"

owner=$(stat -c %U "/var/log/apigw")
[ "$owner" = www-data ] || die "/var/log/apigw belongs to $owner"
grep -q '^/var/log/apigw/\*\.log' /etc/logrotate.d/apigw || die "no logrotate entry"
if command -v logrotate >/dev/null 2>&1; then
	logrotate -d /etc/logrotate.d/apigw > "$work/logrotate.log" 2>&1 ||
		{ cat "$work/logrotate.log"; die "logrotate rejects /etc/logrotate.d/apigw"; }
fi
ok "/var/log/apigw (www-data) and /etc/logrotate.d/apigw"

# The snippets' active (uncommented) lines name the packaged paths only.
apache_snip=/etc/apache2/conf-available/apigw.conf
lighttpd_snip=/etc/lighttpd/conf-available/50-apigw.conf
nginx_snip=/etc/nginx/sites-available/apigw
for f in $apache_snip $lighttpd_snip $nginx_snip; do
	[ -f "$f" ] || die "$f is not installed"
	if grep -v '^[[:space:]]*#' "$f" | grep -q '/usr/local'; then
		die "$f names /usr/local"
	fi
done
for f in $apache_snip $lighttpd_snip; do
	grep -v '^[[:space:]]*#' "$f" | grep -q '/usr/bin/apigw --config /etc/apigw/apigw.conf' ||
		die "$f does not run /usr/bin/apigw --config /etc/apigw/apigw.conf"
done
grep -q 'unix:/run/apigw/apigw.sock' $nginx_snip || die "$nginx_snip does not use the unit's socket"
ok "snippets name /usr/bin/apigw and /etc/apigw/apigw.conf"

# The distribution's enabling commands, when the web servers are there,
# undone right away.
if command -v a2enconf >/dev/null 2>&1; then
	as_root a2enconf -q apigw >/dev/null
	[ -L /etc/apache2/conf-enabled/apigw.conf ] || die "a2enconf apigw did not enable it"
	as_root apache2ctl -t > "$work/apache2ctl.log" 2>&1 ||
		{ cat "$work/apache2ctl.log"; as_root a2disconf -q apigw; die "apache2ctl -t fails with apigw enabled"; }
	as_root a2disconf -q apigw >/dev/null
	ok "a2enconf apigw (apache2ctl -t passes)"
fi
if command -v lighty-enable-mod >/dev/null 2>&1; then
	as_root lighty-enable-mod apigw > "$work/lighty.log" 2>&1 || true
	[ -L /etc/lighttpd/conf-enabled/50-apigw.conf ] ||
		{ cat "$work/lighty.log"; die "lighty-enable-mod apigw did not enable it"; }
	as_root lighttpd -tt -f /etc/lighttpd/lighttpd.conf > "$work/lighttpd-t.log" 2>&1 ||
		{ cat "$work/lighttpd-t.log"; as_root lighty-disable-mod apigw >/dev/null; die "lighttpd -tt fails with apigw enabled"; }
	as_root lighty-disable-mod apigw > /dev/null
	ok "lighty-enable-mod apigw (lighttpd -tt passes)"
fi
if command -v nginx >/dev/null 2>&1; then
	mkdir -p "$run/nginx/logs"
	printf 'pid %s/nginx/nginx.pid;\nerror_log %s/nginx/error.log;\nevents {}\nhttp {\n\taccess_log off;\n\tinclude %s;\n}\n' \
		"$run" "$run" "$nginx_snip" > "$run/nginx/nginx.conf"
	as_root nginx -t -q -p "$run/nginx" -e "$run/nginx/error.log" -c "$run/nginx/nginx.conf" ||
		die "nginx -t rejects $nginx_snip"
	ok "nginx -t accepts $nginx_snip"
fi

[ -f /usr/include/apigw/plugin.h ] || die "apigw-dev: no /usr/include/apigw/plugin.h"
ok "apigw-dev: /usr/include/apigw/plugin.h"

## 5. one request through lighttpd with the installed snippet
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
	--daemonize yes --pidfile "$run/redis.pid" --logfile "$run/redis.log" --dir "$run"

cat > "$run/backend.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"check-deb backend: " + self.path.encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write(fmt % args + "\n")
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
PY
python3 "$run/backend.py" "$run/backend.port" > "$run/backend.log" 2>&1 &
backend_pid=$!
i=0
until [ -s "$run/backend.port" ]; do
	i=$((i + 1)); [ $i -lt 50 ] || die "the backend did not start"
	sleep 0.1
done
backend_port=$(cat "$run/backend.port")
i=0
until [ -s "$run/redis.pid" ]; do
	i=$((i + 1)); [ $i -lt 50 ] || die "redis-server did not start"
	sleep 0.1
done
redis_pid=$(cat "$run/redis.pid")

cat > "$run/apigw.conf" <<EOF
redis = { url = "redis://127.0.0.1:$redis_port/0"; };
log = { access = "$run/access.log"; };
routes = ( { prefix = "/"; backend = "http://127.0.0.1:$backend_port"; } );
EOF
/usr/bin/apigw --check-config --config "$run/apigw.conf" || die "the test config is refused"

# The installed snippet with the two paths that differ here: the config
# (private Redis and backend) and the socket (in the temporary directory).
sed -e "s|/usr/bin/apigw --config /etc/apigw/apigw.conf|/usr/bin/apigw --config $run/apigw.conf|" \
	-e "s|\"/run/lighttpd/apigw.sock\"|\"$run/apigw.sock\"|" \
	"$lighttpd_snip" > "$run/50-apigw.conf"
if ! grep -q "\"/usr/bin/apigw --config $run/apigw.conf\"" "$run/50-apigw.conf" ||
	! grep -q "\"$run/apigw.sock\"" "$run/50-apigw.conf"; then
	die "the installed lighttpd snippet has no bin-path or socket to point at the test setup"
fi
lighttpd_port=$(free_port)
cat > "$run/lighttpd.conf" <<EOF
server.bind = "127.0.0.1"
server.port = $lighttpd_port
server.document-root = "$run"
server.pid-file = "$run/lighttpd.pid"
server.errorlog = "$run/lighttpd-error.log"
include "$run/50-apigw.conf"
EOF
lighttpd -f "$run/lighttpd.conf" || die "lighttpd did not start"
lighttpd_pid=$(cat "$run/lighttpd.pid")

url="http://127.0.0.1:$lighttpd_port/check-deb/hello"
i=0
while :; do
	code=$(curl -s -o "$run/body" -D "$run/head" -w '%{http_code}' "$url" || true)
	[ "$code" = 200 ] && break
	i=$((i + 1)); [ $i -lt 50 ] || die "GET $url: status $code, expected 200"
	sleep 0.1
done
grep -q '^check-deb backend: /check-deb/hello$' "$run/body" ||
	die "GET $url: unexpected body: $(cat "$run/body")"
grep -qi '^x-request-id:' "$run/head" || die "GET $url: no X-Request-ID from apigw"
grep -q '"GET /check-deb/hello[ "]' "$run/access.log" ||
	die "apigw's access log has no line for the request"
ok "GET $url: 200 from the backend through lighttpd and apigw"
stop_servers

## 6. purge
as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq apigw apigw-dev \
	> "$work/apt-purge.log" 2>&1 ||
	{ cat "$work/apt-purge.log"; die "apt-get purge failed"; }
installed=
for p in apigw apigw-dev; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed\|config-files'; then
		die "$p is still known to dpkg after purge"
	fi
done
for f in $bins /etc/apigw /lib/systemd/system/apigw.service \
	/usr/lib/systemd/system/apigw.service /etc/logrotate.d/apigw /var/log/apigw \
	$apache_snip $lighttpd_snip $nginx_snip /usr/include/apigw \
	/usr/share/man/man8/apigw.8.gz /usr/share/doc/apigw; do
	[ ! -e "$f" ] || die "$f is still there after purge"
done
ok "purged: binaries, /etc/apigw, the unit, snippets and logs are gone"

say "all $checks checks passed"
