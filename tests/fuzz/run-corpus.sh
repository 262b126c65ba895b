#!/bin/sh
# Replays the fuzz seed corpora (an automake TEST).
#
# Always: the normalize corpus through tests/fuzz/run_normalize, the
# target linked with a plain main() (standalone.c), so this runs with any
# compiler.  When the tree was configured with --enable-fuzzing (clang),
# also a short real libFuzzer run of fuzz_normalize, and fuzz_config over
# its seeds.  libFuzzer adds new inputs to its first corpus directory, so
# it works on a copy in a temporary directory, never on the source tree.
#
# Needs top_srcdir and top_builddir (set by TESTS_ENVIRONMENT; defaults
# allow running it by hand from the build directory).
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"

corpus=$top_srcdir/tests/fuzz/corpus
runner=$top_builddir/tests/fuzz/run_normalize
fuzzer=$top_builddir/tests/fuzz/fuzz_normalize
config_fuzzer=$top_builddir/tests/fuzz/fuzz_config

tmp=
cleanup() {
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if [ ! -x "$runner" ]; then
	echo "run-corpus.sh: $runner not built" >&2
	exit 1
fi
"$runner" "$corpus/normalize"

if [ -x "$fuzzer" ] || [ -x "$config_fuzzer" ]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/apigw-fuzz.XXXXXX")
fi

if [ -x "$fuzzer" ]; then
	mkdir "$tmp/normalize"
	cp "$corpus"/normalize/* "$tmp/normalize/"
	# Crash files go to the temp dir too; print them before it goes.
	if ! "$fuzzer" -runs=20000 -max_len=4096 -artifact_prefix="$tmp/" \
	    "$tmp/normalize"; then
		for f in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* \
		    "$tmp"/oom-*; do
			if [ -f "$f" ]; then
				echo "run-corpus.sh: failing input $f:" >&2
				od -c "$f" | head -20 >&2
			fi
		done
		exit 1
	fi
fi

if [ -x "$config_fuzzer" ]; then
	# Given files rather than a directory, libFuzzer runs each once.
	(cd "$tmp" && "$config_fuzzer" -artifact_prefix="$tmp/" \
	    "$corpus"/config/*)
fi

exit 0
