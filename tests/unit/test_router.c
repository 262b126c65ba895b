/*
 * Unit tests for router.c.  The configs are built by hand (no file, no
 * libconfig), so the tests also cover route tables that are not sorted the
 * way config_load() sorts them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "normalize.h"
#include "router.h"

#define NROUTES 8

struct fixture {
	struct config cfg;
	struct route routes[NROUTES];
};

static void
route_init(struct route *rt, const char *prefix, unsigned methods, int strip)
{
	memset(rt, 0, sizeof *rt);
	rt->prefix = (char *)prefix;
	rt->prefix_len = strlen(prefix);
	rt->methods = methods;
	rt->strip_prefix = strip;
}

/* Deliberately not longest first: the router must not depend on order. */
static int
setup(void **state)
{
	static struct fixture fx;
	struct route *r = fx.routes;

	memset(&fx, 0, sizeof fx);
	route_init(&r[0], "/", M_ALL, 0);
	route_init(&r[1], "/api", M_GET, 0);
	route_init(&r[2], "/api/users", M_GET | M_POST, 0);
	route_init(&r[3], "/api/users/admin", M_DELETE, 1);
	route_init(&r[4], "/static", M_GET | M_HEAD, 1);
	route_init(&r[5], "/api/usersX", M_PUT, 0);
	route_init(&r[6], "/v1/items", M_ALL, 1);
	route_init(&r[7], "/caf%C3%A9", M_GET, 0);
	fx.cfg.routes = fx.routes;
	fx.cfg.n_routes = NROUTES;
	*state = &fx;
	return 0;
}

static int
matches(const char *prefix, const char *path)
{
	return router_prefix_matches(prefix, strlen(prefix), path);
}

static void
test_prefix_boundary(void **state)
{
	(void)state;
	assert_true(matches("/api/users", "/api/users"));
	assert_true(matches("/api/users", "/api/users/"));
	assert_true(matches("/api/users", "/api/users/7"));
	assert_true(matches("/api/users", "/api/users/7/orders"));
	assert_false(matches("/api/users", "/api/usersX"));
	assert_false(matches("/api/users", "/api/users-admin"));
	assert_false(matches("/api/users", "/api/user"));
	assert_false(matches("/api/users", "/api"));
	assert_false(matches("/api/users", "/"));
	assert_false(matches("/api/users", "/API/users"));
	assert_false(matches("/api/users", "/x/api/users"));
	assert_false(matches("/api/users", ""));

	/* "/" matches every path. */
	assert_true(matches("/", "/"));
	assert_true(matches("/", "/anything"));
	assert_true(matches("/", "/a/b/c/"));

	/* A prefix written with a trailing '/' needs that slash. */
	assert_true(matches("/api/", "/api/"));
	assert_true(matches("/api/", "/api/x"));
	assert_false(matches("/api/", "/api"));

	/* Only prefix_len bytes of the prefix count. */
	assert_true(router_prefix_matches("/api/users", 4, "/api/v2"));
	assert_false(router_prefix_matches("/api/users", 4, "/apix"));

	/*
	 * Reserved characters a prefix may hold match their escapes too (a
	 * backend decodes them), in either hex case; '/' only as itself.
	 */
	assert_true(matches("/k:v@x", "/k%3Av%40x"));
	assert_true(matches("/k:v@x", "/k%3av@x/1"));
	assert_true(
	    matches("/s!$&'()*+,=", "/s%21%24%26%27%28%29%2A%2B%2C%3D"));
	assert_false(matches("/k:v@x", "/k%3Av%40xy"));
	assert_false(matches("/k:v@x", "/k%3Bv@x"));
	assert_false(matches("/k:v@x", "/k%3"));
	assert_false(matches("/k:v@x", "/k%"));
	assert_false(matches("/a/b", "/a%2Fb"));
	assert_false(matches("/a/b", "/a/b%2Fc"));
	assert_false(matches("/a:b", "/a%3Ab%2F"));

	/* Degenerate input never matches. */
	assert_false(router_prefix_matches("", 0, "/"));
	assert_false(router_prefix_matches(NULL, 0, "/"));
	assert_false(router_prefix_matches("/", 1, NULL));
}

static const char *
match_prefix(const struct config *cfg, const char *path)
{
	const struct route *rt = router_match(cfg, path);

	return rt != NULL ? rt->prefix : "(none)";
}

static void
test_longest_wins(void **state)
{
	struct fixture *fx = *state;
	const struct config *cfg = &fx->cfg;

	assert_string_equal(match_prefix(cfg, "/"), "/");
	assert_string_equal(match_prefix(cfg, "/other"), "/");
	assert_string_equal(match_prefix(cfg, "/api"), "/api");
	assert_string_equal(match_prefix(cfg, "/api/"), "/api");
	assert_string_equal(match_prefix(cfg, "/api/orders"), "/api");
	assert_string_equal(match_prefix(cfg, "/apix"), "/");
	assert_string_equal(match_prefix(cfg, "/api/users"), "/api/users");
	assert_string_equal(match_prefix(cfg, "/api/users/"), "/api/users");
	assert_string_equal(match_prefix(cfg, "/api/users/7"), "/api/users");
	assert_string_equal(match_prefix(cfg, "/api/usersX"), "/api/usersX");
	assert_string_equal(match_prefix(cfg, "/api/usersY"), "/api");
	assert_string_equal(match_prefix(cfg, "/api/users/admin"),
	    "/api/users/admin");
	assert_string_equal(match_prefix(cfg, "/api/users/admin/1"),
	    "/api/users/admin");
	assert_string_equal(match_prefix(cfg, "/api/users/administrator"),
	    "/api/users");
	assert_string_equal(match_prefix(cfg, "/static/css/a.css"), "/static");
	assert_string_equal(match_prefix(cfg, "/caf%C3%A9/menu"), "/caf%C3%A9");
}

static void
test_no_match(void **state)
{
	struct config cfg;
	struct route r[2];

	(void)state;
	memset(&cfg, 0, sizeof cfg);
	route_init(&r[0], "/api/users", M_ALL, 0);
	route_init(&r[1], "/api/orders", M_ALL, 0);
	cfg.routes = r;
	cfg.n_routes = 2;
	assert_null(router_match(&cfg, "/"));
	assert_null(router_match(&cfg, "/api"));
	assert_null(router_match(&cfg, "/api/usersX"));
	assert_null(router_match(&cfg, "/api/order"));
	assert_ptr_equal(router_match(&cfg, "/api/orders/1"), &r[1]);

	/* The same table sorted either way gives the same answers. */
	route_init(&r[0], "/api", M_ALL, 0);
	route_init(&r[1], "/api/orders", M_ALL, 0);
	assert_ptr_equal(router_match(&cfg, "/api/orders/1"), &r[1]);
	route_init(&r[0], "/api/orders", M_ALL, 0);
	route_init(&r[1], "/api", M_ALL, 0);
	assert_ptr_equal(router_match(&cfg, "/api/orders/1"), &r[0]);
	assert_ptr_equal(router_match(&cfg, "/api/x"), &r[1]);

	cfg.n_routes = 0;
	assert_null(router_match(&cfg, "/api"));
	assert_null(router_match(NULL, "/api"));
}

static void
test_methods(void **state)
{
	struct fixture *fx = *state;
	const struct route *users = &fx->routes[2];
	const struct route *all = &fx->routes[0];
	const struct route *admin = &fx->routes[3];

	assert_true(router_method_allowed(users, "GET"));
	assert_true(router_method_allowed(users, "POST"));
	assert_false(router_method_allowed(users, "PUT"));
	assert_false(router_method_allowed(users, "DELETE"));
	assert_false(router_method_allowed(users, "HEAD"));
	/* Method names are case-sensitive (RFC 9110 9.1). */
	assert_false(router_method_allowed(users, "get"));
	assert_false(router_method_allowed(users, "PROPFIND"));
	assert_false(router_method_allowed(users, ""));

	assert_true(router_method_allowed(admin, "DELETE"));
	assert_false(router_method_allowed(admin, "GET"));

	/* No methods configured: everything, extension methods too. */
	assert_true(router_method_allowed(all, "GET"));
	assert_true(router_method_allowed(all, "CONNECT"));
	assert_true(router_method_allowed(all, "TRACE"));
	assert_true(router_method_allowed(all, "PROPFIND"));

	assert_false(router_method_allowed(NULL, "GET"));
	assert_false(router_method_allowed(users, NULL));
}

/*
 * Raw paths as clients send them, through the normalizer and the router:
 * a path parameter or a dot segment never lands a request on a route other
 * than the one its plain form matches, and what is forwarded is the path
 * that was matched.
 */
static void
test_raw_paths(void **state)
{
	static const struct {
		const char *raw;
		const char *route; /* NULL: 400 from the normalizer */
		const char *path;
	} cases[] = {
	    {"/api/users/admin;jsessionid=1", "/api/users/admin",
	        "/api/users/admin"},
	    {"/api/users/admin;", "/api/users/admin", "/api/users/admin"},
	    {"/api/users/admin;x/1", "/api/users/admin", "/api/users/admin/1"},
	    {"/api;x/users;y/admin;z", "/api/users/admin", "/api/users/admin"},
	    {";x/api/users/admin", NULL, NULL},
	    {"/;x/api/users/admin", "/api/users/admin", "/api/users/admin"},
	    {"/api/users/admin;a=1;b=2/", "/api/users/admin",
	        "/api/users/admin/"},
	    {"/api/users/x/..;/admin", "/api/users/admin", "/api/users/admin"},
	    {"/api/users/.;x/admin", "/api/users/admin", "/api/users/admin"},
	    {"/api/users/admin%3bx", NULL, NULL},
	    {"/api/users/admin%3Bx", NULL, NULL},
	    {"/static;x/../api/users/admin", "/api/users/admin",
	        "/api/users/admin"},
	    {"/api/users;/..;/..;/static/a", "/static", "/static/a"},
	    {"/..;/api/users/admin", NULL, NULL},
	    {"/api/usersX;p", "/api/usersX", "/api/usersX"},
	};
	struct fixture *fx = *state;
	const struct route *rt;
	char *path;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum normalize_result nr = normalize_path(
		    cases[i].raw, strlen(cases[i].raw), &path);

		if (cases[i].route == NULL) {
			if (nr == NORMALIZE_OK)
				fail_msg("%s: accepted as %s", cases[i].raw,
				    path);
			continue;
		}
		if (nr != NORMALIZE_OK)
			fail_msg("%s: %s", cases[i].raw, normalize_strerror(nr));
		rt = router_match(&fx->cfg, path);
		assert_non_null(rt);
		if (strcmp(rt->prefix, cases[i].route) != 0 ||
		    strcmp(path, cases[i].path) != 0)
			fail_msg("%s: route %s path %s, want %s %s",
			    cases[i].raw, rt->prefix, path, cases[i].route,
			    cases[i].path);
		free(path);
	}
}

static void
test_forward_path(void **state)
{
	struct fixture *fx = *state;
	const struct route *root = &fx->routes[0];
	const struct route *users = &fx->routes[2];
	const struct route *admin = &fx->routes[3];
	const struct route *stat = &fx->routes[4];
	struct route slash;
	const char *path;

	/* Without strip_prefix the path goes as it is (same pointer). */
	path = "/api/users/7";
	assert_ptr_equal(router_forward_path(users, path), path);
	assert_ptr_equal(router_forward_path(root, path), path);

	/* With strip_prefix. */
	assert_string_equal(router_forward_path(admin, "/api/users/admin/1"), "/1");
	assert_string_equal(router_forward_path(admin, "/api/users/admin/"), "/");
	assert_string_equal(router_forward_path(admin, "/api/users/admin"), "/");
	assert_string_equal(router_forward_path(stat, "/static/css/a.css"),
	    "/css/a.css");
	path = "/static/x";
	assert_ptr_equal(router_forward_path(stat, path), path + 7);

	/* "/" with strip_prefix strips nothing. */
	route_init(&slash, "/", M_ALL, 1);
	assert_string_equal(router_forward_path(&slash, "/a/b"), "/a/b");
	assert_string_equal(router_forward_path(&slash, "/"), "/");

	/* A prefix with a trailing '/' keeps it as the result's first byte. */
	route_init(&slash, "/v2/", M_ALL, 1);
	assert_string_equal(router_forward_path(&slash, "/v2/x"), "/x");
	assert_string_equal(router_forward_path(&slash, "/v2/"), "/");

	/* The prefix is stripped as the path spells it. */
	route_init(&slash, "/k:v@x", M_ALL, 1);
	assert_string_equal(router_forward_path(&slash, "/k%3Av%40x/7"), "/7");
	assert_string_equal(router_forward_path(&slash, "/k%3av@x"), "/");
	assert_string_equal(router_forward_path(&slash, "/k:v@x/"), "/");

	/* A path the route does not match is left alone. */
	assert_string_equal(router_forward_path(stat, "/staticX/a"), "/staticX/a");
	assert_string_equal(router_forward_path(stat, "/other"), "/other");
	assert_null(router_forward_path(stat, NULL));
	assert_string_equal(router_forward_path(NULL, "/a"), "/a");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_boundary),
		cmocka_unit_test_setup(test_longest_wins, setup),
		cmocka_unit_test(test_no_match),
		cmocka_unit_test_setup(test_methods, setup),
		cmocka_unit_test_setup(test_forward_path, setup),
		cmocka_unit_test_setup(test_raw_paths, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
