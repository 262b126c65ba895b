/*
 * Runs a libFuzzer target without libFuzzer: every file named on the
 * command line, and every regular file directly inside a directory named
 * there, is read whole and passed once to LLVMFuzzerTestOneInput.  This is
 * how "make check" replays the seed corpus with any compiler; a failing
 * input aborts the process, so the test fails.  Exits 0 when at least one
 * input ran and every named file could be read, else 1.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds one file to the target; returns 0, or -1 when it cannot be read. */
static int
run_file(const char *path, size_t *ran)
{
	int rc = -1;
	FILE *f = NULL;
	unsigned char *data = NULL;
	size_t len = 0, cap = 0, n;

	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	/* Read in chunks: st_size is not reliable for every kind of file. */
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			data = xrealloc(data, cap);
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		goto out;
	}
	/* An exact-size copy, so ASan sees reads past the input's end. */
	{
		unsigned char *exact = xmalloc(len);

		if (len > 0)
			memcpy(exact, data, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	(*ran)++;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	free(data);
	return rc;
}

static int
run_dir(const char *dir, size_t *ran)
{
	int rc = -1;
	DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	char *path;

	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		goto out;
	}
	rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    run_file(path, ran) != 0)
			rc = -1;
		free(path);
	}
out:
	if (d != NULL)
		closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	struct stat st;
	size_t ran = 0;
	int i, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			failed = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &ran) != 0)
				failed = 1;
		} else if (run_file(argv[i], &ran) != 0)
			failed = 1;
	}
	printf("%s: ran %zu inputs\n", argv[0], ran);
	/* An empty corpus would make the test pass without testing. */
	if (ran == 0)
		failed = 1;
	return failed ? 1 : 0;
}
