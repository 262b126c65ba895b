/*
 * Fuzz target for the cacheability decisions in cache_policy.c, from
 * fuzzed request and response header lists.  The input is lines:
 *
 *	method
 *	status ttl_s max_object_bytes stored_at now stale_if_error_s
 *	host            ("-" for none)
 *	path            ("-" for none)
 *	query           ("-" for none)
 *	API key hash    ("-" for none)
 *	Age value       ("-" for none)
 *	request fields, "name:value", up to an empty line
 *	response fields, "name:value"
 *
 * Missing lines count as "-" (numbers as 0).  Aborts when a stored
 * response breaks a rule the cache's safety depends on (never a non-GET,
 * non-200, Set-Cookie or no-store answer; lifetime within 1..ttl_s), when
 * the request mode contradicts the store decision, when a Vary list is
 * not sorted, lower-case and unique or does not survive a join and
 * re-parse, when a key is not 64 lower-case hex digits, differs between
 * GET and HEAD or between two calls, or when an age leaves 0..2^31.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache_policy.h"
#include "hdrs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_HEAD_LINES 7

static void
fuzz_fail(const char *why)
{
	fprintf(stderr, "fuzz_cache_policy: %s\n", why);
	abort();
}

/* Copies the next line of [*p, end) to a new string; NULL at the end. */
static char *
fuzz_line(const char **p, const char *end)
{
	const char *nl;
	char *s;

	if (*p >= end)
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	if (nl == NULL)
		nl = end;
	s = malloc((size_t)(nl - *p) + 1);
	if (s == NULL)
		abort();
	memcpy(s, *p, (size_t)(nl - *p));
	s[nl - *p] = '\0';
	*p = nl + 1;
	return s;
}

static const char *
fuzz_opt(const char *s)
{
	return s == NULL || strcmp(s, "-") == 0 ? NULL : s;
}

static void
fuzz_vary_check(const struct cache_vary *v)
{
	size_t i;
	const char *c;

	if (v->n > CACHE_VARY_MAX)
		fuzz_fail("too many Vary names");
	for (i = 0; i < v->n; i++) {
		if (v->name[i][0] == '\0' ||
		    strlen(v->name[i]) > CACHE_VARY_NAME_MAX)
			fuzz_fail("Vary name empty or too long");
		for (c = v->name[i]; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				fuzz_fail("Vary name not lower-case");
		if (i > 0 && strcmp(v->name[i - 1], v->name[i]) >= 0)
			fuzz_fail("Vary names not sorted and unique");
	}
}

static int
fuzz_vary_eq(const struct cache_vary *a, const struct cache_vary *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->name[i], b->name[i]) != 0)
			return 0;
	return 1;
}

/* Joins v and parses the result back: the stored form must round-trip. */
static void
fuzz_vary_roundtrip(const struct cache_vary *v)
{
	struct cache_vary back;
	struct hdrs h;
	struct buf b;
	const char *why = NULL;

	buf_init(&b);
	hdrs_init(&h);
	cache_vary_join(v, &b);
	if (v->n > 0) {
		if (hdrs_add(&h, "Vary", buf_cstr(&b)) != 0)
			fuzz_fail("joined Vary is not a valid value");
	}
	if (cache_vary_parse(&h, &back, &why) != 0 || !fuzz_vary_eq(v, &back))
		fuzz_fail("joined Vary does not parse back the same");
	hdrs_cleanup(&h);
	buf_cleanup(&b);
}

static void
fuzz_key_check(const char *method, const char *host, const char *path,
    const char *query, const char *key_hash, const struct cache_vary *vary,
    const struct hdrs *req)
{
	char hex[CACHE_KEY_HEX + 1], hex2[CACHE_KEY_HEX + 1];
	struct buf m, m2;
	const char *other;
	int rc, rc2;
	size_t i;

	buf_init(&m);
	buf_init(&m2);
	rc = cache_key(&m, hex, method, host, path, query, key_hash, vary, req);
	if ((rc == 0) != (host != NULL && path != NULL && method != NULL))
		fuzz_fail(
		    "cache_key refused complete arguments or took missing");
	if (rc == 0) {
		if (strlen(hex) != CACHE_KEY_HEX)
			fuzz_fail("key not 64 characters");
		for (i = 0; i < CACHE_KEY_HEX; i++)
			if (!((hex[i] >= '0' && hex[i] <= '9') ||
			        (hex[i] >= 'a' && hex[i] <= 'f')))
				fuzz_fail("key not lower-case hex");
		other = strcmp(method, "HEAD") == 0
		    ? "GET"
		    : (strcmp(method, "GET") == 0 ? "HEAD" : method);
		rc2 = cache_key(
		    &m2, hex2, other, host, path, query, key_hash, vary, req);
		if (rc2 != 0 || strcmp(hex, hex2) != 0 || m.len != m2.len ||
		    memcmp(buf_cstr(&m), buf_cstr(&m2), m.len) != 0)
			fuzz_fail("key differs between GET and HEAD or calls");
	}
	buf_cleanup(&m);
	buf_cleanup(&m2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *why;
	char *line[FUZZ_HEAD_LINES] = {NULL}, *l, *colon;
	long long num[6] = {0};
	struct hdrs req, resp;
	struct hdrs *cur = &req;
	struct cache_vary vary, parsed;
	enum cache_mode mode;
	const char *method;
	long ttl_out = -1, ttl;
	long long age;
	int storable, i;

	/* Headers beyond this size explore nothing the seeds do not. */
	if (size > 65536)
		return 0;
	hdrs_init(&req);
	hdrs_init(&resp);
	for (i = 0; i < FUZZ_HEAD_LINES; i++)
		line[i] = fuzz_line(&p, end);
	while ((l = fuzz_line(&p, end)) != NULL) {
		if (*l == '\0' && cur == &req)
			cur = &resp;
		else if ((colon = strchr(l, ':')) != NULL) {
			*colon = '\0';
			(void)hdrs_add(cur, l, colon + 1);
		}
		free(l);
	}
	if (line[1] != NULL)
		sscanf(line[1], "%lld %lld %lld %lld %lld %lld", &num[0],
		    &num[1], &num[2], &num[3], &num[4], &num[5]);
	method = line[0] != NULL ? line[0] : "GET";
	ttl = (long)num[1];

	mode = cache_request_mode(method, &req, ttl);
	if (mode != CACHE_OFF &&
	    (ttl <= 0 ||
	        (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)))
		fuzz_fail(
		    "lookup mode for a method or route that never caches");

	why = NULL;
	memset(&vary, 0, sizeof vary);
	storable = cache_storable(method, (int)num[0], &resp, &req, ttl,
	    (long)num[2], &vary, &ttl_out, &why);
	if (why == NULL)
		fuzz_fail("no reason set");
	if (storable) {
		if (*why != '\0')
			fuzz_fail("stored with a reason not to");
		if (strcmp(method, "GET") != 0 || num[0] != 200)
			fuzz_fail("stored a non-GET or non-200 response");
		if (ttl_out < 1 || ttl_out > ttl)
			fuzz_fail("lifetime outside 1..ttl_s");
		if (mode != CACHE_LOOKUP && mode != CACHE_REFRESH)
			fuzz_fail("stored what the request mode forbids");
		if (hdrs_get(&resp, "Set-Cookie") != NULL)
			fuzz_fail("stored a response with Set-Cookie");
		fuzz_vary_check(&vary);
		if (cache_vary_parse(&resp, &parsed, &why) != 0 ||
		    !fuzz_vary_eq(&vary, &parsed))
			fuzz_fail("stored Vary differs from cache_vary_parse");
	} else if (*why == '\0')
		fuzz_fail("refused without a reason");

	why = NULL;
	if (cache_vary_parse(&resp, &parsed, &why) == 0) {
		fuzz_vary_check(&parsed);
		fuzz_vary_roundtrip(&parsed);
		fuzz_key_check(method, fuzz_opt(line[2]), fuzz_opt(line[3]),
		    fuzz_opt(line[4]), fuzz_opt(line[5]), &parsed, &req);
	} else if (why == NULL)
		fuzz_fail("Vary refused without a reason");
	fuzz_key_check(method, fuzz_opt(line[2]), fuzz_opt(line[3]),
	    fuzz_opt(line[4]), fuzz_opt(line[5]), NULL, &req);

	age = cache_age(num[3], num[4], fuzz_opt(line[6]));
	if (age < 0 || age > CACHE_DELTA_MAX)
		fuzz_fail("age outside 0..2^31");
	(void)cache_freshness(
	    age, ttl, cache_stale_allowed(&resp) ? (long)num[5] : 0);
	(void)cache_freshness((long long)num[3], ttl, (long)num[5]);

	hdrs_cleanup(&req);
	hdrs_cleanup(&resp);
	for (i = 0; i < FUZZ_HEAD_LINES; i++)
		free(line[i]);
	return 0;
}
