#!/bin/sh
# make fuzz: runs every libFuzzer target for FUZZ_SECONDS (30 by default)
# from its seed corpus, one after the other.
#
# libFuzzer works on a copy of the seeds in a temporary directory (it
# adds the inputs it finds to its first corpus directory).  On a failure
# the input that failed is kept, under FUZZ_ARTIFACTS (default
# $top_builddir/fuzz-artifacts), and its path printed: add it to
# tests/fuzz/corpus/<target>/ once the bug is fixed.
#
# Needs top_srcdir, top_builddir, FUZZ_TARGETS (set by make fuzz).
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
top_srcdir=$(cd "$top_srcdir" && pwd)
: "${top_builddir:=$(pwd)}"
top_builddir=$(cd "$top_builddir" && pwd)
: "${FUZZ_SECONDS:=30}"
: "${FUZZ_TARGETS:=normalize config router request hdrs cache_policy ratelimit}"
: "${FUZZ_ARTIFACTS:=$top_builddir/fuzz-artifacts}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/apigw-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
mkdir -p "$FUZZ_ARTIFACTS"

failed=
for t in $FUZZ_TARGETS; do
	fuzzer=$top_builddir/tests/fuzz/fuzz_$t
	if [ ! -x "$fuzzer" ]; then
		echo "fuzz.sh: $fuzzer not built (configure CC=clang --enable-fuzzing)" >&2
		exit 1
	fi
	mkdir "$tmp/$t"
	cp "$top_srcdir/tests/fuzz/corpus/$t"/* "$tmp/$t/"
	start=$(date +%s)
	# TMPDIR: the config target writes a file per input there.
	if TMPDIR=$tmp "$fuzzer" -max_total_time="$FUZZ_SECONDS" -max_len=4096 \
	    -timeout=10 -print_final_stats=1 \
	    -artifact_prefix="$FUZZ_ARTIFACTS/$t-" "$tmp/$t" \
	    >"$tmp/$t.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
		echo "fuzz.sh: fuzz_$t: ok, ${runs:-?} runs in $(($(date +%s) - start)) s"
	else
		tail -40 "$tmp/$t.log" >&2
		echo "fuzz.sh: fuzz_$t FAILED; input kept in $FUZZ_ARTIFACTS/$t-*" >&2
		failed="$failed $t"
	fi
done
[ -z "$failed" ] || { echo "fuzz.sh: failed:$failed" >&2; exit 1; }
exit 0
