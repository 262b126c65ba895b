/*
 * metrics.c -- pool-wide counters in Redis and the /_metrics document; see
 * metrics.h.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "internal.h"
#include "keyspace.h"
#include "metrics.h"
#include "plan.h"
#include "ratelimit.h"
#include "request.h"
#include "store.h"
#include "xalloc.h"

/* Field names are short: "route:<16 hex>:other", "rl:default:d:...". */
#define FIELD_MAX 64
/* A power of two; the configuration bounds what is used (routes times six
 * classes plus about sixty fixed fields), so a full table means a
 * misconfiguration, and counts that do not fit are dropped. */
#define SLOTS 4096
#define ROUTES_MAX 1024
#define REG_MAX 32
#define WATCH_MAX 8

/* Histogram bucket bounds: "le" as shown, and in microseconds. */
struct bucket {
	const char *le;
	long long us;
};

static const struct bucket dur_buckets[] = {
    {"0.001", 1000},
    {"0.0025", 2500},
    {"0.005", 5000},
    {"0.01", 10000},
    {"0.025", 25000},
    {"0.05", 50000},
    {"0.1", 100000},
    {"0.25", 250000},
    {"0.5", 500000},
    {"1", 1000000},
    {"2.5", 2500000},
    {"5", 5000000},
    {"10", 10000000},
    {"30", 30000000},
};
#define NDUR (sizeof dur_buckets / sizeof dur_buckets[0])

static const struct bucket rrt_buckets[] = {
    {"0.0001", 100},
    {"0.00025", 250},
    {"0.0005", 500},
    {"0.001", 1000},
    {"0.0025", 2500},
    {"0.005", 5000},
    {"0.01", 10000},
    {"0.025", 25000},
    {"0.05", 50000},
    {"0.1", 100000},
    {"0.25", 250000},
    {"0.5", 500000},
    {"1", 1000000},
};
#define NRRT (sizeof rrt_buckets / sizeof rrt_buckets[0])

static const char *const classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "other"};
#define NCLASSES (sizeof classes / sizeof classes[0])

static const char *const rl_policies[] = {"key", "route", "default"};
static const char *const rl_decisions[] = {
    "allowed", "rejected", "shadow_rejected"};

struct slot {
	char name[FIELD_MAX]; /* "" when free */
	long long delta;      /* not yet sent */
};

struct route_name {
	char id[17];
	char *prefix; /* owned */
	int dirty;    /* counted since its name was last sent */
};

struct watch {
	char name[METRICS_NAME_MAX];
	metrics_total_fn fn;
	const void *arg;
	unsigned long last;
};

struct counter_reg {
	char name[METRICS_NAME_MAX];
	const char *help;
};

struct gauge_reg {
	char name[METRICS_NAME_MAX];
	const char *prom_name;
	const char *help;
	metrics_gauge_fn fn;
};

/*
 * The process's counts.  One process serves one request at a time, and
 * other modules add to counters without a handle, so the state is the
 * process's own (like the log level), not per gateway.
 */
static struct {
	struct slot *slots; /* SLOTS, allocated at the first count */
	struct route_name routes[ROUTES_MAX];
	size_t nroutes;
	char *prefix; /* redis.key_prefix of the counts held; owned */
	struct watch watches[WATCH_MAX];
	size_t nwatches;
	unsigned long store_errors; /* store_error_count at the last flush */
} M;

static struct counter_reg counters[REG_MAX] = {
    {"cache_hits", "Requests answered from the response cache."},
    {"cache_misses", "Cacheable requests not found in the response cache."},
};
static size_t ncounters = 2;

static struct gauge_reg gauges[REG_MAX] = {
    {"cache_size", "apigw_cache_entries", "Entries in the response cache.",
        NULL},
};
static size_t ngauges = 1;

static metrics_breakers_fn breakers_fn;

/* ---- in-process counts -------------------------------------------------- */

static int
name_ok(const char *name)
{
	const char *p;

	if (name == NULL || name[0] == '\0' || strlen(name) >= METRICS_NAME_MAX)
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_'))
			return 0;
	return 1;
}

static unsigned
field_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Adds delta to field (open addressing; never removed, only zeroed). */
static void
count(const char *field, long long delta)
{
	unsigned i, n;

	if (strlen(field) >= FIELD_MAX)
		return;
	if (M.slots == NULL)
		M.slots = xcalloc(SLOTS, sizeof *M.slots);
	i = field_hash(field) & (SLOTS - 1);
	for (n = 0; n < SLOTS; n++, i = (i + 1) & (SLOTS - 1)) {
		struct slot *sl = &M.slots[i];

		if (sl->name[0] == '\0') {
			memcpy(sl->name, field, strlen(field) + 1);
			sl->delta = delta;
			return;
		}
		if (strcmp(sl->name, field) == 0) {
			sl->delta += delta;
			return;
		}
	}
}

static void countf(long long delta, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
countf(long long delta, const char *fmt, ...)
{
	char field[FIELD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(field, sizeof field, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof field)
		count(field, delta);
}

static void
remember_prefix(const char *prefix)
{
	if (M.prefix != NULL && strcmp(M.prefix, prefix) == 0)
		return;
	free(M.prefix);
	M.prefix = xstrdup(prefix);
}

static void
remember_route(const struct route *rt)
{
	size_t i;

	for (i = 0; i < M.nroutes; i++)
		if (strcmp(M.routes[i].id, rt->route_id) == 0)
			break;
	if (i == M.nroutes) {
		if (M.nroutes == ROUTES_MAX)
			return;
		memcpy(M.routes[i].id, rt->route_id, sizeof M.routes[i].id);
		M.routes[i].prefix = xstrdup(rt->prefix);
		M.nroutes++;
	}
	M.routes[i].dirty = 1;
}

static const char *
class_of(int status)
{
	if (status >= 100 && status < 600)
		return classes[status / 100 - 1];
	return "other";
}

static void
count_histogram(
    const char *name, const struct bucket *bk, size_t n, long long us)
{
	size_t i;

	for (i = 0; i < n && us > bk[i].us; i++)
		;
	countf(1, "%s:%s", name, i < n ? bk[i].le : "inf");
	countf(1, "%s_count", name);
	countf(us, "%s_sum_us", name);
}

/*
 * The rate-limit windows the access step's script reported, read again
 * from the request's batch (its replies live until the after phase ends),
 * so the access step needs no change for counting.
 */
static void
count_ratelimit(const struct exchange *x)
{
	const struct route *rt = x->r->route;
	const char *route_name, *default_name;
	struct rl_result res;
	const struct store_val *v;
	size_t i, j;

	if (x->plan == NULL || !x->plan->ran || x->plan->failed)
		return;
	route_name = rt != NULL && rt->rate_limit.name != NULL
	    ? rt->rate_limit.name
	    : "route";
	default_name = x->cfg->rate_limit.name != NULL ? x->cfg->rate_limit.name
	                                               : "default";
	for (i = 0; i < x->plan->n; i++) {
		if (x->plan->cmd[i].script != STORE_SCRIPT_RATELIMIT)
			continue;
		v = plan_reply(x->plan, (int)i);
		memset(&res, 0, sizeof res);
		if (v == NULL || v->type != STORE_ARR ||
		    ratelimit_parse(v, &res) != 0) {
			ratelimit_result_cleanup(&res);
			continue;
		}
		for (j = 0; res.status <= RL_REJECTED && j < res.n; j++) {
			const struct rl_window_result *w = &res.win[j];
			const char *policy = "key";
			const char *d = w->rejected
			    ? (w->shadow ? "shadow_rejected" : "rejected")
			    : "allowed";

			if (strcmp(w->policy, route_name) == 0)
				policy = "route";
			else if (strcmp(w->policy, default_name) == 0)
				policy = "default";
			countf(1, "rl:%s:%c:%s", policy,
			    keyspace_window_suffix(w->window), d);
		}
		ratelimit_result_cleanup(&res);
	}
}

static void
metrics_after(void *self, struct exchange *x)
{
	const struct request *r = x->r;
	struct timespec end;
	long long us;
	int status;

	(void)self;
	if (r == NULL || (r->route == NULL && internal_is_endpoint(x->cfg, r)))
		return;
	remember_prefix(x->cfg->redis.key_prefix);
	status = r->status;
	count("requests_total", 1);
	if (status >= 100 && status < 400)
		count("requests_success", 1);
	else if (status >= 500)
		count("requests_failed", 1);
	else if (status >= 400) {
		count("requests_client_error", 1);
		if (status == 429)
			count("requests_rate_limited", 1);
	}
	countf(1, "class:%s", class_of(status));
	if (r->route != NULL) {
		countf(1, "route:%s:%s", r->route->route_id, class_of(status));
		remember_route(r->route);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	us = (long long)(end.tv_sec - r->start.tv_sec) * 1000000 +
	    (end.tv_nsec - r->start.tv_nsec) / 1000;
	count_histogram("dur", dur_buckets, NDUR, us < 0 ? 0 : us);
	if (x->plan != NULL && x->plan->ran)
		count_histogram("rrt", rrt_buckets, NRRT, x->plan->exec_us);
	count_ratelimit(x);
}

/* ---- flushing ----------------------------------------------------------- */

/* Queues one command; 1 when queued. */
static int
defer(struct store *s, int argc, const char **argv)
{
	struct store_cmd cmd = {-1, 0, argc, argv, NULL};

	return store_defer(s, &cmd, 1) == 0;
}

/*
 * The pool's processes are counted in <prefix>m:procs:<slot>, one hash per
 * PROCS_SLOT_S seconds of wall time (slot = time / PROCS_SLOT_S), whose
 * fields are "<host>:<pid>" (HINCRBY: the count of flushes), expiring a
 * few slots later.  It rides along the flushes that send counts anyway,
 * so an idle process still sends nothing, and /_metrics reports the
 * processes seen in the current and the previous slot (those that served
 * something in the last 5 to 10 s, and the one answering).  HINCRBY and
 * EXPIRE are commands no script runs, like the counters' own.
 */
#define PROCS_SLOT_S 5
#define PROCS_TTL "30"

/* This process's field name, "<host>:<pid>". */
static void
seen_member(char *out, size_t n)
{
	char host[256];

	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(out, n, "%.200s:%ld", host, (long)getpid());
}

/* The key of the slot holding time t. */
static int
seen_key(struct buf *key, const char *prefix, time_t t)
{
	char name[48];

	snprintf(name, sizeof name, "procs:%lld", (long long)t / PROCS_SLOT_S);
	return keyspace_metric(key, prefix, name);
}

/* Queues this process's mark in the current slot. */
static void
seen_defer(struct store *s)
{
	struct buf key;
	const char *argv[4];
	char member[256];

	buf_init(&key);
	if (M.prefix == NULL || seen_key(&key, M.prefix, time(NULL)) != BUF_OK)
		goto out;
	seen_member(member, sizeof member);
	argv[0] = "HINCRBY";
	argv[1] = key.p;
	argv[2] = member;
	argv[3] = "1";
	if (!defer(s, 4, argv))
		goto out;
	argv[0] = "EXPIRE";
	argv[2] = PROCS_TTL;
	(void)defer(s, 3, argv);
out:
	buf_cleanup(&key);
}

/*
 * Sends every delta as HINCRBY (and the names of the routes counted) with
 * no reply awaited.  A delta that could not be queued (Redis down) is kept
 * for the next flush.
 */
static void
metrics_flush(struct store *s)
{
	struct buf key, rkey;
	const char *argv[4];
	char num[32];
	unsigned long v;
	size_t i;
	int sent = 0;

	for (i = 0; i < M.nwatches; i++) {
		v = M.watches[i].fn(M.watches[i].arg);
		if (v > M.watches[i].last)
			count(M.watches[i].name,
			    (long long)(v - M.watches[i].last));
		M.watches[i].last = v;
	}
	v = store_error_count(s);
	if (v > M.store_errors)
		count("redis_errors", (long long)(v - M.store_errors));
	M.store_errors = v;
	if (M.slots == NULL || M.prefix == NULL)
		return;
	buf_init(&key);
	buf_init(&rkey);
	if (keyspace_metric(&key, M.prefix, "counters") != BUF_OK ||
	    keyspace_metric(&rkey, M.prefix, "routes") != BUF_OK)
		goto out;
	argv[0] = "HINCRBY";
	argv[1] = key.p;
	for (i = 0; i < SLOTS; i++) {
		struct slot *sl = &M.slots[i];

		if (sl->name[0] == '\0' || sl->delta == 0)
			continue;
		snprintf(num, sizeof num, "%lld", sl->delta);
		argv[2] = sl->name;
		argv[3] = num;
		if (!defer(s, 4, argv))
			goto send; /* Redis is away: keep the rest */
		sl->delta = 0;
		sent = 1;
	}
	/* HSETNX: an id is a hash of its prefix, so the name never changes
	 * (and the command is one no script runs: tests tell them apart). */
	argv[0] = "HSETNX";
	argv[1] = rkey.p;
	for (i = 0; i < M.nroutes; i++) {
		if (!M.routes[i].dirty)
			continue;
		argv[2] = M.routes[i].id;
		argv[3] = M.routes[i].prefix;
		if (!defer(s, 4, argv))
			break;
		M.routes[i].dirty = 0;
		sent = 1;
	}
	if (sent)
		seen_defer(s);
send:
	if (sent)
		(void)store_send(s);
out:
	buf_cleanup(&key);
	buf_cleanup(&rkey);
}

static void
metrics_tick(void *self, struct store *s, time_t now)
{
	(void)self;
	(void)now;
	metrics_flush(s);
}

static void *
metrics_create(void)
{
	return &M;
}

static void
metrics_destroy(void *self)
{
	size_t i;

	(void)self;
	for (i = 0; i < M.nroutes; i++)
		free(M.routes[i].prefix);
	free(M.slots);
	free(M.prefix);
	memset(&M, 0, sizeof M);
}

const struct step metrics_step = {
    .name = "metrics",
    .create = metrics_create,
    .destroy = metrics_destroy,
    .after = metrics_after,
    .tick = metrics_tick,
};

/* ---- registration ------------------------------------------------------- */

int
metrics_counter_register(const char *name, const char *help)
{
	size_t i;

	if (!name_ok(name))
		return -1;
	for (i = 0; i < ncounters; i++)
		if (strcmp(counters[i].name, name) == 0)
			return 0;
	if (ncounters == REG_MAX)
		return -1;
	snprintf(counters[ncounters].name, METRICS_NAME_MAX, "%s", name);
	counters[ncounters].help = help;
	ncounters++;
	return 0;
}

void
metrics_add(const char *name, long long delta)
{
	size_t i;

	for (i = 0; i < ncounters; i++)
		if (strcmp(counters[i].name, name) == 0) {
			count(name, delta);
			return;
		}
}

int
metrics_watch(const char *name, metrics_total_fn fn, const void *arg)
{
	struct watch *w;

	if (!name_ok(name) || fn == NULL || M.nwatches == WATCH_MAX)
		return -1;
	w = &M.watches[M.nwatches++];
	snprintf(w->name, sizeof w->name, "%s", name);
	w->fn = fn;
	w->arg = arg;
	w->last = fn(arg);
	return 0;
}

int
metrics_gauge_register(const char *name, const char *prom_name,
    const char *help, metrics_gauge_fn fn)
{
	size_t i;

	if (!name_ok(name) || prom_name == NULL || help == NULL)
		return -1;
	for (i = 0; i < ngauges; i++)
		if (strcmp(gauges[i].name, name) == 0)
			break;
	if (i == ngauges) {
		if (ngauges == REG_MAX)
			return -1;
		ngauges++;
	}
	snprintf(gauges[i].name, METRICS_NAME_MAX, "%s", name);
	gauges[i].prom_name = prom_name;
	gauges[i].help = help;
	gauges[i].fn = fn;
	return 0;
}

void
metrics_breakers_provider(metrics_breakers_fn fn)
{
	breakers_fn = fn;
}

/* ---- the /_metrics document --------------------------------------------- */

/* What Redis holds, as views into the batch, plus what the providers said. */
struct snapshot {
	const struct store_val *counters; /* HGETALL: field, value, ... */
	const struct store_val *routes;
	long long procs; /* processes seen in this slot or the one before */
	int up;
	long long *gauge; /* ngauges values */
	struct metrics_breaker *brk;
	size_t nbrk, brk_cap;
};

static long long
val_ll(const struct store_val *v)
{
	if (v->type == STORE_INT)
		return v->i;
	if (v->type == STORE_STR)
		return strtoll(v->str, NULL, 10);
	return 0;
}

static long long
get(const struct snapshot *sn, const char *field)
{
	const struct store_val *h = sn->counters;
	size_t i;

	if (h == NULL || h->type != STORE_ARR)
		return 0;
	for (i = 0; i + 1 < h->n; i += 2)
		if (h->elem[i].type == STORE_STR &&
		    strcmp(h->elem[i].str, field) == 0)
			return val_ll(&h->elem[i + 1]);
	return 0;
}

static long long getf(const struct snapshot *sn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static long long
getf(const struct snapshot *sn, const char *fmt, ...)
{
	char field[FIELD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(field, sizeof field, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof field)
		return 0;
	return get(sn, field);
}

/* The prefix a route id was counted under ("" when unknown). */
static const char *
route_prefix(const struct snapshot *sn, const char *id)
{
	const struct store_val *h = sn->routes;
	size_t i;

	if (h == NULL || h->type != STORE_ARR)
		return "";
	for (i = 0; i + 1 < h->n; i += 2)
		if (h->elem[i].type == STORE_STR &&
		    h->elem[i + 1].type == STORE_STR &&
		    strcmp(h->elem[i].str, id) == 0)
			return h->elem[i + 1].str;
	return "";
}

/*
 * Calls fn for each distinct route id among the counter fields
 * ("route:<id>:<class>"), once per id.
 */
static void
each_route(const struct snapshot *sn,
    void (*fn)(const struct snapshot *sn, const char *id, void *arg), void *arg)
{
	const struct store_val *h = sn->counters;
	char id[17], seen_id[17];
	size_t i, j;

	if (h == NULL || h->type != STORE_ARR)
		return;
	for (i = 0; i + 1 < h->n; i += 2) {
		const char *f = h->elem[i].str;
		int dup = 0;

		if (h->elem[i].type != STORE_STR ||
		    strncmp(f, "route:", 6) != 0 || strlen(f) < 6 + 16 + 1 ||
		    f[6 + 16] != ':')
			continue;
		memcpy(id, f + 6, 16);
		id[16] = '\0';
		/* Was it met before?  Few routes: a quadratic scan will do. */
		for (j = 0; j < i && !dup; j += 2) {
			const char *g = h->elem[j].str;

			if (h->elem[j].type == STORE_STR &&
			    strncmp(g, "route:", 6) == 0 &&
			    strlen(g) >= 6 + 16 + 1) {
				memcpy(seen_id, g + 6, 16);
				seen_id[16] = '\0';
				dup = strcmp(seen_id, id) == 0;
			}
		}
		if (!dup)
			fn(sn, id, arg);
	}
}

static void
collect_breaker(void *ctx, const struct metrics_breaker *b)
{
	struct snapshot *sn = ctx;
	struct metrics_breaker *e;

	if (b == NULL || b->backend == NULL || b->state == NULL)
		return;
	if (sn->nbrk == sn->brk_cap) {
		sn->brk_cap = sn->brk_cap ? sn->brk_cap * 2 : 8;
		sn->brk = xrealloc(sn->brk, sn->brk_cap * sizeof *sn->brk);
	}
	e = &sn->brk[sn->nbrk++];
	e->backend = xstrdup(b->backend);
	e->state = xstrdup(b->state);
	e->failures = b->failures;
}

/* -- JSON -- */

static struct json_object *
json_histogram(const struct snapshot *sn, const char *name,
    const struct bucket *bk, size_t n)
{
	struct json_object *o = json_object_new_object();
	struct json_object *b = json_object_new_object();
	long long cum = 0;
	size_t i;

	json_object_object_add(
	    o, "count", json_object_new_int64(getf(sn, "%s_count", name)));
	json_object_object_add(o, "sum_seconds",
	    json_object_new_double((double)getf(sn, "%s_sum_us", name) / 1e6));
	for (i = 0; i < n; i++) {
		cum += getf(sn, "%s:%s", name, bk[i].le);
		json_object_object_add(b, bk[i].le, json_object_new_int64(cum));
	}
	cum += getf(sn, "%s:inf", name);
	json_object_object_add(b, "+Inf", json_object_new_int64(cum));
	json_object_object_add(o, "buckets", b);
	return o;
}

static void
json_route(const struct snapshot *sn, const char *id, void *arg)
{
	struct json_object *routes = arg, *o = json_object_new_object();
	const char *prefix = route_prefix(sn, id);
	long long total = 0, v;
	size_t i;

	json_object_object_add(o, "route_id", json_object_new_string(id));
	for (i = 0; i < NCLASSES; i++) {
		v = getf(sn, "route:%s:%s", id, classes[i]);
		total += v;
		json_object_object_add(o, classes[i], json_object_new_int64(v));
	}
	json_object_object_add(
	    o, "requests_total", json_object_new_int64(total));
	json_object_object_add(routes, prefix[0] != '\0' ? prefix : id, o);
}

static void
render_json(const struct snapshot *sn, struct buf *out)
{
	static const char *const totals[] = {"requests_total",
	    "requests_success", "requests_failed", "requests_rate_limited",
	    "requests_client_error", "redis_errors", "fail_open"};
	struct json_object *doc = json_object_new_object(), *o, *p, *w;
	size_t i, j, k;
	char win[2] = {0, 0};

	for (i = 0; i < sizeof totals / sizeof totals[0]; i++)
		json_object_object_add(
		    doc, totals[i], json_object_new_int64(get(sn, totals[i])));
	for (i = 0; i < ncounters; i++)
		json_object_object_add(doc, counters[i].name,
		    json_object_new_int64(get(sn, counters[i].name)));
	for (i = 0; i < ngauges; i++)
		json_object_object_add(
		    doc, gauges[i].name, json_object_new_int64(sn->gauge[i]));
	o = json_object_new_object();
	for (i = 0; i < sn->nbrk; i++) {
		p = json_object_new_object();
		json_object_object_add(
		    p, "state", json_object_new_string(sn->brk[i].state));
		json_object_object_add(
		    p, "failures", json_object_new_int64(sn->brk[i].failures));
		json_object_object_add(o, sn->brk[i].backend, p);
	}
	json_object_object_add(doc, "circuit_breakers", o);
	o = json_object_new_object();
	for (i = 0; i < NCLASSES; i++)
		json_object_object_add(o, classes[i],
		    json_object_new_int64(getf(sn, "class:%s", classes[i])));
	json_object_object_add(doc, "status_classes", o);
	o = json_object_new_object();
	each_route(sn, json_route, o);
	json_object_object_add(doc, "routes", o);
	json_object_object_add(
	    doc, "latency", json_histogram(sn, "dur", dur_buckets, NDUR));
	json_object_object_add(doc, "redis_round_trip",
	    json_histogram(sn, "rrt", rrt_buckets, NRRT));
	o = json_object_new_object();
	for (i = 0; i < sizeof rl_policies / sizeof rl_policies[0]; i++) {
		p = json_object_new_object();
		for (j = 0; j < RL_NWINDOWS; j++) {
			win[0] = keyspace_window_suffix((enum rl_window)j);
			w = json_object_new_object();
			for (k = 0;
			     k < sizeof rl_decisions / sizeof rl_decisions[0];
			     k++)
				json_object_object_add(w, rl_decisions[k],
				    json_object_new_int64(
				        getf(sn, "rl:%s:%s:%s", rl_policies[i],
				            win, rl_decisions[k])));
			json_object_object_add(p, win, w);
		}
		json_object_object_add(o, rl_policies[i], p);
	}
	json_object_object_add(doc, "rate_limit", o);
	json_object_object_add(
	    doc, "processes", json_object_new_int64(sn->procs));
	json_object_object_add(
	    doc, "redis", json_object_new_string(sn->up ? "up" : "down"));
	buf_puts(
	    out, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
	buf_putc(out, '\n');
	json_object_put(doc);
}

/* -- Prometheus text exposition -- */

/* A label value: backslash, double quote and newline escaped. */
static void
prom_label(struct buf *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(out, '\\');
		if (*v == '\n') {
			buf_puts(out, "\\n");
			continue;
		}
		buf_putc(out, *v);
	}
}

static void
prom_head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
prom_histogram(struct buf *out, const struct snapshot *sn, const char *prom,
    const char *name, const struct bucket *bk, size_t n, const char *help)
{
	long long cum = 0;
	size_t i;

	prom_head(out, prom, "histogram", help);
	for (i = 0; i < n; i++) {
		cum += getf(sn, "%s:%s", name, bk[i].le);
		buf_printf(
		    out, "%s_bucket{le=\"%s\"} %lld\n", prom, bk[i].le, cum);
	}
	cum += getf(sn, "%s:inf", name);
	buf_printf(out, "%s_bucket{le=\"+Inf\"} %lld\n", prom, cum);
	buf_printf(out, "%s_sum %.6f\n", prom,
	    (double)getf(sn, "%s_sum_us", name) / 1e6);
	buf_printf(out, "%s_count %lld\n", prom, getf(sn, "%s_count", name));
}

static void
prom_route(const struct snapshot *sn, const char *id, void *arg)
{
	struct buf *out = arg;
	size_t i;

	for (i = 0; i < NCLASSES; i++) {
		buf_puts(out, "apigw_route_requests_total{route=\"");
		prom_label(out, route_prefix(sn, id));
		buf_printf(out, "\",route_id=\"%s\",class=\"%s\"} %lld\n", id,
		    classes[i], getf(sn, "route:%s:%s", id, classes[i]));
	}
}

static void
render_prometheus(const struct snapshot *sn, struct buf *out)
{
	static const struct {
		const char *field, *prom, *help;
	} totals[] = {
	    {"requests_success", "apigw_requests_success_total",
	        "Requests answered with a status below 400."},
	    {"requests_failed", "apigw_requests_failed_total",
	        "Requests answered with a status of 500 or more."},
	    {"requests_rate_limited", "apigw_requests_rate_limited_total",
	        "Requests rejected by a rate limit (429)."},
	    {"requests_client_error", "apigw_requests_client_error_total",
	        "Requests answered with a 4xx status."},
	    {"redis_errors", "apigw_redis_errors_total",
	        "Redis calls that failed (unreachable, timed out, broken)."},
	    {"fail_open", "apigw_fail_open_requests_total",
	        "Requests let through unlimited because Redis was down."},
	};
	static const char *const states[] = {"closed", "open", "half_open"};
	char win[2] = {0, 0};
	size_t i, j, k;

	prom_head(out, "apigw_requests_total", "counter",
	    "Requests answered (internal endpoints excluded), by status "
	    "class.");
	for (i = 0; i < NCLASSES; i++)
		buf_printf(out, "apigw_requests_total{class=\"%s\"} %lld\n",
		    classes[i], getf(sn, "class:%s", classes[i]));
	for (i = 0; i < sizeof totals / sizeof totals[0]; i++) {
		prom_head(out, totals[i].prom, "counter", totals[i].help);
		buf_printf(
		    out, "%s %lld\n", totals[i].prom, get(sn, totals[i].field));
	}
	prom_head(out, "apigw_route_requests_total", "counter",
	    "Requests answered per route and status class.");
	each_route(sn, prom_route, out);
	prom_histogram(out, sn, "apigw_request_duration_seconds", "dur",
	    dur_buckets, NDUR,
	    "Time from accepting a request to handing its response over.");
	prom_histogram(out, sn, "apigw_redis_round_trip_seconds", "rrt",
	    rrt_buckets, NRRT, "Duration of a request's Redis round trip.");
	prom_head(out, "apigw_ratelimit_decisions_total", "counter",
	    "Rate-limit window checks by policy, window and decision.");
	for (i = 0; i < sizeof rl_policies / sizeof rl_policies[0]; i++)
		for (j = 0; j < RL_NWINDOWS; j++) {
			win[0] = keyspace_window_suffix((enum rl_window)j);
			for (k = 0;
			     k < sizeof rl_decisions / sizeof rl_decisions[0];
			     k++) {
				long long v = getf(sn, "rl:%s:%s:%s",
				    rl_policies[i], win, rl_decisions[k]);

				if (v != 0)
					buf_printf(out,
					    "apigw_ratelimit_decisions_total{"
					    "policy=\"%s\",window=\"%s\","
					    "decision=\"%s\"} %lld\n",
					    rl_policies[i], win,
					    rl_decisions[k], v);
			}
		}
	for (i = 0; i < ncounters; i++) {
		char name[METRICS_NAME_MAX + 16];

		snprintf(name, sizeof name, "apigw_%.*s_total",
		    METRICS_NAME_MAX - 1, counters[i].name);
		prom_head(out, name, "counter", counters[i].help);
		buf_printf(out, "%s %lld\n", name, get(sn, counters[i].name));
	}
	for (i = 0; i < ngauges; i++) {
		prom_head(out, gauges[i].prom_name, "gauge", gauges[i].help);
		buf_printf(out, "%s %lld\n", gauges[i].prom_name, sn->gauge[i]);
	}
	prom_head(out, "apigw_circuit_breaker_state", "gauge",
	    "1 for the state each backend's circuit breaker is in, else 0.");
	for (i = 0; i < sn->nbrk; i++)
		for (j = 0; j < sizeof states / sizeof states[0]; j++) {
			buf_puts(out, "apigw_circuit_breaker_state{backend=\"");
			prom_label(out, sn->brk[i].backend);
			buf_printf(out, "\",state=\"%s\"} %d\n", states[j],
			    strcmp(sn->brk[i].state, states[j]) == 0);
		}
	prom_head(out, "apigw_circuit_breaker_failures", "gauge",
	    "Failures each backend's circuit breaker counts now.");
	for (i = 0; i < sn->nbrk; i++) {
		buf_puts(out, "apigw_circuit_breaker_failures{backend=\"");
		prom_label(out, sn->brk[i].backend);
		buf_printf(out, "\"} %lld\n", sn->brk[i].failures);
	}
	prom_head(out, "apigw_processes", "gauge",
	    "Gateway processes that sent counts in the last 5 to 10 seconds.");
	buf_printf(out, "apigw_processes %lld\n", sn->procs);
	prom_head(out, "apigw_redis_up", "gauge",
	    "1 when Redis answered this scrape, else 0.");
	buf_printf(out, "apigw_redis_up %d\n", sn->up);
}

/* The distinct fields of two HKEYS replies (few: a quadratic scan). */
static long long
procs_count(const struct store_val *cur, const struct store_val *prev)
{
	long long n = 0;
	size_t i, j;
	int dup;

	if (cur->type == STORE_ARR)
		n = (long long)cur->n;
	if (prev->type != STORE_ARR)
		return n;
	for (i = 0; i < prev->n; i++) {
		dup = 0;
		for (j = 0; cur->type == STORE_ARR && j < cur->n && !dup; j++)
			dup = cur->elem[j].type == STORE_STR &&
			    prev->elem[i].type == STORE_STR &&
			    strcmp(cur->elem[j].str, prev->elem[i].str) == 0;
		n += !dup;
	}
	return n;
}

int
metrics_render(const struct config *cfg, struct store *s,
    enum metrics_format fmt, struct buf *out)
{
	struct snapshot sn;
	struct store_batch b;
	struct store_cmd cmds[6];
	struct buf key, rkey, pkey, ppkey;
	const char *argv[6][4];
	char member[256];
	time_t now = time(NULL);
	size_t i;
	int rc = -1;

	memset(&sn, 0, sizeof sn);
	store_batch_init(&b);
	buf_init(&key);
	buf_init(&rkey);
	buf_init(&pkey);
	buf_init(&ppkey);
	/* This process's own counts ride ahead of the reads. */
	remember_prefix(cfg->redis.key_prefix);
	metrics_flush(s);
	if (keyspace_metric(&key, cfg->redis.key_prefix, "counters") !=
	        BUF_OK ||
	    keyspace_metric(&rkey, cfg->redis.key_prefix, "routes") != BUF_OK ||
	    seen_key(&pkey, cfg->redis.key_prefix, now) != BUF_OK ||
	    seen_key(&ppkey, cfg->redis.key_prefix, now - PROCS_SLOT_S) !=
	        BUF_OK)
		goto render;
	argv[0][0] = argv[1][0] = "HGETALL";
	argv[0][1] = key.p;
	argv[1][1] = rkey.p;
	/* The answering process is alive whether or not it counted. */
	seen_member(member, sizeof member);
	argv[2][0] = "HINCRBY";
	argv[2][1] = pkey.p;
	argv[2][2] = member;
	argv[2][3] = "1";
	argv[3][0] = "EXPIRE";
	argv[3][1] = pkey.p;
	argv[3][2] = PROCS_TTL;
	argv[4][0] = argv[5][0] = "HKEYS";
	argv[4][1] = pkey.p;
	argv[5][1] = ppkey.p;
	for (i = 0; i < 6; i++) {
		cmds[i].script = -1;
		cmds[i].nkeys = 0;
		cmds[i].argc = i == 2 ? 4 : i == 3 ? 3 : 2;
		cmds[i].argv = argv[i];
		cmds[i].argvlen = NULL;
	}
	if (store_exec(s, cmds, 6, &b, NULL) != 0)
		goto render;
	sn.counters = store_batch_reply(&b, 0);
	sn.routes = store_batch_reply(&b, 1);
	sn.procs =
	    procs_count(store_batch_reply(&b, 4), store_batch_reply(&b, 5));
	sn.up = sn.counters->type == STORE_ARR;
render:
	sn.gauge = xcalloc(ngauges + 1, sizeof *sn.gauge);
	for (i = 0; sn.up && i < ngauges; i++)
		if (gauges[i].fn != NULL)
			sn.gauge[i] = gauges[i].fn(cfg, s);
	if (sn.up && breakers_fn != NULL)
		breakers_fn(cfg, s, collect_breaker, &sn);
	/* The gauges may have used the store: the views are still b's. */
	if (fmt == METRICS_PROMETHEUS)
		render_prometheus(&sn, out);
	else
		render_json(&sn, out);
	rc = sn.up ? 0 : -1;
	for (i = 0; i < sn.nbrk; i++) {
		free((char *)sn.brk[i].backend);
		free((char *)sn.brk[i].state);
	}
	free(sn.brk);
	free(sn.gauge);
	store_batch_cleanup(&b);
	buf_cleanup(&key);
	buf_cleanup(&rkey);
	buf_cleanup(&pkey);
	buf_cleanup(&ppkey);
	return rc;
}
