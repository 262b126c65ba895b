/*
 * Unit tests for cache_args (the apigw-cache command line and the purge
 * target it names).  The config is built by hand (no file, no libconfig).
 * The Redis side is covered by tests/integration/test_cache_cli.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache_args.h"
#include "config.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Parses a NULL-terminated argument list (argv[0] added). */
static int
parse(struct cache_args *a, ...)
{
	char *argv[32];
	const char *s;
	va_list ap;
	int argc = 1;

	argv[0] = "apigw-cache";
	va_start(ap, a);
	while ((s = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)s;
	va_end(ap);
	argv[argc] = NULL;
	return cache_args_parse(argc, argv, a);
}

static void
test_help_version(void **state)
{
	struct cache_args a;

	(void)state;
	assert_int_equal(parse(&a, "--help", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_HELP);
	assert_int_equal(parse(&a, "-h", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_HELP);
	assert_int_equal(parse(&a, "purge", "--version", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_VERSION);
	assert_int_equal(parse(&a, "-V", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_VERSION);
	assert_int_equal(parse(&a, "--help=x", NULL), -1);
	assert_non_null(strstr(a.err, "takes no value"));
}

static void
test_purge_path(void **state)
{
	struct cache_args a;

	(void)state;
	assert_int_equal(parse(&a, "purge", "/api/users", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_PURGE);
	assert_string_equal(a.target, "/api/users");
	assert_int_equal(a.path_len, 10);
	assert_null(a.query);
	assert_null(a.route);
	assert_null(a.config);

	/* the first '?' splits; the rest is the query as given */
	assert_int_equal(parse(&a, "purge", "/a%20b?x=1&y=%41?z", NULL), 0);
	assert_int_equal(a.path_len, 6);
	assert_string_equal(a.query, "x=1&y=%41?z");

	/* "/x?" is the empty query, not "every query" */
	assert_int_equal(parse(&a, "purge", "/x?", NULL), 0);
	assert_int_equal(a.path_len, 2);
	assert_non_null(a.query);
	assert_string_equal(a.query, "");

	/* options anywhere, both spellings */
	assert_int_equal(
	    parse(&a, "purge", "/x", "--config", "/etc/gw.conf", NULL), 0);
	assert_string_equal(a.config, "/etc/gw.conf");
	assert_int_equal(parse(&a, "--config=/c", "purge", "/x", NULL), 0);
	assert_string_equal(a.config, "/c");
	/* "--" lets a PATH start with '-' (normalize then refuses it) */
	assert_int_equal(parse(&a, "purge", "--", "-x", NULL), 0);
	assert_string_equal(a.target, "-x");
}

static void
test_purge_route(void **state)
{
	struct cache_args a;

	(void)state;
	assert_int_equal(parse(&a, "purge", "--route", "/api", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_PURGE);
	assert_string_equal(a.route, "/api");
	assert_null(a.target);
	assert_null(a.query);
	assert_int_equal(parse(&a, "--route=/", "purge", NULL), 0);
	assert_string_equal(a.route, "/");
}

static void
test_stats(void **state)
{
	struct cache_args a;

	(void)state;
	assert_int_equal(parse(&a, "stats", NULL), 0);
	assert_int_equal(a.cmd, CACHE_CMD_STATS);
	assert_int_equal(a.json, 0);
	assert_int_equal(parse(&a, "--json", "stats", NULL), 0);
	assert_int_equal(a.json, 1);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *argv[6];
		const char *msg;
	} cases[] = {
	    {{NULL}, "missing command"},
	    {{"frob", NULL}, "unknown command 'frob'"},
	    {{"--frob", NULL}, "unknown option '--frob'"},
	    {{"purge", NULL}, "missing PATH or --route"},
	    {{"purge", "/a", "/b", NULL}, "unexpected argument '/b'"},
	    {{"purge", "/a", "--route", "/a", NULL}, "not both"},
	    {{"purge", "--route", NULL}, "--route needs a value"},
	    {{"purge", "--route=", NULL}, "--route: empty value"},
	    {{"purge", "--route", "/a", "--route", "/b", NULL},
	        "--route given twice"},
	    {{"purge", "/a", "--json", NULL}, "--json does not apply"},
	    {{"stats", "--route", "/a", NULL}, "--route does not apply"},
	    {{"stats", "x", NULL}, "unexpected argument 'x'"},
	    {{"stats", "--json=1", NULL}, "takes no value"},
	    {{"stats", "--config", NULL}, "--config needs a value"},
	    {{"stats", "--config", "", NULL}, "--config: empty value"},
	    {{"x\x1b[2J", NULL}, "unknown command 'x?[2J'"},
	};
	struct cache_args a;
	char *argv[8];
	size_t i;
	int argc;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		argv[0] = "apigw-cache";
		for (argc = 1; cases[i].argv[argc - 1] != NULL; argc++)
			argv[argc] = (char *)cases[i].argv[argc - 1];
		argv[argc] = NULL;
		if (cache_args_parse(argc, argv, &a) != -1)
			fail_msg("case %zu parsed", i);
		if (strstr(a.err, cases[i].msg) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, a.err,
			    cases[i].msg);
		assert_null(strchr(a.err, '\n'));
	}
}

static void
test_long_target(void **state)
{
	struct cache_args a;
	char *p = malloc(CACHE_ARGS_TARGET_MAX + 2);

	(void)state;
	assert_non_null(p);
	memset(p, 'a', CACHE_ARGS_TARGET_MAX + 1);
	p[0] = '/';
	p[CACHE_ARGS_TARGET_MAX] = '\0';
	assert_int_equal(parse(&a, "purge", p, NULL), 0);
	p[CACHE_ARGS_TARGET_MAX] = 'a';
	p[CACHE_ARGS_TARGET_MAX + 1] = '\0';
	assert_int_equal(parse(&a, "purge", p, NULL), -1);
	assert_non_null(strstr(a.err, "longer than"));
	free(p);
}

/* ---- resolving against a config ---- */

struct fixture {
	struct config cfg;
	struct route routes[3];
};

static void
route_init(struct route *rt, const char *prefix, long ttl_s, const char *id)
{
	memset(rt, 0, sizeof *rt);
	rt->prefix = (char *)prefix;
	rt->prefix_len = strlen(prefix);
	rt->cache_ttl_s = ttl_s;
	snprintf(rt->route_id, sizeof rt->route_id, "%s", id);
}

static int
setup(void **state)
{
	static struct fixture fx;

	memset(&fx, 0, sizeof fx);
	route_init(&fx.routes[0], "/api/users", 60, "1111111111111111");
	route_init(&fx.routes[1], "/api", 30, "2222222222222222");
	route_init(&fx.routes[2], "/nocache", 0, "3333333333333333");
	fx.cfg.routes = fx.routes;
	fx.cfg.n_routes = 3;
	*state = &fx;
	return 0;
}

/* Parses argv, then resolves it; returns what cache_args_resolve did. */
static int
resolve(struct fixture *fx, struct cache_args *a, struct cache_target *t,
    const char *arg1, const char *arg2)
{
	char *argv[] = {"apigw-cache", "purge", (char *)arg1, (char *)arg2,
	    NULL};

	assert_int_equal(cache_args_parse(arg2 ? 4 : 3, argv, a), 0);
	return cache_args_resolve(&fx->cfg, a, t);
}

static void
test_resolve_path(void **state)
{
	struct fixture *fx = *state;
	struct cache_args a;
	struct cache_target t;

	assert_int_equal(resolve(fx, &a, &t, "/api//users/./7/../8", NULL), 0);
	assert_ptr_equal(t.route, &fx->routes[0]);
	assert_string_equal(t.path, "/api/users/8");
	assert_null(t.query);
	cache_target_cleanup(&t);
	assert_null(t.path);

	/* the query is not part of the path and is kept as given */
	assert_int_equal(resolve(fx, &a, &t, "/api/x/../y?b=%2F&a", NULL), 0);
	assert_ptr_equal(t.route, &fx->routes[1]);
	assert_string_equal(t.path, "/api/y");
	assert_string_equal(t.query, "b=%2F&a");
	cache_target_cleanup(&t);

	assert_int_equal(resolve(fx, &a, &t, "/api?", NULL), 0);
	assert_string_equal(t.path, "/api");
	assert_string_equal(t.query, "");
	cache_target_cleanup(&t);

	/* "/api/usersX" is not under "/api/users" */
	assert_int_equal(resolve(fx, &a, &t, "/api/usersX", NULL), 0);
	assert_ptr_equal(t.route, &fx->routes[1]);
	cache_target_cleanup(&t);
}

static void
test_resolve_route(void **state)
{
	struct fixture *fx = *state;
	struct cache_args a;
	struct cache_target t;

	assert_int_equal(resolve(fx, &a, &t, "--route", "/api"), 0);
	assert_ptr_equal(t.route, &fx->routes[1]);
	assert_null(t.path);
	assert_null(t.query);
	cache_target_cleanup(&t);
}

static void
test_resolve_errors(void **state)
{
	static const struct {
		const char *arg1, *arg2, *msg;
	} cases[] = {
	    {"/a/../..", NULL, "climbs above the root"},
	    {"/api/%2f", NULL, "forbidden escape"},
	    {"/api/%zz", NULL, "bad percent escape"},
	    {"api", NULL, "not absolute"},
	    {"", NULL, "not absolute"},
	    {"?x=1", NULL, "not absolute"},
	    {"/other", NULL, "no route matches '/other'"},
	    {"/nocache/x", NULL, "route '/nocache' does not cache"},
	    {"/nocache/../api/users/../../nocache", NULL, "does not cache"},
	    {"--route", "/api/", "no route has the prefix '/api/'"},
	    {"--route", "/ap", "no route has the prefix"},
	    {"--route", "/nocache", "does not cache"},
	};
	struct fixture *fx = *state;
	struct cache_args a;
	struct cache_target t;
	size_t i;

	for (i = 0; i < NITEMS(cases); i++) {
		if (resolve(fx, &a, &t, cases[i].arg1, cases[i].arg2) != -1)
			fail_msg("case %zu resolved", i);
		if (strstr(a.err, cases[i].msg) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, a.err,
			    cases[i].msg);
		cache_target_cleanup(&t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_help_version),
	    cmocka_unit_test(test_purge_path),
	    cmocka_unit_test(test_purge_route),
	    cmocka_unit_test(test_stats),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_long_target),
	    cmocka_unit_test_setup(test_resolve_path, setup),
	    cmocka_unit_test_setup(test_resolve_route, setup),
	    cmocka_unit_test_setup(test_resolve_errors, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
