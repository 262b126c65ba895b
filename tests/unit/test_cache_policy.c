/*
 * Unit tests for cache_policy.c: request modes, what is stored and for
 * how long, Vary normalization, key material, age arithmetic with a fixed
 * clock, and the Cache-Status strings.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "cache_policy.h"
#include "hdrs.h"

#define MAXF 20

/* Fills h from "Name: value" lines (NULL-terminated array). */
static void
fill(struct hdrs *h, const char *const *lines)
{
	const char *colon, *v;
	size_t i;

	hdrs_init(h);
	for (i = 0; lines != NULL && i < MAXF && lines[i] != NULL; i++) {
		colon = strchr(lines[i], ':');
		assert_non_null(colon);
		v = colon + 1;
		while (*v == ' ')
			v++;
		assert_int_equal(hdrs_addn(h, lines[i],
		                     (size_t)(colon - lines[i]), v, strlen(v)),
		    0);
	}
}

/* ---- cache_storable: the table ------------------------------------- */

struct storable_case {
	const char *resp[MAXF];
	const char *req[MAXF];
	int status;      /* 0 = 200 */
	long ttl_s;      /* 0 = 300 */
	long max_bytes;  /* 0 = 1000 */
	long want_ttl;   /* 0 = not stored */
	const char *why; /* substring of the reason when not stored */
};

/* clang-format off */
static const struct storable_case storable_cases[] = {
	/* Plain 200: the route's TTL. */
	{ .resp = { NULL }, .want_ttl = 300 },
	{ .resp = { "Content-Type: text/plain" }, .want_ttl = 300 },
	/* max-age / s-maxage shorten, never lengthen; s-maxage wins. */
	{ .resp = { "Cache-Control: max-age=60" }, .want_ttl = 60 },
	{ .resp = { "Cache-Control: max-age=600" }, .want_ttl = 300 },
	{ .resp = { "Cache-Control: s-maxage=30, max-age=600" }, .want_ttl = 30 },
	{ .resp = { "Cache-Control: s-maxage=600, max-age=10" }, .want_ttl = 300 },
	{ .resp = { "Cache-Control: max-age=10, s-maxage=20" }, .want_ttl = 20 },
	{ .resp = { "Cache-Control: max-age=0" }, .why = "lifetime 0" },
	{ .resp = { "Cache-Control: s-maxage=0" }, .why = "lifetime 0" },
	{ .resp = { "Cache-Control: s-maxage=0, max-age=60" }, .why = "lifetime 0" },
	{ .resp = { "Cache-Control: public, max-age=45" }, .want_ttl = 45 },
	/* Directives that forbid a shared cache to store. */
	{ .resp = { "Cache-Control: no-store" }, .why = "no-store" },
	{ .resp = { "Cache-Control: NO-STORE" }, .why = "no-store" },
	{ .resp = { "Cache-Control: max-age=60", "cache-control: no-store" },
	  .why = "no-store" },
	{ .resp = { "Cache-Control: private" }, .why = "private" },
	{ .resp = { "Cache-Control: private=\"Set-Cookie\", max-age=60" },
	  .why = "private" },
	{ .resp = { "Cache-Control: no-cache" }, .why = "no-cache" },
	{ .resp = { "Cache-Control: no-cache=\"X-A, X-B\"" }, .why = "no-cache" },
	{ .resp = { "Cache-Control: public, no-cache" }, .why = "no-cache" },
	{ .resp = { "Set-Cookie: a=1" }, .why = "Set-Cookie" },
	{ .resp = { "set-cookie: a=1", "Cache-Control: public" },
	  .why = "Set-Cookie" },
	/* Vary. */
	{ .resp = { "Vary: *" }, .why = "Vary: *" },
	{ .resp = { "Vary: Accept, *" }, .why = "Vary: *" },
	{ .resp = { "Vary: Accept", "Vary: *" }, .why = "Vary: *" },
	{ .resp = { "Vary: Accept-Encoding" }, .want_ttl = 300 },
	{ .resp = { "Vary: Accept/x" }, .why = "not a token" },
	{ .resp = { "Vary: \"Accept\"" }, .why = "not a token" },
	{ .resp = { "Vary: a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p" },
	  .want_ttl = 300 },
	{ .resp = { "Vary: a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q" },
	  .why = "too many" },
	{ .resp = { "Vary: a, A, a, b, B" }, .want_ttl = 300 },
	{ .resp = { "Vary: x234567890123456789012345678901234567890"
	            "123456789012345678901234" }, .want_ttl = 300 },
	{ .resp = { "Vary: x234567890123456789012345678901234567890"
	            "1234567890123456789012345" }, .why = "too long" },
	/* Size. */
	{ .resp = { "Content-Length: 1000" }, .want_ttl = 300 },
	{ .resp = { "Content-Length: 1001" }, .why = "max_object_bytes" },
	{ .resp = { "Content-Length: 99999999999999999999999" },
	  .why = "max_object_bytes" },
	{ .resp = { "Content-Length: 12abc" }, .why = "Content-Length" },
	{ .resp = { "Content-Length: -1" }, .why = "Content-Length" },
	{ .resp = { "Content-Length: 10", "Content-Length: 20" },
	  .why = "Content-Length" },
	{ .resp = { "Content-Length: 10", "Content-Length: 10" }, .want_ttl = 300 },
	{ .resp = { "Content-Length: 0" }, .max_bytes = -1, .why = "max_object" },
	/* Status. */
	{ .resp = { NULL }, .status = 404, .why = "status" },
	{ .resp = { NULL }, .status = 206, .why = "status" },
	{ .resp = { "Cache-Control: public" }, .status = 301, .why = "status" },
	/* Malformed numbers and syntax are never guessed at. */
	{ .resp = { "Cache-Control: max-age=abc" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=-1" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=+5" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=1e3" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=\"\"" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age = 5" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=60 junk" }, .why = "malformed" },
	{ .resp = { "Cache-Control: ext=\"unterminated, max-age=5" },
	  .why = "malformed" },
	{ .resp = { "Cache-Control: =5" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=60, max-age=30" }, .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=60", "Cache-Control: max-age=30" },
	  .why = "malformed" },
	{ .resp = { "Cache-Control: max-age=60, max-age=60" }, .want_ttl = 60 },
	/* Well-formed variants. */
	{ .resp = { "Cache-Control: max-age=\"60\"" }, .want_ttl = 60 },
	{ .resp = { "Cache-Control: Max-Age=5" }, .want_ttl = 5 },
	{ .resp = { "Cache-Control: ,, max-age=5 ,," }, .want_ttl = 5 },
	{ .resp = { "Cache-Control: ext=\"a, b\\\"c\", max-age=7" }, .want_ttl = 7 },
	{ .resp = { "Cache-Control: community=\"UCI\", max-age=8" }, .want_ttl = 8 },
	{ .resp = { "Cache-Control: public", "Cache-Control: max-age=20" },
	  .want_ttl = 20 },
	{ .resp = { "Cache-Control: max-age=0007" }, .want_ttl = 7 },
	{ .resp = { "Cache-Control: max-age=99999999999999999999999999" },
	  .want_ttl = 300 },
	{ .resp = { "Cache-Control: max-age=99999999999999999999999999" },
	  .ttl_s = LONG_MAX, .want_ttl = 2147483648L },
	{ .resp = { "Cache-Control: must-revalidate, max-age=9" }, .want_ttl = 9 },
	/* Expires is ignored (documented). */
	{ .resp = { "Expires: Thu, 01 Jan 1970 00:00:00 GMT" }, .want_ttl = 300 },
	{ .resp = { "Expires: 0", "Cache-Control: max-age=10" }, .want_ttl = 10 },
	/* Age from the backend. */
	{ .resp = { "Cache-Control: max-age=60", "Age: 10" }, .want_ttl = 60 },
	{ .resp = { "Cache-Control: max-age=60", "Age: 60" }, .why = "stale" },
	{ .resp = { "Age: 99999999999999999999" }, .why = "stale" },
	{ .resp = { "Cache-Control: max-age=60", "Age: soon" }, .want_ttl = 60 },
	/* Authorization: only when the response opts in to sharing. */
	{ .resp = { NULL }, .req = { "Authorization: Bearer x" },
	  .why = "Authorization" },
	{ .resp = { "Cache-Control: max-age=60" },
	  .req = { "Authorization: Basic eA==" }, .why = "Authorization" },
	{ .resp = { "Cache-Control: must-revalidate" },
	  .req = { "Authorization: Bearer x" }, .why = "Authorization" },
	{ .resp = { "Cache-Control: public" },
	  .req = { "Authorization: Bearer x" }, .want_ttl = 300 },
	{ .resp = { "Cache-Control: s-maxage=50" },
	  .req = { "authorization: Bearer x" }, .want_ttl = 50 },
	/* The request can forbid storing too. */
	{ .resp = { NULL }, .req = { "Cache-Control: no-store" },
	  .why = "request" },
	{ .resp = { NULL }, .req = { "Cache-Control: no-cache" }, .want_ttl = 300 },
	{ .resp = { NULL }, .req = { "Cache-Control: max-age=x" },
	  .why = "request" },
	/* The route. */
	{ .resp = { NULL }, .ttl_s = -1, .why = "off" },
	{ .resp = { "Cache-Control: max-age=1" }, .ttl_s = 1, .want_ttl = 1 },
};
/* clang-format on */

static void
test_storable_table(void **state)
{
	const struct storable_case *c;
	struct hdrs resp, req;
	struct cache_vary vary;
	const char *why;
	long ttl;
	size_t i;
	int ok;

	(void)state;
	assert_true(sizeof storable_cases / sizeof storable_cases[0] >= 30);
	for (i = 0; i < sizeof storable_cases / sizeof storable_cases[0]; i++) {
		c = &storable_cases[i];
		fill(&resp, c->resp);
		fill(&req, c->req);
		ttl = -7;
		why = NULL;
		ok = cache_storable("GET", c->status ? c->status : 200, &resp,
		    &req, c->ttl_s ? c->ttl_s : 300,
		    c->max_bytes ? c->max_bytes : 1000, &vary, &ttl, &why);
		if (ok != (c->want_ttl != 0) || (ok && ttl != c->want_ttl) ||
		    (!ok && strstr(why, c->why) == NULL)) {
			print_error("case %zu (%s): ok %d ttl %ld why \"%s\"\n",
			    i, c->resp[0] ? c->resp[0] : "-", ok, ttl, why);
			fail();
		}
		assert_non_null(why);
		if (ok)
			assert_string_equal(why, "");
		else
			assert_int_equal(vary.n, 0);
		hdrs_cleanup(&resp);
		hdrs_cleanup(&req);
	}
}

static void
test_storable_method_and_nulls(void **state)
{
	struct hdrs resp;
	const char *why;
	long ttl = 0;

	(void)state;
	hdrs_init(&resp);
	/* HEAD has no body, and shares GET's entry: never stored. */
	assert_int_equal(cache_storable("HEAD", 200, &resp, NULL, 300, 1000,
	                     NULL, &ttl, &why),
	    0);
	assert_string_equal(why, "not a GET");
	assert_int_equal(cache_storable("POST", 200, &resp, NULL, 300, 1000,
	                     NULL, NULL, NULL),
	    0);
	assert_int_equal(
	    cache_storable(NULL, 200, &resp, NULL, 300, 1000, NULL, NULL, NULL),
	    0);
	assert_int_equal(
	    cache_storable("GET", 200, NULL, NULL, 300, 1000, NULL, NULL, &why),
	    0);
	/* Every out parameter may be NULL. */
	assert_int_equal(cache_storable("GET", 200, &resp, NULL, 300, 1000,
	                     NULL, NULL, NULL),
	    1);
	assert_int_equal(cache_storable("GET", 200, &resp, NULL, 300, 1000,
	                     NULL, &ttl, NULL),
	    1);
	assert_int_equal(ttl, 300);
	hdrs_cleanup(&resp);
}

/* ---- Vary ----------------------------------------------------------- */

static void
test_vary_normalized(void **state)
{
	static const char *const resp_lines[] = {
	    "Vary: Accept-Encoding, ACCEPT", "Content-Type: text/plain",
	    "vary: accept-language,,accept ", "VARY: X-Tenant", NULL};
	struct hdrs resp;
	struct cache_vary vary, again;
	struct buf joined;
	const char *why;
	long ttl;
	size_t i;

	(void)state;
	fill(&resp, resp_lines);
	assert_int_equal(cache_storable("GET", 200, &resp, NULL, 300, 1000,
	                     &vary, &ttl, &why),
	    1);
	assert_int_equal(vary.n, 4);
	assert_string_equal(vary.name[0], "accept");
	assert_string_equal(vary.name[1], "accept-encoding");
	assert_string_equal(vary.name[2], "accept-language");
	assert_string_equal(vary.name[3], "x-tenant");

	/* The joined form reads back to the same list. */
	buf_init(&joined);
	cache_vary_join(&vary, &joined);
	assert_string_equal(buf_cstr(&joined),
	    "accept, accept-encoding, accept-language, "
	    "x-tenant");
	hdrs_reset(&resp);
	assert_int_equal(hdrs_add(&resp, "Vary", buf_cstr(&joined)), 0);
	assert_int_equal(cache_vary_parse(&resp, &again, &why), 0);
	assert_int_equal(again.n, vary.n);
	for (i = 0; i < vary.n; i++)
		assert_string_equal(again.name[i], vary.name[i]);
	buf_cleanup(&joined);

	/* No Vary at all, or an empty one. */
	hdrs_reset(&resp);
	assert_int_equal(cache_vary_parse(&resp, &again, &why), 0);
	assert_int_equal(again.n, 0);
	assert_int_equal(hdrs_add(&resp, "Vary", " , "), 0);
	assert_int_equal(cache_vary_parse(&resp, &again, &why), 0);
	assert_int_equal(again.n, 0);
	assert_int_equal(cache_vary_parse(NULL, &again, NULL), 0);
	hdrs_cleanup(&resp);
}

static void
test_vary_thousand(void **state)
{
	struct hdrs resp;
	struct cache_vary vary;
	struct buf v;
	const char *why;
	int i;

	(void)state;
	hdrs_init(&resp);
	buf_init(&v);
	for (i = 0; i < 1000; i++)
		buf_printf(&v, "%sx-h%d", i ? ", " : "", i);
	assert_int_equal(hdrs_add(&resp, "Vary", buf_cstr(&v)), 0);
	assert_int_equal(cache_storable("GET", 200, &resp, NULL, 300, 1000,
	                     &vary, NULL, &why),
	    0);
	assert_non_null(strstr(why, "too many"));
	assert_int_equal(vary.n, 0);

	/* 1,000 copies of one name are one name. */
	hdrs_reset(&resp);
	for (i = 0; i < 1000; i++)
		assert_int_equal(hdrs_add(&resp, "Vary", "Accept"), 0);
	assert_int_equal(cache_vary_parse(&resp, &vary, &why), 0);
	assert_int_equal(vary.n, 1);
	buf_cleanup(&v);
	hdrs_cleanup(&resp);
}

/* ---- request mode --------------------------------------------------- */

struct mode_case {
	const char *method;
	long ttl_s;
	const char *req[4];
	enum cache_mode want;
};

/* clang-format off */
static const struct mode_case mode_cases[] = {
	{ "GET", 300, { NULL }, CACHE_LOOKUP },
	{ "HEAD", 300, { NULL }, CACHE_LOOKUP },
	{ "GET", 0, { NULL }, CACHE_OFF },
	{ "GET", -5, { NULL }, CACHE_OFF },
	{ "POST", 300, { NULL }, CACHE_OFF },
	{ "PUT", 300, { NULL }, CACHE_OFF },
	{ "DELETE", 300, { NULL }, CACHE_OFF },
	{ "OPTIONS", 300, { NULL }, CACHE_OFF },
	{ "get", 300, { NULL }, CACHE_OFF },
	{ "POST", 300, { "Cache-Control: no-cache" }, CACHE_OFF },
	{ "GET", 300, { "Cache-Control: no-cache" }, CACHE_REFRESH },
	{ "GET", 300, { "cache-control: No-Cache" }, CACHE_REFRESH },
	{ "HEAD", 300, { "Cache-Control: no-cache" }, CACHE_REFRESH },
	{ "GET", 300, { "Cache-Control: max-age=0" }, CACHE_REFRESH },
	{ "GET", 300, { "Cache-Control: max-age=00" }, CACHE_REFRESH },
	{ "GET", 300, { "Cache-Control: max-age=10" }, CACHE_LOOKUP },
	{ "GET", 300, { "Cache-Control: max-stale, min-fresh=5" }, CACHE_LOOKUP },
	{ "GET", 300, { "Cache-Control: no-store" }, CACHE_BYPASS },
	{ "GET", 300, { "Cache-Control: no-cache, no-store" }, CACHE_BYPASS },
	{ "GET", 300, { "Cache-Control: max-age=5", "Cache-Control: no-store" },
	  CACHE_BYPASS },
	{ "GET", 300, { "Pragma: no-cache" }, CACHE_REFRESH },
	{ "GET", 300, { "Pragma: x, NO-CACHE" }, CACHE_REFRESH },
	{ "GET", 300, { "Pragma: no-cache", "Cache-Control: max-age=10" },
	  CACHE_LOOKUP },
	{ "GET", 300, { "Pragma: nothing" }, CACHE_LOOKUP },
	{ "GET", 300, { "Cache-Control: max-age=ten" }, CACHE_BYPASS },
	{ "GET", 300, { "Cache-Control: \"" }, CACHE_BYPASS },
	{ "GET", 300, { "Cache-Control: no-cache, max-age=1, max-age=2" },
	  CACHE_BYPASS },
	{ "GET", 300, { "Authorization: Bearer x" }, CACHE_LOOKUP },
};
/* clang-format on */

static void
test_request_mode(void **state)
{
	const struct mode_case *c;
	struct hdrs req;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof mode_cases / sizeof mode_cases[0]; i++) {
		c = &mode_cases[i];
		fill(&req, c->req);
		if (cache_request_mode(c->method, &req, c->ttl_s) != c->want) {
			print_error("mode case %zu: %s %s\n", i, c->method,
			    c->req[0] ? c->req[0] : "-");
			fail();
		}
		hdrs_cleanup(&req);
	}
	assert_int_equal(cache_request_mode("GET", NULL, 300), CACHE_LOOKUP);
	assert_int_equal(cache_request_mode(NULL, NULL, 300), CACHE_OFF);
}

/* ---- keys ----------------------------------------------------------- */

/* cache_key() with the vary list parsed from a response's Vary value. */
static void
key_of(char hex[CACHE_KEY_HEX + 1], const char *method, const char *host,
    const char *path, const char *query, const char *key_hash,
    const char *vary_value, const char *const *req_lines)
{
	struct hdrs resp, req;
	struct cache_vary vary;
	struct buf m;

	hdrs_init(&resp);
	if (vary_value != NULL)
		assert_int_equal(hdrs_add(&resp, "Vary", vary_value), 0);
	assert_int_equal(cache_vary_parse(&resp, &vary, NULL), 0);
	fill(&req, req_lines);
	buf_init(&m);
	assert_int_equal(cache_key(&m, hex, method, host, path, query, key_hash,
	                     &vary, &req),
	    0);
	assert_int_equal(strlen(hex), CACHE_KEY_HEX);
	buf_cleanup(&m);
	hdrs_cleanup(&req);
	hdrs_cleanup(&resp);
}

#define HASH_A                                                                 \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B                                                                 \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void
test_key_material(void **state)
{
	static const char *const req_lines[] = {
	    "Accept-Encoding: gzip", "User-Agent: t", NULL};
	struct hdrs resp, req;
	struct cache_vary vary;
	struct buf m;
	char hex[CACHE_KEY_HEX + 1];

	(void)state;
	hdrs_init(&resp);
	assert_int_equal(hdrs_add(&resp, "Vary", "Accept-Encoding"), 0);
	assert_int_equal(cache_vary_parse(&resp, &vary, NULL), 0);
	fill(&req, req_lines);
	buf_init(&m);
	assert_int_equal(cache_key(&m, hex, "GET", "Example.COM", "/a", "x=1",
	                     NULL, &vary, &req),
	    0);
	/* The example in cache_policy.h, byte for byte. */
	assert_string_equal(buf_cstr(&m),
	    "apigw-cache-1\nm3:GET\n"
	    "h11:example.com\np2:/a\nq3:x=1\n"
	    "k-\nv15:accept-encoding=4:gzip\n");
	/* And its SHA-256, computed independently. */
	assert_string_equal(hex,
	    "9346a403e92acfd65754c2ee8f930a3a"
	    "de5a40ad9fbed40bed7628421e9f8cf5");

	/* A missing argument leaves nothing behind. */
	assert_int_equal(
	    cache_key(&m, hex, "GET", NULL, "/a", NULL, NULL, NULL, NULL), -1);
	assert_int_equal(m.len, 0);
	assert_string_equal(hex, "");
	assert_int_equal(
	    cache_key(&m, hex, "GET", "h", NULL, NULL, NULL, NULL, NULL), -1);
	assert_int_equal(
	    cache_key(&m, hex, NULL, "h", "/", NULL, NULL, NULL, NULL), -1);
	/* No vary list and no request headers are fine. */
	assert_int_equal(
	    cache_key(&m, hex, "GET", "h", "/", NULL, NULL, NULL, NULL), 0);
	assert_string_equal(
	    buf_cstr(&m), "apigw-cache-1\nm3:GET\nh1:h\np1:/\nq-\nk-\n");
	buf_cleanup(&m);
	hdrs_cleanup(&req);
	hdrs_cleanup(&resp);
}

static void
test_key_partitions(void **state)
{
	char a[CACHE_KEY_HEX + 1], b[CACHE_KEY_HEX + 1];

	(void)state;
	/* HEAD shares GET's entry; other methods do not. */
	key_of(a, "GET", "h", "/p", NULL, NULL, NULL, NULL);
	key_of(b, "HEAD", "h", "/p", NULL, NULL, NULL, NULL);
	assert_string_equal(a, b);
	key_of(b, "POST", "h", "/p", NULL, NULL, NULL, NULL);
	assert_string_not_equal(a, b);

	/* Host case does not matter; host, path do. */
	key_of(b, "GET", "H", "/p", NULL, NULL, NULL, NULL);
	assert_string_equal(a, b);
	key_of(b, "GET", "h2", "/p", NULL, NULL, NULL, NULL);
	assert_string_not_equal(a, b);
	key_of(b, "GET", "h", "/P", NULL, NULL, NULL, NULL);
	assert_string_not_equal(a, b);

	/* No query, an empty query, a query. */
	key_of(b, "GET", "h", "/p", "", NULL, NULL, NULL);
	assert_string_not_equal(a, b);
	key_of(a, "GET", "h", "/p", "a=1", NULL, NULL, NULL);
	assert_string_not_equal(a, b);
	/* Fields cannot run into one another. */
	key_of(b, "GET", "h", "/p?a=1", NULL, NULL, NULL, NULL);
	assert_string_not_equal(a, b);
	key_of(a, "GET", "h", "/p\nq-", NULL, NULL, NULL, NULL);
	key_of(b, "GET", "h", "/p", NULL, NULL, NULL, NULL);
	assert_string_not_equal(a, b);

	/* Each API key has its own entries, apart from anonymous ones. */
	key_of(a, "GET", "h", "/p", NULL, HASH_A, NULL, NULL);
	key_of(b, "GET", "h", "/p", NULL, HASH_B, NULL, NULL);
	assert_string_not_equal(a, b);
	key_of(b, "GET", "h", "/p", NULL, NULL, NULL, NULL);
	assert_string_not_equal(a, b);
	key_of(b, "GET", "h", "/p", NULL, HASH_A, NULL, NULL);
	assert_string_equal(a, b);
}

static void
test_key_vary_values(void **state)
{
	static const char *const gzip[] = {"Accept-Encoding: gzip", NULL};
	static const char *const br[] = {"Accept-Encoding: br", NULL};
	static const char *const empty[] = {"Accept-Encoding: ", NULL};
	static const char *const none[] = {"User-Agent: x", NULL};
	static const char *const two_fields[] = {
	    "Accept-Encoding: gzip", "accept-encoding: br", NULL};
	static const char *const one_field[] = {
	    "Accept-Encoding:  gzip, br ", NULL};
	static const char *const order1[] = {"Accept: text/html", "X-Other: 1",
	    "Accept-Language: de", "Accept-Encoding: gzip", NULL};
	static const char *const order2[] = {"Accept-Encoding: gzip",
	    "Accept-Language: de", "X-Other: 2", "Accept: text/html", NULL};
	char a[CACHE_KEY_HEX + 1], b[CACHE_KEY_HEX + 1];

	(void)state;
	key_of(a, "GET", "h", "/", NULL, NULL, "Accept-Encoding", gzip);
	key_of(b, "GET", "h", "/", NULL, NULL, "Accept-Encoding", br);
	assert_string_not_equal(a, b);
	/* Without Vary the header does not count. */
	key_of(a, "GET", "h", "/", NULL, NULL, NULL, gzip);
	key_of(b, "GET", "h", "/", NULL, NULL, NULL, br);
	assert_string_equal(a, b);

	/* Absent differs from empty. */
	key_of(a, "GET", "h", "/", NULL, NULL, "Accept-Encoding", empty);
	key_of(b, "GET", "h", "/", NULL, NULL, "Accept-Encoding", none);
	assert_string_not_equal(a, b);
	key_of(a, "GET", "h", "/", NULL, NULL, "Accept-Encoding", NULL);
	assert_string_equal(a, b);

	/* Several fields join with ", ", as one field would say it. */
	key_of(a, "GET", "h", "/", NULL, NULL, "Accept-Encoding", two_fields);
	key_of(b, "GET", "h", "/", NULL, NULL, "accept-encoding", one_field);
	assert_string_equal(a, b);

	/* Field order and Vary order do not matter; other headers don't. */
	key_of(a, "GET", "h", "/", NULL, NULL,
	    "Accept, Accept-Encoding, Accept-Language", order1);
	key_of(b, "GET", "h", "/", NULL, NULL,
	    "accept-language, ACCEPT-ENCODING, accept", order2);
	assert_string_equal(a, b);
}

/* ---- age and freshness ---------------------------------------------- */

static void
test_age(void **state)
{
	(void)state;
	assert_int_equal(cache_age(1000, 1000, NULL), 0);
	assert_int_equal(cache_age(1000, 1010, NULL), 10);
	assert_int_equal(cache_age(1000, 1010, "5"), 15);
	assert_int_equal(cache_age(1000, 1010, " 5\t"), 15);
	/* Invalid Age values are ignored. */
	assert_int_equal(cache_age(1000, 1010, ""), 10);
	assert_int_equal(cache_age(1000, 1010, "5s"), 10);
	assert_int_equal(cache_age(1000, 1010, "-5"), 10);
	assert_int_equal(cache_age(1000, 1010, "5, 6"), 10);
	/* A clock that went backwards gives 0, never a negative age. */
	assert_int_equal(cache_age(1000, 900, NULL), 0);
	assert_int_equal(cache_age(1000, 900, "3"), 3);
	assert_int_equal(cache_age(LLONG_MAX, LLONG_MIN, NULL), 0);
	/* Everything is capped at 2^31 s, overflow-free. */
	assert_int_equal(
	    cache_age(1000, 1000, "99999999999999999999999"), CACHE_DELTA_MAX);
	assert_int_equal(cache_age(1000, 1000, "2147483647"), 2147483647LL);
	assert_int_equal(cache_age(1000, 1001, "2147483647"), CACHE_DELTA_MAX);
	assert_int_equal(cache_age(1000, 1010, "2147483648"), CACHE_DELTA_MAX);
	assert_int_equal(
	    cache_age(LLONG_MIN, LLONG_MAX, NULL), CACHE_DELTA_MAX);
	assert_int_equal(cache_age(LLONG_MIN, LLONG_MAX, "99999999999999999"),
	    CACHE_DELTA_MAX);
	assert_int_equal(cache_age(-5, 5, NULL), 10);
	assert_int_equal(cache_age(0, LLONG_MAX, "1"), CACHE_DELTA_MAX);
}

static void
test_freshness(void **state)
{
	(void)state;
	assert_int_equal(cache_freshness(0, 10, 0), CACHE_FRESH);
	assert_int_equal(cache_freshness(9, 10, 0), CACHE_FRESH);
	assert_int_equal(cache_freshness(10, 10, 0), CACHE_EXPIRED);
	assert_int_equal(cache_freshness(10, 10, 5), CACHE_STALE_USABLE);
	assert_int_equal(cache_freshness(14, 10, 5), CACHE_STALE_USABLE);
	assert_int_equal(cache_freshness(15, 10, 5), CACHE_EXPIRED);
	assert_int_equal(cache_freshness(0, 0, 0), CACHE_EXPIRED);
	assert_int_equal(cache_freshness(0, -3, -3), CACHE_EXPIRED);
	assert_int_equal(cache_freshness(CACHE_DELTA_MAX, LONG_MAX, LONG_MAX),
	    CACHE_STALE_USABLE);
	assert_int_equal(
	    cache_freshness(CACHE_DELTA_MAX - 1, LONG_MAX, 0), CACHE_FRESH);

	/* A fixed clock through an entry's whole life. */
	{
		long long stored_at = 1700000000, now;
		long ttl = 60, sie = 30;
		const char *upstream = "10";

		now = stored_at + 49;
		assert_int_equal(
		    cache_freshness(
		        cache_age(stored_at, now, upstream), ttl, sie),
		    CACHE_FRESH);
		now = stored_at + 50;
		assert_int_equal(
		    cache_freshness(
		        cache_age(stored_at, now, upstream), ttl, sie),
		    CACHE_STALE_USABLE);
		now = stored_at + 80;
		assert_int_equal(
		    cache_freshness(
		        cache_age(stored_at, now, upstream), ttl, sie),
		    CACHE_EXPIRED);
	}
}

static void
test_stale_allowed(void **state)
{
	static const struct {
		const char *resp[3];
		int want;
	} cases[] = {
	    {{NULL}, 1},
	    {{"Cache-Control: max-age=60, public"}, 1},
	    {{"Cache-Control: must-revalidate"}, 0},
	    {{"Cache-Control: Proxy-Revalidate"}, 0},
	    {{"Cache-Control: s-maxage=60"}, 0},
	    {{"Cache-Control: max-age=60", "Cache-Control: must-revalidate"},
	        0},
	    {{"Cache-Control: max-age=bad"}, 0},
	};
	struct hdrs resp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fill(&resp, cases[i].resp);
		assert_int_equal(cache_stale_allowed(&resp), cases[i].want);
		hdrs_cleanup(&resp);
	}
	assert_int_equal(cache_stale_allowed(NULL), 1);
}

static void
test_status_strings(void **state)
{
	(void)state;
	assert_string_equal(cache_status_str(CACHE_STATUS_HIT), "apigw; hit");
	assert_string_equal(cache_status_str(CACHE_STATUS_MISS_STORED),
	    "apigw; fwd=miss; stored");
	assert_string_equal(
	    cache_status_str(CACHE_STATUS_MISS), "apigw; fwd=miss");
	assert_string_equal(
	    cache_status_str(CACHE_STATUS_BYPASS), "apigw; fwd=bypass");
	assert_string_equal(cache_status_str(CACHE_STATUS_HIT_STALE),
	    "apigw; hit; detail=stale");
	assert_string_equal(cache_status_xcache(CACHE_STATUS_HIT), "HIT");
	assert_string_equal(cache_status_xcache(CACHE_STATUS_HIT_STALE), "HIT");
	assert_string_equal(cache_status_xcache(CACHE_STATUS_MISS), "MISS");
	assert_string_equal(
	    cache_status_xcache(CACHE_STATUS_MISS_STORED), "MISS");
	assert_string_equal(cache_status_xcache(CACHE_STATUS_BYPASS), "BYPASS");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_storable_table),
	    cmocka_unit_test(test_storable_method_and_nulls),
	    cmocka_unit_test(test_vary_normalized),
	    cmocka_unit_test(test_vary_thousand),
	    cmocka_unit_test(test_request_mode),
	    cmocka_unit_test(test_key_material),
	    cmocka_unit_test(test_key_partitions),
	    cmocka_unit_test(test_key_vary_values),
	    cmocka_unit_test(test_age),
	    cmocka_unit_test(test_freshness),
	    cmocka_unit_test(test_stale_allowed),
	    cmocka_unit_test(test_status_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
