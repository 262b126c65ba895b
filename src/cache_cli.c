/*
 * apigw-cache -- purge and count the gateway's cached responses in Redis.
 *
 * Everything is found through the indexes the gateway keeps next to the
 * entries (keyspace.h, cache_index.h), never with KEYS or SCAN over the
 * whole database: a path zset names the entries of one client-facing
 * path, a route zset names the path zsets of one route, and c:live names
 * every entry with its expiry.  Each index is read a page at a time
 * (ZSCAN, which sees every member that stays put however the zset changes
 * meanwhile) and each page is removed in one pipelined batch, so a purge
 * of n entries costs about n/CLI_PAGE round trips and bounded memory.
 *
 * A purge races with the gateway filling the cache: an entry stored while
 * a purge runs may survive it, exactly as one would whose backend fetch
 * began before the purge and ended after it.  Fill locks (":l:" names)
 * are left alone: they expire within seconds.
 *
 * Exit status: 0 success; 1 usage error, unknown or uncached route, bad
 * PATH or config error; 2 Redis unreachable or failing.  Every error is
 * one line "apigw-cache: ..." on stderr; results go to stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cache_args.h"
#include "cache_index.h"
#include "cli.h"
#include "config.h"
#include "keyspace.h"
#include "store.h"
#include "xalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define PROG "apigw-cache"

/* Members asked for per ZSCAN or ZRANGE page (a hint for ZSCAN). */
#define CLI_PAGE 500
#define CLI_PAGE_S "500"

static const char cli_usage[] =
    "usage: apigw-cache [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  purge PATH          remove every cached response of PATH (route\n"
    "                      prefix included): all query strings, all "
    "variants\n"
    "  purge 'PATH?QUERY'  only those of that exact query string ('PATH?' "
    "is\n"
    "                      the empty query string)\n"
    "  purge --route PREFIX\n"
    "                      remove every cached response of the route with\n"
    "                      that prefix (exactly as configured)\n"
    "  stats [--json]      count the live entries and their bytes\n"
    "\n"
    "Options:\n"
    "  --config FILE   gateway config (else $APIGW_CONFIG, else\n"
    "                  " SYSCONFDIR "/apigw/apigw.conf)\n"
    "  --help          show this help\n"
    "  --version       show the version\n"
    "\n"
    "Exit status: 0 ok; 1 usage error, unknown or uncached route, bad PATH "
    "or\n"
    "bad config; 2 Redis unreachable.\n";

/* Where Redis is, for error messages (never the URL: it may hold a password).
 */
static char cli_redis_where[160];

/* What a command works with; the batches' views die at their next use. */
struct cli {
	struct store *s;
	const char *prefix;
	struct buf live;         /* <prefix>c:live */
	struct store_batch page; /* a page of a path zset (or of c:live) */
	struct store_batch rep;  /* the replies to one batch of removals */
	struct store_batch top;  /* a page of the route zset */
	long long purged;        /* entries deleted (those that existed) */
};

/*
 * Runs n commands as one round trip into b.  Returns CLI_OK, or CLI_REDIS
 * (reported) when Redis failed or answered any of them with an error.
 */
static int
cli_exec(struct cli *c, const struct store_cmd *cmds, size_t n,
    struct store_batch *b)
{
	const struct store_val *v;
	const char *why = NULL;
	size_t i;

	if (store_exec(c->s, cmds, n, b, &why) == -1) {
		if (why == NULL || why[0] == '\0')
			why = "redis: unreachable";
		cli_error(PROG, "%s%s (%s)",
		    strncasecmp(why, "redis", 5) == 0 ? "" : "redis: ", why,
		    cli_redis_where);
		return CLI_REDIS;
	}
	for (i = 0; i < n; i++) {
		v = store_batch_reply(b, i);
		if (v->type == STORE_ERR) {
			cli_error(PROG, "redis: %.200s (%s)",
			    v->str != NULL ? v->str : "error", cli_redis_where);
			return CLI_REDIS;
		}
	}
	return CLI_OK;
}

static void
cli_cmd_set(
    struct store_cmd *cmd, int argc, const char **argv, const size_t *lens)
{
	cmd->script = -1;
	cmd->nkeys = 0;
	cmd->argc = argc;
	cmd->argv = argv;
	cmd->argvlen = lens;
}

/*
 * Checks that v is a ZSCAN reply, copies its cursor into cursor and
 * returns its member/score array, or NULL (reported).
 */
static const struct store_val *
cli_scan_reply(const struct store_val *v, char cursor[32])
{
	if (v->type != STORE_ARR || v->n != 2 || v->elem[0].type != STORE_STR ||
	    v->elem[0].len == 0 || v->elem[0].len >= 32 ||
	    v->elem[1].type != STORE_ARR || v->elem[1].n % 2 != 0) {
		cli_error(PROG, "redis: unexpected reply to ZSCAN (%s)",
		    cli_redis_where);
		return NULL;
	}
	memcpy(cursor, v->elem[0].str, v->elem[0].len + 1);
	return &v->elem[1];
}

/*
 * Removes the entries named by the path zset pathname: all of them
 * (qh40 NULL), or those of one query hash.  Removing all also deletes the
 * zset itself and, when route is not NULL, its name from that route zset.
 * Each ZSCAN page becomes one batch: DEL of each entry, one ZREM from
 * c:live, one ZREM from the path zset.  Returns CLI_OK or CLI_REDIS.
 */
static int
cli_purge_path(
    struct cli *c, const char *pathname, const char *qh40, const char *route)
{
	const struct store_val *members, *m;
	struct store_cmd *cmds = NULL, scan;
	const char **argv = NULL, *qh = NULL, *scan_argv[7];
	size_t *lens = NULL, k, i, nl, ndel, nzrem, live0, path0;
	char cursor[32] = "0", match[2 + 41];
	int rc = CLI_REDIS, last, scan_argc = 5;

	scan_argv[0] = "ZSCAN";
	scan_argv[1] = pathname;
	scan_argv[2] = cursor;
	scan_argv[3] = "COUNT";
	scan_argv[4] = CLI_PAGE_S;
	if (qh40 != NULL) {
		/* The prefix has no space: only the qh40 follows one. */
		snprintf(match, sizeof match, "* %s", qh40);
		scan_argv[5] = "MATCH";
		scan_argv[6] = match;
		scan_argc = 7;
	}
	cli_cmd_set(&scan, scan_argc, scan_argv, NULL);
	do {
		if (cli_exec(c, &scan, 1, &c->page) != CLI_OK)
			goto out;
		members =
		    cli_scan_reply(store_batch_reply(&c->page, 0), cursor);
		if (members == NULL)
			goto out;
		last = strcmp(cursor, "0") == 0;
		k = members->n / 2;

		/* DEL x k, ZREM live (2 + k), ZREM path (2 + k), DEL path (2),
		 * ZREM route (3). */
		free(cmds);
		free(argv);
		free(lens);
		cmds = xcalloc(k + 4, sizeof *cmds);
		argv = xcalloc(4 * k + 9, sizeof *argv);
		lens = xcalloc(4 * k + 9, sizeof *lens);
		live0 = 2 * k;
		path0 = live0 + 2 + k;
		argv[live0] = "ZREM";
		argv[live0 + 1] = buf_cstr(&c->live);
		argv[path0] = "ZREM";
		argv[path0 + 1] = pathname;
		for (i = 0; i < 2; i++) {
			lens[live0 + i] = strlen(argv[live0 + i]);
			lens[path0 + i] = strlen(argv[path0 + i]);
		}

		ndel = 0;
		nzrem = 0; /* members to take out of the path zset */
		for (i = 0; i < k; i++) {
			m = &members->elem[2 * i];
			if (m->type != STORE_STR)
				continue;
			if (!cache_index_member(
			        c->prefix, m->str, m->len, &nl, &qh))
				nl = 0; /* not an entry: only unindexed */
			if (qh40 != NULL && (nl == 0 || memcmp(qh, qh40, 40)))
				continue;
			argv[path0 + 2 + nzrem] = m->str;
			lens[path0 + 2 + nzrem] = m->len;
			nzrem++;
			if (nl == 0)
				continue;
			argv[2 * ndel] = "DEL";
			lens[2 * ndel] = 3;
			argv[2 * ndel + 1] = m->str;
			lens[2 * ndel + 1] = nl;
			cli_cmd_set(
			    &cmds[ndel], 2, &argv[2 * ndel], &lens[2 * ndel]);
			argv[live0 + 2 + ndel] = m->str;
			lens[live0 + 2 + ndel] = nl;
			ndel++;
		}
		i = ndel;
		if (ndel > 0)
			cli_cmd_set(&cmds[i++], 2 + (int)ndel, &argv[live0],
			    &lens[live0]);
		if (nzrem > 0)
			cli_cmd_set(&cmds[i++], 2 + (int)nzrem, &argv[path0],
			    &lens[path0]);
		if (last && qh40 == NULL) {
			argv[path0 + 2 + k] = "DEL";
			argv[path0 + 3 + k] = pathname;
			cli_cmd_set(&cmds[i++], 2, &argv[path0 + 2 + k], NULL);
			if (route != NULL) {
				argv[path0 + 4 + k] = "ZREM";
				argv[path0 + 5 + k] = route;
				argv[path0 + 6 + k] = pathname;
				cli_cmd_set(
				    &cmds[i++], 3, &argv[path0 + 4 + k], NULL);
			}
		}
		if (i > 0 && cli_exec(c, cmds, i, &c->rep) != CLI_OK)
			goto out;
		for (i = 0; i < ndel; i++) {
			m = store_batch_reply(&c->rep, i);
			if (m->type == STORE_INT)
				c->purged += m->i;
		}
	} while (!last);
	rc = CLI_OK;
out:
	free(cmds);
	free(argv);
	free(lens);
	return rc;
}

/* purge PATH[?QUERY]: one path zset, all of it or one query's members. */
static int
cli_purge_target(struct cli *c, const struct cache_target *t)
{
	struct buf pathname, route;
	char path64[KEYSPACE_HASH_HEX + 1], qh40[41];
	int rc;

	buf_init(&pathname);
	buf_init(&route);
	keyspace_cache_path_hash(t->route->route_id, t->path, path64);
	keyspace_cache_path(&pathname, c->prefix, path64);
	keyspace_cache_route(&route, c->prefix, t->route->route_id);
	if (t->query != NULL)
		keyspace_cache_query_hash(t->query, qh40);
	rc = cli_purge_path(c, buf_cstr(&pathname),
	    t->query != NULL ? qh40 : NULL, buf_cstr(&route));
	buf_cleanup(&pathname);
	buf_cleanup(&route);
	return rc;
}

/* purge --route PREFIX: every path zset the route zset names, then it. */
static int
cli_purge_route(struct cli *c, const struct route *rt)
{
	const struct store_val *members, *m;
	struct store_cmd cmd;
	struct buf route;
	const char *argv[5];
	char cursor[32] = "0";
	size_t i;
	int rc = CLI_REDIS, last;

	buf_init(&route);
	keyspace_cache_route(&route, c->prefix, rt->route_id);
	argv[0] = "ZSCAN";
	argv[1] = buf_cstr(&route);
	argv[2] = cursor;
	argv[3] = "COUNT";
	argv[4] = CLI_PAGE_S;
	cli_cmd_set(&cmd, 5, argv, NULL);
	do {
		if (cli_exec(c, &cmd, 1, &c->top) != CLI_OK)
			goto out;
		members = cli_scan_reply(store_batch_reply(&c->top, 0), cursor);
		if (members == NULL)
			goto out;
		last = strcmp(cursor, "0") == 0;
		for (i = 0; i < members->n; i += 2) {
			m = &members->elem[i];
			/* Anything else goes with the route zset below. */
			if (m->type != STORE_STR ||
			    !cache_index_path_ok(c->prefix, m->str, m->len))
				continue;
			if (cli_purge_path(c, m->str, NULL, NULL) != CLI_OK)
				goto out;
		}
	} while (!last);
	argv[0] = "DEL";
	cli_cmd_set(&cmd, 2, argv, NULL);
	if (cli_exec(c, &cmd, 1, &c->top) != CLI_OK)
		goto out;
	rc = CLI_OK;
out:
	buf_cleanup(&route);
	return rc;
}

static int
cli_purge(struct cli *c, const struct cache_target *t)
{
	int rc;

	if (t->path != NULL)
		rc = cli_purge_target(c, t);
	else
		rc = cli_purge_route(c, t->route);
	/* What was deleted before a failure is gone all the same: say so. */
	if (rc == CLI_OK || c->purged > 0)
		printf("purged %lld %s\n", c->purged,
		    c->purged == 1 ? "entry" : "entries");
	return rc;
}

/* Redis's clock in Unix ms (the gateway scores c:live by it).  -1 on error. */
static long long
cli_redis_now_ms(struct cli *c)
{
	const struct store_val *v;
	struct store_cmd cmd;
	const char *argv[1] = {"TIME"};
	char *end;
	long long s, us;

	cli_cmd_set(&cmd, 1, argv, NULL);
	if (cli_exec(c, &cmd, 1, &c->rep) != CLI_OK)
		return -1;
	v = store_batch_reply(&c->rep, 0);
	if (v->type != STORE_ARR || v->n != 2 || v->elem[0].type != STORE_STR ||
	    v->elem[1].type != STORE_STR)
		goto bad;
	errno = 0;
	s = strtoll(v->elem[0].str, &end, 10);
	if (errno != 0 || *end != '\0' || s < 0)
		goto bad;
	us = strtoll(v->elem[1].str, &end, 10);
	if (errno != 0 || *end != '\0' || us < 0)
		goto bad;
	return s * 1000 + us / 1000;
bad:
	cli_error(
	    PROG, "redis: unexpected reply to TIME (%s)", cli_redis_where);
	return -1;
}

/*
 * stats: drops what has expired from c:live, then counts what is left and
 * sums the length of each entry, a page of STRLENs per round trip.
 */
static int
cli_stats(struct cli *c, int json)
{
	const struct store_val *v, *m;
	struct store_cmd cmds[CLI_PAGE], head[2];
	const char *argv[2 * CLI_PAGE], *zr[4], *hd[6];
	size_t lens[2 * CLI_PAGE], i, n;
	char now[32], start[32], stop[32];
	long long now_ms, entries, bytes = 0, off;
	int rc = CLI_REDIS;

	now_ms = cli_redis_now_ms(c);
	if (now_ms < 0)
		goto out;
	snprintf(now, sizeof now, "%lld", now_ms);
	hd[0] = "ZREMRANGEBYSCORE";
	hd[1] = buf_cstr(&c->live);
	hd[2] = "-inf";
	hd[3] = now;
	hd[4] = "ZCARD";
	hd[5] = buf_cstr(&c->live);
	cli_cmd_set(&head[0], 4, &hd[0], NULL);
	cli_cmd_set(&head[1], 2, &hd[4], NULL);
	if (cli_exec(c, head, 2, &c->rep) != CLI_OK)
		goto out;
	v = store_batch_reply(&c->rep, 1);
	if (v->type != STORE_INT) {
		cli_error(PROG, "redis: unexpected reply to ZCARD (%s)",
		    cli_redis_where);
		goto out;
	}
	entries = v->i;

	zr[0] = "ZRANGE";
	zr[1] = buf_cstr(&c->live);
	zr[2] = start;
	zr[3] = stop;
	for (off = 0;; off += CLI_PAGE) {
		snprintf(start, sizeof start, "%lld", off);
		snprintf(stop, sizeof stop, "%lld", off + CLI_PAGE - 1);
		cli_cmd_set(&cmds[0], 4, zr, NULL);
		if (cli_exec(c, cmds, 1, &c->page) != CLI_OK)
			goto out;
		v = store_batch_reply(&c->page, 0);
		if (v->type != STORE_ARR) {
			cli_error(PROG,
			    "redis: unexpected reply to ZRANGE (%s)",
			    cli_redis_where);
			goto out;
		}
		for (i = 0, n = 0; i < v->n && i < CLI_PAGE; i++) {
			m = &v->elem[i];
			if (m->type != STORE_STR ||
			    !cache_index_entry_ok(c->prefix, m->str, m->len))
				continue;
			argv[2 * n] = "STRLEN";
			lens[2 * n] = 6;
			argv[2 * n + 1] = m->str;
			lens[2 * n + 1] = m->len;
			cli_cmd_set(&cmds[n], 2, &argv[2 * n], &lens[2 * n]);
			n++;
		}
		if (n > 0 && cli_exec(c, cmds, n, &c->rep) != CLI_OK)
			goto out;
		for (i = 0; i < n; i++) {
			m = store_batch_reply(&c->rep, i);
			if (m->type == STORE_INT)
				bytes += m->i;
		}
		if (v->n < CLI_PAGE)
			break;
	}
	if (json)
		printf(
		    "{\"entries\": %lld, \"bytes\": %lld}\n", entries, bytes);
	else
		printf("entries: %lld\nbytes: %lld\n", entries, bytes);
	rc = CLI_OK;
out:
	return rc;
}

int
main(int argc, char **argv)
{
	struct cache_args a;
	struct cache_target t;
	struct config *cfg = NULL;
	struct cli c;
	int rc = CLI_USAGE;

	memset(&t, 0, sizeof t);
	memset(&c, 0, sizeof c);
	buf_init(&c.live);
	store_batch_init(&c.page);
	store_batch_init(&c.rep);
	store_batch_init(&c.top);

	if (cache_args_parse(argc, argv, &a) == -1) {
		cli_error(PROG, "%s", a.err);
		goto out;
	}
	if (a.cmd == CACHE_CMD_HELP || a.cmd == CACHE_CMD_VERSION) {
		rc = cli_help(PROG, a.cmd == CACHE_CMD_HELP ? cli_usage : NULL);
		goto out;
	}

	cfg = cli_config_load(PROG, a.config);
	if (cfg == NULL)
		goto out;
	if (a.cmd == CACHE_CMD_PURGE && cache_args_resolve(cfg, &a, &t) == -1) {
		cli_error(PROG, "%s", a.err);
		goto out;
	}
	c.prefix = cfg->redis.key_prefix;
	keyspace_cache_live(&c.live, c.prefix);
	c.s = cli_store_open(cfg, cli_redis_where, sizeof cli_redis_where);

	switch (a.cmd) {
	case CACHE_CMD_PURGE: rc = cli_purge(&c, &t); break;
	case CACHE_CMD_STATS: rc = cli_stats(&c, a.json); break;
	default: cli_error(PROG, "internal error: no command"); break;
	}
	rc = cli_flush(PROG, rc);
out:
	store_free(c.s);
	store_batch_cleanup(&c.page);
	store_batch_cleanup(&c.rep);
	store_batch_cleanup(&c.top);
	buf_cleanup(&c.live);
	cache_target_cleanup(&t);
	config_free(cfg);
	return rc;
}
