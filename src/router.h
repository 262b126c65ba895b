/*
 * router -- longest-prefix route matching on segment boundaries.
 *
 * A prefix matches a normalized path when the path equals it or continues
 * with '/' right after it: "/api/users" matches "/api/users",
 * "/api/users/" and "/api/users/7", never "/api/usersX".  A prefix byte
 * other than '/' also matches its percent escape in the path (either hex
 * case): "/a%3Ab/7" is under "/a:b".  The prefix "/" matches every path.
 * Among matches the longest prefix wins; config_load() rejects duplicate
 * prefixes, so the winner is unique.
 */
#ifndef APIGW_ROUTER_H
#define APIGW_ROUTER_H

#include <stddef.h>

struct config;
struct route;

/* Returns 1 when prefix (of prefix_len bytes) matches path on a boundary. */
int router_prefix_matches(
    const char *prefix, size_t prefix_len, const char *path);

/* Returns the best route for path, or NULL (404).  Borrowed from cfg. */
const struct route *router_match(const struct config *cfg, const char *path);

/* Returns 1 when the route allows method (an upper-case name), else 0 (405). */
int router_method_allowed(const struct route *rt, const char *method);

/*
 * The path to forward for rt: path itself, or with the prefix removed when
 * strip_prefix is set ("/api/users/7" under "/api/users" -> "/7", and the
 * bare prefix -> "/").  Returns a pointer into path or a static "/".
 */
const char *router_forward_path(const struct route *rt, const char *path);

#endif
