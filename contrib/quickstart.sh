#!/bin/sh
# quickstart.sh -- the two commands of the README.
#
#   contrib/quickstart.sh serve   install what is missing, build, and run the
#                                 gateway behind lighttpd on 127.0.0.1:8080
#                                 with a private Redis and a sample backend
#   contrib/quickstart.sh check   install what is missing, build, and run the
#                                 whole test suite (normal and ASan/UBSan builds)
#
# Works on a fresh Debian 12 / Ubuntu machine as root or with sudo.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}

# The last line is for make check-deb (the Debian packages).
PACKAGES="build-essential autoconf automake libtool pkg-config
libfcgi-dev libhiredis-dev libcurl4-openssl-dev libjson-c-dev libconfig-dev
libssl-dev libcmocka-dev redis-server lighttpd apache2 libapache2-mod-fcgid
python3 curl wrk clang clang-format clang-tidy cppcheck valgrind prometheus
nginx-light debhelper dh-autoreconf lintian fakeroot chromium"

die() { echo "quickstart: $*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo "$@"
	else die "need root or sudo to run: $*"; fi
}

install_packages() {
	missing=
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "quickstart: installing:$missing"
	# Keep the distribution's own redis/lighttpd/apache services from
	# starting: apigw runs private instances.
	created_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
		as_root chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
	[ -n "$created_policy" ] && as_root rm -f /usr/sbin/policy-rc.d
	return 0
}

# build DIR [configure args...]: out-of-tree build in $top/DIR
build() {
	dir=$1; shift
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
	mkdir -p "$top/$dir"
	cd "$top/$dir"
	[ -f Makefile ] || "$top/configure" "$@"
	make -j"$(nproc)"
	cd "$top"
}

serve() {
	install_packages
	build build
	run=$(mktemp -d /tmp/apigw-quickstart.XXXXXX)
	chmod 755 "$run"
	pids=
	cleanup() {
		for p in $pids; do kill "$p" 2>/dev/null || true; done
		[ -f "$run/lighttpd.pid" ] && kill "$(cat "$run/lighttpd.pid")" 2>/dev/null || true
		[ -f "$run/redis.pid" ] && kill "$(cat "$run/redis.pid")" 2>/dev/null || true
		sleep 0.5
		rm -rf "$run"
	}
	trap cleanup EXIT INT TERM

	conf="$top/conf/apigw.conf"
	# A private Redis where conf/apigw.conf expects it (127.0.0.1:6379);
	# if that port is taken, a copy of the config points at another port.
	redis_port=6379
	if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", 6379), 1)' 2>/dev/null; then
		redis_port=6390
		sed "s|redis://127.0.0.1:6379/0|redis://127.0.0.1:$redis_port/0|" "$conf" > "$run/apigw.conf"
		conf="$run/apigw.conf"
		echo "quickstart: port 6379 is busy; private Redis on $redis_port ($conf)"
	fi
	redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
		--daemonize yes --pidfile "$run/redis.pid" --logfile "$run/redis.log" --dir "$run"

	python3 "$top/contrib/backend/sample_backend.py" --port 9000 > "$run/backend.log" 2>&1 &
	pids="$pids $!"

	sed -e "s|@APIGW@|$top/build/apigw|g" -e "s|@CONFIG@|$conf|g" \
		-e "s|@RUN@|$run|g" -e "s|@PORT@|8080|g" \
		"$top/contrib/lighttpd/quickstart.conf.in" > "$run/lighttpd.conf"
	lighttpd -f "$run/lighttpd.conf"
	i=0
	until curl -fs -o /dev/null http://127.0.0.1:8080/_health; do
		i=$((i + 1)); [ $i -lt 50 ] || die "the gateway did not come up; see $run/*.log"
		sleep 0.1
	done
	key=$("$top/build/apigw-keys" --config "$conf" create "quickstart demo" --requests-per-minute 30 2>/dev/null)
	cat <<MSG

apigw is running on http://127.0.0.1:8080 (lighttpd + apigw, Redis on
127.0.0.1:$redis_port, sample backend on 127.0.0.1:9000, config $conf).

  curl -i http://127.0.0.1:8080/_health
  curl -i http://127.0.0.1:8080/api/public/hello
  curl -i http://127.0.0.1:8080/api/users/1                       # 401: needs a key
  curl -i -H 'X-API-Key: $key' http://127.0.0.1:8080/api/users/1
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8080/api/public/hello; done

Manage keys:  $top/build/apigw-keys --config $conf list
Logs: $run   Press Ctrl-C to stop.
MSG
	while kill -0 "$(cat "$run/lighttpd.pid")" 2>/dev/null; do sleep 1; done
}

# After a failed `make check`: the end of the log, then every failed
# test's own lines last, where a CI excerpt of the output's tail shows them.
failures() {
	tail -100 "$1/test-suite.log" 2>/dev/null
	echo "quickstart: failed tests in $1:"
	grep -h -A15 -e '^FAIL - ' -e '^not ok' -e '\[  FAILED  \]' "$1"/tests/*/*.log 2>/dev/null | head -150
}

check() {
	install_packages
	build build
	(cd build && make check) || { failures build; exit 1; }
	build build-san --enable-sanitizers --enable-debug
	(cd build-san && make check) || { failures build-san; exit 1; }
	# libFuzzer targets (clang): the seeds replayed, then each target
	# fuzzed for FUZZ_SECONDS (20 s each by default, about 2.5 minutes).
	build build-fuzz CC=clang --enable-fuzzing
	(cd build-fuzz &&
		for t in normalize config router request hdrs cache_policy ratelimit; do
			make "tests/fuzz/run_$t" || exit 1
		done &&
		top_srcdir="$top" top_builddir="$top/build-fuzz" sh "$top/tests/fuzz/run-corpus.sh" &&
		make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}") ||
		{ echo "quickstart: fuzz run failed" >&2; exit 1; }
	# One closing line for CI: automake tests of both builds.
	pass=0; fail=0
	for log in build/test-suite.log build-san/test-suite.log; do
		p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
		f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
		pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
	done
	echo "quickstart: all tests passed (normal and sanitizer builds)"
	echo "$pass passed, $fail failed"
}

case "$cmd" in
serve) serve ;;
check) check ;;
*) echo "usage: contrib/quickstart.sh serve|check" >&2; exit 1 ;;
esac
