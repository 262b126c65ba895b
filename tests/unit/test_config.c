/*
 * Unit tests for config.c: every key's default, every class of error with
 * its exact "file:line: key: reason" message, the Redis URL and CIDR
 * parsers, the method helpers, config_changed(), and conf/apigw.conf
 * itself (found through $top_srcdir, else "../..").
 *
 * Each test writes its files into one mkdtemp() directory, removed at the
 * end.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/apigw-test-config.XXXXXX";
static int nfiles;

/* One line each, so that the line numbers in messages are easy to read. */
#define REDIS	"redis = { url = \"redis://127.0.0.1:6379/0\"; };\n"
#define ROUTE	"routes = ( { prefix = \"/a\"; backend = \"http://127.0.0.1:9000\"; } );\n"

/* Writes text into a new file in tmpdir; returns its path (caller frees). */
static char *
write_conf(const char *text)
{
	char *path = xasprintf("%s/t%d.conf", tmpdir, nfiles++);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
print_errors(const struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "  error: %s\n", errs->msg[i]);
}

/* Loads text, which must be valid. */
static struct config *
load_ok(const char *text)
{
	struct config_errors errs;
	struct config *cfg;
	char *path = write_conf(text);

	cfg = config_load(path, &errs);
	if (cfg == NULL)
		print_errors(&errs);
	assert_non_null(cfg);
	assert_int_equal(errs.n, 0);
	config_errors_cleanup(&errs);
	free(path);
	return cfg;
}

/*
 * Loads text, which must fail with exactly the messages in want (each
 * without the "path:" in front), in that order.
 */
static void
load_fails(const char *text, const char *const *want)
{
	struct config_errors errs;
	struct config *cfg;
	char *path = write_conf(text), *full;
	size_t n, i;

	cfg = config_load(path, &errs);
	assert_null(cfg);
	for (n = 0; want[n] != NULL; n++)
		;
	if (errs.n != n)
		print_errors(&errs);
	assert_int_equal(errs.n, n);
	for (i = 0; i < n; i++) {
		full = xasprintf("%s:%s", path, want[i]);
		assert_string_equal(errs.msg[i], full);
		free(full);
	}
	config_errors_cleanup(&errs);
	assert_null(errs.msg);
	assert_int_equal(errs.n, 0);
	free(path);
}

#define FAILS(text, ...) do {						\
	static const char *const want_[] = { __VA_ARGS__, NULL };	\
	load_fails((text), want_);					\
} while (0)

static int
cidr_str_match(const char *cidr, const char *ip)
{
	struct cidr c;

	assert_int_equal(cidr_parse(cidr, &c), 0);
	return cidr_list_match(&c, 1, ip);
}

/* ---- valid files ---- */

static void
test_defaults(void **state)
{
	struct config *cfg;
	struct route *r;
	char list[128];

	(void)state;
	cfg = load_ok(REDIS ROUTE);

	assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379/0");
	assert_string_equal(cfg->redis.parsed.host, "127.0.0.1");
	assert_int_equal(cfg->redis.parsed.port, 6379);
	assert_int_equal(cfg->redis.parsed.db, 0);
	assert_int_equal(cfg->redis.connect_timeout_ms, 200);
	assert_int_equal(cfg->redis.command_timeout_ms, 100);
	assert_string_equal(cfg->redis.key_prefix, "apigw:");
	assert_int_equal(cfg->redis.on_failure, REDIS_FAIL_OPEN);
	assert_int_equal(cfg->redis.local_share, 4);

	assert_int_equal(cfg->gateway.n_trusted_proxies, 2);
	assert_int_equal(cfg->gateway.trusted_proxies[0].family, AF_INET);
	assert_int_equal(cfg->gateway.trusted_proxies[0].prefix_len, 32);
	assert_int_equal(cfg->gateway.trusted_proxies[1].family, AF_INET6);
	assert_int_equal(cfg->gateway.trusted_proxies[1].prefix_len, 128);
	assert_int_equal(cfg->gateway.n_internal_allow, 2);
	assert_int_equal(cfg->gateway.internal_allow[0].prefix_len, 8);
	assert_true(cidr_list_match(cfg->gateway.internal_allow,
	    cfg->gateway.n_internal_allow, "127.9.9.9"));
	assert_true(cidr_list_match(cfg->gateway.internal_allow,
	    cfg->gateway.n_internal_allow, "::1"));
	assert_false(cidr_list_match(cfg->gateway.trusted_proxies,
	    cfg->gateway.n_trusted_proxies, "127.0.0.2"));
	assert_int_equal(cfg->gateway.max_body_bytes, 10485760);
	assert_string_equal(cfg->gateway.request_id_header, "X-Request-ID");

	assert_int_equal(cfg->rate_limit.present, 1);
	assert_string_equal(cfg->rate_limit.name, "default");
	assert_int_equal(cfg->rate_limit.shadow, 0);
	assert_int_equal(cfg->rate_limit.algorithm, RL_SLIDING_WINDOW);
	assert_int_equal(cfg->rate_limit.limit[RL_SECOND], 0);
	assert_int_equal(cfg->rate_limit.limit[RL_MINUTE], 60);
	assert_int_equal(cfg->rate_limit.limit[RL_HOUR], 0);
	assert_int_equal(cfg->rate_limit.limit[RL_DAY], 0);
	assert_int_equal(cfg->rate_limit.burst_size, 0);

	assert_string_equal(cfg->api_keys.header, "X-API-Key");
	assert_int_equal(cfg->api_keys.cache_ttl_s, 5);

	assert_int_equal(cfg->circuit_breaker.failure_threshold, 5);
	assert_int_equal(cfg->circuit_breaker.recovery_timeout_s, 60);
	assert_int_equal(cfg->circuit_breaker.success_threshold, 3);
	assert_int_equal(cfg->circuit_breaker.n_failure_statuses, 3);
	assert_int_equal(cfg->circuit_breaker.failure_statuses[0], 502);
	assert_int_equal(cfg->circuit_breaker.failure_statuses[1], 503);
	assert_int_equal(cfg->circuit_breaker.failure_statuses[2], 504);

	assert_int_equal(cfg->cache.max_object_bytes, 1048576);

	assert_int_equal(cfg->cors.enabled, 0);
	assert_int_equal(cfg->cors.n_allow_origins, 1);
	assert_string_equal(cfg->cors.allow_origins[0], "*");
	assert_string_equal(cfg->cors.allow_methods,
	    "GET, POST, PUT, DELETE, PATCH, OPTIONS");
	assert_string_equal(cfg->cors.allow_headers,
	    "Content-Type, Authorization, X-API-Key");
	assert_int_equal(cfg->cors.max_age_s, 600);

	assert_string_equal(cfg->log.access, "stderr");
	assert_int_equal(cfg->log.format, LOG_FORMAT_COMBINED);
	assert_int_equal(cfg->log.level, 1);

	assert_int_equal(cfg->n_plugins, 0);

	assert_int_equal(cfg->n_routes, 1);
	r = &cfg->routes[0];
	assert_string_equal(r->prefix, "/a");
	assert_int_equal(r->prefix_len, 2);
	assert_string_equal(r->backend, "http://127.0.0.1:9000");
	assert_int_equal(r->methods, M_ALL);
	http_method_list(r->methods, list, sizeof list);
	assert_string_equal(list, "GET, HEAD, POST, PUT, DELETE, PATCH, "
	    "OPTIONS, TRACE, CONNECT");
	assert_int_equal(r->require_auth, 0);
	assert_int_equal(r->cache_ttl_s, 0);
	assert_int_equal(r->strip_prefix, 0);
	assert_int_equal(r->connect_timeout_ms, 2000);
	assert_int_equal(r->timeout_ms, 30000);
	assert_int_equal(r->retries, 0);
	assert_int_equal(r->rate_limit.present, 0);
	assert_string_equal(r->rate_limit.name, "route");
	assert_int_equal(r->line, 2);
	assert_int_equal(strlen(r->route_id), 16);

	assert_non_null(cfg->path);
	assert_non_null(cfg->cf);
	assert_true(cfg->mtime > 0);
	config_free(cfg);
}

static const char full_conf[] =
	"# every key, none at its default\n"
	"redis = {\n"
	"  url = \"redis://app:s%40cret@redis.example:6380/3\";\n"
	"  connect_timeout_ms = 300; command_timeout_ms = 150;\n"
	"  key_prefix = \"gw1:\"; on_failure = \"closed\"; local_share = 8;\n"
	"};\n"
	"gateway = {\n"
	"  trusted_proxies = [ \"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.7\" ];\n"
	"  internal_allow = [ ];\n"
	"  max_body_bytes = 1024L;\n"
	"  request_id_header = \"X-Trace-Id\";\n"
	"};\n"
	"rate_limit = { name = \"global\"; algorithm = \"gcra\";\n"
	"  requests_per_second = 5; requests_per_day = 10000;\n"
	"  burst_size = 7; shadow = true; };\n"
	"api_keys = { header = \"X-Key\"; cache_ttl_s = 0; };\n"
	"circuit_breaker = { failure_threshold = 2; recovery_timeout_s = 9;\n"
	"  success_threshold = 1; failure_statuses = [ 500, 599 ]; };\n"
	"cache = { max_object_bytes = 0; };\n"
	"cors = { enabled = true;\n"
	"  allow_origins = [ \"https://app.example\", \"http://[::1]:8080\" ];\n"
	"  allow_methods = [ \"GET\", \"HEAD\" ]; allow_headers = [ ];\n"
	"  max_age_s = 0; };\n"
	"log = { access = \"/var/log/apigw/access.log\"; format = \"json\";\n"
	"  level = \"error\"; };\n"
	"plugins = (\n"
	"  { path = \"/usr/lib/apigw/a.so\"; },\n"
	"  { path = \"b.so\"; config = { realm = \"api\"; n = 5000000000L;"
	"    on = true; x = { y = \"z\"; }; }; }\n"
	");\n"
	"routes = (\n"					/* line 30 */
	"  { prefix = \"/\"; backend = \"https://root.example\"; },\n"
	"  { prefix = \"/api/users/\"; backend = \"http://users:8001/v1/\";\n"
	"    methods = [ \"GET\", \"POST\", \"GET\" ]; require_auth = true;\n"
	"    cache_ttl_s = 300; strip_prefix = true;\n"
	"    connect_timeout_ms = 10; timeout_ms = 600000; retries = 10;\n"
	"    rate_limit = { requests_per_minute = 10; requests_per_hour = 100;\n"
	"      algorithm = \"token_bucket\"; burst_size = 20; }; },\n"
	"  { prefix = \"/api\"; backend = \"http://[::1]:9000\";\n"
	"    rate_limit = { requests_per_hour = 3; name = \"api-h\"; }; }\n"
	");\n";

static void
test_full(void **state)
{
	struct config *cfg;
	struct route *r;
	long long ll;

	(void)state;
	cfg = load_ok(full_conf);

	assert_string_equal(cfg->redis.parsed.host, "redis.example");
	assert_int_equal(cfg->redis.parsed.port, 6380);
	assert_int_equal(cfg->redis.parsed.db, 3);
	assert_string_equal(cfg->redis.parsed.user, "app");
	assert_string_equal(cfg->redis.parsed.password, "s@cret");
	assert_null(cfg->redis.parsed.unix_path);
	assert_int_equal(cfg->redis.connect_timeout_ms, 300);
	assert_int_equal(cfg->redis.command_timeout_ms, 150);
	assert_string_equal(cfg->redis.key_prefix, "gw1:");
	assert_int_equal(cfg->redis.on_failure, REDIS_FAIL_CLOSED);
	assert_int_equal(cfg->redis.local_share, 8);

	assert_int_equal(cfg->gateway.n_trusted_proxies, 3);
	assert_int_equal(cfg->gateway.trusted_proxies[2].prefix_len, 32);
	assert_true(cidr_list_match(cfg->gateway.trusted_proxies, 3,
	    "10.1.2.3"));
	assert_true(cidr_list_match(cfg->gateway.trusted_proxies, 3,
	    "fd12::1"));
	assert_true(cidr_list_match(cfg->gateway.trusted_proxies, 3,
	    "192.0.2.7"));
	assert_false(cidr_list_match(cfg->gateway.trusted_proxies, 3,
	    "192.0.2.8"));
	assert_int_equal(cfg->gateway.n_internal_allow, 0);
	assert_false(cidr_list_match(cfg->gateway.internal_allow, 0,
	    "127.0.0.1"));
	assert_int_equal(cfg->gateway.max_body_bytes, 1024);
	assert_string_equal(cfg->gateway.request_id_header, "X-Trace-Id");

	assert_string_equal(cfg->rate_limit.name, "global");
	assert_int_equal(cfg->rate_limit.algorithm, RL_GCRA);
	assert_int_equal(cfg->rate_limit.algorithm_set, 1);
	assert_int_equal(cfg->rate_limit.limit[RL_SECOND], 5);
	assert_int_equal(cfg->rate_limit.limit[RL_MINUTE], 0);
	assert_int_equal(cfg->rate_limit.limit[RL_DAY], 10000);
	assert_int_equal(cfg->rate_limit.burst_size, 7);
	assert_int_equal(cfg->rate_limit.shadow, 1);

	assert_string_equal(cfg->api_keys.header, "X-Key");
	assert_int_equal(cfg->api_keys.cache_ttl_s, 0);
	assert_int_equal(cfg->circuit_breaker.failure_threshold, 2);
	assert_int_equal(cfg->circuit_breaker.recovery_timeout_s, 9);
	assert_int_equal(cfg->circuit_breaker.success_threshold, 1);
	assert_int_equal(cfg->circuit_breaker.n_failure_statuses, 2);
	assert_int_equal(cfg->circuit_breaker.failure_statuses[1], 599);
	assert_int_equal(cfg->cache.max_object_bytes, 0);
	assert_int_equal(cfg->cors.enabled, 1);
	assert_int_equal(cfg->cors.n_allow_origins, 2);
	assert_string_equal(cfg->cors.allow_origins[1], "http://[::1]:8080");
	assert_string_equal(cfg->cors.allow_methods, "GET, HEAD");
	assert_string_equal(cfg->cors.allow_headers, "");
	assert_int_equal(cfg->cors.max_age_s, 0);
	assert_string_equal(cfg->log.access, "/var/log/apigw/access.log");
	assert_int_equal(cfg->log.format, LOG_FORMAT_JSON);
	assert_int_equal(cfg->log.level, 3);

	assert_int_equal(cfg->n_plugins, 2);
	assert_string_equal(cfg->plugins[0].path, "/usr/lib/apigw/a.so");
	assert_null(cfg->plugins[0].setting);
	assert_int_equal(cfg->plugins[0].line, 27);
	assert_string_equal(cfg->plugins[1].path, "b.so");
	assert_non_null(cfg->plugins[1].setting);
	assert_string_equal(config_plugin_string(cfg->plugins[1].setting,
	    "realm"), "api");
	assert_null(config_plugin_string(cfg->plugins[1].setting, "n"));
	assert_null(config_plugin_string(cfg->plugins[1].setting, "none"));
	assert_null(config_plugin_string(NULL, "realm"));
	assert_int_equal(config_plugin_int(cfg->plugins[1].setting, "n", &ll),
	    0);
	assert_int_equal(ll, 5000000000LL);
	assert_int_equal(config_plugin_int(cfg->plugins[1].setting, "on",
	    &ll), 0);
	assert_int_equal(ll, 1);
	assert_int_equal(config_plugin_int(cfg->plugins[1].setting, "realm",
	    &ll), -1);
	assert_int_equal(config_plugin_int(cfg->plugins[1].setting, "x",
	    &ll), -1);
	assert_int_equal(config_plugin_int(NULL, "n", &ll), -1);

	/* Sorted longest prefix first, trailing slashes gone. */
	assert_int_equal(cfg->n_routes, 3);
	assert_string_equal(cfg->routes[0].prefix, "/api/users");
	assert_string_equal(cfg->routes[1].prefix, "/api");
	assert_string_equal(cfg->routes[2].prefix, "/");
	assert_int_equal(cfg->routes[2].prefix_len, 1);

	r = &cfg->routes[0];
	assert_int_equal(r->line, 32);
	assert_string_equal(r->route_id, "c93de48dc431a735");
	assert_string_equal(r->backend, "http://users:8001/v1");
	assert_int_equal(r->methods, M_GET | M_POST);
	assert_int_equal(r->require_auth, 1);
	assert_int_equal(r->cache_ttl_s, 300);
	assert_int_equal(r->strip_prefix, 1);
	assert_int_equal(r->connect_timeout_ms, 10);
	assert_int_equal(r->timeout_ms, 600000);
	assert_int_equal(r->retries, 10);
	assert_int_equal(r->rate_limit.present, 1);
	assert_string_equal(r->rate_limit.name, "route");
	assert_int_equal(r->rate_limit.algorithm, RL_TOKEN_BUCKET);
	assert_int_equal(r->rate_limit.algorithm_set, 1);
	assert_int_equal(r->rate_limit.limit[RL_MINUTE], 10);
	assert_int_equal(r->rate_limit.limit[RL_HOUR], 100);
	assert_int_equal(r->rate_limit.burst_size, 20);

	/* No algorithm: the default policy's, but marked as inherited. */
	r = &cfg->routes[1];
	assert_string_equal(r->backend, "http://[::1]:9000");
	assert_string_equal(r->rate_limit.name, "api-h");
	assert_int_equal(r->rate_limit.algorithm_set, 0);
	assert_int_equal(r->rate_limit.algorithm, RL_GCRA);
	assert_int_equal(r->rate_limit.limit[RL_HOUR], 3);
	assert_int_equal(r->rate_limit.limit[RL_MINUTE], 0);

	r = &cfg->routes[2];
	assert_string_equal(r->route_id, "8a5edab282632443");
	assert_string_equal(r->backend, "https://root.example");
	assert_int_equal(r->rate_limit.algorithm, RL_GCRA);
	config_free(cfg);
}

static void
test_default_policy_windows(void **state)
{
	struct config *cfg;

	(void)state;
	/* A default policy without windows keeps 60 a minute. */
	cfg = load_ok(REDIS "rate_limit = { algorithm = \"fixed_window\"; };\n"
	    ROUTE);
	assert_int_equal(cfg->rate_limit.algorithm, RL_FIXED_WINDOW);
	assert_int_equal(cfg->rate_limit.limit[RL_MINUTE], 60);
	assert_int_equal(cfg->routes[0].rate_limit.algorithm, RL_FIXED_WINDOW);
	config_free(cfg);

	/* Given windows replace it. */
	cfg = load_ok(REDIS "rate_limit = { requests_per_hour = 7; };\n" ROUTE);
	assert_int_equal(cfg->rate_limit.limit[RL_MINUTE], 0);
	assert_int_equal(cfg->rate_limit.limit[RL_HOUR], 7);
	assert_int_equal(cfg->rate_limit.algorithm_set, 0);
	assert_int_equal(cfg->rate_limit.algorithm, RL_SLIDING_WINDOW);
	config_free(cfg);
}

static void
test_redis_unix(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("redis = { url = \"unix:///run/redis/r.sock?db=2\"; };\n"
	    ROUTE);
	assert_null(cfg->redis.parsed.host);
	assert_string_equal(cfg->redis.parsed.unix_path, "/run/redis/r.sock");
	assert_int_equal(cfg->redis.parsed.db, 2);
	config_free(cfg);
}

static void
test_example_conf(void **state)
{
	struct config_errors errs;
	struct config *cfg;
	const char *top = getenv("top_srcdir");
	char *path;
	size_t i;
	int seen_users = 0;

	(void)state;
	path = xasprintf("%s/conf/apigw.conf", top != NULL ? top : "../..");
	cfg = config_load(path, &errs);
	if (cfg == NULL)
		print_errors(&errs);
	assert_non_null(cfg);
	assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379/0");
	assert_true(cfg->n_routes >= 3);
	for (i = 0; i < cfg->n_routes; i++) {
		assert_string_equal(cfg->routes[i].backend,
		    "http://127.0.0.1:9000");
		if (strcmp(cfg->routes[i].prefix, "/api/users") == 0) {
			seen_users = 1;
			assert_int_equal(cfg->routes[i].require_auth, 1);
			assert_true(cfg->routes[i].cache_ttl_s > 0);
			assert_int_equal(cfg->routes[i].rate_limit.algorithm,
			    RL_TOKEN_BUCKET);
		}
		if (i > 0)
			assert_true(cfg->routes[i - 1].prefix_len >=
			    cfg->routes[i].prefix_len);
	}
	assert_true(seen_users);
	/* The documented defaults are the real ones. */
	assert_int_equal(cfg->redis.connect_timeout_ms, 200);
	assert_int_equal(cfg->gateway.max_body_bytes, 10485760);
	assert_int_equal(cfg->rate_limit.limit[RL_MINUTE], 60);
	assert_int_equal(cfg->cors.max_age_s, 600);
	config_free(cfg);
	config_errors_cleanup(&errs);
	free(path);
}

/* ---- each class of error ---- */

static void
test_err_unknown_key(void **state)
{
	(void)state;
	FAILS(REDIS
	    "gateway = { max_body_byte = 5; };\n"
	    "rate_limit = { requests_per_minute = 5; burst = 3; };\n"
	    "routes = ( { prefix = \"/a\"; backend = \"http://b\"; tiemout_ms = 1;\n"
	    "  rate_limit = { requests_per_minute = 1; algoritm = \"gcra\"; }; } );\n"
	    "plugins = ( { path = \"/p.so\"; cfg = { }; config = { free = 1; }; } );\n"
	    "cors = { origins = [ ]; };\n"
	    "log = { file = \"x\"; };\n"
	    "extra = 1;\n",
	    "2: gateway.max_body_byte: unknown key",
	    "3: rate_limit.burst: unknown key",
	    "4: routes.[0].tiemout_ms: unknown key",
	    "5: routes.[0].rate_limit.algoritm: unknown key",
	    "6: plugins.[0].cfg: unknown key",
	    "7: cors.origins: unknown key",
	    "8: log.file: unknown key",
	    "9: extra: unknown key");
	FAILS("redis = {\n"
	    "  url = \"redis://h\";\n"
	    "  conect_timeout_ms = 5;\n"
	    "};\n" ROUTE,
	    "3: redis.conect_timeout_ms: unknown key");
}

static void
test_err_wrong_type(void **state)
{
	(void)state;
	FAILS(REDIS
	    "gateway = { max_body_bytes = \"10\"; trusted_proxies = \"::1\"; };\n"
	    "cors = { enabled = 1; max_age_s = 1.5; allow_origins = [ 1 ]; };\n"
	    "api_keys = { header = 5; };\n"
	    "circuit_breaker = { failure_statuses = [ \"502\" ]; };\n"
	    "routes = { prefix = \"/a\"; };\n"
	    "rate_limit = 5;\n"
	    "log = [ ];\n",
	    "2: gateway.max_body_bytes: expected an integer",
	    "2: gateway.trusted_proxies: expected an array of CIDR strings",
	    "3: cors.enabled: expected a boolean (true or false)",
	    "3: cors.max_age_s: expected an integer",
	    "3: cors.allow_origins.[0]: expected a string",
	    "4: api_keys.header: expected a string",
	    "5: circuit_breaker.failure_statuses.[0]: expected an integer",
	    "6: routes: expected a list of groups: ( { ... }, { ... } )",
	    "7: rate_limit: expected a group",
	    "8: log: expected a group");
	FAILS(REDIS
	    "routes = ( \"/a\", { prefix = \"/b\"; backend = \"http://b\";\n"
	    "  require_auth = \"yes\"; strip_prefix = 0; methods = \"GET\"; } );\n"
	    "plugins = ( { path = \"/p.so\"; config = 5; } );\n",
	    "2: routes.[0]: expected a group",
	    "3: routes.[1].require_auth: expected a boolean (true or false)",
	    "3: routes.[1].strip_prefix: expected a boolean (true or false)",
	    "3: routes.[1].methods: expected an array of method names",
	    "4: plugins.[0].config: expected a group");
}

static void
test_err_out_of_range(void **state)
{
	(void)state;
	FAILS(REDIS
	    "gateway = { max_body_bytes = 1073741825; };\n"
	    "redis2 = 1;\n"
	    "circuit_breaker = { failure_statuses = [ 99, 503, 600 ];\n"
	    "  failure_threshold = 0; };\n"
	    "cache = { max_object_bytes = -1; };\n"
	    "routes = ( { prefix = \"/a\"; backend = \"http://b\"; retries = 11;\n"
	    "  timeout_ms = 0; connect_timeout_ms = 600001;\n"
	    "  cache_ttl_s = 31536001;\n"
	    "  rate_limit = { requests_per_second = 0; burst_size = -1; }; } );\n",
	    "2: gateway.max_body_bytes: must be between 0 and 1073741824",
	    "3: redis2: unknown key",
	    "4: circuit_breaker.failure_statuses.[0]: must be between 100 and 599",
	    "4: circuit_breaker.failure_statuses.[2]: must be between 100 and 599",
	    "5: circuit_breaker.failure_threshold: must be between 1 and 1000000",
	    "6: cache.max_object_bytes: must be between 0 and 536870912",
	    "7: routes.[0].retries: must be between 0 and 10",
	    "8: routes.[0].timeout_ms: must be between 1 and 600000",
	    "8: routes.[0].connect_timeout_ms: must be between 1 and 600000",
	    "9: routes.[0].cache_ttl_s: must be between 0 and 31536000",
	    "10: routes.[0].rate_limit.requests_per_second: must be between 1 and 1000000000",
	    "10: routes.[0].rate_limit.burst_size: must be between 0 and 1000000000");
}

static void
test_err_big_integers(void **state)
{
	struct config *cfg;

	(void)state;
	/* libconfig keeps 32 bits: 4294967396 would silently read as 100. */
	FAILS(REDIS
	    "gateway = { max_body_bytes = 4294967396; };\n" ROUTE,
	    "2: integer 4294967396 is out of range (at most 2147483647 "
	    "without an L suffix)");
	FAILS(REDIS
	    "gateway = { max_body_bytes = 4294967396L; };\n" ROUTE,
	    "2: gateway.max_body_bytes: must be between 0 and 1073741824");
	FAILS(REDIS
	    "cache = { max_object_bytes = 0x80000000; };\n" ROUTE,
	    "2: integer 0x80000000 is out of range (at most 2147483647 "
	    "without an L suffix)",
	    "2: cache.max_object_bytes: must be between 0 and 536870912");
	/* Digits in names, strings, comments and floats are not integers. */
	cfg = load_ok(REDIS "# 99999999999\n"
	    "plugins = ( { path = \"/p99999999999.so\";\n"
	    "  config = { k99999999999 = 1.99999999999e3; y = .99999999999;\n"
	    "             z = 5000000000L; }; } );\n" ROUTE);
	assert_int_equal(cfg->n_plugins, 1);
	config_free(cfg);
}

static void
test_err_bad_url(void **state)
{
	(void)state;
	FAILS(REDIS
	    "routes = (\n"
	    "  { prefix = \"/a\"; backend = \"ftp://b\"; },\n"
	    "  { prefix = \"/b\"; backend = \"http://user@b\"; },\n"
	    "  { prefix = \"/c\"; backend = \"http://b:0\"; },\n"
	    "  { prefix = \"/d\"; backend = \"http://b/x?y=1\"; },\n"
	    "  { prefix = \"/e\"; backend = \"http://b/x#f\"; },\n"
	    "  { prefix = \"/f\"; backend = \"https://\"; },\n"
	    "  { prefix = \"/g\"; backend = \"http://[::1\"; },\n"
	    "  { prefix = \"/h\"; backend = \"http://b b\"; },\n"
	    "  { prefix = \"/i\"; backend = \"http://b:65536\"; },\n"
	    "  { prefix = \"/j\"; backend = \"b:80\"; }\n"
	    ");\n",
	    "3: routes.[0].backend: not an http:// or https:// URL",
	    "4: routes.[1].backend: must not contain user info",
	    "5: routes.[2].backend: bad port (1 to 65535)",
	    "6: routes.[3].backend: must not contain a query",
	    "7: routes.[4].backend: must not contain a fragment",
	    "8: routes.[5].backend: URL has no host",
	    "9: routes.[6].backend: bad IPv6 address",
	    "10: routes.[7].backend: bad host",
	    "11: routes.[8].backend: bad port (1 to 65535)",
	    "12: routes.[9].backend: not an http:// or https:// URL");
	FAILS("redis = { url = \"http://127.0.0.1:6379\"; };\n" ROUTE,
	    "1: redis.url: not a redis:// or unix:// URL");
	FAILS("redis = { url = \"redis://h:99999\"; };\n" ROUTE,
	    "1: redis.url: bad port");
}

static void
test_err_bad_prefix(void **state)
{
	(void)state;
	FAILS(REDIS
	    "routes = (\n"
	    "  { prefix = \"api\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a?x\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a#x\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a b\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a//b\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a/./b\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a/..\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/a%2Fb\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"\"; backend = \"http://b\"; }\n"
	    ");\n",
	    "3: routes.[0].prefix: must start with '/'",
	    "4: routes.[1].prefix: must not contain '?'",
	    "5: routes.[2].prefix: must not contain '#'",
	    "6: routes.[3].prefix: must not contain whitespace, control "
	    "characters or non-ASCII bytes",
	    "7: routes.[4].prefix: must not contain \"//\"",
	    "8: routes.[5].prefix: must not contain \".\" or \"..\" segments",
	    "9: routes.[6].prefix: must not contain \".\" or \"..\" segments",
	    "10: routes.[7].prefix: must not contain '%'",
	    "11: routes.[8].prefix: must start with '/'");
}

static void
test_err_bad_cidr(void **state)
{
	(void)state;
	FAILS(REDIS
	    "gateway = {\n"
	    "  trusted_proxies = [ \"10.0.0.1/8\", \"1.2.3.4/33\", \"zz\" ];\n"
	    "  internal_allow = [ \"::1/129\", \"fe80::1/64\", \"::1/128\" ];\n"
	    "};\n" ROUTE,
	    "3: gateway.trusted_proxies.[0]: bad CIDR \"10.0.0.1/8\": host bits set",
	    "3: gateway.trusted_proxies.[1]: bad CIDR \"1.2.3.4/33\"",
	    "3: gateway.trusted_proxies.[2]: bad CIDR \"zz\"",
	    "4: gateway.internal_allow.[0]: bad CIDR \"::1/129\"",
	    "4: gateway.internal_allow.[1]: bad CIDR \"fe80::1/64\": host bits set");
}

static void
test_err_duplicate_prefix(void **state)
{
	(void)state;
	FAILS(REDIS
	    "routes = (\n"
	    "  { prefix = \"/api\"; backend = \"http://b\"; },\n"
	    "  { prefix = \"/other\"; backend = \"http://b\"; },\n"
	    "  { backend = \"http://c\";\n"
	    "    prefix = \"/api/\"; },\n"
	    "  { prefix = \"/api\"; backend = \"http://d\"; }\n"
	    ");\n",
	    "6: routes.[2].prefix: duplicate prefix \"/api\" (first at line 3)",
	    "7: routes.[3].prefix: duplicate prefix \"/api\" (first at line 3)");
}

static void
test_err_missing_required(void **state)
{
	(void)state;
	FAILS("gateway = { };\n",
	    "1: redis: missing required section",
	    "1: routes: missing required section");
	FAILS("redis = {\n"
	    "  key_prefix = \"x:\";\n"
	    "};\n"
	    "routes = (\n"
	    "  { backend = \"http://b\"; },\n"
	    "  { prefix = \"/a\"; }\n"
	    ");\n"
	    "plugins = ( { config = { }; } );\n",
	    "1: redis.url: missing required key",
	    "5: routes.[0].prefix: missing required key",
	    "6: routes.[1].backend: missing required key",
	    "8: plugins.[0].path: missing required key");
	FAILS(REDIS "routes = ( );\n",
	    "2: routes: must have at least 1 entry");
	FAILS("", "1: redis: missing required section",
	    "1: routes: missing required section");
}

static void
test_err_syntax(void **state)
{
	(void)state;
	FAILS(REDIS
	    "routes = (\n"
	    "  { prefix = ; backend = \"http://b\"; }\n"
	    ");\n",
	    "3: syntax error");
	FAILS(REDIS ROUTE "gateway = { max_body_bytes = 1; max_body_bytes = 2; };\n",
	    "3: duplicate setting name");
	FAILS(REDIS ROUTE "  @include \"/dev/zero\"\n",
	    "3: @include is not supported (the configuration is one file)");
}

static void
test_err_bad_algorithm(void **state)
{
	(void)state;
	FAILS(REDIS
	    "rate_limit = { algorithm = \"leaky_bucket\"; };\n"
	    "routes = ( { prefix = \"/a\"; backend = \"http://b\";\n"
	    "  rate_limit = { requests_per_minute = 1; algorithm = \"GCRA\"; }; } );\n",
	    "2: rate_limit.algorithm: must be one of sliding_window, "
	    "token_bucket, fixed_window, gcra",
	    "4: routes.[0].rate_limit.algorithm: must be one of "
	    "sliding_window, token_bucket, fixed_window, gcra");
}

static void
test_err_bad_method(void **state)
{
	(void)state;
	FAILS(REDIS
	    "routes = ( { prefix = \"/a\"; backend = \"http://b\";\n"
	    "  methods = [ \"GET\", \"get\", \"FETCH\" ]; },\n"
	    "  { prefix = \"/b\"; backend = \"http://b\"; methods = [ ]; } );\n"
	    "cors = { allow_methods = [ \"PUT\", \"BREW\" ]; };\n",
	    "3: routes.[0].methods.[1]: unknown method \"get\" (methods are "
	    "upper-case)",
	    "3: routes.[0].methods.[2]: unknown method \"FETCH\"",
	    "4: routes.[1].methods: must have at least 1 entry",
	    "5: cors.allow_methods.[1]: unknown method \"BREW\"");
}

static void
test_err_policy(void **state)
{
	(void)state;
	FAILS(REDIS
	    "routes = ( { prefix = \"/a\"; backend = \"http://b\";\n"
	    "  rate_limit = { algorithm = \"gcra\"; burst_size = 5; }; },\n"
	    "  { prefix = \"/b\"; backend = \"http://b\";\n"
	    "    rate_limit = { }; },\n"
	    "  { prefix = \"/c\"; backend = \"http://b\";\n"
	    "    rate_limit = { requests_per_day = 1; name = \"a.b\"; }; } );\n",
	    "3: routes.[0].rate_limit: a policy needs at least one of "
	    "requests_per_second, requests_per_minute, requests_per_hour, "
	    "requests_per_day",
	    "5: routes.[1].rate_limit: a policy needs at least one of "
	    "requests_per_second, requests_per_minute, requests_per_hour, "
	    "requests_per_day",
	    "7: routes.[2].rate_limit.name: must be 1 to 31 characters of "
	    "A-Z, a-z, 0-9, '_' and '-'");
}

static void
test_err_strings(void **state)
{
	(void)state;
	FAILS("redis = { url = \"redis://h\"; key_prefix = \"a{b}\";\n"
	    "  on_failure = \"half\"; };\n"
	    "gateway = { request_id_header = \"X Req\"; };\n"
	    "api_keys = { header = \"\"; };\n"
	    "cors = { allow_origins = [ \"https://a.example/path\" ];\n"
	    "  allow_headers = [ \"Content-Type\", \"Bad:Header\" ]; };\n"
	    "log = { access = \"access.log\"; format = \"xml\"; level = \"warning\"; };\n"
	    ROUTE,
	    "1: redis.key_prefix: must not contain '{', '}', spaces or "
	    "control characters",
	    "2: redis.on_failure: must be one of open, closed, local",
	    "3: gateway.request_id_header: \"X Req\" is not a valid header "
	    "name (RFC 9110 token, 1 to 128 characters)",
	    "4: api_keys.header: \"\" is not a valid header name (RFC 9110 "
	    "token, 1 to 128 characters)",
	    "5: cors.allow_origins.[0]: must be \"*\" or an origin like "
	    "\"https://example.com\" (no path)",
	    "6: cors.allow_headers.[1]: \"Bad:Header\" is not a valid header "
	    "name (RFC 9110 token, 1 to 128 characters)",
	    "7: log.access: must be \"stderr\", \"off\" or an absolute file path",
	    "7: log.format: must be one of combined, json",
	    "7: log.level: must be one of debug, info, warn, error");
}

static void
test_err_many(void **state)
{
	char *text = NULL;
	size_t text_len = 0;
	struct config_errors errs;
	struct config *cfg;
	char *path, *last;
	int i;
	FILE *f;

	(void)state;
	/* Several classes at once, reported in line order. */
	FAILS("redis = { url = \"redis://h\"; conect_timeout_ms = 1; };\n"
	    "gateway = { max_body_bytes = -5; };\n"
	    "routes = ( { prefix = \"/a\"; backend = \"ftp://x\"; },\n"
	    "  { prefix = \"/a\"; backend = \"http://x\"; methods = [ \"GOT\" ]; } );\n"
	    "rate_limit = { algorithm = \"x\"; };\n",
	    "1: redis.conect_timeout_ms: unknown key",
	    "2: gateway.max_body_bytes: must be between 0 and 1073741824",
	    "3: routes.[0].backend: not an http:// or https:// URL",
	    "4: routes.[1].methods.[0]: unknown method \"GOT\"",
	    "4: routes.[1].prefix: duplicate prefix \"/a\" (first at line 3)",
	    "5: rate_limit.algorithm: must be one of sliding_window, "
	    "token_bucket, fixed_window, gcra");

	/* Past 100 errors, one line says how many there were. */
	f = open_memstream(&text, &text_len);
	assert_non_null(f);
	fputs(REDIS ROUTE, f);
	for (i = 0; i < 150; i++)
		fprintf(f, "bogus%d = 1;\n", i);
	assert_int_equal(fclose(f), 0);
	path = write_conf(text);
	cfg = config_load(path, &errs);
	assert_null(cfg);
	assert_int_equal(errs.n, 101);
	last = xasprintf("%s: too many errors (150 in all), giving up", path);
	assert_string_equal(errs.msg[100], last);
	free(last);
	config_errors_cleanup(&errs);

	/* errs may be NULL. */
	assert_null(config_load(path, NULL));
	free(path);
	free(text);
}

static void
test_err_file(void **state)
{
	struct config_errors errs;
	char *path, *want;
	FILE *f;

	(void)state;
	path = xasprintf("%s/does-not-exist.conf", tmpdir);
	assert_null(config_load(path, &errs));
	assert_int_equal(errs.n, 1);
	want = xasprintf("%s: cannot open: No such file or directory", path);
	assert_string_equal(errs.msg[0], want);
	free(want);
	config_errors_cleanup(&errs);
	free(path);

	assert_null(config_load(tmpdir, &errs));
	assert_int_equal(errs.n, 1);
	want = xasprintf("%s: is a directory", tmpdir);
	assert_string_equal(errs.msg[0], want);
	free(want);
	config_errors_cleanup(&errs);

	/* A NUL byte would make libconfig ignore the rest of the file. */
	path = xasprintf("%s/nul.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(REDIS, f);
	fputc('\0', f);
	fputs(ROUTE, f);
	assert_int_equal(fclose(f), 0);
	assert_null(config_load(path, &errs));
	assert_int_equal(errs.n, 1);
	want = xasprintf("%s:2: NUL byte in the file", path);
	assert_string_equal(errs.msg[0], want);
	free(want);
	config_errors_cleanup(&errs);
	unlink(path);
	free(path);
}

/* ---- parsers and helpers ---- */

static void
test_redis_url(void **state)
{
	struct redis_url u;
	const char *why;

	(void)state;
	assert_int_equal(redis_url_parse("redis://127.0.0.1", &u, &why), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);
	assert_null(u.user);
	assert_null(u.password);
	assert_null(u.unix_path);
	redis_url_cleanup(&u);

	assert_int_equal(redis_url_parse("redis://alice:p%3Ass@cache.local:7000/12",
	    &u, &why), 0);
	assert_string_equal(u.host, "cache.local");
	assert_int_equal(u.port, 7000);
	assert_int_equal(u.db, 12);
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.password, "p:ss");
	redis_url_cleanup(&u);

	assert_int_equal(redis_url_parse("redis://:secret@h/", &u, &why), 0);
	assert_null(u.user);
	assert_string_equal(u.password, "secret");
	assert_int_equal(u.db, 0);
	redis_url_cleanup(&u);

	assert_int_equal(redis_url_parse("redis://[::1]:6380/1", &u, &why), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 1);
	redis_url_cleanup(&u);

	assert_int_equal(redis_url_parse("unix:///tmp/redis.sock", &u, &why), 0);
	assert_null(u.host);
	assert_string_equal(u.unix_path, "/tmp/redis.sock");
	assert_int_equal(u.db, 0);
	redis_url_cleanup(&u);

	assert_int_equal(redis_url_parse("unix:///tmp/r.sock?db=5&password=pw",
	    &u, &why), 0);
	assert_string_equal(u.unix_path, "/tmp/r.sock");
	assert_int_equal(u.db, 5);
	assert_string_equal(u.password, "pw");
	redis_url_cleanup(&u);

#define BAD(url, reason) do {						\
	assert_int_equal(redis_url_parse((url), &u, &why), -1);		\
	assert_string_equal(why, (reason));				\
	assert_null(u.host);						\
	assert_null(u.unix_path);					\
	assert_null(u.user);						\
	assert_null(u.password);					\
	redis_url_cleanup(&u);						\
} while (0)
	BAD("", "not a redis:// or unix:// URL");
	BAD("localhost:6379", "not a redis:// or unix:// URL");
	BAD("rediss://h", "rediss:// (TLS) is not supported");
	BAD("redis://", "missing host");
	BAD("redis://h:0", "bad port");
	BAD("redis://h:65536", "bad port");
	BAD("redis://h:x", "bad port");
	BAD("redis://h/x", "bad database number");
	BAD("redis://h/-1", "bad database number");
	BAD("redis://user@h", "user info must be user:password or :password");
	BAD("redis://u:p%zz@h", "bad percent-encoding");
	BAD("redis://u:p%00@h", "bad percent-encoding");
	BAD("redis://:@h", "empty password");
	BAD("redis://h?db=1", "query or fragment not allowed in a redis:// URL");
	BAD("redis://[::1", "bad IPv6 address");
	BAD("redis://h h", "bad host");
	BAD("unix://tmp/r.sock", "unix socket path must be absolute "
	    "(unix:///path.sock)");
	BAD("unix:///tmp/r.sock?db=x", "bad database number");
	BAD("unix:///tmp/r.sock?tls=1", "unix:// parameters are db=, user= "
	    "and password=");
	BAD("unix://", "unix socket path must be absolute (unix:///path.sock)");
#undef BAD
	/* why may be NULL. */
	assert_int_equal(redis_url_parse(NULL, &u, NULL), -1);
	redis_url_cleanup(&u);
	redis_url_cleanup(NULL);
}

static void
test_cidr(void **state)
{
	struct cidr c, list[3];

	(void)state;
	assert_int_equal(cidr_parse("10.0.0.0/8", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix_len, 8);
	assert_int_equal(c.addr[0], 10);
	assert_int_equal(cidr_parse("192.0.2.1", &c), 0);
	assert_int_equal(c.prefix_len, 32);
	assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
	assert_int_equal(c.prefix_len, 0);
	assert_int_equal(cidr_parse("2001:db8::/32", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix_len, 32);
	assert_int_equal(cidr_parse("::1", &c), 0);
	assert_int_equal(c.prefix_len, 128);
	assert_int_equal(cidr_parse("10.0.0.0/31", &c), 0);

	assert_int_equal(cidr_parse("10.0.0.1/8", &c), -1);	/* host bits */
	assert_int_equal(cidr_parse("2001:db8::1/64", &c), -1);
	assert_int_equal(cidr_parse("10.0.0.0/33", &c), -1);
	assert_int_equal(cidr_parse("::/129", &c), -1);
	assert_int_equal(cidr_parse("10.0.0.0/", &c), -1);
	assert_int_equal(cidr_parse("10.0.0.0/+8", &c), -1);
	assert_int_equal(cidr_parse("10.0.0.0/08", &c), -1);
	assert_int_equal(cidr_parse("10.0.0/8", &c), -1);
	assert_int_equal(cidr_parse("/8", &c), -1);
	assert_int_equal(cidr_parse("", &c), -1);
	assert_int_equal(cidr_parse("fe80::1%eth0", &c), -1);
	assert_int_equal(cidr_parse(NULL, &c), -1);

	assert_true(cidr_str_match("10.0.0.0/8", "10.255.1.2"));
	assert_false(cidr_str_match("10.0.0.0/8", "11.0.0.1"));
	assert_true(cidr_str_match("192.168.4.0/22", "192.168.7.255"));
	assert_false(cidr_str_match("192.168.4.0/22", "192.168.8.0"));
	assert_true(cidr_str_match("0.0.0.0/0", "203.0.113.9"));
	assert_false(cidr_str_match("0.0.0.0/0", "2001:db8::1"));
	assert_true(cidr_str_match("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(cidr_str_match("2001:db8::/32", "2001:db9::1"));
	assert_true(cidr_str_match("fe80::/10", "fe80::1%eth0"));
	assert_true(cidr_str_match("::1/128", "::1"));
	assert_false(cidr_str_match("::1/128", "127.0.0.1"));
	/* IPv4-mapped IPv6 addresses match IPv4 CIDRs, and back. */
	assert_true(cidr_str_match("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_false(cidr_str_match("127.0.0.0/8", "::ffff:128.0.0.1"));
	assert_true(cidr_str_match("::ffff:0:0/96", "198.51.100.1"));
	/* Garbage never matches. */
	assert_false(cidr_str_match("0.0.0.0/0", "not-an-ip"));
	assert_false(cidr_str_match("0.0.0.0/0", ""));

	assert_int_equal(cidr_parse("10.0.0.0/8", &list[0]), 0);
	assert_int_equal(cidr_parse("::1/128", &list[1]), 0);
	assert_int_equal(cidr_parse("192.0.2.0/24", &list[2]), 0);
	assert_true(cidr_list_match(list, 3, "192.0.2.200"));
	assert_true(cidr_list_match(list, 3, "::1"));
	assert_false(cidr_list_match(list, 3, "172.16.0.1"));
	assert_false(cidr_list_match(list, 0, "10.0.0.1"));
	assert_false(cidr_list_match(list, 3, NULL));
}

static void
test_methods(void **state)
{
	char out[64], small[12];

	(void)state;
	assert_int_equal(http_method_bit("GET"), M_GET);
	assert_int_equal(http_method_bit("OPTIONS"), M_OPTIONS);
	assert_int_equal(http_method_bit("CONNECT"), M_CONNECT);
	assert_int_equal(http_method_bit("get"), 0);
	assert_int_equal(http_method_bit("GETX"), 0);
	assert_int_equal(http_method_bit(""), 0);
	assert_int_equal(http_method_bit(NULL), 0);

	http_method_list(M_POST | M_GET, out, sizeof out);
	assert_string_equal(out, "GET, POST");
	http_method_list(0, out, sizeof out);
	assert_string_equal(out, "");
	/* Cut at a whole name, always NUL-terminated. */
	http_method_list(M_GET | M_HEAD | M_POST, small, sizeof small);
	assert_string_equal(small, "GET, HEAD");
	http_method_list(M_GET, small, 0);
}

static void
test_rl_tables(void **state)
{
	enum rl_algorithm a = RL_SLIDING_WINDOW;

	(void)state;
	assert_int_equal(rl_window_seconds[RL_SECOND], 1);
	assert_int_equal(rl_window_seconds[RL_MINUTE], 60);
	assert_int_equal(rl_window_seconds[RL_HOUR], 3600);
	assert_int_equal(rl_window_seconds[RL_DAY], 86400);
	assert_string_equal(rl_window_names[RL_HOUR], "hour");
	assert_string_equal(rl_algorithm_names[RL_GCRA], "gcra");
	assert_int_equal(rl_algorithm_parse("token_bucket", &a), 0);
	assert_int_equal(a, RL_TOKEN_BUCKET);
	assert_int_equal(rl_algorithm_parse("fixed_window", &a), 0);
	assert_int_equal(a, RL_FIXED_WINDOW);
	assert_int_equal(rl_algorithm_parse("leaky", &a), -1);
	assert_int_equal(a, RL_FIXED_WINDOW);
	assert_int_equal(rl_algorithm_parse(NULL, &a), -1);
}

/* Replaces path's content and sets its mtime to mtime. */
static void
rewrite(const char *path, const char *text, time_t mtime)
{
	struct timespec ts[2];
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	ts[0].tv_sec = ts[1].tv_sec = mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_changed(void **state)
{
	struct config *cfg;
	struct timespec ts[2];
	char *path;
	FILE *f;
	const time_t now = 2000000000;

	(void)state;
	path = write_conf(REDIS ROUTE);
	cfg = config_load(path, NULL);
	assert_non_null(cfg);
	assert_int_equal(config_changed(cfg, now), 0);

	/* Touched: a new mtime, same size. */
	ts[0].tv_sec = ts[1].tv_sec = cfg->mtime + 10;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	/* Not looked at again within the same second... */
	assert_int_equal(config_changed(cfg, now), 0);
	/* ...but the next second. */
	assert_int_equal(config_changed(cfg, now + 1), 1);
	config_free(cfg);

	/* A reloaded config is unchanged until the file changes again. */
	cfg = config_load(path, NULL);
	assert_non_null(cfg);
	assert_int_equal(config_changed(cfg, now + 2), 0);
	/* A size change with the same mtime is noticed too. */
	f = fopen(path, "a");
	assert_non_null(f);
	fputs("# more\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(config_changed(cfg, now + 3), 1);
	config_free(cfg);

	/* A broken edit is reported once, not every second. */
	cfg = config_load(path, NULL);
	assert_non_null(cfg);
	rewrite(path, REDIS "routes = oops;\n", cfg->mtime + 20);
	assert_int_equal(config_changed(cfg, now + 4), 1);
	assert_null(config_load(path, NULL));
	assert_int_equal(config_changed(cfg, now + 5), 0);
	/* Fixed: changed again, and loads. */
	rewrite(path, REDIS ROUTE "# fixed\n", cfg->mtime + 30);
	assert_int_equal(config_changed(cfg, now + 6), 1);
	config_free(cfg);
	cfg = config_load(path, NULL);
	assert_non_null(cfg);
	assert_int_equal(config_changed(cfg, now + 7), 0);

	/* A file that is gone is not "changed": keep the running config. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(config_changed(cfg, now + 8), 0);
	config_free(cfg);
	config_free(NULL);
	assert_int_equal(config_changed(NULL, now + 9), 0);
	free(path);
}

/* ---- set-up ---- */

static int
group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	char *path;
	int i;

	(void)state;
	for (i = 0; i < nfiles; i++) {
		path = xasprintf("%s/t%d.conf", tmpdir, i);
		unlink(path);
		free(path);
	}
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_default_policy_windows),
		cmocka_unit_test(test_redis_unix),
		cmocka_unit_test(test_example_conf),
		cmocka_unit_test(test_err_unknown_key),
		cmocka_unit_test(test_err_wrong_type),
		cmocka_unit_test(test_err_out_of_range),
		cmocka_unit_test(test_err_big_integers),
		cmocka_unit_test(test_err_bad_url),
		cmocka_unit_test(test_err_bad_prefix),
		cmocka_unit_test(test_err_bad_cidr),
		cmocka_unit_test(test_err_duplicate_prefix),
		cmocka_unit_test(test_err_missing_required),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_err_bad_algorithm),
		cmocka_unit_test(test_err_bad_method),
		cmocka_unit_test(test_err_policy),
		cmocka_unit_test(test_err_strings),
		cmocka_unit_test(test_err_many),
		cmocka_unit_test(test_err_file),
		cmocka_unit_test(test_redis_url),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_rl_tables),
		cmocka_unit_test(test_changed),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
