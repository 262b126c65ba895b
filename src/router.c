/*
 * router -- longest-prefix route matching; the contract is in router.h.
 *
 * Paths reaching here are already normalized (normalize.c): there are no
 * "//", "." or ".." left for a prefix to be fooled by, and escapes of
 * unreserved characters are decoded.  Escapes of the reserved characters
 * a prefix may hold (':', '@', "!$&'()*+,=") are left as they came, and a
 * backend decodes them like the characters themselves, so each prefix
 * byte matches either itself or its escape: "/a%3Ab" must get the route
 * "/a:b" (its key check, its limits), not a shorter one that would
 * forward the same resource without them.
 */
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "router.h"

static int
router_hex_is(char h, unsigned v)
{
	return h == "0123456789ABCDEF"[v] || h == "0123456789abcdef"[v];
}

/*
 * The number of bytes of path that spell prefix, or 0 when path does not
 * start with it.  A '/' matches only itself: "%2F" never ends a segment.
 */
static size_t
router_prefix_span(const char *prefix, size_t prefix_len, const char *path)
{
	size_t i, j = 0;
	unsigned char c;

	for (i = 0; i < prefix_len; i++) {
		c = (unsigned char)prefix[i];
		if (path[j] == (char)c)
			j++;
		else if (c != '/' && path[j] == '%' &&
		    router_hex_is(path[j + 1], c >> 4) &&
		    router_hex_is(path[j + 2], c & 0xf))
			j += 3;
		else
			return 0;
	}
	return j;
}

/* The bytes of path the route's prefix covers on a boundary, or 0. */
static size_t
router_prefix_match_len(const char *prefix, size_t prefix_len, const char *path)
{
	size_t n;

	/* An empty prefix is not a valid route; config_load() refuses it. */
	if (prefix == NULL || path == NULL || prefix_len == 0)
		return 0;
	n = router_prefix_span(prefix, prefix_len, path);
	if (n == 0)
		return 0;
	/*
	 * "/" (and any prefix written with a trailing '/') already ends on
	 * a boundary; otherwise the path must end or go on with '/', so
	 * "/api/users" never claims "/api/usersX".
	 */
	if (prefix[prefix_len - 1] == '/')
		return n;
	return path[n] == '\0' || path[n] == '/' ? n : 0;
}

int
router_prefix_matches(const char *prefix, size_t prefix_len, const char *path)
{
	return router_prefix_match_len(prefix, prefix_len, path) != 0;
}

const struct route *
router_match(const struct config *cfg, const char *path)
{
	const struct route *best = NULL;
	const struct route *rt;
	size_t i;

	if (cfg == NULL || path == NULL)
		return NULL;
	/*
	 * config_load() sorts longest first, so the first match normally
	 * wins and the length test skips the rest cheaply; the full scan
	 * keeps the answer right for a config built any other way.
	 */
	for (i = 0; i < cfg->n_routes; i++) {
		rt = &cfg->routes[i];
		if (best != NULL && rt->prefix_len <= best->prefix_len)
			continue;
		if (router_prefix_matches(rt->prefix, rt->prefix_len, path))
			best = rt;
	}
	return best;
}

int
router_method_allowed(const struct route *rt, const char *method)
{
	unsigned bit;

	if (rt == NULL || method == NULL)
		return 0;
	bit = http_method_bit(method);
	/*
	 * An extension method (PROPFIND, PURGE...) has no bit.  A route
	 * that names no methods means "every method", so it lets them
	 * through; a route with an explicit list cannot have named them.
	 */
	if (bit == 0)
		return (rt->methods & M_ALL) == M_ALL;
	return (rt->methods & bit) != 0;
}

const char *
router_forward_path(const struct route *rt, const char *path)
{
	const char *rest;
	size_t n;

	if (rt == NULL || path == NULL || !rt->strip_prefix)
		return path;
	/*
	 * Only a path the route really matched has a prefix to strip, as
	 * the path spells it ("/a%3Ab/x" under "/a:b": 6 bytes).
	 */
	n = router_prefix_match_len(rt->prefix, rt->prefix_len, path);
	if (n == 0)
		return path;
	/*
	 * Keep the boundary '/' so the result is absolute: for "/api/" the
	 * slash is the prefix's last byte, for "/api" it is the path's next.
	 */
	rest = path + n;
	if (rt->prefix[rt->prefix_len - 1] == '/')
		rest--;
	if (*rest == '\0')
		return "/";
	return rest;
}
