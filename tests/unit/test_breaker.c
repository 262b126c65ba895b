/*
 * Unit tests for the breaker's state machine (breaker_sm_*, the
 * per-process copy that decides while Redis is unreachable and follows
 * src/lua/breaker.lua's rules) on a clock the test moves by hand, and
 * for breaker_exchange_ms (how long a slot and the trial lease last).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "breaker.h"
#include "config.h"

static struct breaker_conf
conf(long fail, long recovery_s, long succ)
{
	struct breaker_conf c;

	memset(&c, 0, sizeof c);
	c.failure_threshold = fail;
	c.recovery_timeout_s = recovery_s;
	c.success_threshold = succ;
	return c;
}

/* Checks at now; returns the verdict, *wait and *trial as given. */
static enum breaker_verdict
check(struct breaker_sm *sm, long long now, long long *wait, int *trial)
{
	long long w;
	int t;
	enum breaker_verdict v = breaker_sm_check(sm, now, 1500, &w, &t);

	if (wait != NULL)
		*wait = w;
	if (trial != NULL)
		*trial = t;
	return v;
}

static void
test_closed_counts_consecutive_failures(void **state)
{
	struct breaker_conf c = conf(3, 2, 1);
	struct breaker_sm sm;
	int trial;

	(void)state;
	breaker_sm_init(&sm);
	assert_int_equal(breaker_sm_state(&sm, 0), BREAKER_CLOSED);
	assert_int_equal(check(&sm, 0, NULL, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 0);
	breaker_sm_report(&sm, &c, 10, 1, 0, 0);
	breaker_sm_report(&sm, &c, 20, 1, 0, 0);
	assert_int_equal(sm.failures, 2);
	/* a success resets the count */
	breaker_sm_report(&sm, &c, 30, 0, 1, 0);
	assert_int_equal(sm.failures, 0);
	breaker_sm_report(&sm, &c, 40, 1, 0, 0);
	breaker_sm_report(&sm, &c, 50, 1, 0, 0);
	assert_int_equal(breaker_sm_state(&sm, 50), BREAKER_CLOSED);
	breaker_sm_report(&sm, &c, 60, 1, 0, 0);
	assert_int_equal(breaker_sm_state(&sm, 60), BREAKER_OPEN);
	assert_int_equal(sm.until_ms, 2060);
}

static void
test_retried_attempts_each_count(void **state)
{
	struct breaker_conf c = conf(3, 1, 1);
	struct breaker_sm sm;

	(void)state;
	breaker_sm_init(&sm);
	/* two failed attempts, then the third succeeded: reset */
	breaker_sm_report(&sm, &c, 0, 2, 1, 0);
	assert_int_equal(sm.failures, 0);
	assert_int_equal(breaker_sm_state(&sm, 0), BREAKER_CLOSED);
	/* three failed attempts of one request reach the threshold, even
	 * though its last attempt... none succeeded */
	breaker_sm_report(&sm, &c, 5, 3, 0, 0);
	assert_int_equal(breaker_sm_state(&sm, 5), BREAKER_OPEN);

	/* failures reaching the threshold open it before a final success
	 * could reset them */
	breaker_sm_init(&sm);
	breaker_sm_report(&sm, &c, 0, 1, 0, 0);
	breaker_sm_report(&sm, &c, 0, 2, 1, 0);
	assert_int_equal(breaker_sm_state(&sm, 0), BREAKER_OPEN);
}

static void
test_open_rejects_until_recovery(void **state)
{
	struct breaker_conf c = conf(1, 5, 1);
	struct breaker_sm sm;
	long long wait;

	(void)state;
	breaker_sm_init(&sm);
	breaker_sm_report(&sm, &c, 1000, 1, 0, 0);
	assert_int_equal(check(&sm, 1000, &wait, NULL), BREAKER_REJECT_OPEN);
	assert_int_equal(wait, 5000);
	assert_int_equal(check(&sm, 5999, &wait, NULL), BREAKER_REJECT_OPEN);
	assert_int_equal(wait, 1);
	/* late reports of requests admitted before it opened: ignored */
	breaker_sm_report(&sm, &c, 3000, 0, 1, 0);
	breaker_sm_report(&sm, &c, 3000, 4, 0, 0);
	assert_int_equal(sm.until_ms, 6000);
	assert_int_equal(breaker_sm_state(&sm, 6000), BREAKER_HALF_OPEN);
}

static void
test_half_open_one_trial(void **state)
{
	struct breaker_conf c = conf(1, 1, 2);
	struct breaker_sm sm;
	long long wait;
	int trial;

	(void)state;
	breaker_sm_init(&sm);
	breaker_sm_report(&sm, &c, 0, 1, 0, 0);
	assert_int_equal(check(&sm, 1000, &wait, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
	/* while the trial runs, the others wait */
	assert_int_equal(check(&sm, 1100, &wait, &trial), BREAKER_REJECT_TRIAL);
	assert_int_equal(trial, 0);
	assert_int_equal(wait, 1400);
	/* a success counts; the next request is the next trial */
	breaker_sm_report(&sm, &c, 1200, 0, 1, 1);
	assert_int_equal(breaker_sm_state(&sm, 1200), BREAKER_HALF_OPEN);
	assert_int_equal(sm.successes, 1);
	/* a non-trial report (admitted before it opened) says nothing */
	breaker_sm_report(&sm, &c, 1250, 0, 1, 0);
	assert_int_equal(sm.successes, 1);
	assert_int_equal(check(&sm, 1300, &wait, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
	breaker_sm_report(&sm, &c, 1400, 0, 1, 1);
	/* success_threshold reached: closed, counts from zero */
	assert_int_equal(breaker_sm_state(&sm, 1400), BREAKER_CLOSED);
	assert_int_equal(sm.failures, 0);
	assert_int_equal(check(&sm, 1400, &wait, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 0);
}

static void
test_failed_trial_reopens(void **state)
{
	struct breaker_conf c = conf(2, 3, 5);
	struct breaker_sm sm;
	long long wait;
	int trial;

	(void)state;
	breaker_sm_init(&sm);
	breaker_sm_report(&sm, &c, 0, 2, 0, 0);
	assert_int_equal(check(&sm, 3000, &wait, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
	breaker_sm_report(&sm, &c, 3000, 0, 1, 1);
	assert_int_equal(check(&sm, 3100, &wait, &trial), BREAKER_ADMIT);
	/* one failure is enough in half-open, whatever failure_threshold */
	breaker_sm_report(&sm, &c, 3200, 1, 0, 1);
	assert_int_equal(breaker_sm_state(&sm, 3200), BREAKER_OPEN);
	assert_int_equal(sm.successes, 0);
	assert_int_equal(check(&sm, 3200, &wait, &trial), BREAKER_REJECT_OPEN);
	assert_int_equal(wait, 3000);
}

static void
test_hung_trial_expires(void **state)
{
	struct breaker_conf c = conf(1, 1, 1);
	struct breaker_sm sm;
	long long wait;
	int trial;

	(void)state;
	breaker_sm_init(&sm);
	breaker_sm_report(&sm, &c, 0, 1, 0, 0);
	assert_int_equal(check(&sm, 1000, &wait, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
	/* the trial never reports: after its lease (1500 ms) another goes */
	assert_int_equal(check(&sm, 2499, &wait, &trial), BREAKER_REJECT_TRIAL);
	assert_int_equal(check(&sm, 2500, &wait, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
}

static void
test_neutral_outcome_keeps_state(void **state)
{
	struct breaker_conf c = conf(2, 1, 1);
	struct breaker_sm sm;
	int trial;

	(void)state;
	breaker_sm_init(&sm);
	breaker_sm_report(&sm, &c, 0, 1, 0, 0);
	/* not forwarded or the client went away: neither */
	breaker_sm_report(&sm, &c, 0, 0, 0, 0);
	assert_int_equal(sm.failures, 1);
	breaker_sm_report(&sm, &c, 0, 1, 0, 0);
	assert_int_equal(check(&sm, 1000, NULL, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
	/* a trial that ended neither way gives the trial back */
	breaker_sm_report(&sm, &c, 1000, 0, 0, 1);
	assert_int_equal(breaker_sm_state(&sm, 1000), BREAKER_HALF_OPEN);
	assert_int_equal(check(&sm, 1001, NULL, &trial), BREAKER_ADMIT);
	assert_int_equal(trial, 1);
}

static void
test_exchange_ms(void **state)
{
	struct route rt;

	(void)state;
	memset(&rt, 0, sizeof rt);
	rt.timeout_ms = 500;
	assert_int_equal(breaker_exchange_ms(&rt), 500);
	rt.retries = 2; /* 3 x 500 + 50 + 100 */
	assert_int_equal(breaker_exchange_ms(&rt), 1650);
	rt.retries = 7; /* backoffs 50..800, then 1000 twice */
	assert_int_equal(breaker_exchange_ms(&rt),
	    8 * 500 + 50 + 100 + 200 + 400 + 800 + 2000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_closed_counts_consecutive_failures),
	    cmocka_unit_test(test_retried_attempts_each_count),
	    cmocka_unit_test(test_open_rejects_until_recovery),
	    cmocka_unit_test(test_half_open_one_trial),
	    cmocka_unit_test(test_failed_trial_reopens),
	    cmocka_unit_test(test_hung_trial_expires),
	    cmocka_unit_test(test_neutral_outcome_keeps_state),
	    cmocka_unit_test(test_exchange_ms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
