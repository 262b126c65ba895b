/*
 * cache_args -- the command line of apigw-cache (see cache_args.h).
 */
#include <stdlib.h>
#include <string.h>

#include "cache_args.h"
#include "cli.h"
#include "config.h"
#include "normalize.h"
#include "router.h"

/* Option flags: which option was seen, and which a command accepts. */
enum {
	OPT_CONFIG = 1 << 0,
	OPT_HELP = 1 << 1,
	OPT_VERSION = 1 << 2,
	OPT_JSON = 1 << 3,
	OPT_ROUTE = 1 << 4,
};

static const struct cli_option cache_options[] = {
    {"--config", OPT_CONFIG, 1, 0},
    {"--help", OPT_HELP, 0, CACHE_CMD_HELP},
    {"-h", OPT_HELP, 0, CACHE_CMD_HELP},
    {"--version", OPT_VERSION, 0, CACHE_CMD_VERSION},
    {"-V", OPT_VERSION, 0, CACHE_CMD_VERSION},
    {"--json", OPT_JSON, 0, 0},
    {"--route", OPT_ROUTE, 1, 0},
};

static const struct cli_command cache_commands[] = {
    {"purge", CACHE_CMD_PURGE, OPT_ROUTE, "PATH"},
    {"stats", CACHE_CMD_STATS, OPT_JSON, NULL},
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Stores option o (value v) in the cache_args ctx. */
static int
cache_args_set(void *ctx, const struct cli_option *o, const char *v)
{
	struct cache_args *a = ctx;

	if (v == NULL) {
		a->json = 1; /* --json is the only flag */
		return 0;
	}
	if (v[0] == '\0') {
		cli_format(
		    a->err, sizeof a->err, "option %s: empty value", o->name);
		return -1;
	}
	if (o->flag == OPT_CONFIG)
		a->config = v;
	else
		a->route = v;
	return 0;
}

static const struct cli_spec cache_spec = {
    .prog = "apigw-cache",
    .options = cache_options,
    .n_options = NITEMS(cache_options),
    .commands = cache_commands,
    .n_commands = NITEMS(cache_commands),
    .global = OPT_CONFIG | OPT_HELP | OPT_VERSION,
    .quote_max = CLI_QUOTE_MAX,
    .set = cache_args_set,
};

/* Checks what only makes sense once the whole line is read. */
static int
cache_args_finish(struct cache_args *a, const char *pos)
{
	const char *q;

	if (a->cmd != CACHE_CMD_PURGE)
		return 0;
	if (pos != NULL && a->route != NULL) {
		cli_format(a->err, sizeof a->err,
		    "purge: give either PATH or --route "
		    "PREFIX, not both");
		return -1;
	}
	if (pos == NULL && a->route == NULL) {
		cli_format(a->err, sizeof a->err,
		    "purge: missing PATH or --route PREFIX "
		    "(try 'apigw-cache --help')");
		return -1;
	}
	if (pos == NULL)
		return 0;
	if (strlen(pos) > CACHE_ARGS_TARGET_MAX) {
		cli_format(a->err, sizeof a->err,
		    "purge: PATH is longer than %d bytes",
		    CACHE_ARGS_TARGET_MAX);
		return -1;
	}
	a->target = pos;
	q = strchr(pos, '?');
	a->path_len = q != NULL ? (size_t)(q - pos) : strlen(pos);
	a->query = q != NULL ? q + 1 : NULL;
	return 0;
}

int
cache_args_parse(int argc, char *const *argv, struct cache_args *a)
{
	struct cli_line line;
	int rc;

	memset(a, 0, sizeof *a);
	rc = cli_args_parse(
	    &cache_spec, argc, argv, a, &line, a->err, sizeof a->err);
	a->cmd = (enum cache_command)line.cmd;
	if (rc == 0 && line.def != NULL)
		rc = cache_args_finish(a, line.pos);
	return rc;
}

/* The route whose prefix is exactly prefix, or NULL.  Borrowed from cfg. */
static const struct route *
cache_args_route(const struct config *cfg, const char *prefix)
{
	size_t i;

	for (i = 0; i < cfg->n_routes; i++) {
		if (strcmp(cfg->routes[i].prefix, prefix) == 0)
			return &cfg->routes[i];
	}
	return NULL;
}

int
cache_args_resolve(
    const struct config *cfg, struct cache_args *a, struct cache_target *t)
{
	enum normalize_result nr;
	char q[80], p[80];
	int rc = -1;

	memset(t, 0, sizeof *t);
	if (a->route != NULL) {
		t->route = cache_args_route(cfg, a->route);
		if (t->route == NULL) {
			cli_format(a->err, sizeof a->err,
			    "purge: no route has the prefix '%s' (give it "
			    "exactly as configured)",
			    cli_quote(a->route, strlen(a->route), CLI_QUOTE_MAX,
			        q, sizeof q));
			goto out;
		}
	} else {
		nr = normalize_path(a->target, a->path_len, &t->path);
		if (nr != NORMALIZE_OK) {
			cli_format(a->err, sizeof a->err,
			    "purge: PATH '%s' is invalid: %s",
			    cli_quote(a->target, a->path_len, CLI_QUOTE_MAX, q,
			        sizeof q),
			    normalize_strerror(nr));
			goto out;
		}
		t->query = a->query;
		t->route = router_match(cfg, t->path);
		if (t->route == NULL) {
			cli_format(a->err, sizeof a->err,
			    "purge: no route matches '%s'",
			    cli_quote(t->path, strlen(t->path), CLI_QUOTE_MAX,
			        q, sizeof q));
			goto out;
		}
	}
	if (t->route->cache_ttl_s <= 0) {
		cli_format(a->err, sizeof a->err,
		    "purge: route '%s' does not cache (its cache_ttl_s is 0)",
		    cli_quote(t->route->prefix, t->route->prefix_len,
		        CLI_QUOTE_MAX, p, sizeof p));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

void
cache_target_cleanup(struct cache_target *t)
{
	free(t->path);
	t->path = NULL;
	t->route = NULL;
	t->query = NULL;
}
