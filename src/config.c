/*
 * config.c -- read the libconfig file and walk the key tables.
 *
 * The schema is not here: each section's keys are declared by its module in
 * a table of struct config_key (config_keys.h).  This file composes the
 * sections (config_keys_root) and has three walkers that serve any table:
 *
 *	set_defaults()	fills a struct with every key's default;
 *	walk_group()	checks a libconfig group against a table: unknown keys,
 *			wrong types, out-of-range values and missing required
 *			keys become "file:line: key: reason" errors (all of
 *			them, not just the first) and valid values are stored;
 *	free_keys()	releases whatever the table's keys own.
 *
 * So a key added to a table is defaulted, validated, stored and freed with
 * no further code.  Checks that span keys (duplicate route prefixes, a
 * policy without any window, a route policy inheriting the default policy's
 * algorithm) run after the walk, in finish_routes() and walk_policy().
 *
 * The file is read into memory first and pre-scanned (config_lex.h) for
 * what libconfig 1.5 would accept silently but wrongly and for @include;
 * then config_read_string() parses it.  Only this file includes libconfig.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>
#include <openssl/evp.h>

#include "buf.h"
#include "config.h"
#include "config_keys.h"
#include "config_lex.h"
#include "xalloc.h"

#define CONFIG_MAX_BYTES (8 * 1024 * 1024) /* a bigger file is refused */
#define CONFIG_MAX_ERRORS 100 /* then "too many errors" and silence */

/* What config_changed compares: struct config only has whole-second mtime. */
struct file_sig {
	struct timespec mtim;
	off_t size;
	ino_t ino;
	dev_t dev;
};

/* config_load returns &priv->pub. */
struct config_priv {
	struct config pub;   /* first: a struct config * is a priv * */
	struct file_sig sig; /* of the file it was read from */
};

/*
 * The last file that config_load refused, so that config_changed does not
 * report it again every second (a reload would only log the same errors).
 */
static struct file_sig failed_sig;
static int failed_sig_set;

static void
file_sig_of(const struct stat *st, struct file_sig *sig)
{
	memset(sig, 0, sizeof *sig);
	sig->mtim = st->st_mtim;
	sig->size = st->st_size;
	sig->ino = st->st_ino;
	sig->dev = st->st_dev;
}

static int
file_sig_equal(const struct file_sig *a, const struct file_sig *b)
{
	return a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec && a->size == b->size &&
	    a->ino == b->ino && a->dev == b->dev;
}

/* ---- the sections ---- */

#define CO(m) offsetof(struct config, m)

/* clang-format off */
const struct config_key config_keys_root[] = {
	{ .name = "redis", .type = CK_GROUP, .flags = CKF_REQUIRED,
	  .sub = config_keys_redis, .off = CO(redis) },
	{ .name = "gateway", .type = CK_GROUP, .sub = config_keys_gateway,
	  .off = CO(gateway) },
	{ .name = "rate_limit", .type = CK_POLICY, .flags = CKF_DEFAULT_POLICY,
	  .def_s = "default", .sub = config_keys_policy, .off = CO(rate_limit),
	  .help = "the default policy" },
	{ .name = "api_keys", .type = CK_GROUP, .sub = config_keys_api_keys,
	  .off = CO(api_keys) },
	{ .name = "circuit_breaker", .type = CK_GROUP,
	  .sub = config_keys_breaker, .off = CO(circuit_breaker) },
	{ .name = "cache", .type = CK_GROUP, .sub = config_keys_cache,
	  .off = CO(cache) },
	{ .name = "cors", .type = CK_GROUP, .sub = config_keys_cors,
	  .off = CO(cors) },
	{ .name = "log", .type = CK_GROUP, .sub = config_keys_log,
	  .off = CO(log) },
	{ .name = "listen", .type = CK_GROUP, .sub = config_keys_listen,
	  .off = CO(listen) },
	{ .name = "plugins", .type = CK_LIST, .max_n = 64,
	  .sub = config_keys_plugin, .elem_size = sizeof(struct plugin_conf),
	  .off = CO(plugins), .off_n = CO(n_plugins),
	  .off_line = offsetof(struct plugin_conf, line),
	  .help = "shared objects, run in order" },
	{ .name = "routes", .type = CK_LIST, .flags = CKF_REQUIRED, .min_n = 1,
	  .max_n = 10000, .sub = config_keys_route,
	  .elem_size = sizeof(struct route), .off = CO(routes),
	  .off_n = CO(n_routes), .off_line = offsetof(struct route, line),
	  .help = "routes; the longest matching prefix wins" },
	{ .name = NULL },
};
/* clang-format on */

/* ---- typed access through a table entry ---- */

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

static const struct config_key *
find_key(const struct config_key *tab, const char *name, int *idx)
{
	int i;

	if (name == NULL)
		return NULL;
	for (i = 0; tab[i].name != NULL; i++) {
		if (strcmp(tab[i].name, name) == 0) {
			*idx = i;
			return &tab[i];
		}
	}
	return NULL;
}

static uint64_t
key_bit(const struct config_key *tab, const char *name)
{
	int idx;

	if (find_key(tab, name, &idx) == NULL)
		abort();
	return (uint64_t)1 << idx;
}

static char *
join_list(const char *const *list)
{
	struct buf b;
	char *s;
	size_t i;

	buf_init(&b);
	for (i = 0; list[i] != NULL; i++) {
		if (i > 0)
			buf_puts(&b, ", ");
		buf_puts(&b, list[i]);
	}
	s = xstrdup(buf_cstr(&b));
	buf_cleanup(&b);
	return s;
}

static void set_defaults(const struct config_key *tab, void *base);
static void free_keys(const struct config_key *tab, void *base);

static void
policy_defaults(const struct config_key *e, struct rl_policy *pol)
{
	memset(pol, 0, sizeof *pol);
	set_defaults(e->sub, pol);
	pol->name = xstrdup(e->def_s);
	if (e->flags & CKF_DEFAULT_POLICY) {
		pol->present = 1;
		pol->limit[RL_MINUTE] = 60;
	}
}

static void
set_defaults(const struct config_key *tab, void *base)
{
	const struct config_key *e;
	struct cidr *cidrs;
	char **strs;
	int *ints;
	size_t n, i;

	for (e = tab; e->name != NULL; e++) {
		switch (e->type) {
		case CK_LONG: *AT(base, e->off, long) = (long)e->def; break;
		case CK_INT:
		case CK_BOOL:
		case CK_ENUM: *AT(base, e->off, int) = (int)e->def; break;
		case CK_METHODS:
			*AT(base, e->off, unsigned) = (unsigned)e->def;
			break;
		case CK_STRING:
			*AT(base, e->off, char *) =
			    e->def_s != NULL ? xstrdup(e->def_s) : NULL;
			break;
		case CK_STRLIST:
			for (n = 0; e->def_list[n] != NULL; n++)
				;
			strs = xcalloc(n, sizeof *strs);
			for (i = 0; i < n; i++)
				strs[i] = xstrdup(e->def_list[i]);
			*AT(base, e->off, char **) = strs;
			*AT(base, e->off_n, size_t) = n;
			break;
		case CK_JOINED:
			*AT(base, e->off, char *) = join_list(e->def_list);
			break;
		case CK_INTLIST:
			for (n = 0; e->def_ints[n] != 0; n++)
				;
			ints = xcalloc(n, sizeof *ints);
			memcpy(ints, e->def_ints, n * sizeof *ints);
			*AT(base, e->off, int *) = ints;
			*AT(base, e->off_n, size_t) = n;
			break;
		case CK_CIDRS:
			for (n = 0; e->def_list[n] != NULL; n++)
				;
			cidrs = xcalloc(n, sizeof *cidrs);
			for (i = 0; i < n; i++)
				if (cidr_parse(e->def_list[i], &cidrs[i]) == -1)
					abort(); /* a bad built-in default */
			*AT(base, e->off, struct cidr *) = cidrs;
			*AT(base, e->off_n, size_t) = n;
			break;
		case CK_GROUP:
			set_defaults(e->sub, AT(base, e->off, char));
			break;
		case CK_POLICY:
			policy_defaults(e, AT(base, e->off, struct rl_policy));
			break;
		case CK_LIST:
			*AT(base, e->off, void *) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		case CK_SETTING: *AT(base, e->off, void *) = NULL; break;
		}
	}
}

static void
free_strs(char **strs, size_t n)
{
	size_t i;

	if (strs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(strs[i]);
	free(strs);
}

static void
free_keys(const struct config_key *tab, void *base)
{
	const struct config_key *e;
	char *elems;
	size_t n, i;

	for (e = tab; e->name != NULL; e++) {
		switch (e->type) {
		case CK_LONG:
		case CK_INT:
		case CK_BOOL:
		case CK_ENUM:
		case CK_METHODS:
		case CK_SETTING: break;
		case CK_STRING:
		case CK_JOINED:
			free(*AT(base, e->off, char *));
			*AT(base, e->off, char *) = NULL;
			break;
		case CK_STRLIST:
			free_strs(*AT(base, e->off, char **),
			    *AT(base, e->off_n, size_t));
			*AT(base, e->off, char **) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		case CK_INTLIST:
		case CK_CIDRS:
			free(*AT(base, e->off, void *));
			*AT(base, e->off, void *) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		case CK_GROUP: free_keys(e->sub, AT(base, e->off, char)); break;
		case CK_POLICY:
			free_keys(e->sub, AT(base, e->off, struct rl_policy));
			break;
		case CK_LIST:
			elems = *AT(base, e->off, char *);
			n = *AT(base, e->off_n, size_t);
			for (i = 0; elems != NULL && i < n; i++)
				free_keys(e->sub, elems + i * e->elem_size);
			free(elems);
			*AT(base, e->off, void *) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		}
	}
}

/* ---- the walker ---- */

struct loader_msg {
	unsigned line; /* 0: about the whole file */
	size_t seq;    /* keeps the sort stable */
	char *msg;     /* owned */
};

struct loader {
	const char *file;        /* as given to config_load */
	struct loader_msg *msgs; /* at most CONFIG_KEEP_ERRORS */
	size_t n_msgs;
	size_t nerr; /* every error, also past the cap */
};

#define CONFIG_KEEP_ERRORS 10000 /* kept for sorting; then counted */

static void
add_message(struct loader *ld, unsigned line, char *msg)
{
	struct loader_msg *m;

	ld->nerr++;
	if (ld->n_msgs >= CONFIG_KEEP_ERRORS) {
		free(msg);
		return;
	}
	if ((ld->n_msgs & (ld->n_msgs - 1)) == 0) /* 0, 1, 2, 4, ... */
		ld->msgs = xrealloc(ld->msgs,
		    (ld->n_msgs ? ld->n_msgs * 2 : 1) * sizeof *ld->msgs);
	m = &ld->msgs[ld->n_msgs];
	m->line = line;
	m->seq = ld->n_msgs++;
	m->msg = msg;
}

static int
loader_msg_cmp(const void *a, const void *b)
{
	const struct loader_msg *ma = a, *mb = b;

	if (ma->line != mb->line)
		return ma->line < mb->line ? -1 : 1;
	return ma->seq < mb->seq ? -1 : ma->seq > mb->seq;
}

/*
 * Hands the messages, in line order, to errs (which may be NULL): at most
 * CONFIG_MAX_ERRORS of them, then one "too many errors" line.
 */
static void
loader_finish(struct loader *ld, struct config_errors *errs)
{
	size_t i, n;

	if (ld->n_msgs > 1)
		qsort(ld->msgs, ld->n_msgs, sizeof *ld->msgs, loader_msg_cmp);
	n = ld->n_msgs < CONFIG_MAX_ERRORS ? ld->n_msgs : CONFIG_MAX_ERRORS;
	if (errs != NULL && ld->nerr > 0) {
		errs->msg = xcalloc(n + 1, sizeof *errs->msg);
		/* cppcheck calls i < n always false here; it is not (n is
		 * the number of messages, which the config tests count). */
		/* cppcheck-suppress knownConditionTrueFalse */
		for (i = 0; i < n; i++) {
			errs->msg[i] = ld->msgs[i].msg;
			ld->msgs[i].msg = NULL;
		}
		errs->n = n;
		if (ld->nerr > n)
			errs->msg[errs->n++] = xasprintf(
			    "%s: too many errors (%zu in all), giving up",
			    ld->file, ld->nerr);
	}
	for (i = 0; i < ld->n_msgs; i++)
		free(ld->msgs[i].msg);
	free(ld->msgs);
	ld->msgs = NULL;
	ld->n_msgs = 0;
}

/* Adds "file:line: key: reason"; key may be NULL for a file-wide error. */
static void add_error(struct loader *ld, unsigned line, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_error(
    struct loader *ld, unsigned line, const char *key, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (line == 0)
		line = 1;
	if (key != NULL)
		add_message(ld, line,
		    xasprintf("%s:%u: %s: %s", ld->file, line, key, reason));
	else
		add_message(
		    ld, line, xasprintf("%s:%u: %s", ld->file, line, reason));
}

static unsigned
line_of(const config_setting_t *s)
{
	return config_setting_source_line(s);
}

/* Checks an array's or list's length against e's bounds; 1 when it fits. */
static int
count_ok(struct loader *ld, const config_setting_t *s, const char *kp,
    const struct config_key *e, size_t n)
{
	if ((long long)n < e->min_n) {
		add_error(ld, line_of(s), kp, "must have at least %lld entr%s",
		    e->min_n, e->min_n == 1 ? "y" : "ies");
		return 0;
	}
	if ((long long)n > e->max_n) {
		add_error(ld, line_of(s), kp, "must have at most %lld entries",
		    e->max_n);
		return 0;
	}
	return 1;
}

static char *
key_path(const char *parent, const char *name)
{
	if (parent == NULL || *parent == '\0')
		return xstrdup(name);
	return xasprintf("%s.%s", parent, name);
}

static char *
elem_path(const char *parent, int i)
{
	return xasprintf("%s.[%d]", parent, i);
}

/* Reads an int or int64 setting in [min, max]; 0 or -1 after an error. */
static int
get_integer(struct loader *ld, const config_setting_t *s, const char *kp,
    long long min, long long max, long long *out)
{
	long long v;
	int type = config_setting_type(s);

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		add_error(ld, line_of(s), kp, "expected an integer");
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		add_error(ld, line_of(s), kp, "must be between %lld and %lld",
		    min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Reads a string setting; NULL after an error. */
static const char *
get_string(struct loader *ld, const config_setting_t *s, const char *kp)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    (v = config_setting_get_string(s)) == NULL) {
		add_error(ld, line_of(s), kp, "expected a string");
		return NULL;
	}
	return v;
}

/* Reads and checks a string; returns an owned copy or NULL after an error. */
static char *
get_checked_string(struct loader *ld, const config_setting_t *s, const char *kp,
    config_check_fn check)
{
	const char *v;
	char why[CONFIG_WHY_MAX], *out;

	if ((v = get_string(ld, s, kp)) == NULL)
		return NULL;
	if (check == NULL)
		return xstrdup(v);
	why[0] = '\0';
	if ((out = check(v, why, sizeof why)) == NULL)
		add_error(ld, line_of(s), kp, "%s", why);
	return out;
}

static int
get_enum(struct loader *ld, const config_setting_t *s, const char *kp,
    const char *const *names, int *out)
{
	const char *v;
	struct buf b;
	int i;

	if ((v = get_string(ld, s, kp)) == NULL)
		return -1;
	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	buf_init(&b);
	for (i = 0; names[i] != NULL; i++)
		buf_printf(&b, "%s%s", i > 0 ? ", " : "", names[i]);
	add_error(ld, line_of(s), kp, "must be one of %s", buf_cstr(&b));
	buf_cleanup(&b);
	return -1;
}

static const char *
array_what(enum config_ktype type)
{
	switch (type) {
	case CK_INTLIST: return "an array of integers";
	case CK_CIDRS: return "an array of CIDR strings";
	case CK_METHODS: return "an array of method names";
	default: return "an array of strings";
	}
}

/*
 * CK_STRLIST, CK_JOINED, CK_INTLIST, CK_CIDRS and CK_METHODS: an array (or a
 * list) of scalars.  The value is stored only when every element is valid.
 */
static void
walk_array(struct loader *ld, const config_setting_t *s,
    const struct config_key *e, void *base, const char *kp)
{
	char **strs = NULL, *ekp, *str;
	int *ints = NULL;
	struct cidr *cidrs = NULL;
	const config_setting_t *el;
	const char *v, *why;
	unsigned mask = 0, bit;
	long long iv;
	size_t n = 0, i, bad = 0;
	int type = config_setting_type(s);
	struct buf b;

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		add_error(
		    ld, line_of(s), kp, "expected %s", array_what(e->type));
		return;
	}
	n = (size_t)config_setting_length(s);
	if (!count_ok(ld, s, kp, e, n))
		return;
	strs = xcalloc(n, sizeof *strs);
	ints = xcalloc(n, sizeof *ints);
	cidrs = xcalloc(n, sizeof *cidrs);
	for (i = 0; i < n; i++) {
		el = config_setting_get_elem(s, (unsigned)i);
		ekp = elem_path(kp, (int)i);
		switch (e->type) {
		case CK_INTLIST:
			if (get_integer(ld, el, ekp, e->min, e->max, &iv) == 0)
				ints[i] = (int)iv;
			else
				bad++;
			break;
		case CK_CIDRS:
			if ((v = get_string(ld, el, ekp)) == NULL)
				bad++;
			else if (cidr_parse_why(v, &cidrs[i], &why) == -1) {
				char q[CONFIG_QUOTE_MAX + 8];

				config_quote(v, q, sizeof q);
				if (strcmp(why, "host bits set") == 0)
					add_error(ld, line_of(el), ekp,
					    "bad CIDR %s: host bits set", q);
				else
					add_error(ld, line_of(el), ekp,
					    "bad CIDR %s", q);
				bad++;
			}
			break;
		case CK_METHODS:
			str = get_checked_string(
			    ld, el, ekp, config_check_method);
			if (str == NULL) {
				bad++;
				break;
			}
			bit = http_method_bit(str);
			mask |= bit;
			free(str);
			break;
		default:
			str = get_checked_string(ld, el, ekp, e->check);
			if (str == NULL)
				bad++;
			strs[i] = str;
			break;
		}
		free(ekp);
	}
	if (bad > 0)
		goto out;
	switch (e->type) {
	case CK_INTLIST:
		free(*AT(base, e->off, int *));
		*AT(base, e->off, int *) = ints;
		*AT(base, e->off_n, size_t) = n;
		ints = NULL;
		break;
	case CK_CIDRS:
		free(*AT(base, e->off, struct cidr *));
		*AT(base, e->off, struct cidr *) = cidrs;
		*AT(base, e->off_n, size_t) = n;
		cidrs = NULL;
		break;
	case CK_METHODS: *AT(base, e->off, unsigned) = mask; break;
	case CK_STRLIST:
		free_strs(
		    *AT(base, e->off, char **), *AT(base, e->off_n, size_t));
		*AT(base, e->off, char **) = strs;
		*AT(base, e->off_n, size_t) = n;
		strs = NULL;
		break;
	default: /* CK_JOINED */
		buf_init(&b);
		for (i = 0; i < n; i++)
			buf_printf(&b, "%s%s", i > 0 ? ", " : "", strs[i]);
		free(*AT(base, e->off, char *));
		*AT(base, e->off, char *) = xstrdup(buf_cstr(&b));
		buf_cleanup(&b);
		break;
	}
out:
	free_strs(strs, n);
	free(ints);
	free(cidrs);
}

static uint64_t walk_group(struct loader *, const config_setting_t *,
    const struct config_key *, void *, const char *);

static void
walk_policy(struct loader *ld, const config_setting_t *s,
    const struct config_key *e, struct rl_policy *pol, const char *kp)
{
	uint64_t seen, windows;
	int w;

	if (!config_setting_is_group(s)) {
		add_error(ld, line_of(s), kp, "expected a group");
		return;
	}
	pol->present = 1;
	for (w = 0; w < RL_NWINDOWS; w++)
		pol->limit[w] = 0;
	seen = walk_group(ld, s, e->sub, pol, kp);
	windows = key_bit(e->sub, "requests_per_second") |
	    key_bit(e->sub, "requests_per_minute") |
	    key_bit(e->sub, "requests_per_hour") |
	    key_bit(e->sub, "requests_per_day");
	if ((seen & windows) == 0) {
		if (e->flags & CKF_DEFAULT_POLICY)
			pol->limit[RL_MINUTE] = 60;
		else
			add_error(ld, line_of(s), kp,
			    "a policy needs at least "
			    "one of requests_per_second, requests_per_minute, "
			    "requests_per_hour, requests_per_day");
	}
	pol->algorithm_set = (seen & key_bit(e->sub, "algorithm")) != 0;
}

static void
walk_list(struct loader *ld, const config_setting_t *s,
    const struct config_key *e, void *base, const char *kp)
{
	const config_setting_t *el;
	char *elems, *item, *ekp;
	size_t n, i;

	if (!config_setting_is_list(s)) {
		add_error(ld, line_of(s), kp,
		    "expected a list of groups: ( { ... }, { ... } )");
		return;
	}
	n = (size_t)config_setting_length(s);
	if (!count_ok(ld, s, kp, e, n))
		return;
	elems = xcalloc(n, e->elem_size);
	for (i = 0; i < n; i++) {
		el = config_setting_get_elem(s, (unsigned)i);
		item = elems + i * e->elem_size;
		set_defaults(e->sub, item);
		*AT(item, e->off_line, int) = (int)line_of(el);
		ekp = elem_path(kp, (int)i);
		if (!config_setting_is_group(el))
			add_error(ld, line_of(el), ekp, "expected a group");
		else
			walk_group(ld, el, e->sub, item, ekp);
		free(ekp);
	}
	*AT(base, e->off, char *) = elems;
	*AT(base, e->off_n, size_t) = n;
}

/* Checks and stores one setting s described by e. */
static void
walk_value(struct loader *ld, const config_setting_t *s,
    const struct config_key *e, void *base, const char *kp)
{
	long long v;
	int iv;
	char *str;

	switch (e->type) {
	case CK_LONG:
		if (get_integer(ld, s, kp, e->min, e->max, &v) == 0)
			*AT(base, e->off, long) = (long)v;
		break;
	case CK_INT:
		if (get_integer(ld, s, kp, e->min, e->max, &v) == 0)
			*AT(base, e->off, int) = (int)v;
		break;
	case CK_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			add_error(ld, line_of(s), kp,
			    "expected a boolean (true or false)");
		else
			*AT(base, e->off, int) =
			    config_setting_get_bool(s) ? 1 : 0;
		break;
	case CK_STRING:
		if ((str = get_checked_string(ld, s, kp, e->check)) != NULL) {
			free(*AT(base, e->off, char *));
			*AT(base, e->off, char *) = str;
		}
		break;
	case CK_ENUM:
		if (get_enum(ld, s, kp, e->names, &iv) == 0)
			*AT(base, e->off, int) = iv;
		break;
	case CK_STRLIST:
	case CK_JOINED:
	case CK_INTLIST:
	case CK_CIDRS:
	case CK_METHODS: walk_array(ld, s, e, base, kp); break;
	case CK_GROUP:
		if (!config_setting_is_group(s))
			add_error(ld, line_of(s), kp, "expected a group");
		else
			walk_group(ld, s, e->sub, AT(base, e->off, char), kp);
		break;
	case CK_POLICY:
		walk_policy(ld, s, e, AT(base, e->off, struct rl_policy), kp);
		break;
	case CK_LIST: walk_list(ld, s, e, base, kp); break;
	case CK_SETTING:
		if (!config_setting_is_group(s))
			add_error(ld, line_of(s), kp, "expected a group");
		else
			*AT(base, e->off, void *) = (void *)s;
		break;
	}
}

/*
 * Walks every setting of grp against tab, storing into base.  Returns the
 * set of keys seen (bit i for tab[i]), valid or not.
 */
static uint64_t
walk_group(struct loader *ld, const config_setting_t *grp,
    const struct config_key *tab, void *base, const char *path)
{
	const config_setting_t *s;
	const struct config_key *e;
	uint64_t seen = 0;
	char *kp;
	int i, n, idx;

	n = config_setting_length(grp);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(grp, (unsigned)i);
		kp = key_path(path,
		    config_setting_name(s) != NULL ? config_setting_name(s)
		                                   : "?");
		if ((e = find_key(tab, config_setting_name(s), &idx)) == NULL)
			add_error(ld, line_of(s), kp, "unknown key");
		else {
			seen |= (uint64_t)1 << idx;
			walk_value(ld, s, e, base, kp);
		}
		free(kp);
	}
	for (i = 0; tab[i].name != NULL; i++) {
		if (!(tab[i].flags & CKF_REQUIRED) ||
		    (seen & ((uint64_t)1 << i)))
			continue;
		kp = key_path(path, tab[i].name);
		add_error(ld, line_of(grp), kp, "missing required %s",
		    tab[i].type == CK_GROUP || tab[i].type == CK_LIST
		        ? "section"
		        : "key");
		free(kp);
	}
	return seen;
}

/* ---- checks across keys ---- */

static void
route_id(const char *prefix, char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int i;

	if (EVP_Digest(
	        prefix, strlen(prefix), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 8)
		abort();
	for (i = 0; i < 8; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[16] = '\0';
}

static int
route_cmp(const void *a, const void *b)
{
	const struct route *ra = a, *rb = b;

	if (ra->prefix_len != rb->prefix_len)
		return ra->prefix_len > rb->prefix_len ? -1 : 1;
	return strcmp(ra->prefix, rb->prefix);
}

static unsigned
prefix_line(const config_setting_t *routes, size_t i)
{
	const config_setting_t *el, *p;

	if (routes == NULL ||
	    (el = config_setting_get_elem(routes, (unsigned)i)) == NULL)
		return 0;
	if (!config_setting_is_group(el) ||
	    (p = config_setting_get_member(el, "prefix")) == NULL)
		return line_of(el);
	return line_of(p);
}

static void
finish_routes(
    struct loader *ld, struct config *cfg, const config_setting_t *routes)
{
	struct route *r, *o;
	size_t i, j;
	char *kp, q[CONFIG_QUOTE_MAX + 8];

	for (i = 0; i < cfg->n_routes; i++) {
		r = &cfg->routes[i];
		if (!r->rate_limit.algorithm_set)
			r->rate_limit.algorithm = cfg->rate_limit.algorithm;
		if (r->prefix == NULL)
			continue;
		r->prefix_len = strlen(r->prefix);
		route_id(r->prefix, r->route_id);
		for (j = 0; j < i; j++) {
			o = &cfg->routes[j];
			if (o->prefix == NULL ||
			    o->prefix_len != r->prefix_len ||
			    strcmp(o->prefix, r->prefix) != 0)
				continue;
			kp = xasprintf("routes.[%zu].prefix", i);
			config_quote(r->prefix, q, sizeof q);
			add_error(ld, prefix_line(routes, i), kp,
			    "duplicate prefix %s (first at line %u)", q,
			    prefix_line(routes, j));
			free(kp);
			break;
		}
	}
	if (ld->nerr == 0 && cfg->n_routes > 1)
		qsort(
		    cfg->routes, cfg->n_routes, sizeof *cfg->routes, route_cmp);
}

/* ---- reading the file ---- */

static int
read_file(
    struct loader *ld, const char *path, struct buf *text, struct stat *st)
{
	char chunk[16384];
	ssize_t n;
	int fd, err, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		err = errno;
		add_message(ld, 0,
		    xasprintf("%s: cannot open: %s", path, strerror(err)));
		goto out;
	}
	if (fstat(fd, st) == -1) {
		err = errno;
		add_message(ld, 0,
		    xasprintf("%s: cannot stat: %s", path, strerror(err)));
		goto out;
	}
	if (S_ISDIR(st->st_mode)) {
		add_message(ld, 0, xasprintf("%s: is a directory", path));
		goto out;
	}
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			add_message(ld, 0,
			    xasprintf(
			        "%s: cannot read: %s", path, strerror(err)));
			goto out;
		}
		if (n == 0)
			break;
		if (text->len + (size_t)n > CONFIG_MAX_BYTES) {
			add_message(ld, 0,
			    xasprintf("%s: larger than %d bytes", path,
			        CONFIG_MAX_BYTES));
			goto out;
		}
		buf_append(text, chunk, (size_t)n);
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	return rc;
}

/* config_lex_prescan's report: a file-wide "file:line: reason" error. */
static void
lex_report(void *arg, unsigned line, const char *reason)
{
	add_error(arg, line, NULL, "%s", reason);
}

/* ---- the API ---- */

void
config_errors_cleanup(struct config_errors *errs)
{
	size_t i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

void
config_free(struct config *cfg)
{
	struct config_priv *priv = (struct config_priv *)cfg;

	if (cfg == NULL)
		return;
	free_keys(config_keys_root, cfg);
	redis_url_cleanup(&cfg->redis.parsed);
	if (cfg->cf != NULL) {
		config_destroy(cfg->cf);
		free(cfg->cf);
	}
	free(cfg->path);
	free(priv);
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config_priv *priv = NULL;
	struct config *cfg = NULL, *ret = NULL;
	struct loader ld;
	struct buf text;
	struct stat st;
	config_t *cf;
	const char *why;
	int have_st = 0;

	if (errs != NULL) {
		errs->msg = NULL;
		errs->n = 0;
	}
	ld.file = path != NULL ? path : "(null)";
	ld.msgs = NULL;
	ld.n_msgs = 0;
	ld.nerr = 0;
	buf_init(&text);
	if (path == NULL) {
		add_message(&ld, 0, xstrdup("(null): no configuration file"));
		goto out;
	}
	if (read_file(&ld, path, &text, &st) == -1)
		goto out;
	have_st = 1;
	if (config_lex_prescan(buf_cstr(&text), text.len, lex_report, &ld) ==
	    -1)
		goto out;

	priv = xcalloc(1, sizeof *priv);
	cfg = &priv->pub;
	set_defaults(config_keys_root, cfg);
	cfg->path = xstrdup(path);
	cfg->mtime = st.st_mtime;
	file_sig_of(&st, &priv->sig);

	cf = xmalloc(sizeof *cf);
	config_init(cf);
	cfg->cf = cf;
	if (config_read_string(cf, buf_cstr(&text)) != CONFIG_TRUE) {
		add_error(&ld, (unsigned)config_error_line(cf), NULL, "%s",
		    config_error_text(cf) != NULL ? config_error_text(cf)
		                                  : "cannot parse");
		goto out;
	}
	walk_group(&ld, config_root_setting(cf), config_keys_root, cfg, "");
	finish_routes(&ld, cfg, config_lookup(cf, "routes"));
	if (ld.nerr > 0)
		goto out;
	if (redis_url_parse(cfg->redis.url, &cfg->redis.parsed, &why) == -1) {
		add_error(&ld, 0, "redis.url", "%s", why); /* checked */
		goto out;
	}
	ret = cfg;
	cfg = NULL;
out:
	if (ret == NULL && have_st) {
		file_sig_of(&st, &failed_sig);
		failed_sig_set = 1;
	} else if (ret != NULL)
		failed_sig_set = 0;
	loader_finish(&ld, errs);
	config_free(cfg);
	buf_cleanup(&text);
	return ret;
}

/*
 * "Changed" means: mtime (with nanoseconds), size, inode or device differ
 * from the file cfg was read from, and the file is not the one the last
 * config_load refused, so a broken edit is reported by one reload, not
 * every second until it is fixed.
 */
int
config_changed(const struct config *cfg, time_t now)
{
	static time_t last_check;
	static int checked;
	const struct config_priv *priv = (const struct config_priv *)cfg;
	struct file_sig sig;
	struct stat st;

	if (cfg == NULL || cfg->path == NULL)
		return 0;
	if (checked && now >= last_check && now - last_check < 1)
		return 0;
	checked = 1;
	last_check = now;
	if (stat(cfg->path, &st) == -1)
		return 0; /* gone: keep serving what we have */
	file_sig_of(&st, &sig);
	if (file_sig_equal(&sig, &priv->sig))
		return 0;
	if (failed_sig_set && file_sig_equal(&sig, &failed_sig))
		return 0; /* refused already; wait for the next change */
	return 1;
}

void
config_refuse(const struct config *cfg)
{
	const struct config_priv *priv = (const struct config_priv *)cfg;

	failed_sig = priv->sig;
	failed_sig_set = 1;
}

static const config_setting_t *
plugin_member(const void *setting, const char *name)
{
	const config_setting_t *grp = setting;

	if (grp == NULL || name == NULL || !config_setting_is_group(grp))
		return NULL;
	return config_setting_get_member(grp, name);
}

const char *
config_plugin_string(const void *setting, const char *name)
{
	const config_setting_t *s = plugin_member(setting, name);

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
		return NULL;
	return config_setting_get_string(s);
}

int
config_plugin_int(const void *setting, const char *name, long long *out)
{
	const config_setting_t *s = plugin_member(setting, name);

	if (s == NULL)
		return -1;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: *out = config_setting_get_int64(s); return 0;
	case CONFIG_TYPE_BOOL:
		*out = config_setting_get_bool(s) ? 1 : 0;
		return 0;
	default: return -1;
	}
}
