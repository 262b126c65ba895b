/*
 * Fuzz target for normalize_path().  Besides the sanitizers' own checks it
 * aborts when an accepted path breaks what the router and the proxy rely
 * on: absolute, no "//", no "." or ".." segment, no '\', no control byte,
 * no lower-case or forbidden escape, never longer than the input, and
 * stable (normalizing it again gives the same bytes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why, const char *path)
{
	fprintf(stderr, "fuzz_normalize: %s: \"%s\"\n", why, path);
	abort();
}

static int
fuzz_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void
fuzz_check(const char *p, size_t inlen)
{
	size_t len = strlen(p), i, seg;
	unsigned char c;
	char *again = NULL;

	if (len == 0 || p[0] != '/')
		fuzz_fail("not absolute", p);
	if (len > inlen)
		fuzz_fail("longer than the input", p);
	for (i = 0; i < len; i++) {
		c = (unsigned char)p[i];
		if (c == '\\')
			fuzz_fail("backslash", p);
		if (c < 0x20 || c == 0x7f)
			fuzz_fail("control byte", p);
		if (c == '/' && p[i + 1] == '/')
			fuzz_fail("\"//\"", p);
		if (c == '%') {
			if (!fuzz_is_hex(p[i + 1]) || !fuzz_is_hex(p[i + 2]))
				fuzz_fail("escape not two upper-case hex digits", p);
			if ((p[i + 1] == '2' && p[i + 2] == 'F') ||
			    (p[i + 1] == '5' && p[i + 2] == 'C') ||
			    (p[i + 1] == '0' && p[i + 2] == '0'))
				fuzz_fail("forbidden escape kept", p);
		}
	}
	/* Every segment: neither "." nor "..". */
	for (i = 1; i <= len; i = seg + 1) {
		seg = i;
		while (seg < len && p[seg] != '/')
			seg++;
		if ((seg - i == 1 && p[i] == '.') ||
		    (seg - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			fuzz_fail("dot segment left", p);
	}
	if (memchr(p, ';', strlen(p)) != NULL)
		fuzz_fail("path parameter left", p);
	if (normalize_path(p, len, &again) != NORMALIZE_OK)
		fuzz_fail("output refused when normalized again", p);
	if (strcmp(again, p) != 0)
		fuzz_fail("normalizing again changed it", p);
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum normalize_result rc;
	char *out = (char *)1;

	rc = normalize_path((const char *)data, size, &out);
	if (rc == NORMALIZE_OK) {
		if (out == NULL)
			abort();
		fuzz_check(out, size);
	} else if (out != NULL)
		abort();
	if (normalize_strerror(rc) == NULL)
		abort();
	free(out);
	return 0;
}
