/*
 * Unit tests for plan.c: slots, the replies' lifetime and the runs that
 * need no Redis (an empty plan, and a Redis that cannot be reached: a
 * loopback port bound by the test but not listening, so connects are
 * refused at once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "plan.h"
#include "store.h"

static const char *ping_argv[] = {"PING"};

static struct store_cmd
cmd_ping(void)
{
	struct store_cmd c;

	memset(&c, 0, sizeof c);
	c.script = -1;
	c.argc = 1;
	c.argv = ping_argv;
	return c;
}

static void
test_add_until_full(void **state)
{
	struct plan p;
	struct store_cmd c = cmd_ping();
	const char *other[] = {"GET", "k"};
	int i;

	(void)state;
	plan_init(&p);
	assert_int_equal(p.n, 0);
	for (i = 0; i < PLAN_MAX; i++) {
		if (i == 3) {
			c.argc = 2;
			c.argv = other;
		}
		assert_int_equal(plan_add(&p, &c), i);
		assert_int_equal(p.n, (size_t)i + 1);
		c = cmd_ping();
	}
	/* Full: refused, nothing changes. */
	assert_int_equal(plan_add(&p, &c), -1);
	assert_int_equal(plan_add(&p, &c), -1);
	assert_int_equal(p.n, PLAN_MAX);
	/* The commands were copied in their slots. */
	assert_int_equal(p.cmd[2].argc, 1);
	assert_ptr_equal(p.cmd[2].argv, ping_argv);
	assert_int_equal(p.cmd[3].argc, 2);
	assert_ptr_equal(p.cmd[3].argv, other);
	plan_reset(&p);
}

static void
test_reply_before_run(void **state)
{
	struct plan p;
	struct store_cmd c = cmd_ping();
	int i;

	(void)state;
	plan_init(&p);
	assert_null(plan_reply(&p, 0));
	assert_int_equal(plan_add(&p, &c), 0);
	assert_int_equal(plan_add(&p, &c), 1);
	/* Not run yet: no slot has a reply. */
	for (i = -2; i <= PLAN_MAX + 1; i++)
		if (plan_reply(&p, i) != NULL)
			fail_msg("slot %d has a reply before plan_run", i);
	plan_reset(&p);
}

/* A slot that was never given out has no reply, run or not. */
static void
test_reply_bad_slot(void **state)
{
	struct plan p;

	(void)state;
	plan_init(&p);
	/* Pretend a batch of 2 ran and succeeded. */
	p.n = 2;
	p.ran = 1;
	/* The batch holds no replies: the slots read as NIL, never NULL. */
	assert_non_null(plan_reply(&p, 0));
	assert_int_equal(plan_reply(&p, 0)->type, STORE_NIL);
	assert_non_null(plan_reply(&p, 1));
	assert_null(plan_reply(&p, 2));
	assert_null(plan_reply(&p, PLAN_MAX - 1));
	assert_null(plan_reply(&p, PLAN_MAX));
	assert_null(plan_reply(&p, -1));
	assert_null(plan_reply(&p, -2147483647 - 1));
	/* A failed batch has no replies at all. */
	p.failed = 1;
	assert_null(plan_reply(&p, 0));
	assert_null(plan_reply(&p, 1));
	plan_reset(&p);
}

static void
test_reset(void **state)
{
	struct plan p;
	struct store_cmd c = cmd_ping();
	int i;

	(void)state;
	plan_init(&p);
	for (i = 0; i < PLAN_MAX; i++)
		assert_int_equal(plan_add(&p, &c), i);
	assert_int_equal(plan_add(&p, &c), -1);
	plan_reset(&p);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.ran, 0);
	assert_int_equal(p.failed, 0);
	assert_null(p.why);
	/* Empty again: slots start at 0, all PLAN_MAX of them. */
	for (i = 0; i < PLAN_MAX; i++)
		assert_int_equal(plan_add(&p, &c), i);
	assert_int_equal(plan_add(&p, &c), -1);

	/* A reset plan has no replies, and reset twice is fine. */
	p.ran = 1;
	plan_reset(&p);
	assert_int_equal(p.n, 0);
	assert_null(plan_reply(&p, 0));
	plan_reset(&p);
	plan_cleanup(&p);
}

/*
 * A config whose Redis is a loopback port the test holds bound but not
 * listening: connecting is refused.
 */
struct fixture {
	struct config cfg;
	int fd;
	struct store *store;
};

static int
setup(void **state)
{
	static struct fixture fx;
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;

	log_set_level(LOG_LVL_ERROR); /* the store's warnings are expected */
	memset(&fx, 0, sizeof fx);
	fx.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fx.fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fx.fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fx.fd, (struct sockaddr *)&sa, &len), 0);
	fx.cfg.redis.url = "redis://127.0.0.1";
	fx.cfg.redis.parsed.host = "127.0.0.1";
	fx.cfg.redis.parsed.port = ntohs(sa.sin_port);
	fx.cfg.redis.connect_timeout_ms = 200;
	fx.cfg.redis.command_timeout_ms = 100;
	fx.store = store_new(&fx.cfg);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	store_free(fx->store);
	close(fx->fd);
	return 0;
}

/* An empty plan runs without a round trip, and stays usable. */
static void
test_run_empty(void **state)
{
	struct fixture *fx = *state;
	struct store_cmd c = cmd_ping();
	struct plan p;

	plan_init(&p);
	assert_int_equal(plan_run(&p, fx->store), 0);
	assert_int_equal(plan_run(&p, fx->store), 0);
	/* The store was not touched: a connect would have been refused
	 * and counted. */
	assert_int_equal(store_error_count(fx->store), 0);
	assert_int_equal(p.failed, 0);
	assert_null(p.why);
	/* ... nor is a NULL store. */
	assert_int_equal(plan_run(&p, NULL), 0);
	/* Nothing ran, so steps may still add. */
	assert_int_equal(plan_add(&p, &c), 0);
	assert_null(plan_reply(&p, 0));
	plan_reset(&p);
}

/* Redis unreachable: -1, every reply NULL, and one attempt only. */
static void
test_run_unreachable(void **state)
{
	struct fixture *fx = *state;
	struct store_cmd c = cmd_ping();
	struct plan p;
	unsigned long errors;
	const char *why;

	plan_init(&p);
	assert_int_equal(plan_add(&p, &c), 0);
	assert_int_equal(plan_add(&p, &c), 1);
	assert_int_equal(plan_run(&p, fx->store), -1);
	errors = store_error_count(fx->store);
	assert_true(errors >= 1);
	assert_int_equal(p.failed, 1);
	assert_non_null(p.why);
	why = p.why;
	assert_null(plan_reply(&p, 0));
	assert_null(plan_reply(&p, 1));
	/* Once run, the batch is closed and is not sent again. */
	assert_int_equal(plan_add(&p, &c), -1);
	assert_int_equal(p.n, 2);
	assert_int_equal(plan_run(&p, fx->store), -1);
	assert_int_equal(store_error_count(fx->store), errors);
	/* (A second attempt would now fail as "backing off".) */
	assert_ptr_equal(p.why, why);
	assert_null(plan_reply(&p, 0));

	/* Reset: a fresh plan for the next request. */
	plan_reset(&p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(plan_add(&p, &c), 0);
	assert_null(plan_reply(&p, 0));
	plan_reset(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_until_full),
	    cmocka_unit_test(test_reply_before_run),
	    cmocka_unit_test(test_reply_bad_slot),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test_setup_teardown(test_run_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_run_unreachable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
