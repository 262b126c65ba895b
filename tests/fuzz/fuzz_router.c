/*
 * Fuzz target for routing: the input is a raw request path, normalized as
 * the gateway does, then matched by router_match() against a fixed route
 * table loaded once through config_load() (so routes come out of the real
 * config code, sorted as it sorts them).
 *
 * Aborts when the winner does not spell the start of the path (a prefix
 * byte other than '/' may come as its %XX escape) on a segment boundary,
 * when a longer prefix also matches, when no route is returned although
 * one matches, or when the forward path is neither a suffix of the path
 * that starts with '/' nor, for the bare prefix, "/".
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "normalize.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Nested prefixes, neighbours that share a leading string ("/api/users"
 * and "/api/usersX"), escapes, and a catch-all: the cases the boundary
 * rule is about.
 */
static const char fuzz_router_conf[] =
    "redis = { url = \"redis://127.0.0.1:6379/0\"; };\n"
    "routes = (\n"
    "  { prefix = \"/\"; backend = \"http://127.0.0.1:8001\"; },\n"
    "  { prefix = \"/api\"; backend = \"http://127.0.0.1:8001\";"
    " methods = [ \"GET\" ]; },\n"
    "  { prefix = \"/api/users\"; backend = \"http://127.0.0.1:8001\";"
    " methods = [ \"GET\", \"POST\" ]; },\n"
    "  { prefix = \"/api/users/admin\"; backend = \"http://127.0.0.1:8002\";"
    " strip_prefix = true; },\n"
    "  { prefix = \"/api/usersX\"; backend = \"http://127.0.0.1:8003\"; },\n"
    "  { prefix = \"/static\"; backend = \"http://127.0.0.1:8004/files\";"
    " strip_prefix = true; },\n"
    "  { prefix = \"/a-b_c.d~e\"; backend = \"http://127.0.0.1:8005\"; },\n"
    "  { prefix = \"/v1/a/b/c/d\"; backend = \"http://127.0.0.1:8006\";"
    " strip_prefix = true; }\n"
    ");\n";

static const char *const fuzz_router_methods[] = {"GET", "HEAD", "POST", "PUT",
    "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "get", ""};

static void
fuzz_fail(const char *why, const char *path)
{
	fprintf(stderr, "fuzz_router: %s: \"%s\"\n", why, path);
	abort();
}

/* Loads the table on first use; kept for the life of the process. */
static const struct config *
fuzz_router_config(void)
{
	static struct config *cfg;
	struct config_errors errs;
	const char *tmp;
	char path[4096];
	int fd;

	if (cfg != NULL)
		return cfg;
	tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(path, sizeof path, "%s/apigw-fuzz-router-XXXXXX", tmp);
	fd = mkstemp(path);
	if (fd == -1 ||
	    write(fd, fuzz_router_conf, sizeof fuzz_router_conf - 1) !=
	        (ssize_t)(sizeof fuzz_router_conf - 1) ||
	    close(fd) == -1) {
		fprintf(stderr, "fuzz_router: %s: %s\n", path, strerror(errno));
		abort();
	}
	memset(&errs, 0, sizeof errs);
	cfg = config_load(path, &errs);
	unlink(path);
	if (cfg == NULL) {
		size_t i;

		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "fuzz_router: %s\n", errs.msg[i]);
		abort();
	}
	config_errors_cleanup(&errs);
	return cfg;
}

/*
 * The oracle's own reading of "path starts with prefix": each prefix byte
 * other than '/' may also be spelled as its %XX escape, in either hex
 * case (a backend decodes both alike).  Returns the path bytes used, or
 * -1.  Written apart from router.c on purpose.
 */
static long
fuzz_router_span(const char *prefix, size_t prefix_len, const char *path)
{
	size_t i, j = 0;
	char hex[3];

	for (i = 0; i < prefix_len; i++) {
		if (path[j] == prefix[i]) {
			j++;
			continue;
		}
		if (prefix[i] == '/' || path[j] != '%' ||
		    !isxdigit((unsigned char)path[j + 1]) ||
		    !isxdigit((unsigned char)path[j + 2]))
			return -1;
		hex[0] = path[j + 1];
		hex[1] = path[j + 2];
		hex[2] = '\0';
		if (strtoul(hex, NULL, 16) != (unsigned char)prefix[i])
			return -1;
		j += 3;
	}
	return (long)j;
}

static void
fuzz_router_check(const struct config *cfg, const char *path)
{
	long used;
	const struct route *rt, *best = NULL;
	const char *fwd;
	size_t i, len = strlen(path), flen;

	for (i = 0; i < cfg->n_routes; i++)
		if (router_prefix_matches(cfg->routes[i].prefix,
		        cfg->routes[i].prefix_len, path) &&
		    (best == NULL ||
		        cfg->routes[i].prefix_len > best->prefix_len))
			best = &cfg->routes[i];
	rt = router_match(cfg, path);
	if (rt != best)
		fuzz_fail("not the longest matching prefix", path);
	if (rt == NULL)
		return;
	used = fuzz_router_span(rt->prefix, rt->prefix_len, path);
	if (used < 0)
		fuzz_fail("winner is not a prefix", path);
	fwd = router_forward_path(rt, path);
	flen = strlen(fwd);
	if (fwd[0] != '/')
		fuzz_fail("forward path not absolute", path);
	/* The bare prefix forwards as "/" (documented), else a suffix. */
	if (!(rt->strip_prefix && len == (size_t)used &&
	        strcmp(fwd, "/") == 0) &&
	    (flen > len || memcmp(fwd, path + len - flen, flen) != 0))
		fuzz_fail("forward path not a suffix of the path", path);
	if (!rt->strip_prefix && fwd != path)
		fuzz_fail("forward path changed without strip_prefix", path);
	for (i = 0; i < sizeof fuzz_router_methods / sizeof(char *); i++)
		(void)router_method_allowed(rt, fuzz_router_methods[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct config *cfg = fuzz_router_config();
	char *path = NULL, *raw;

	if (normalize_path((const char *)data, size, &path) == NORMALIZE_OK)
		fuzz_router_check(cfg, path);
	free(path);
	/*
	 * The matcher is plain string work and must hold its rules for any
	 * string, normalized or not (up to the first NUL).
	 */
	raw = malloc(size + 1);
	if (raw == NULL)
		abort();
	memcpy(raw, data, size);
	raw[size] = '\0';
	fuzz_router_check(cfg, raw);
	free(raw);
	return 0;
}
