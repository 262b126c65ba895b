/*
 * Fuzz target for the header handling a backend response goes through
 * that needs no curl (the line parser in proxy.c is static): hdrs_addn()
 * of each received field, hdrs_strip_hop_by_hop(), and, for the request
 * side, hdrs_name_from_cgi().
 *
 * The input is one item per line.  A line with ':' is a field, name
 * before the first ':' and value after it (bytes as they are, CR and NUL
 * included); a line without is a CGI parameter name.  Aborts when a field
 * is kept whose name is not a token or whose value holds CR, LF or NUL,
 * when a refused field shows up anyway, when a hop-by-hop field or one
 * that a Connection value names survives stripping, when a field that is
 * neither is lost, or when a converted CGI name is not a token that
 * hdrs_add() takes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hdrs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why, const char *name)
{
	fprintf(stderr, "fuzz_hdrs: %s: \"%s\"\n", why, name);
	abort();
}

static int
fuzz_is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static int
fuzz_is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!fuzz_is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/*
 * Is name listed in the Connection value v?  Written independently of
 * hdrs.c: split at ',', trim spaces and tabs, compare ignoring case.
 */
static int
fuzz_listed(const char *v, const char *name)
{
	const char *p = v, *s, *e;
	size_t nlen = strlen(name);

	while (*p != '\0') {
		s = p;
		while (*p != '\0' && *p != ',')
			p++;
		e = p;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == nlen && strncasecmp(s, name, nlen) == 0)
			return 1;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int
fuzz_dropped(const struct hdrs *before, const char *name)
{
	size_t i;

	if (hdrs_is_hop_by_hop(name))
		return 1;
	for (i = 0; i < before->n; i++)
		if (strcasecmp(before->v[i].name, "Connection") == 0 &&
		    fuzz_listed(before->v[i].value, name))
			return 1;
	return 0;
}

static void
fuzz_cgi(const char *line, size_t len)
{
	char *param, out[64];
	size_t outlen = 1 + len % sizeof out; /* small buffers too */
	struct hdrs h;

	param = malloc(len + 1);
	if (param == NULL)
		abort();
	memcpy(param, line, len);
	param[len] = '\0';
	if (hdrs_name_from_cgi(param, out, outlen) == 0) {
		if (memchr(out, '\0', outlen) == NULL)
			fuzz_fail("CGI name not terminated", param);
		if (!fuzz_is_token(out, strlen(out)))
			fuzz_fail("CGI name not a token", out);
		hdrs_init(&h);
		if (hdrs_add(&h, out, "v") != 0)
			fuzz_fail("converted CGI name refused", out);
		hdrs_cleanup(&h);
	} else if (outlen > 0 && out[0] != '\0')
		fuzz_fail("refused CGI name left output", param);
	free(param);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl, *colon;
	struct hdrs h, before;
	size_t i, j, vlen, kept;
	int rc;

	hdrs_init(&h);
	hdrs_init(&before);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		colon = memchr(p, ':', (size_t)(nl - p));
		if (colon == NULL) {
			fuzz_cgi(p, (size_t)(nl - p));
		} else {
			vlen = (size_t)(nl - colon - 1);
			rc = hdrs_addn(
			    &h, p, (size_t)(colon - p), colon + 1, vlen);
			if (rc == 0 &&
			    (!fuzz_is_token(p, (size_t)(colon - p)) ||
			        memchr(colon + 1, '\r', vlen) != NULL ||
			        memchr(colon + 1, '\0', vlen) != NULL))
				fuzz_fail(
				    "bad field accepted", h.v[h.n - 1].name);
		}
		p = nl + 1;
	}

	for (i = 0; i < h.n; i++) {
		if (!fuzz_is_token(h.v[i].name, strlen(h.v[i].name)))
			fuzz_fail("kept name not a token", h.v[i].name);
		if (strpbrk(h.v[i].value, "\r\n") != NULL)
			fuzz_fail("kept value with CR or LF", h.v[i].name);
		if (hdrs_get(&h, h.v[i].name) == NULL)
			fuzz_fail(
			    "field not found by its own name", h.v[i].name);
		if (hdrs_add(&before, h.v[i].name, h.v[i].value) != 0)
			fuzz_fail("kept field refused on copy", h.v[i].name);
		(void)hdrs_conflict(&h, h.v[i].name);
	}

	hdrs_strip_hop_by_hop(&h);

	/* Exactly the fields that should stay, in their order. */
	for (i = j = kept = 0; i < before.n; i++) {
		if (fuzz_dropped(&before, before.v[i].name))
			continue;
		if (j >= h.n || strcmp(h.v[j].name, before.v[i].name) != 0 ||
		    strcmp(h.v[j].value, before.v[i].value) != 0)
			fuzz_fail(
			    "end-to-end field lost or moved", before.v[i].name);
		j++;
		kept++;
	}
	if (kept != h.n)
		fuzz_fail(
		    "hop-by-hop field kept", h.n > kept ? h.v[kept].name : "");

	/* The edits the proxy makes after stripping. */
	if (h.n > 0) {
		char *name = strdup(h.v[0].name);

		if (name == NULL)
			abort();
		if (hdrs_set(&h, name, "x") != 0 || hdrs_count(&h, name) != 1)
			fuzz_fail("hdrs_set left other than one field", name);
		if (hdrs_del(&h, name) != 1 || hdrs_get(&h, name) != NULL)
			fuzz_fail("hdrs_del left a field", name);
		free(name);
	}
	hdrs_reset(&h);
	hdrs_cleanup(&h);
	hdrs_cleanup(&before);
	return 0;
}
