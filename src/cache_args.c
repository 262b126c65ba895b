/*
 * cache_args -- the command line of apigw-cache (see cache_args.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_args.h"
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

#define OPT_GLOBAL (OPT_CONFIG | OPT_HELP | OPT_VERSION)

static const struct cache_option {
	const char *name;
	unsigned flag;
	int has_value;
} cache_options[] = {
    {"--config", OPT_CONFIG, 1},
    {"--help", OPT_HELP, 0},
    {"-h", OPT_HELP, 0},
    {"--version", OPT_VERSION, 0},
    {"-V", OPT_VERSION, 0},
    {"--json", OPT_JSON, 0},
    {"--route", OPT_ROUTE, 1},
};

static const struct cache_command_def {
	const char *name;
	enum cache_command cmd;
	unsigned options; /* accepted besides OPT_GLOBAL */
	int takes_arg;    /* a positional argument */
} cache_commands[] = {
    {"purge", CACHE_CMD_PURGE, OPT_ROUTE, 1},
    {"stats", CACHE_CMD_STATS, OPT_JSON, 0},
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static void cache_args_error(struct cache_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cache_args_error(struct cache_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof a->err, fmt, ap);
	va_end(ap);
}

/*
 * Copies user input s (len bytes) into out for an error message: printable
 * ASCII only (anything else becomes '?'), cut at 60 characters.
 */
static const char *
cache_args_quote(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 4 < outlen; i++) {
		if (i == 60) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	out[o] = '\0';
	return out;
}

/* Returns the option named by arg (up to '=' when it has one), or NULL. */
static const struct cache_option *
cache_args_option(const char *arg, const char **value)
{
	const char *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	size_t i;

	*value = eq != NULL ? eq + 1 : NULL;
	for (i = 0; i < NITEMS(cache_options); i++) {
		if (strlen(cache_options[i].name) == len &&
		    strncmp(cache_options[i].name, arg, len) == 0)
			return &cache_options[i];
	}
	return NULL;
}

static const struct cache_command_def *
cache_args_command(const char *name)
{
	size_t i;

	for (i = 0; i < NITEMS(cache_commands); i++) {
		if (strcmp(cache_commands[i].name, name) == 0)
			return &cache_commands[i];
	}
	return NULL;
}

/* Checks what only makes sense once the whole line is read. */
static int
cache_args_finish(struct cache_args *a, const struct cache_command_def *def,
    unsigned seen, const char *pos)
{
	const char *q;
	size_t i;

	for (i = 0; i < NITEMS(cache_options); i++) {
		if ((seen & cache_options[i].flag) &&
		    !(cache_options[i].flag & (OPT_GLOBAL | def->options))) {
			cache_args_error(a, "%s: option %s does not apply",
			    def->name, cache_options[i].name);
			return -1;
		}
	}
	if (a->cmd != CACHE_CMD_PURGE)
		return 0;
	if (pos != NULL && a->route != NULL) {
		cache_args_error(a,
		    "purge: give either PATH or --route "
		    "PREFIX, not both");
		return -1;
	}
	if (pos == NULL && a->route == NULL) {
		cache_args_error(a,
		    "purge: missing PATH or --route PREFIX "
		    "(try 'apigw-cache --help')");
		return -1;
	}
	if (pos == NULL)
		return 0;
	if (strlen(pos) > CACHE_ARGS_TARGET_MAX) {
		cache_args_error(a, "purge: PATH is longer than %d bytes",
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
	const struct cache_command_def *def = NULL;
	const struct cache_option *o;
	const char *arg, *v, *pos = NULL;
	char q[80];
	unsigned seen = 0;
	int i, options_done = 0;

	memset(a, 0, sizeof *a);
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = 1;
			continue;
		}
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (def == NULL) {
				def = cache_args_command(arg);
				if (def == NULL) {
					cache_args_error(a,
					    "unknown command '%s' (try "
					    "'apigw-cache --help')",
					    cache_args_quote(
					        arg, strlen(arg), q, sizeof q));
					return -1;
				}
				continue;
			}
			if (!def->takes_arg || pos != NULL) {
				cache_args_error(a,
				    "%s: unexpected argument '%s'", def->name,
				    cache_args_quote(
				        arg, strlen(arg), q, sizeof q));
				return -1;
			}
			pos = arg;
			continue;
		}

		o = cache_args_option(arg, &v);
		if (o == NULL) {
			cache_args_error(a,
			    "unknown option '%s' (try 'apigw-cache --help')",
			    cache_args_quote(arg, strlen(arg), q, sizeof q));
			return -1;
		}
		if (o->flag == OPT_HELP || o->flag == OPT_VERSION) {
			if (v != NULL) {
				cache_args_error(
				    a, "option %s takes no value", o->name);
				return -1;
			}
			a->cmd = o->flag == OPT_HELP ? CACHE_CMD_HELP
			                             : CACHE_CMD_VERSION;
			return 0;
		}
		if (seen & o->flag) {
			cache_args_error(a, "option %s given twice", o->name);
			return -1;
		}
		seen |= o->flag;
		if (!o->has_value) {
			if (v != NULL) {
				cache_args_error(
				    a, "option %s takes no value", o->name);
				return -1;
			}
			a->json = 1; /* --json is the only flag */
			continue;
		}
		if (v == NULL) {
			if (i + 1 == argc) {
				cache_args_error(
				    a, "option %s needs a value", o->name);
				return -1;
			}
			v = argv[++i];
		}
		if (v[0] == '\0') {
			cache_args_error(a, "option %s: empty value", o->name);
			return -1;
		}
		if (o->flag == OPT_CONFIG)
			a->config = v;
		else
			a->route = v;
	}

	if (def == NULL) {
		cache_args_error(
		    a, "missing command (try 'apigw-cache --help')");
		return -1;
	}
	a->cmd = def->cmd;
	return cache_args_finish(a, def, seen, pos);
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
			cache_args_error(a,
			    "purge: no route has the prefix '%s' (give it "
			    "exactly as configured)",
			    cache_args_quote(
			        a->route, strlen(a->route), q, sizeof q));
			goto out;
		}
	} else {
		nr = normalize_path(a->target, a->path_len, &t->path);
		if (nr != NORMALIZE_OK) {
			cache_args_error(a, "purge: PATH '%s' is invalid: %s",
			    cache_args_quote(
			        a->target, a->path_len, q, sizeof q),
			    normalize_strerror(nr));
			goto out;
		}
		t->query = a->query;
		t->route = router_match(cfg, t->path);
		if (t->route == NULL) {
			cache_args_error(a, "purge: no route matches '%s'",
			    cache_args_quote(
			        t->path, strlen(t->path), q, sizeof q));
			goto out;
		}
	}
	if (t->route->cache_ttl_s <= 0) {
		cache_args_error(a,
		    "purge: route '%s' does not cache (its cache_ttl_s is 0)",
		    cache_args_quote(
		        t->route->prefix, t->route->prefix_len, p, sizeof p));
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
