/*
 * Unit tests for local_limit (the per-process rate limits of
 * redis.on_failure = "local") on a clock the test moves by hand: each
 * algorithm admits floor(limit / local_share) (at least 1) per window,
 * buckets their share of the burst back to back, a rejection's
 * Retry-After is when a retry is admitted, and the headers describe the
 * local decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "hdrs.h"
#include "local_limit.h"
#include "ratelimit.h"

#define S 1000000LL /* one second in us */
/* A minute boundary: fixed windows and sliding slots start here. */
#define T0 (1700000040LL * S)

static const enum rl_algorithm algs[] = {
    RL_SLIDING_WINDOW, RL_FIXED_WINDOW, RL_TOKEN_BUCKET, RL_GCRA};

static struct rl_policy
policy(enum rl_window w, long limit, long burst)
{
	struct rl_policy p;

	memset(&p, 0, sizeof p);
	p.present = 1;
	p.limit[w] = limit;
	p.burst_size = burst;
	return p;
}

static struct local_policy
lpol(const char *id, const char *name, enum rl_algorithm alg,
    const struct rl_policy *p)
{
	struct local_policy l;

	l.id = id;
	l.name = name;
	l.algorithm = alg;
	l.p = p;
	return l;
}

/* n requests from now on, step us apart; returns how many were admitted. */
static int
admitted(struct local_limit *ll, const struct local_policy *lp, size_t np,
    long share, long long now, int n, long long step)
{
	struct rl_result res;
	int i, ok = 0;

	for (i = 0; i < n; i++)
		if (local_limit_check(
		        ll, lp, np, share, now + i * step, &res) == RL_ADMITTED)
			ok++;
	return ok;
}

static void
test_share(void **state)
{
	(void)state;
	assert_int_equal(local_limit_share(60, 4), 15);
	assert_int_equal(local_limit_share(10, 4), 2);
	assert_int_equal(local_limit_share(3, 4), 1);
	assert_int_equal(local_limit_share(1, 100), 1);
	assert_int_equal(local_limit_share(10, 1), 10);
	assert_int_equal(local_limit_share(1000000000L, 1), LOCAL_LIMIT_MAX);
}

/* Each algorithm, several limits: floor(L / share) per window, >= 1. */
static void
test_admits_share_per_window(void **state)
{
	static const long limits[] = {60, 10, 3, 1000};
	static const long shares[] = {4, 4, 4, 7};
	size_t a, i;

	(void)state;
	for (a = 0; a < 4; a++)
		for (i = 0; i < 4; i++) {
			struct local_limit *ll = local_limit_new();
			struct rl_policy p = policy(RL_MINUTE, limits[i], 0);
			struct local_policy lp =
			    lpol("r tag route", "route", algs[a], &p);
			long want = local_limit_share(limits[i], shares[i]);
			int got;

			/* Twice the share within the first second. */
			got = admitted(ll, &lp, 1, shares[i], T0,
			    (int)(2 * want + 5), 1000);
			if (got != want)
				fail_msg("%s, limit %ld / %ld: %d admitted, "
				         "want %ld",
				    rl_algorithm_names[algs[a]], limits[i],
				    shares[i], got, want);
			/* A window (plus the sliding slot) later: again. */
			got = admitted(ll, &lp, 1, shares[i], T0 + 64 * S,
			    (int)(2 * want + 5), 1000);
			if (got != want)
				fail_msg("%s, limit %ld / %ld, next window: "
				         "%d admitted, want %ld",
				    rl_algorithm_names[algs[a]], limits[i],
				    shares[i], got, want);
			local_limit_free(ll);
		}
}

/* Spread evenly over a long time, no algorithm exceeds the share. */
static void
test_never_above_share(void **state)
{
	size_t a;

	(void)state;
	for (a = 0; a < 4; a++) {
		struct local_limit *ll = local_limit_new();
		struct rl_policy p = policy(RL_SECOND, 40, 0);
		struct local_policy lp = lpol("d tag ", "default", algs[a], &p);
		struct rl_result res;
		long long t;
		int in_window[1000] = {0}, i, admitted_in;

		/* 1000 requests 2 ms apart over 2 s: count each 1 s span. */
		for (i = 0; i < 1000; i++) {
			t = T0 + 333 + i * 2000LL;
			in_window[i] = local_limit_check(ll, &lp, 1, 4, t,
			                   &res) == RL_ADMITTED;
		}
		for (i = 0; i + 500 <= 1000; i++) {
			int j;

			admitted_in = 0;
			for (j = i; j < i + 500; j++)
				admitted_in += in_window[j];
			/* fixed_window is per aligned window; buckets
			 * refill, so any 1 s may hold B + L of them. */
			if (algs[a] == RL_SLIDING_WINDOW && admitted_in > 10)
				fail_msg("sliding_window: %d in 1 s from "
				         "request %d",
				    admitted_in, i);
			if (admitted_in > 20)
				fail_msg("%s: %d in 1 s from request %d",
				    rl_algorithm_names[algs[a]], admitted_in,
				    i);
		}
		local_limit_free(ll);
	}
}

/* Buckets: the share of burst_size back to back, then one per W / L'. */
static void
test_bucket_burst(void **state)
{
	size_t a;

	(void)state;
	for (a = 2; a < 4; a++) {
		struct local_limit *ll = local_limit_new();
		/* 60/min, burst 20, share 4: B' = 5, one per 4 s. */
		struct rl_policy p = policy(RL_MINUTE, 60, 20);
		struct local_policy lp = lpol("k tag ", "key", algs[a], &p);
		struct rl_result res;

		assert_int_equal(admitted(ll, &lp, 1, 4, T0, 20, 1000), 5);
		local_limit_check(ll, &lp, 1, 4, T0 + 30000, &res);
		assert_int_equal(res.status, RL_REJECTED);
		assert_int_equal(res.n, 1);
		assert_int_equal(res.win[0].quota, 15);
		assert_int_equal(res.win[0].burst, 5);
		assert_int_equal(res.win[0].remaining, 0);
		/* The first of the 5 (at T0) left room 4 s after it. */
		assert_true(
		    res.retry_after_ms <= 4000 && res.retry_after_ms >= 3960);
		assert_int_equal(
		    admitted(ll, &lp, 1, 4, T0 + 4 * S, 3, 1000), 1);
		local_limit_free(ll);
	}
}

/* A rejection's Retry-After: a retry that late is admitted. */
static void
test_retry_after(void **state)
{
	static const long long expect_ms[] = {
	    /* sliding: the slot of T0 leaves 21 slots of 3 s later */
	    63000 - 20,
	    /* fixed: the minute ends */
	    60000 - 20,
	    /* buckets: the first unit comes back 4 s after T0 */
	    4000 - 20, 4000 - 20};
	size_t a;

	(void)state;
	for (a = 0; a < 4; a++) {
		struct local_limit *ll = local_limit_new();
		struct rl_policy p = policy(RL_MINUTE, 60, 0);
		struct local_policy lp = lpol("r tag x", "route", algs[a], &p);
		struct rl_result res;
		struct hdrs h;
		long long retry;

		assert_int_equal(admitted(ll, &lp, 1, 4, T0, 15, 1000), 15);
		local_limit_check(ll, &lp, 1, 4, T0 + 20000, &res);
		assert_int_equal(res.status, RL_REJECTED);
		assert_int_equal(res.win[0].rejected, 1);
		if (res.retry_after_ms != expect_ms[a])
			fail_msg("%s: retry after %ld ms, want %lld",
			    rl_algorithm_names[algs[a]], res.retry_after_ms,
			    expect_ms[a]);
		hdrs_init(&h);
		ratelimit_headers(&res, &h);
		{
			char want[32];

			snprintf(want, sizeof want, "%lld",
			    (expect_ms[a] + 999) / 1000);
			assert_string_equal(hdrs_get(&h, "Retry-After"), want);
		}
		assert_string_equal(hdrs_get(&h, "X-RateLimit-Remaining"), "0");
		hdrs_cleanup(&h);
		retry = T0 + 20000 + res.retry_after_ms * 1000;
		/* Just before: still rejected; at the time: admitted. */
		assert_int_equal(
		    local_limit_check(ll, &lp, 1, 4, retry - 2000, &res),
		    RL_REJECTED);
		assert_int_equal(
		    local_limit_check(ll, &lp, 1, 4, retry, &res), RL_ADMITTED);
		local_limit_free(ll);
	}
}

/* The headers of an admission give the local quota and what is left. */
static void
test_headers(void **state)
{
	struct local_limit *ll = local_limit_new();
	struct rl_policy p = policy(RL_MINUTE, 60, 0);
	struct local_policy lp = lpol("r tag x", "route", RL_FIXED_WINDOW, &p);
	struct rl_result res;
	struct hdrs h;

	(void)state;
	local_limit_check(ll, &lp, 1, 4, T0 + 10 * S, &res);
	assert_int_equal(res.status, RL_ADMITTED);
	assert_int_equal(res.now_ms, T0 / 1000 + 10000);
	hdrs_init(&h);
	ratelimit_headers(&res, &h);
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Limit"), "15");
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Remaining"), "14");
	assert_string_equal(hdrs_get(&h, "X-RateLimit-Reset"), "1700000100");
	assert_string_equal(
	    hdrs_get(&h, "RateLimit-Policy"), "\"route-minute\";q=15;w=60");
	assert_string_equal(
	    hdrs_get(&h, "RateLimit"), "\"route-minute\";r=14;t=50");
	assert_null(hdrs_get(&h, "Retry-After"));
	hdrs_cleanup(&h);
	local_limit_free(ll);
}

/*
 * Several policies and windows: a rejected request takes nothing from
 * the others; a shadow policy never rejects and shows 0 past its limit.
 */
static void
test_policies(void **state)
{
	struct local_limit *ll = local_limit_new();
	struct rl_policy tight = policy(RL_MINUTE, 8, 0);
	struct rl_policy wide = policy(RL_SECOND, 400, 0);
	struct rl_policy shadow = policy(RL_HOUR, 4, 0);
	struct local_policy lp[3];
	struct rl_result res;
	int i;

	(void)state;
	wide.limit[RL_DAY] = 4000;
	shadow.shadow = 1;
	lp[0] = lpol("k a ", "key", RL_SLIDING_WINDOW, &tight);
	lp[1] = lpol("r a x", "route", RL_GCRA, &wide);
	lp[2] = lpol("d a ", "trial", RL_FIXED_WINDOW, &shadow);
	for (i = 0; i < 5; i++)
		local_limit_check(ll, lp, 3, 4, T0 + i * 1000, &res);
	assert_int_equal(res.status, RL_REJECTED);
	assert_int_equal(res.n, 4);
	assert_string_equal(res.win[0].policy, "key");
	assert_int_equal(res.win[0].window, RL_MINUTE);
	assert_int_equal(res.win[0].rejected, 1);
	assert_int_equal(res.win[1].window, RL_SECOND);
	assert_int_equal(res.win[1].quota, 100);
	assert_int_equal(res.win[1].burst, 100);
	assert_int_equal(res.win[1].remaining, 98);
	assert_int_equal(res.win[2].window, RL_DAY);
	assert_int_equal(res.win[2].quota, 1000);
	assert_int_equal(res.win[2].remaining, 998);
	assert_int_equal(res.win[3].shadow, 1);
	assert_int_equal(res.win[3].quota, 1);
	assert_int_equal(res.win[3].remaining, 0);
	/* The shadow window past its limit does not reject on its own. */
	lp[0] = lpol("k b ", "key", RL_SLIDING_WINDOW, &tight);
	lp[1] = lpol("r b x", "route", RL_GCRA, &wide);
	lp[2] = lpol("d b ", "trial", RL_FIXED_WINDOW, &shadow);
	assert_int_equal(admitted(ll, lp, 3, 4, T0, 2, 1000), 2);
	local_limit_free(ll);
}

/* Another identity, or the same one after the policy changed: afresh. */
static void
test_identities(void **state)
{
	struct local_limit *ll = local_limit_new();
	struct rl_policy p = policy(RL_MINUTE, 8, 0);
	struct local_policy a = lpol("r one x", "route", RL_FIXED_WINDOW, &p);
	struct local_policy b = lpol("r two x", "route", RL_FIXED_WINDOW, &p);
	char id[32];
	int i;

	(void)state;
	assert_int_equal(admitted(ll, &a, 1, 4, T0, 5, 1000), 2);
	assert_int_equal(admitted(ll, &b, 1, 4, T0, 5, 1000), 2);
	assert_int_equal(admitted(ll, &a, 1, 4, T0 + S, 5, 1000), 0);
	/* A reload to 12/min: a new allowance of 3. */
	p.limit[RL_MINUTE] = 12;
	assert_int_equal(admitted(ll, &a, 1, 4, T0 + S, 5, 1000), 3);
	/* Many more identities than the table holds: "one" gave way. */
	for (i = 0; i < 4 * LOCAL_LIMIT_ENTRIES; i++) {
		struct local_policy o;

		snprintf(id, sizeof id, "r other-%d x", i);
		o = lpol(id, "route", RL_FIXED_WINDOW, &p);
		assert_int_equal(admitted(ll, &o, 1, 4, T0 + 2 * S, 1, 0), 1);
	}
	assert_int_equal(admitted(ll, &a, 1, 4, T0 + 3 * S, 5, 1000), 3);
	local_limit_free(ll);
	local_limit_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_admits_share_per_window),
	    cmocka_unit_test(test_never_above_share),
	    cmocka_unit_test(test_bucket_burst),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_policies),
	    cmocka_unit_test(test_identities),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
