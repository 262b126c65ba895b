/*
 * Fuzz target for config_load(): config_load() reads a file, so each input
 * is written to a temporary file and loaded.  Whatever the input, loading
 * must either return a config that config_free() releases or NULL with at
 * least one error message, and leak nothing either way.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/*
 * libconfig 1.5 (Debian's libconfig9) leaks the text of a string token
 * that arrives where the grammar expects none ("a = 1 \"x\";", or an
 * empty "" there): its bison parser has no destructor for it.  That is the
 * library's bug, a few bytes per rejected file, and would otherwise stop
 * every fuzzing run within seconds.  The suppressions name only the
 * scanner's string allocations, so a config tree that config.c forgets to
 * destroy (its setting nodes come from the parser) is still reported.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static void
fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, strerror(errno));
	abort();
}

/*
 * Writes the input to a new temporary file (in $TMPDIR, else /tmp) and
 * stores its name in path.  A fresh file per input, removed right after
 * the load, leaves nothing behind when the fuzzer stops between inputs
 * (libFuzzer does not always run atexit handlers).
 */
static void
fuzz_write(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
	const char *tmp;
	ssize_t n;
	int fd;

	tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	n = snprintf(path, pathlen, "%s/apigw-fuzz-config-XXXXXX", tmp);
	if (n < 0 || (size_t)n >= pathlen) {
		errno = ENAMETOOLONG;
		fuzz_die("TMPDIR");
	}
	fd = mkstemp(path);
	if (fd == -1)
		fuzz_die("mkstemp");
	while (size > 0) {
		n = write(fd, data, size);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			fuzz_die("write");
		data += n;
		size -= (size_t)n;
	}
	if (close(fd) == -1)
		fuzz_die("close");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs;
	struct config *cfg;
	char path[4096];

	/* Bigger inputs explore nothing new and only slow the fuzzer down. */
	if (size > 65536)
		return 0;
	fuzz_write(data, size, path, sizeof path);
	memset(&errs, 0, sizeof errs);
	cfg = config_load(path, &errs);
	unlink(path);
	if (cfg == NULL && errs.n == 0) {
		fprintf(stderr, "fuzz_config: rejected without a message\n");
		abort();
	}
	if (cfg != NULL && errs.n != 0) {
		fprintf(stderr, "fuzz_config: accepted with messages\n");
		abort();
	}
	config_free(cfg);
	config_errors_cleanup(&errs);
	return 0;
}
