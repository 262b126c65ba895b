/*
 * router -- longest-prefix route matching; the contract is in router.h.
 *
 * Paths reaching here are already normalized (normalize.c), so a plain
 * byte comparison is enough: there are no "//", "." or ".." left for a
 * prefix to be fooled by.
 */
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "router.h"

int
router_prefix_matches(const char *prefix, size_t prefix_len, const char *path)
{
	/* An empty prefix is not a valid route; config_load() refuses it. */
	if (prefix == NULL || path == NULL || prefix_len == 0)
		return 0;
	if (strncmp(path, prefix, prefix_len) != 0)
		return 0;
	/*
	 * "/" (and any prefix written with a trailing '/') already ends on
	 * a boundary; otherwise the path must end or go on with '/', so
	 * "/api/users" never claims "/api/usersX".
	 */
	if (prefix[prefix_len - 1] == '/')
		return 1;
	return path[prefix_len] == '\0' || path[prefix_len] == '/';
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

	if (rt == NULL || path == NULL || !rt->strip_prefix)
		return path;
	/* Only a path the route really matched has a prefix to strip. */
	if (!router_prefix_matches(rt->prefix, rt->prefix_len, path))
		return path;
	/*
	 * Keep the boundary '/' so the result is absolute: for "/api/" the
	 * slash is the prefix's last byte, for "/api" it is the path's next.
	 */
	rest = path + rt->prefix_len;
	if (rt->prefix[rt->prefix_len - 1] == '/')
		rest--;
	if (*rest == '\0')
		return "/";
	return rest;
}
