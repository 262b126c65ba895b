/*
 * Fuzz target for the rate-limit reply handling: ratelimit_parse() of the
 * script's answer, then ratelimit_headers() and ratelimit_violated_json()
 * of what it accepted.
 *
 * The input describes the reply, one element per line:
 *	i<integer>  an integer reply (strtoll, saturating)
 *	s<bytes>    a string reply (may hold NUL bytes)
 *	e<bytes>    an error reply
 *	n           nil
 *	[ ... ]     a nested array, one element per line until "]"
 * and the top level is the array of those lines.  Aborts when an accepted
 * reply gives more windows than RL_MAX_WINDOWS, a header value with a
 * byte outside printable ASCII, a negative number in X-RateLimit-*, a
 * Retry-After below 1, or a violated list that is not a JSON array.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hdrs.h"
#include "ratelimit.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_VALS 4096 /* elements in all, arrays included */
#define FUZZ_MAX_DEPTH 4

struct fuzz_reply {
	struct store_val v[FUZZ_MAX_VALS];
	size_t n;
	char *strs[FUZZ_MAX_VALS];
	size_t nstrs;
};

static void
fuzz_fail(const char *why, const char *what)
{
	fprintf(stderr, "fuzz_ratelimit: %s: \"%s\"\n", why, what);
	abort();
}

/*
 * Fills the array view *arr with the elements from *p on, up to a "]"
 * line (nested) or the end.  Elements of one array must be contiguous,
 * so the children are gathered in a local list first and then copied
 * into the pool.
 */
static void
fuzz_array(struct fuzz_reply *fr, const char **p, const char *end,
    struct store_val *arr, int depth)
{
	struct store_val *kids;
	size_t nkids = 0, cap = 0, len;
	const char *nl, *s;
	struct store_val v;

	kids = NULL;
	while (*p < end) {
		nl = memchr(*p, '\n', (size_t)(end - *p));
		if (nl == NULL)
			nl = end;
		s = *p;
		len = (size_t)(nl - s);
		*p = nl + 1;
		if (len == 1 && s[0] == ']' && depth > 0)
			break;
		memset(&v, 0, sizeof v);
		if (len == 1 && s[0] == '[' && depth < FUZZ_MAX_DEPTH) {
			fuzz_array(fr, p, end, &v, depth + 1);
		} else if (len >= 1 && (s[0] == 's' || s[0] == 'e') &&
		    fr->nstrs < FUZZ_MAX_VALS) {
			char *copy = malloc(len);

			if (copy == NULL)
				abort();
			memcpy(copy, s + 1, len - 1);
			copy[len - 1] = '\0';
			fr->strs[fr->nstrs++] = copy;
			v.type = s[0] == 's' ? STORE_STR : STORE_ERR;
			v.str = copy;
			v.len = len - 1;
		} else if (len >= 1 && s[0] == 'i') {
			char num[32];
			size_t nl2 =
			    len - 1 < sizeof num - 1 ? len - 1 : sizeof num - 1;

			memcpy(num, s + 1, nl2);
			num[nl2] = '\0';
			v.type = STORE_INT;
			v.i = strtoll(num, NULL, 10);
		} else
			v.type = STORE_NIL;
		if (nkids == cap) {
			cap = cap ? cap * 2 : 16;
			kids = realloc(kids, cap * sizeof *kids);
			if (kids == NULL)
				abort();
		}
		kids[nkids++] = v;
	}
	arr->type = STORE_ARR;
	if (fr->n + nkids > FUZZ_MAX_VALS)
		nkids = FUZZ_MAX_VALS - fr->n;
	arr->elem = nkids > 0 ? &fr->v[fr->n] : NULL;
	arr->n = nkids;
	if (nkids > 0)
		memcpy(&fr->v[fr->n], kids, nkids * sizeof *kids);
	fr->n += nkids;
	free(kids);
}

static void
fuzz_number(const struct hdrs *h, const char *name, long long min)
{
	const char *v = hdrs_get(h, name);
	char *end;
	long long n;

	if (v == NULL)
		fuzz_fail("header missing", name);
	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < min)
		fuzz_fail("header not a number in range", v);
}

static void
fuzz_check(const struct rl_result *res)
{
	struct hdrs h;
	struct buf json;
	const unsigned char *c;
	size_t i;

	if (res->n > RL_MAX_WINDOWS)
		fuzz_fail("too many windows", "");
	hdrs_init(&h);
	ratelimit_headers(res, &h);
	if (res->n == 0 && h.n != 0)
		fuzz_fail("headers without a window", h.v[0].name);
	for (i = 0; i < h.n; i++)
		for (c = (const unsigned char *)h.v[i].value; *c != '\0'; c++)
			if (*c < 0x20 || *c > 0x7e)
				fuzz_fail("header value byte not printable",
				    h.v[i].name);
	if (res->n > 0) {
		fuzz_number(&h, "X-RateLimit-Limit", 0);
		fuzz_number(&h, "X-RateLimit-Remaining", 0);
		fuzz_number(&h, "X-RateLimit-Reset", 0);
		if (hdrs_get(&h, "RateLimit-Policy") == NULL ||
		    hdrs_get(&h, "RateLimit") == NULL)
			fuzz_fail("structured header missing", "");
		if (res->status == RL_REJECTED)
			fuzz_number(&h, "Retry-After", 1);
	}
	hdrs_cleanup(&h);

	buf_init(&json);
	ratelimit_violated_json(res, &json);
	if (json.len < 2 || buf_cstr(&json)[0] != '[' ||
	    buf_cstr(&json)[json.len - 1] != ']' ||
	    strlen(buf_cstr(&json)) != json.len)
		fuzz_fail("violated list not an array", buf_cstr(&json));
	buf_cleanup(&json);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_reply fr;
	const char *p = (const char *)data;
	struct store_val top;
	struct rl_result res;
	size_t i;

	fr.n = 0;
	fr.nstrs = 0;
	memset(&top, 0, sizeof top);
	fuzz_array(&fr, &p, p + size, &top, 0);
	if (ratelimit_parse(&top, &res) == 0)
		fuzz_check(&res);
	else if (res.n != 0 || res.record.policy.name != NULL)
		fuzz_fail("refused reply left a result", "");
	ratelimit_result_cleanup(&res);
	for (i = 0; i < fr.nstrs; i++)
		free(fr.strs[i]);
	return 0;
}
