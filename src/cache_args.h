/*
 * cache_args -- the command line of apigw-cache, parsed into a struct, and
 * the purge target it names, resolved against the config's routes.
 * Pure: no I/O, so every rule is unit-tested.
 *
 *	apigw-cache [--config FILE] purge PATH        every query, every variant
 *	apigw-cache [--config FILE] purge PATH?QUERY  that query string only
 *	apigw-cache [--config FILE] purge --route PREFIX
 *	apigw-cache [--config FILE] stats [--json]
 *
 * PATH is what a client asks for, route prefix included.  It is normalized
 * as the gateway normalizes request paths (normalize.h) and routed as the
 * gateway routes them (router.h), so "/api//users/./7" names the entries of
 * "/api/users/7".  The QUERY is everything after the first '?', byte for
 * byte (nothing decoded or reordered): the gateway keys its cache on the
 * query string as the client sent it.  "/x?" is the empty query, which is
 * not the same request as "/x" (no '?' at all); "/x" alone means every
 * query string of /x.
 *
 * --route PREFIX takes the prefix exactly as written in the config
 * ("/api", not "/api/").  Either way the route must cache (cache_ttl_s > 0):
 * purging a route that caches nothing is almost always a typo, so it is an
 * error rather than a silent "purged 0 entries".
 *
 * Options may come before or after the command, as "--opt VALUE" or
 * "--opt=VALUE"; "--" ends the options.  Each option may be given once.
 */
#ifndef APIGW_CACHE_ARGS_H
#define APIGW_CACHE_ARGS_H

#include <stddef.h>

struct config;
struct route;

/* The longest PATH[?QUERY] accepted (web servers refuse longer URIs). */
#define CACHE_ARGS_TARGET_MAX 8192

enum cache_command {
	CACHE_CMD_NONE = 0,
	CACHE_CMD_HELP,
	CACHE_CMD_VERSION,
	CACHE_CMD_PURGE,
	CACHE_CMD_STATS,
};

struct cache_args {
	enum cache_command cmd;
	const char *config; /* borrowed from argv; NULL: default */
	const char *target; /* purge PATH[?QUERY] as given, borrowed; NULL with
	                       --route */
	size_t path_len;    /* the bytes of target before the first '?' */
	const char *query;  /* after that '?', borrowed; NULL: there was none
	                       (every query string) */
	const char *route;  /* purge --route PREFIX, borrowed */
	int json;           /* stats --json */
	char err[256];      /* one line, no newline, when something fails */
};

/*
 * Parses argv[1..argc-1] into *a (zeroed first).  Returns 0, or -1 with a
 * one-line message in a->err.  --help and --version set cmd to
 * CACHE_CMD_HELP or CACHE_CMD_VERSION and need no command.
 */
int cache_args_parse(int argc, char *const *argv, struct cache_args *a);

/* What a purge removes, once resolved against a config. */
struct cache_target {
	const struct route *route; /* borrowed from the config */
	char *path;        /* normalized PATH, owned; NULL: the whole route */
	const char *query; /* borrowed from the args; NULL: every query */
};

/*
 * Resolves the purge of a (cmd CACHE_CMD_PURGE) against cfg into *t.
 * Returns 0, or -1 with a one-line message in a->err when PATH does not
 * normalize, no route matches PATH or has prefix PREFIX, or that route
 * does not cache.  Release t with cache_target_cleanup() either way.
 */
int cache_args_resolve(
    const struct config *cfg, struct cache_args *a, struct cache_target *t);
void cache_target_cleanup(struct cache_target *t);

#endif
