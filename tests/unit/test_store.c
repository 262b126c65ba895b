/*
 * Unit tests for store.c without a Redis server: the batch views, command
 * validation, and what happens to deferred commands when Redis cannot be
 * reached (dropped and counted, never queued).  The same code against a
 * real redis-server: tests/integration/store_probe.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "store.h"

/* A unix socket that nothing listens on. */
static struct store *
store_unreachable(void)
{
	static char url[] = "unix:///nonexistent/apigw-test.sock";
	static char path[] = "/nonexistent/apigw-test.sock";
	struct config cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.redis.url = url;
	cfg.redis.parsed.unix_path = path;
	cfg.redis.connect_timeout_ms = 100;
	cfg.redis.command_timeout_ms = 100;
	return store_new(&cfg);
}

static void
test_batch_empty(void **state)
{
	struct store_batch b;
	const struct store_val *v;

	(void)state;
	store_batch_init(&b);
	v = store_batch_reply(&b, 0);
	assert_non_null(v);
	assert_int_equal(v->type, STORE_NIL);
	assert_null(v->str);
	assert_int_equal(v->n, 0);
	assert_int_equal(store_batch_reply(NULL, 3)->type, STORE_NIL);
	store_batch_reset(&b);
	store_batch_cleanup(&b);
	store_batch_cleanup(&b);
	store_batch_cleanup(NULL);
}

static void
test_scripts_table(void **state)
{
	(void)state;
	/* The generated table: every script has a source and a name. */
	assert_true(STORE_NSCRIPTS >= 1);
	assert_int_equal(STORE_SCRIPT_RATELIMIT, 0);
	assert_non_null(lua_scripts[STORE_SCRIPT_RATELIMIT]);
	assert_non_null(strstr(lua_scripts[STORE_SCRIPT_RATELIMIT], "KEYS"));
	assert_string_equal(
	    lua_script_names[STORE_SCRIPT_RATELIMIT], "ratelimit");
}

static void
test_exec_unreachable(void **state)
{
	struct store *s = store_unreachable();
	struct store_batch b;
	const char *argv[] = {"PING"};
	struct store_cmd cmd = {-1, 0, 1, argv, NULL};
	struct store_cmd bad = {-1, 0, 0, NULL, NULL};
	const char *why = NULL;

	(void)state;
	store_batch_init(&b);
	/* An empty batch needs no Redis. */
	assert_int_equal(store_exec(s, &cmd, 0, &b, &why), 0);
	/* An invalid command is refused before any connect. */
	assert_int_equal(store_exec(s, &bad, 1, &b, &why), -1);
	assert_string_equal(why, "redis: invalid command");
	assert_int_equal(store_error_count(s), 0);
	why = NULL;
	assert_int_equal(store_exec(s, &cmd, 1, &b, &why), -1);
	assert_non_null(why);
	assert_non_null(strstr(why, "connect"));
	assert_int_equal(store_batch_reply(&b, 0)->type, STORE_NIL);
	assert_int_equal(store_error_count(s), 1);
	/* Backing off: refused at once, not counted again. */
	assert_int_equal(store_command(s, &b, &why, 1, argv), -1);
	assert_non_null(strstr(why, "backing off"));
	assert_int_equal(store_error_count(s), 1);
	assert_int_equal(store_ping(s), 0);
	store_batch_cleanup(&b);
	store_free(s);
	store_free(NULL);
}

static void
test_defer_unreachable(void **state)
{
	struct store *s = store_unreachable();
	const char *a1[] = {"INCR", "m"};
	const char *a2[] = {"k", "0"};
	struct store_cmd cmds[2] = {
	    {-1, 0, 2, a1, NULL},
	    {STORE_SCRIPT_RATELIMIT, 1, 2, a2, NULL},
	};
	struct store_cmd bad = {STORE_NSCRIPTS, 0, 1, a1, NULL};

	(void)state;
	assert_int_equal(store_defer(s, cmds, 0), 0);
	assert_int_equal(store_defer_dropped_count(s), 0);
	/* Nothing to send: flushing costs nothing and cannot fail. */
	assert_int_equal(store_flush(s), 0);
	assert_int_equal(store_send(s), 0);
	/* The connect fails: both dropped, counted, nothing owed. */
	assert_int_equal(store_defer(s, cmds, 2), -1);
	assert_int_equal(store_defer_dropped_count(s), 2);
	assert_int_equal(store_defer_pending(s), 0);
	assert_int_equal(store_error_count(s), 1);
	/* While backing off: dropped without a connect attempt. */
	assert_int_equal(store_defer(s, cmds, 1), -1);
	assert_int_equal(store_defer_dropped_count(s), 3);
	assert_int_equal(store_error_count(s), 1);
	/* An invalid command is dropped too. */
	assert_int_equal(store_defer(s, &bad, 1), -1);
	assert_int_equal(store_defer_dropped_count(s), 4);
	assert_int_equal(store_defer_error_count(s), 0);
	assert_int_equal(store_flush(s), 0);
	store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_empty),
	    cmocka_unit_test(test_scripts_table),
	    cmocka_unit_test(test_exec_unreachable),
	    cmocka_unit_test(test_defer_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
