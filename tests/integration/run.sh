#!/bin/sh
# Runs every tests/integration/test_*.py against real redis-server, lighttpd,
# nginx and Apache (mod_fcgid).  Called by `make check` (which sets top_srcdir,
# top_builddir and PYTHON3); also runnable by hand from anywhere:
#   top_builddir=/path/to/build sh tests/integration/run.sh [test_x.py ...]
# A missing tool is a failure, never a skip.

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${PYTHON3:=python3}"
PYTHONDONTWRITEBYTECODE=1
export top_srcdir top_builddir PYTHON3 PYTHONDONTWRITEBYTECODE

missing=
need() { # need PROGRAM DEBIAN-PACKAGE
	if command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; then
		:
	else
		echo "integration: $1 not found (install the Debian package $2)" >&2
		missing=yes
	fi
}
need "$PYTHON3" python3
need redis-server redis-server
need lighttpd lighttpd
need nginx nginx-light
if [ ! -x /usr/sbin/apache2 ]; then
	echo "integration: /usr/sbin/apache2 not found (install the Debian package apache2)" >&2
	missing=yes
fi
if [ ! -f /usr/lib/apache2/modules/mod_fcgid.so ]; then
	echo "integration: mod_fcgid not found (install the Debian package libapache2-mod-fcgid)" >&2
	missing=yes
fi
if [ ! -x "$top_builddir/apigw" ] && [ -z "${APIGW:-}" ]; then
	echo "integration: $top_builddir/apigw not built" >&2
	missing=yes
fi
if [ -n "$missing" ]; then
	echo "FAIL: integration tests cannot run: tools missing (see above)"
	exit 1
fi

if [ $# -gt 0 ]; then
	files=$*
else
	files=$(ls "$here"/test_*.py)
fi

failed=0
passed=0
failed_files=
start=$(date +%s)
for f in $files; do
	case $f in /*) ;; *) [ -f "$f" ] || f=$here/$f ;; esac
	name=$(basename "$f")
	echo "# $name"
	"$PYTHON3" "$f"
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_files="$failed_files $name"
	fi
done
end=$(date +%s)

echo "# integration: $passed file(s) passed, $failed failed in $((end - start))s${failed_files:+ (failed:$failed_files)}"
[ "$failed" -eq 0 ]
