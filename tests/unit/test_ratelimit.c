/*
 * Unit tests for ratelimit.c: the script arguments built for each kind of
 * request (compared as one "|"-joined line), parsing of good and malformed
 * script replies built by hand, and the response headers.  The script
 * itself is tested against a real Redis in
 * tests/integration/test_lua_ratelimit.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "hdrs.h"
#include "ratelimit.h"
#include "store.h"
#include "xalloc.h"

#define HASH "0123456789abcdef0123456789abcdef" \
	"0123456789abcdef0123456789abcdef"
#define RID "00112233aabbccdd"
#define IPH "00112233445566778899aabbccddeeff"

static struct config cfg;
static struct route route;
static struct rl_policy keypol;

static void
policy_set(struct rl_policy *p, const char *name, int alg_set,
    enum rl_algorithm alg, long rps, long rpm, long rph, long rpd, long burst)
{
	memset(p, 0, sizeof *p);
	p->present = 1;
	p->name = (char *)name;
	p->algorithm_set = alg_set;
	p->algorithm = alg;
	p->limit[RL_SECOND] = rps;
	p->limit[RL_MINUTE] = rpm;
	p->limit[RL_HOUR] = rph;
	p->limit[RL_DAY] = rpd;
	p->burst_size = burst;
}

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof cfg);
	memset(&route, 0, sizeof route);
	cfg.redis.key_prefix = (char *)"gw:";
	policy_set(&cfg.rate_limit, "default", 1, RL_SLIDING_WINDOW,
	    0, 60, 0, 0, 0);
	route.prefix = (char *)"/api";
	route.prefix_len = 4;
	memcpy(route.route_id, RID, sizeof route.route_id);
	route.rate_limit.present = 0;
	policy_set(&keypol, NULL, 0, RL_SLIDING_WINDOW, 0, 5, 0, 0, 0);
	return 0;
}

/* Builds q and returns "nkeys;argc;arg|arg|...". */
static char *
build(const struct rl_query *q)
{
	struct buf args, out;
	const char *argv[64];
	size_t argvlen[64];
	int argc = -1, nkeys, i;
	char *s;

	buf_init(&args);
	buf_init(&out);
	nkeys = ratelimit_build(q, &args, argv, argvlen, 64, &argc);
	buf_printf(&out, "%d;%d;", nkeys, argc);
	for (i = 0; nkeys > 0 && i < argc; i++) {
		assert_int_equal(strlen(argv[i]), argvlen[i]);
		buf_printf(&out, "%s%s", i ? "|" : "", argv[i]);
	}
	s = xstrdup(buf_cstr(&out));
	buf_cleanup(&args);
	buf_cleanup(&out);
	return s;
}

static void
check_build(const struct rl_query *q, const char *want)
{
	char *got = build(q);

	assert_string_equal(got, want);
	free(got);
}

/* ---- ratelimit_build ---- */

static void
test_build_anonymous_default(void **state)
{
	struct rl_query q = { &cfg, &route, "i:" IPH, NULL, 0, NULL, NULL, 0 };

	(void)state;
	check_build(&q, "2;15;"
	    "gw:{i:" IPH "}:rec|gw:{i:" IPH "}:rl:d:m|"
	    "|0|sliding_window|0|1|"
	    "default|0|sliding_window|1|60|60|0|2");
}

static void
test_build_anonymous_route(void **state)
{
	struct rl_query q = { &cfg, &route, "i:" IPH, NULL, 0, NULL,
	    "1700000000000000", 0 };

	(void)state;
	policy_set(&route.rate_limit, "route", 1, RL_TOKEN_BUCKET,
	    0, 10, 100, 0, 20);
	/* The route's policy replaces the default; burst on the minute. */
	check_build(&q, "3;20;"
	    "gw:{i:" IPH "}:rec|gw:{i:" IPH "}:rl:r:" RID ":m|gw:{i:" IPH "}:rl:r:" RID ":h|"
	    "1700000000000000|0|sliding_window|0|1|"
	    "route|0|token_bucket|2|60|10|20|2|3600|100|100|3");
}

static void
test_build_burst_per_window(void **state)
{
	struct rl_query q = { &cfg, &route, "i:" IPH, NULL, 0, NULL, NULL, 0 };

	(void)state;
	/* gcra, burst 0: every window's capacity is its limit. */
	policy_set(&route.rate_limit, "route", 1, RL_GCRA, 2, 0, 0, 50, 0);
	check_build(&q, "3;20;"
	    "gw:{i:" IPH "}:rec|gw:{i:" IPH "}:rl:r:" RID ":s|gw:{i:" IPH "}:rl:r:" RID ":d|"
	    "|0|sliding_window|0|1|"
	    "route|0|gcra|2|1|2|2|2|86400|50|50|3");
	/* gcra, burst 7: on the shortest window (the second) only. */
	route.rate_limit.burst_size = 7;
	check_build(&q, "3;20;"
	    "gw:{i:" IPH "}:rec|gw:{i:" IPH "}:rl:r:" RID ":s|gw:{i:" IPH "}:rl:r:" RID ":d|"
	    "|0|sliding_window|0|1|"
	    "route|0|gcra|2|1|2|7|2|86400|50|50|3");
	/* fixed_window: no burst at all. */
	policy_set(&route.rate_limit, "route", 1, RL_FIXED_WINDOW,
	    0, 0, 9, 90, 4);
	check_build(&q, "3;20;"
	    "gw:{i:" IPH "}:rec|gw:{i:" IPH "}:rl:r:" RID ":h|gw:{i:" IPH "}:rl:r:" RID ":d|"
	    "|0|sliding_window|0|1|"
	    "route|0|fixed_window|2|3600|9|0|2|86400|90|0|3");
}

static void
test_build_inherit_and_shadow(void **state)
{
	struct rl_query q = { &cfg, &route, "i:" IPH, NULL, 0, NULL, NULL, 0 };

	(void)state;
	cfg.rate_limit.algorithm = RL_GCRA;
	/* No algorithm of its own: the default's; shadow is flag 1. */
	policy_set(&route.rate_limit, "trial", 0, RL_SLIDING_WINDOW,
	    0, 3, 0, 0, 0);
	route.rate_limit.shadow = 1;
	/* A shadow policy leaves the default in force. */
	check_build(&q, "3;24;"
	    "gw:{i:" IPH "}:rec|gw:{i:" IPH "}:rl:r:" RID ":m|gw:{i:" IPH "}:rl:d:m|"
	    "|0|gcra|0|2|"
	    "trial|1|gcra|1|60|3|3|2|"
	    "default|0|gcra|1|60|60|60|3");
}

static void
test_build_hit_key_and_route(void **state)
{
	struct rl_query q = { &cfg, &route, "k:" HASH, HASH, 0, &keypol,
	    NULL, 0 };

	(void)state;
	cfg.rate_limit.algorithm = RL_TOKEN_BUCKET;
	policy_set(&route.rate_limit, "route", 1, RL_SLIDING_WINDOW,
	    0, 10, 0, 0, 0);
	/* The key's policy first, counted under the key; no default. */
	check_build(&q, "3;24;"
	    "gw:{k:" HASH "}:rec|gw:{k:" HASH "}:rl:k:m|"
	    "gw:{k:" HASH "}:rl:r:" RID ":m|"
	    "|0|token_bucket|0|2|"
	    "key|0|token_bucket|1|60|5|5|2|"
	    "route|0|sliding_window|1|60|10|0|3");
}

static void
test_build_hit_key_only(void **state)
{
	struct rl_query q = { &cfg, &route, "k:" HASH, HASH, 0, &keypol,
	    NULL, 0 };

	(void)state;
	keypol.limit[RL_DAY] = 1000;
	keypol.burst_size = 2;
	keypol.algorithm_set = 1;
	keypol.algorithm = RL_GCRA;
	/* The key has a policy and the route none: no default. */
	check_build(&q, "3;20;"
	    "gw:{k:" HASH "}:rec|gw:{k:" HASH "}:rl:k:m|gw:{k:" HASH "}:rl:k:d|"
	    "|0|sliding_window|0|1|"
	    "key|0|gcra|2|60|5|2|2|86400|1000|1000|3");
}

static void
test_build_hit_key_without_policy(void **state)
{
	struct rl_query q = { &cfg, &route, "k:" HASH, HASH, 0, NULL, NULL, 0 };

	(void)state;
	/* Counted per key (the tag) under the default policy. */
	check_build(&q, "2;15;"
	    "gw:{k:" HASH "}:rec|gw:{k:" HASH "}:rl:d:m|"
	    "|0|sliding_window|0|1|"
	    "default|0|sliding_window|1|60|60|0|2");
	/* A policy that is not present counts as none. */
	keypol.present = 0;
	q.key_policy = &keypol;
	check_build(&q, "2;15;"
	    "gw:{k:" HASH "}:rec|gw:{k:" HASH "}:rl:d:m|"
	    "|0|sliding_window|0|1|"
	    "default|0|sliding_window|1|60|60|0|2");
}

static void
test_build_lookup_default(void **state)
{
	struct rl_query q = { &cfg, &route, "k:" HASH, HASH, 1, NULL, NULL, 0 };

	(void)state;
	/* Record, the four key counters, then the default with flag 2. */
	check_build(&q, "6;19;"
	    "gw:{k:" HASH "}:rec|"
	    "gw:{k:" HASH "}:rl:k:s|gw:{k:" HASH "}:rl:k:m|"
	    "gw:{k:" HASH "}:rl:k:h|gw:{k:" HASH "}:rl:k:d|"
	    "gw:{k:" HASH "}:rl:d:m|"
	    "|1|sliding_window|2|1|"
	    "default|2|sliding_window|1|60|60|0|6");
}

static void
test_build_lookup_route(void **state)
{
	struct rl_query q = { &cfg, &route, "k:" HASH, HASH, 1, NULL, NULL, 0 };

	(void)state;
	policy_set(&route.rate_limit, "route", 1, RL_FIXED_WINDOW,
	    0, 10, 0, 0, 0);
	/* The route's policy: no default, whatever the key has. */
	check_build(&q, "6;19;"
	    "gw:{k:" HASH "}:rec|"
	    "gw:{k:" HASH "}:rl:k:s|gw:{k:" HASH "}:rl:k:m|"
	    "gw:{k:" HASH "}:rl:k:h|gw:{k:" HASH "}:rl:k:d|"
	    "gw:{k:" HASH "}:rl:r:" RID ":m|"
	    "|1|sliding_window|2|1|"
	    "route|0|fixed_window|1|60|10|0|6");
	/* A shadow route policy: the default too, unless the key has one. */
	route.rate_limit.shadow = 1;
	check_build(&q, "7;28;"
	    "gw:{k:" HASH "}:rec|"
	    "gw:{k:" HASH "}:rl:k:s|gw:{k:" HASH "}:rl:k:m|"
	    "gw:{k:" HASH "}:rl:k:h|gw:{k:" HASH "}:rl:k:d|"
	    "gw:{k:" HASH "}:rl:r:" RID ":m|gw:{k:" HASH "}:rl:d:m|"
	    "|1|sliding_window|2|2|"
	    "route|1|fixed_window|1|60|10|0|6|"
	    "default|2|sliding_window|1|60|60|0|7");
}

static void
test_build_limits(void **state)
{
	struct rl_query q = { &cfg, &route, "i:" IPH, NULL, 0, NULL, NULL, 0 };
	struct buf args;
	const char *argv[15];
	size_t argvlen[15];
	int argc = 0;

	(void)state;
	buf_init(&args);
	/* 15 is exactly enough, 14 is not. */
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 15, &argc),
	    2);
	assert_int_equal(argc, 15);
	assert_string_equal(argv[14], "2");
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 14, &argc),
	    -1);
	assert_int_equal(ratelimit_build(&q, &args, NULL, NULL, 0, &argc), -1);
	/* No identity at all. */
	q.tag = NULL;
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 15, &argc),
	    -1);
	/* An identity that was not hashed never names a key. */
	q.tag = "i:203.0.113.9";
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 15, &argc),
	    -1);
	q.tag = "k:" HASH "}x";
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 15, &argc),
	    -1);
	q.tag = NULL;
	q.key_hash = "not-a-hash";
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 15, &argc),
	    -1);
	q.key_hash = NULL;
	/* No applicable window: zero policies. */
	q.tag = "i:" IPH;
	cfg.rate_limit.limit[RL_MINUTE] = 0;
	assert_int_equal(ratelimit_build(&q, &args, argv, argvlen, 15, &argc),
	    1);
	assert_int_equal(argc, 6);
	assert_string_equal(argv[5], "0");
	buf_cleanup(&args);
}

/* ---- replies built by hand ---- */

/*
 * A store_val is a read-only view of a batch's reply; the tests build
 * their own trees on the heap, so they write through E() and free with
 * val_free().
 */
#define E(v) ((struct store_val *)(uintptr_t)(v).elem)

static void
val_free(struct store_val *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		val_free(&E(*v)[i]);
	free((void *)(uintptr_t)v->elem);
	free((void *)(uintptr_t)v->str);
	memset(v, 0, sizeof *v);
}

static struct store_val
v_int(long long i)
{
	struct store_val v;

	memset(&v, 0, sizeof v);
	v.type = STORE_INT;
	v.i = i;
	return v;
}

static struct store_val
v_str(const char *s)
{
	struct store_val v;

	memset(&v, 0, sizeof v);
	v.type = STORE_STR;
	v.str = xstrdup(s);
	v.len = strlen(s);
	return v;
}

static struct store_val
v_arr(size_t n)
{
	struct store_val v;

	memset(&v, 0, sizeof v);
	v.type = STORE_ARR;
	v.n = n;
	v.elem = n ? xcalloc(n, sizeof *v.elem) : NULL;
	return v;
}

static void
v_window(struct store_val *e, const char *name, long secs, const char *alg,
    long q, long b, long rem, long reset, int shadow, int rej)
{
	e[0] = v_str(name);
	e[1] = v_int(secs);
	e[2] = v_str(alg);
	e[3] = v_int(q);
	e[4] = v_int(b);
	e[5] = v_int(rem);
	e[6] = v_int(reset);
	e[7] = v_int(shadow);
	e[8] = v_int(rej);
}

/* A rejected reply: route minute admits, route hour rejects, and a
 * shadow token bucket past its limit. */
static struct store_val
good_reply(void)
{
	struct store_val v = v_arr(5 + 3 * 9);

	E(v)[0] = v_int(1);
	E(v)[1] = v_int(1700000000123LL);
	E(v)[2] = v_int(1800500);
	E(v)[3] = v_arr(0);
	E(v)[4] = v_int(3);
	v_window(&E(v)[5], "route", 60, "sliding_window", 10, 0, 7, 30000,
	    0, 0);
	v_window(&E(v)[14], "route", 3600, "sliding_window", 100, 0, 0,
	    1800500, 0, 1);
	v_window(&E(v)[23], "trial", 1, "token_bucket", 5, 20, 0, 250,
	    1, 1);
	return v;
}

static struct store_val
lookup_reply(int status, int nwin)
{
	struct store_val v = v_arr(5 + (size_t)nwin * 9), *r;
	int i;

	E(v)[0] = v_int(status);
	E(v)[1] = v_int(1700000000000LL);
	E(v)[2] = v_int(0);
	E(v)[3] = v_arr(9);
	r = E(E(v)[3]);
	r[0] = v_str("0123456789abcdef");
	r[1] = v_str("billing service");
	r[2] = v_str("1800000000");
	r[3] = v_str("gcra");
	r[4] = v_str("0");
	r[5] = v_str("30");
	r[6] = v_str("0");
	r[7] = v_str("1000");
	r[8] = v_str("4");
	E(v)[4] = v_int(nwin);
	for (i = 0; i < nwin; i++)
		v_window(&E(v)[5 + i * 9], "key", i ? 86400 : 60, "gcra",
		    i ? 1000 : 30, i ? 1000 : 4, 3, 2000, 0, 0);
	return v;
}

static void
test_parse_good(void **state)
{
	struct store_val v = good_reply();
	struct rl_result res;

	(void)state;
	assert_int_equal(ratelimit_parse(&v, &res), 0);
	assert_int_equal(res.status, RL_REJECTED);
	assert_true(res.now_ms == 1700000000123LL);
	assert_int_equal(res.retry_after_ms, 1800500);
	assert_int_equal(res.have_record, 0);
	assert_int_equal(res.n, 3);
	assert_string_equal(res.win[0].policy, "route");
	assert_int_equal(res.win[0].window, RL_MINUTE);
	assert_int_equal(res.win[0].algorithm, RL_SLIDING_WINDOW);
	assert_int_equal(res.win[0].quota, 10);
	assert_int_equal(res.win[0].remaining, 7);
	assert_int_equal(res.win[0].reset_ms, 30000);
	assert_int_equal(res.win[1].window, RL_HOUR);
	assert_int_equal(res.win[1].rejected, 1);
	assert_int_equal(res.win[2].window, RL_SECOND);
	assert_int_equal(res.win[2].algorithm, RL_TOKEN_BUCKET);
	assert_int_equal(res.win[2].burst, 20);
	assert_int_equal(res.win[2].shadow, 1);
	ratelimit_result_cleanup(&res);
	val_free(&v);
}

static void
test_parse_lookup(void **state)
{
	struct store_val v = lookup_reply(0, 2);
	struct rl_result res;

	(void)state;
	assert_int_equal(ratelimit_parse(&v, &res), 0);
	assert_int_equal(res.status, RL_ADMITTED);
	assert_int_equal(res.have_record, 1);
	assert_string_equal(res.record.id, "0123456789abcdef");
	assert_string_equal(res.record.name, "billing service");
	assert_true(res.record.expires == 1800000000LL);
	assert_int_equal(res.record.policy.present, 1);
	assert_int_equal(res.record.policy.algorithm_set, 1);
	assert_int_equal(res.record.policy.algorithm, RL_GCRA);
	assert_int_equal(res.record.policy.limit[RL_SECOND], 0);
	assert_int_equal(res.record.policy.limit[RL_MINUTE], 30);
	assert_int_equal(res.record.policy.limit[RL_DAY], 1000);
	assert_int_equal(res.record.policy.burst_size, 4);
	assert_null(res.record.policy.name);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.win[1].window, RL_DAY);
	ratelimit_result_cleanup(&res);
	val_free(&v);

	/* A key with no limits has no policy; alg "" is not set. */
	v = lookup_reply(3, 0);
	val_free(&E(E(v)[3])[3]);
	E(E(v)[3])[3] = v_str("");
	val_free(&E(E(v)[3])[5]);
	E(E(v)[3])[5] = v_str("0");
	val_free(&E(E(v)[3])[7]);
	E(E(v)[3])[7] = v_int(0);
	assert_int_equal(ratelimit_parse(&v, &res), 0);
	assert_int_equal(res.status, RL_KEY_REVOKED);
	assert_int_equal(res.have_record, 1);
	assert_int_equal(res.record.policy.present, 0);
	assert_int_equal(res.record.policy.algorithm_set, 0);
	ratelimit_result_cleanup(&res);
	val_free(&v);

	/* Unknown key: an empty record. */
	v = v_arr(5);
	E(v)[0] = v_int(2);
	E(v)[1] = v_int(1);
	E(v)[2] = v_int(0);
	E(v)[3] = v_arr(0);
	E(v)[4] = v_int(0);
	assert_int_equal(ratelimit_parse(&v, &res), 0);
	assert_int_equal(res.status, RL_KEY_UNKNOWN);
	assert_int_equal(res.have_record, 0);
	assert_int_equal(res.n, 0);
	ratelimit_result_cleanup(&res);
	val_free(&v);
}

/* Replaces element i (of v, or of window/record sub-arrays) with r. */
static void
replace(struct store_val *v, size_t i, struct store_val r)
{
	val_free(&E(*v)[i]);
	E(*v)[i] = r;
}

static void
expect_bad(struct store_val *v)
{
	struct rl_result res;

	assert_int_equal(ratelimit_parse(v, &res), -1);
	assert_int_equal(res.n, 0);
	ratelimit_result_cleanup(&res);
	val_free(v);
}

static void
test_parse_malformed(void **state)
{
	struct store_val v;
	struct rl_result res;

	(void)state;
	assert_int_equal(ratelimit_parse(NULL, &res), -1);
	v = v_int(1);
	expect_bad(&v);
	v = v_str("ERR ratelimit.lua: bad flags");
	v.type = STORE_ERR;
	expect_bad(&v);
	v.type = STORE_NIL;
	expect_bad(&v);
	v = v_arr(4);
	expect_bad(&v);

	v = good_reply();		/* status out of range */
	replace(&v, 0, v_int(5));
	expect_bad(&v);
	v = good_reply();
	replace(&v, 0, v_int(-1));
	expect_bad(&v);
	v = good_reply();		/* nwin disagrees with the length */
	replace(&v, 4, v_int(2));
	expect_bad(&v);
	v = good_reply();
	replace(&v, 4, v_int(4));
	expect_bad(&v);
	v = good_reply();		/* record not an array */
	replace(&v, 3, v_str(""));
	expect_bad(&v);
	v = good_reply();		/* negative retry */
	replace(&v, 2, v_int(-5));
	expect_bad(&v);
	v = good_reply();		/* a window of 59 s */
	replace(&v, 6, v_int(59));
	expect_bad(&v);
	v = good_reply();		/* unknown algorithm */
	replace(&v, 7, v_str("leaky"));
	expect_bad(&v);
	v = good_reply();		/* quota 0 */
	replace(&v, 8, v_int(0));
	expect_bad(&v);
	v = good_reply();		/* negative remaining */
	replace(&v, 10, v_int(-1));
	expect_bad(&v);
	v = good_reply();		/* shadow 2 */
	replace(&v, 12, v_int(2));
	expect_bad(&v);
	v = good_reply();		/* rejected as text that is no number */
	replace(&v, 13, v_str("1x"));
	expect_bad(&v);
	v = good_reply();		/* empty policy name */
	replace(&v, 5, v_str(""));
	expect_bad(&v);
	v = good_reply();		/* policy name not a string */
	replace(&v, 5, v_int(3));
	expect_bad(&v);

	v = lookup_reply(0, 1);		/* record too short */
	val_free(&E(v)[3]);
	E(v)[3] = v_arr(8);
	expect_bad(&v);
	v = lookup_reply(0, 1);		/* id too long */
	replace(&E(v)[3], 0, v_str("0123456789abcdef0123456789abcdef0"));
	expect_bad(&v);
	v = lookup_reply(0, 1);		/* limit not a number */
	replace(&E(v)[3], 5, v_str("ten"));
	expect_bad(&v);
	v = lookup_reply(0, 1);		/* negative expiry */
	replace(&E(v)[3], 2, v_str("-1"));
	expect_bad(&v);
	v = lookup_reply(2, 0);		/* unknown key with a record */
	expect_bad(&v);
	v = lookup_reply(4, 1);		/* expired key with windows */
	expect_bad(&v);

	/* More windows than RL_MAX_WINDOWS. */
	v = v_arr(5 + 13 * 9);
	E(v)[0] = v_int(0);
	E(v)[1] = v_int(1);
	E(v)[2] = v_int(0);
	E(v)[3] = v_arr(0);
	E(v)[4] = v_int(13);
	for (size_t i = 0; i < 13; i++)
		v_window(&E(v)[5 + i * 9], "d", 60, "gcra", 1, 1, 0, 0, 0, 0);
	expect_bad(&v);
}

/* Every element of a good reply swapped for every other type: no crash. */
static void
test_parse_mutations(void **state)
{
	struct store_val v, repl[4];
	struct rl_result res;
	size_t i, t, n = 5 + 2 * 9;

	(void)state;
	for (i = 0; i < n; i++) {
		for (t = 0; t < 4; t++) {
			v = lookup_reply(0, 2);
			repl[0] = v_int(-7);
			repl[1] = v_str("");
			repl[2] = v_arr(1);
			E(repl[2])[0] = v_int(1);
			memset(&repl[3], 0, sizeof repl[3]);
			replace(&v, i, repl[t]);
			for (size_t k = 0; k < 4; k++)
				if (k != t)
					val_free(&repl[k]);
			if (ratelimit_parse(&v, &res) == 0)
				assert_true(res.n <= RL_MAX_WINDOWS);
			ratelimit_result_cleanup(&res);
			val_free(&v);
		}
	}
}

/* ---- headers ---- */

static void
result_add(struct rl_result *res, const char *policy, enum rl_window w,
    enum rl_algorithm alg, long q, long b, long rem, long reset_ms,
    int shadow, int rejected)
{
	struct rl_window_result *wr = &res->win[res->n++];

	snprintf(wr->policy, sizeof wr->policy, "%s", policy);
	wr->window = w;
	wr->algorithm = alg;
	wr->quota = q;
	wr->burst = b;
	wr->remaining = rem;
	wr->reset_ms = reset_ms;
	wr->shadow = shadow;
	wr->rejected = rejected;
}

static void
test_headers_admitted(void **state)
{
	struct rl_result res;
	struct hdrs h;

	(void)state;
	memset(&res, 0, sizeof res);
	res.now_ms = 1700000000123LL;
	result_add(&res, "route", RL_MINUTE, RL_SLIDING_WINDOW, 10, 0, 7,
	    30000, 0, 0);
	result_add(&res, "route", RL_HOUR, RL_SLIDING_WINDOW, 100, 0, 97,
	    1800001, 0, 0);
	hdrs_init(&h);
	ratelimit_headers(&res, &h);
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Limit"), "10");
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Remaining"), "7");
	/* ceil((1700000000123 + 30000) / 1000) */
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Reset"), "1700000031");
	assert_string_equal(hdrs_get(&h, "RateLimit-Policy"),
	    "\"route-minute\";q=10;w=60, \"route-hour\";q=100;w=3600");
	assert_string_equal(hdrs_get(&h, "RateLimit"),
	    "\"route-minute\";r=7;t=30, \"route-hour\";r=97;t=1801");
	assert_null(hdrs_get(&h, "Retry-After"));
	assert_int_equal(h.n, 5);
	hdrs_cleanup(&h);
}

static void
test_headers_bucket_and_shadow(void **state)
{
	struct rl_result res;
	struct hdrs h;
	struct buf j;

	(void)state;
	memset(&res, 0, sizeof res);
	res.status = RL_REJECTED;
	res.now_ms = 1700000000000LL;
	res.retry_after_ms = 1001;
	result_add(&res, "key", RL_SECOND, RL_TOKEN_BUCKET, 5, 20, 0, 4000,
	    0, 1);
	result_add(&res, "key", RL_DAY, RL_GCRA, 1000, 1000, 990, 864000,
	    0, 0);
	result_add(&res, "trial", RL_MINUTE, RL_FIXED_WINDOW, 2, 0, 0, 59000,
	    1, 1);
	hdrs_init(&h);
	ratelimit_headers(&res, &h);
	/* Fewest remaining: 0 twice; the real window wins over the shadow. */
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Limit"), "20");
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Remaining"), "0");
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Reset"), "1700000004");
	assert_string_equal(hdrs_get(&h, "RateLimit-Policy"),
	    "\"key-second\";q=5;w=1;apigw-burst=20, "
	    "\"key-day\";q=1000;w=86400;apigw-burst=1000, "
	    "\"trial-minute\";q=2;w=60");
	assert_string_equal(hdrs_get(&h, "RateLimit"),
	    "\"key-second\";r=0;t=4, \"key-day\";r=990;t=864, "
	    "\"trial-minute\";r=0;t=59");
	assert_string_equal(hdrs_get(&h, "Retry-After"), "2");
	hdrs_cleanup(&h);

	buf_init(&j);
	ratelimit_violated_json(&res, &j);
	assert_string_equal(buf_cstr(&j), "[\"key-second\"]");
	buf_cleanup(&j);
}

static void
test_headers_retry_after_rounding(void **state)
{
	static const struct {
		long ms;
		const char *want;
	} cases[] = {
		{ 0, "1" }, { 1, "1" }, { 999, "1" }, { 1000, "1" },
		{ 1001, "2" }, { 59999, "60" }, { 60000, "60" },
		{ 86400000, "86400" },
	};
	struct rl_result res;
	struct hdrs h;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&res, 0, sizeof res);
		res.status = RL_REJECTED;
		res.now_ms = 1000;
		res.retry_after_ms = cases[i].ms;
		result_add(&res, "default", RL_MINUTE, RL_SLIDING_WINDOW, 1,
		    0, 0, cases[i].ms, 0, 1);
		hdrs_init(&h);
		ratelimit_headers(&res, &h);
		assert_string_equal(hdrs_get(&h, "Retry-After"), cases[i].want);
		assert_int_equal(hdrs_count(&h, "Retry-After"), 1);
		hdrs_cleanup(&h);
	}
}

static void
test_headers_none(void **state)
{
	struct rl_result res;
	struct hdrs h;
	struct buf j;

	(void)state;
	memset(&res, 0, sizeof res);
	hdrs_init(&h);
	ratelimit_headers(&res, &h);
	assert_int_equal(h.n, 0);
	hdrs_cleanup(&h);
	buf_init(&j);
	ratelimit_violated_json(&res, &j);
	assert_string_equal(buf_cstr(&j), "[]");
	buf_cleanup(&j);
}

static void
test_headers_name_escaping(void **state)
{
	struct rl_result res;
	struct hdrs h;
	struct buf j;

	(void)state;
	memset(&res, 0, sizeof res);
	res.status = RL_REJECTED;
	result_add(&res, "a\"b\\c\x01", RL_HOUR, RL_SLIDING_WINDOW, 1, 0, 0,
	    1, 0, 1);
	result_add(&res, "x", RL_MINUTE, RL_SLIDING_WINDOW, 1, 0, 0, 1, 0, 1);
	hdrs_init(&h);
	ratelimit_headers(&res, &h);
	assert_string_equal(hdrs_get(&h, "RateLimit"),
	    "\"a\\\"b\\\\c-hour\";r=0;t=1, \"x-minute\";r=0;t=1");
	hdrs_cleanup(&h);
	buf_init(&j);
	ratelimit_violated_json(&res, &j);
	assert_string_equal(buf_cstr(&j),
	    "[\"a\\\"b\\\\c\\u0001-hour\", \"x-minute\"]");
	buf_cleanup(&j);
}

/* build then parse agree on names: the script answer for a build. */
static void
test_roundtrip_names(void **state)
{
	struct rl_result res;
	struct store_val v = good_reply();
	struct buf j;

	(void)state;
	assert_int_equal(ratelimit_parse(&v, &res), 0);
	buf_init(&j);
	ratelimit_violated_json(&res, &j);
	assert_string_equal(buf_cstr(&j), "[\"route-hour\"]");
	buf_cleanup(&j);
	ratelimit_result_cleanup(&res);
	val_free(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_build_anonymous_default, setup),
		cmocka_unit_test_setup(test_build_anonymous_route, setup),
		cmocka_unit_test_setup(test_build_burst_per_window, setup),
		cmocka_unit_test_setup(test_build_inherit_and_shadow, setup),
		cmocka_unit_test_setup(test_build_hit_key_and_route, setup),
		cmocka_unit_test_setup(test_build_hit_key_only, setup),
		cmocka_unit_test_setup(test_build_hit_key_without_policy, setup),
		cmocka_unit_test_setup(test_build_lookup_default, setup),
		cmocka_unit_test_setup(test_build_lookup_route, setup),
		cmocka_unit_test_setup(test_build_limits, setup),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_lookup),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_mutations),
		cmocka_unit_test(test_headers_admitted),
		cmocka_unit_test(test_headers_bucket_and_shadow),
		cmocka_unit_test(test_headers_retry_after_rounding),
		cmocka_unit_test(test_headers_none),
		cmocka_unit_test(test_headers_name_escaping),
		cmocka_unit_test(test_roundtrip_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
