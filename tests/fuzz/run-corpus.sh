#!/bin/sh
# Replays the fuzz seed corpora (an automake TEST).
#
# Always: each target's corpus, tests/fuzz/corpus/<t>/, through
# tests/fuzz/run_<t>, the target linked with a plain main()
# (standalone.c), so this runs with any compiler and under the
# sanitizers of the build.  When the tree was configured with
# --enable-fuzzing (clang), also a short real libFuzzer run of each
# fuzz_<t> from its seeds (FUZZ_RUNS inputs, 2000 by default; the config
# target, which writes a file per input, only replays its seeds).
# libFuzzer adds new inputs to its first corpus directory, so it works on
# a copy in a temporary directory, never on the source tree.
#
# Needs top_srcdir and top_builddir (set by TESTS_ENVIRONMENT; defaults
# allow running it by hand from the build directory).
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
top_srcdir=$(cd "$top_srcdir" && pwd)
: "${top_builddir:=$(pwd)}"
top_builddir=$(cd "$top_builddir" && pwd)
: "${FUZZ_RUNS:=2000}"

targets="normalize config router request hdrs cache_policy ratelimit"
corpus=$top_srcdir/tests/fuzz/corpus

tmp=
cleanup() {
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# Prints what libFuzzer saved in $tmp before the directory goes.
show_artifacts() {
	for f in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* "$tmp"/oom-*; do
		if [ -f "$f" ]; then
			echo "run-corpus.sh: failing input $f:" >&2
			od -c "$f" | head -20 >&2
		fi
	done
}

for t in $targets; do
	runner=$top_builddir/tests/fuzz/run_$t
	if [ ! -x "$runner" ]; then
		echo "run-corpus.sh: $runner not built" >&2
		exit 1
	fi
	"$runner" "$corpus/$t"
done

for t in $targets; do
	fuzzer=$top_builddir/tests/fuzz/fuzz_$t
	[ -x "$fuzzer" ] || continue
	[ -n "$tmp" ] || tmp=$(mktemp -d "${TMPDIR:-/tmp}/apigw-fuzz.XXXXXX")
	if [ "$t" = config ]; then
		# Given files rather than a directory, libFuzzer runs each once.
		if ! (cd "$tmp" && "$fuzzer" -artifact_prefix="$tmp/" \
		    "$corpus/$t"/*) 2>"$tmp/$t.log"; then
			tail -40 "$tmp/$t.log" >&2
			show_artifacts
			exit 1
		fi
		echo "run-corpus.sh: fuzz_$t: seeds ok"
		continue
	fi
	mkdir "$tmp/$t"
	cp "$corpus/$t"/* "$tmp/$t/"
	if ! "$fuzzer" -runs="$FUZZ_RUNS" -max_len=4096 \
	    -artifact_prefix="$tmp/" "$tmp/$t" 2>"$tmp/$t.log"; then
		tail -40 "$tmp/$t.log" >&2
		show_artifacts
		exit 1
	fi
	echo "run-corpus.sh: fuzz_$t: $FUZZ_RUNS runs ok"
done

exit 0
