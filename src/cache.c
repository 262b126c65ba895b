/*
 * cache.c -- the shared response cache step; see cache.h.
 *
 * An entry is one Redis string:
 *	"APIGW1 <status> <stored_ms> <ttl_s> <stale_s> <head_len>\n"
 *	<head_len bytes of "Name: value\r\n" fields><body>
 * stored_ms is Redis time (ms) when the request was looked up, ttl_s the
 * entry's life (cache_storable), stale_s the route's stale-if-error
 * window when it was stored; the Redis TTL covers both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "cache.h"
#include "cache_policy.h"
#include "clock.h"
#include "config.h"
#include "hdrs.h"
#include "keyspace.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "proxy.h"
#include "request.h"
#include "store.h"
#include "xalloc.h"

#define CACHE_MAX_PAIRS 64     /* request header names passed to the script */
#define CACHE_WAIT_MAX_MS 1000 /* a waiter's patience for another's fill */
#define CACHE_POLL_MS 50
#define CACHE_LOCK_EXTRA_MS 1000
#define CACHE_HEAD_MAX 65536 /* bytes of stored header fields */
#define LOCAL_SLOTS 32       /* entries a process keeps a copy of */
#define LOCAL_LIFE_MS 1000   /* how long a copy may answer without Redis */

struct cache_entry {
	int status;
	long long stored_ms;
	long ttl_s, stale_s;
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
};

/*
 * A copy of an entry Redis returned fresh, so that the hits of the next
 * second cost no round trip.  It answers only while the lookup that
 * returned it is less than LOCAL_LIFE_MS old (so a purge, a refresh or a
 * newer entry reaches every process within a second, as with the breaker's
 * copy) and only while the entry itself is fresh.
 */
struct local_copy {
	char res64[CACHE_KEY_HEX + 1]; /* "" = empty slot */
	char var40[41];
	struct cache_vary vary; /* the entry's own Vary: picks the variant */
	struct hdrs fields;     /* its stored fields, parsed once */
	char *blob;             /* the entry as Redis holds it */
	size_t len;
	long long sent_ms;  /* monotonic: before the lookup was sent */
	long long redis_ms; /* Redis time of that lookup */
	unsigned long used; /* least recently used goes first */
};

struct cache {
	struct cache_counts n;
	struct local_copy local[LOCAL_SLOTS];
	size_t local_bytes;
	unsigned long local_tick;

	/* The request in flight. */
	struct exchange *x;
	enum cache_mode mode;
	int slot;
	int hit_local;     /* a copy answers: its index, else -1 */
	int have_pairs;    /* pairs holds this request's fields */
	long long sent_ms; /* monotonic, before the batch went out */
	int locked;        /* this request holds the variant's fill lock */
	int may_store;     /* the response may become the entry */
	long long now_ms;
	char res64[CACHE_KEY_HEX + 1];
	char var40[41];
	int have_stale; /* e is usable for stale-if-error */
	struct cache_entry e;
	struct hdrs pairs; /* lower-case request fields, combined */
	const char *argv[3 + 2 * CACHE_MAX_PAIRS];
	size_t argvlen[3 + 2 * CACHE_MAX_PAIRS];
	char lock_ms[24];
	struct buf base, material, scratch;
	struct store_batch poll;

	/* The response being copied. */
	struct proxy_tap tap;
	int storing;
	long ttl_s;
	struct cache_vary vary;
	struct hdrs resp;
	struct buf body;
};

/* Counts in the process's own totals and in the pool's metrics. */
#define COUNT(c, field, metric)                                                \
	do {                                                                   \
		(c)->n.field++;                                                \
		metrics_add(metric, 1);                                        \
	} while (0)

/* Live entries for /_metrics: those of the index not yet expired. */
static long long
cache_size_gauge(const struct config *cfg, struct store *s)
{
	struct store_batch b;
	struct buf key;
	struct timespec ts;
	char now[24];
	const char *argv[4];
	long long n = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(now, sizeof now, "%lld",
	    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	buf_init(&key);
	store_batch_init(&b);
	keyspace_cache_live(&key, cfg->redis.key_prefix);
	argv[0] = "ZCOUNT";
	argv[1] = buf_cstr(&key);
	argv[2] = now;
	argv[3] = "+inf";
	if (store_command(s, &b, NULL, 4, argv) == 0 &&
	    store_batch_reply(&b, 0)->type == STORE_INT)
		n = store_batch_reply(&b, 0)->i;
	store_batch_cleanup(&b);
	buf_cleanup(&key);
	return n;
}

static void *
cache_create(void)
{
	struct cache *c = xcalloc(1, sizeof *c);

	hdrs_init(&c->pairs);
	hdrs_init(&c->resp);
	buf_init(&c->base);
	buf_init(&c->material);
	buf_init(&c->scratch);
	buf_init(&c->body);
	store_batch_init(&c->poll);
	c->slot = -1;
	c->hit_local = -1;
	metrics_counter_register("cache_local_hits",
	    "Cache hits answered from the process's copy, without Redis.");
	metrics_counter_register("cache_stale_hits",
	    "Stale cache entries served because the backend failed.");
	metrics_counter_register(
	    "cache_bypasses", "Cacheable requests that bypassed the cache.");
	metrics_counter_register(
	    "cache_stores", "Responses stored in the cache.");
	metrics_counter_register("cache_store_drops",
	    "Storable responses not stored (too big, cut short, refused).");
	metrics_gauge_register("cache_size", "apigw_cache_entries",
	    "Entries in the response cache.", cache_size_gauge);
	return c;
}

static void
cache_destroy(void *self)
{
	struct cache *c = self;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < LOCAL_SLOTS; i++) {
		free(c->local[i].blob);
		hdrs_cleanup(&c->local[i].fields);
	}
	hdrs_cleanup(&c->pairs);
	hdrs_cleanup(&c->resp);
	buf_cleanup(&c->base);
	buf_cleanup(&c->material);
	buf_cleanup(&c->scratch);
	buf_cleanup(&c->body);
	store_batch_cleanup(&c->poll);
	free(c);
}

void
cache_get_counts(const void *self, struct cache_counts *out)
{
	*out = ((const struct cache *)self)->n;
}

/* ---- entries --------------------------------------------------------------
 */

static int
parse_ll(const char **p, const char *end, long long max, long long *out)
{
	long long v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

/* Reads an entry (a view into data).  Returns 0, or -1 when malformed. */
static int
entry_parse(const char *data, size_t len, struct cache_entry *e)
{
	const char *p = data, *end = data + len;
	long long v[5];
	int i;

	if (len < 7 || memcmp(p, "APIGW1 ", 7) != 0)
		return -1;
	p += 7;
	for (i = 0; i < 5; i++) {
		if (parse_ll(&p, end, (long long)1 << 52, &v[i]) != 0)
			return -1;
		if (p >= end || *p != (i < 4 ? ' ' : '\n'))
			return -1;
		p++;
	}
	if (v[0] < 100 || v[0] > 599 || v[4] > CACHE_HEAD_MAX ||
	    (size_t)(end - p) < (size_t)v[4])
		return -1;
	e->status = (int)v[0];
	e->stored_ms = v[1];
	e->ttl_s = (long)v[2];
	e->stale_s = (long)v[3];
	e->head = p;
	e->head_len = (size_t)v[4];
	e->body = p + e->head_len;
	e->body_len = (size_t)(end - e->body);
	return 0;
}

/* Fills h with the entry's stored fields. */
static void
entry_fields(const struct cache_entry *e, struct hdrs *h)
{
	const char *p = e->head, *end = e->head + e->head_len;

	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		const char *colon, *v;

		if (eol == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon != NULL) {
			v = colon + 1;
			while (v < eol && *v == ' ')
				v++;
			hdrs_addn(
			    h, p, (size_t)(colon - p), v, (size_t)(eol - v));
		}
		p = eol + 2 <= end ? eol + 2 : end;
	}
}

/* Age of an entry in seconds at now_ms (Redis time). */
static long long
entry_age(const struct cache_entry *e, const struct hdrs *h, long long now_ms)
{
	/* Whole seconds since it was stored (not the difference of two
	 * truncated clocks), plus the Age the backend gave it. */
	long long held_ms = now_ms > e->stored_ms ? now_ms - e->stored_ms : 0;

	return cache_age(0, held_ms / 1000, hdrs_get(h, "Age"));
}

static void
set_status(struct request *r, enum cache_status st, const char *cache_status)
{
	hdrs_del(&r->resp_headers, "X-Cache");
	hdrs_del(&r->resp_headers, "Cache-Status");
	hdrs_add(&r->resp_headers, "X-Cache", cache_status_xcache(st));
	hdrs_add(&r->resp_headers, "Cache-Status",
	    cache_status != NULL ? cache_status : cache_status_str(st));
	r->cache_status = cache_status_xcache(st);
}

/*
 * Answers r from e (a hit, fresh or stale).  fields: e's stored fields
 * when the caller has them parsed already, else NULL.
 */
static void
respond_entry(struct request *r, const struct cache_entry *e,
    const struct hdrs *fields, long long now_ms, enum cache_status st)
{
	struct hdrs parsed, h;
	const struct hdrs *stored = fields;
	char v[32];
	size_t i;

	hdrs_init(&parsed);
	hdrs_init(&h);
	if (stored == NULL) {
		entry_fields(e, &parsed);
		stored = &parsed;
	}
	for (i = 0; i < stored->n; i++) {
		const char *name = stored->v[i].name;

		if (strcasecmp(name, "Age") == 0 ||
		    strcasecmp(name, "Content-Length") == 0 ||
		    strcasecmp(name, "Transfer-Encoding") == 0)
			continue;
		hdrs_add(&h, name, stored->v[i].value);
	}
	snprintf(v, sizeof v, "%zu", e->body_len);
	hdrs_add(&h, "Content-Length", v);
	snprintf(v, sizeof v, "%lld", entry_age(e, stored, now_ms));
	hdrs_add(&h, "Age", v);
	set_status(r, st, NULL);
	if (request_send_head(r, e->status, &h) == 0 &&
	    strcmp(r->method, "HEAD") != 0)
		request_write(r, e->body, e->body_len);
	hdrs_cleanup(&parsed);
	hdrs_cleanup(&h);
}

/* Freshness of e, whose stored fields are h, for the current route. */
static enum cache_freshness
fields_freshness(
    const struct cache *c, const struct cache_entry *e, const struct hdrs *h)
{
	long stale = c->x->r->route->cache_stale_if_error_s;

	if (!cache_stale_allowed(h))
		stale = 0;
	return cache_freshness(entry_age(e, h, c->now_ms), e->ttl_s, stale);
}

/* Freshness of e for the current route. */
static enum cache_freshness
entry_freshness(const struct cache *c, const struct cache_entry *e)
{
	struct hdrs h;
	enum cache_freshness f;

	hdrs_init(&h);
	entry_fields(e, &h);
	f = fields_freshness(c, e, &h);
	hdrs_cleanup(&h);
	return f;
}

/* ---- request fields for the variant ---------------------------------------
 */

/* Fields never sent to Redis, whatever a response varies on. */
static int
secret_field(const struct config *cfg, const char *name)
{
	return strcasecmp(name, cfg->api_keys.header) == 0 ||
	    strcasecmp(name, "Authorization") == 0 ||
	    strcasecmp(name, "Proxy-Authorization") == 0;
}

/* c->pairs: each request field once, lower-case, repeats joined. */
static void
collect_pairs(struct cache *c, const struct exchange *x)
{
	c->have_pairs = 1;
	const struct hdrs *in = &x->r->headers;
	char name[CACHE_VARY_NAME_MAX + 1];
	size_t i, j, n;

	hdrs_reset(&c->pairs);
	for (i = 0; i < in->n; i++) {
		const char *v = in->v[i].value, *prev;
		size_t vl;

		n = strlen(in->v[i].name);
		if (n > CACHE_VARY_NAME_MAX ||
		    secret_field(x->cfg, in->v[i].name))
			continue; /* cannot be a stored Vary name */
		for (j = 0; j < n; j++) {
			char ch = in->v[i].name[j];

			name[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		name[j] = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		vl = strlen(v);
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		prev = hdrs_get(&c->pairs, name);
		if (prev == NULL) {
			if (c->pairs.n >= CACHE_MAX_PAIRS)
				continue;
			hdrs_addn(&c->pairs, name, n, v, vl);
		} else {
			buf_reset(&c->scratch);
			buf_printf(&c->scratch, "%s, %.*s", prev, (int)vl, v);
			hdrs_set(&c->pairs, name, buf_cstr(&c->scratch));
		}
	}
}

/* Collects the request's fields once, when something needs them. */
static void
need_pairs(struct cache *c)
{
	if (!c->have_pairs)
		collect_pairs(c, c->x);
}

/* The variant string of the stored Vary names (as cache.lua builds it). */
static void
variant_hash(struct cache *c, const struct cache_vary *vary, char out[41])
{
	size_t i;

	buf_reset(&c->scratch);
	for (i = 0; i < vary->n; i++) {
		const char *v = hdrs_get(&c->pairs, vary->name[i]);

		if (v != NULL)
			buf_printf(&c->scratch, "%s=%zu:%s\n", vary->name[i],
			    strlen(v), v);
		else
			buf_printf(&c->scratch, "%s=-\n", vary->name[i]);
	}
	keyspace_sha1_hex(
	    c->scratch.len > 0 ? c->scratch.p : "", c->scratch.len, out);
}

/* ---- the process's copies -------------------------------------------------
 */

static void
local_drop(struct cache *c, size_t i)
{
	struct local_copy *l = &c->local[i];

	free(l->blob);
	hdrs_cleanup(&l->fields);
	c->local_bytes -= l->len;
	memset(l, 0, sizeof *l);
}

/* Drops the copies of every variant of the resource res64. */
static void
local_forget(struct cache *c, const char *res64)
{
	size_t i;

	for (i = 0; i < LOCAL_SLOTS; i++)
		if (c->local[i].blob != NULL &&
		    strcmp(c->local[i].res64, res64) == 0)
			local_drop(c, i);
}

/*
 * The copy that answers the request of c->res64 and c->pairs, or -1.  On
 * a find, *e is a view into it and c->now_ms the Redis time now, counted
 * from the lookup that returned it (a little late, never early, so the
 * entry is never taken for younger than it is).
 */
static int
local_find(struct cache *c, struct cache_entry *e)
{
	long long now = clock_mono_ms();
	char var40[41];
	size_t i;

	for (i = 0; i < LOCAL_SLOTS; i++) {
		struct local_copy *l = &c->local[i];

		if (l->blob == NULL || strcmp(l->res64, c->res64) != 0)
			continue;
		if (now - l->sent_ms >= LOCAL_LIFE_MS ||
		    entry_parse(l->blob, l->len, e) != 0) {
			local_drop(c, i);
			continue;
		}
		if (l->vary.n > 0) {
			need_pairs(c);
			variant_hash(c, &l->vary, var40);
			if (strcmp(var40, l->var40) != 0)
				continue; /* another variant */
		}
		c->now_ms = l->redis_ms + (now - l->sent_ms);
		if (fields_freshness(c, e, &l->fields) != CACHE_FRESH) {
			local_drop(c, i);
			continue;
		}
		l->used = ++c->local_tick;
		return (int)i;
	}
	return -1;
}

/*
 * Keeps a copy of e, fresh in Redis's reply to the lookup sent at
 * c->sent_ms (data, len: the entry as Redis holds it).  Entries larger
 * than an eighth of cache.local_bytes are not copied.
 */
static void
local_keep(struct cache *c, const struct config *cfg,
    const struct cache_entry *e, const char *data, size_t len)
{
	size_t budget = (size_t)cfg->cache.local_bytes, i, lru;
	struct local_copy *l;
	struct hdrs h;
	struct cache_vary vary;
	const char *why;
	int ok;

	if (budget == 0 || len > budget / 8)
		return;
	hdrs_init(&h);
	entry_fields(e, &h);
	ok = cache_vary_parse(&h, &vary, &why) == 0;
	if (!ok) {
		hdrs_cleanup(&h);
		return;
	}
	for (;;) {
		size_t empty = LOCAL_SLOTS;

		lru = LOCAL_SLOTS;
		for (i = 0; i < LOCAL_SLOTS; i++) {
			l = &c->local[i];
			if (l->blob == NULL) {
				empty = i;
			} else if (strcmp(l->res64, c->res64) == 0 &&
			    strcmp(l->var40, c->var40) == 0) {
				local_drop(c, i); /* one copy per variant */
				empty = i;
			} else if (lru == LOCAL_SLOTS ||
			    l->used < c->local[lru].used) {
				lru = i;
			}
		}
		if (empty < LOCAL_SLOTS && c->local_bytes + len <= budget) {
			i = empty;
			break;
		}
		if (lru == LOCAL_SLOTS) {
			hdrs_cleanup(&h);
			return;
		}
		local_drop(c, lru);
	}
	l = &c->local[i];
	l->blob = xmalloc(len);
	memcpy(l->blob, data, len);
	l->len = len;
	memcpy(l->res64, c->res64, sizeof l->res64);
	memcpy(l->var40, c->var40, sizeof l->var40);
	l->vary = vary;
	l->fields = h; /* copies of the reply's bytes: moved, not freed */
	l->sent_ms = c->sent_ms;
	l->redis_ms = c->now_ms;
	l->used = ++c->local_tick;
	c->local_bytes += len;
}

/* ---- the response tap -----------------------------------------------------
 */

static int
tap_head(void *arg, int status, const struct hdrs *h)
{
	struct cache *c = arg;
	struct exchange *x = c->x;
	const struct route *rt = x->r->route;
	const char *why = NULL;
	size_t i;
	int ok;

	c->storing = 0;
	ok = c->may_store &&
	    cache_storable(x->r->method, status, h, &x->r->headers,
	        rt->cache_ttl_s, x->cfg->cache.max_object_bytes, &c->vary,
	        &c->ttl_s, &why);
	for (i = 0; ok && i < c->vary.n; i++)
		if (secret_field(x->cfg, c->vary.name[i]))
			ok = 0; /* never key an entry on a secret */
	if (ok) {
		c->storing = 1;
		hdrs_reset(&c->resp);
		for (i = 0; i < h->n; i++)
			hdrs_add(&c->resp, h->v[i].name, h->v[i].value);
		buf_reset(&c->body);
	}
	if (c->mode == CACHE_REFRESH)
		set_status(x->r,
		    ok ? CACHE_STATUS_MISS_STORED : CACHE_STATUS_MISS,
		    ok ? "apigw; fwd=request; stored" : "apigw; fwd=request");
	else
		set_status(x->r,
		    ok ? CACHE_STATUS_MISS_STORED : CACHE_STATUS_MISS, NULL);
	/* A failure status with a usable stale entry at hand: let rescue
	 * answer (the proxy honours this for failure statuses only). */
	return c->have_stale;
}

static void
tap_body(void *arg, const char *data, size_t len)
{
	struct cache *c = arg;

	if (c->storing && buf_append(&c->body, data, len) != BUF_OK) {
		c->storing = 0; /* over max_object_bytes: streamed, not kept */
		COUNT(c, store_drops, "cache_store_drops");
	}
}

/* ---- phases ---------------------------------------------------------------
 */

static enum step_rc
cache_plan(void *self, struct exchange *x)
{
	struct cache *c = self;
	struct request *r = x->r;
	const struct route *rt = r->route;
	struct store_cmd cmd;
	size_t i, argc = 0;
	int head = strcmp(r->method, "HEAD") == 0;

	c->x = x;
	c->slot = -1;
	c->hit_local = -1;
	c->locked = 0;
	c->may_store = 0;
	c->storing = 0;
	c->have_stale = 0;
	c->now_ms = (long long)x->now * 1000;
	c->mode = cache_request_mode(r->method, &r->headers, rt->cache_ttl_s);
	if (c->mode == CACHE_OFF)
		return STEP_GO;
	if (c->mode == CACHE_BYPASS) {
		set_status(r, CACHE_STATUS_BYPASS, NULL);
		COUNT(c, bypasses, "cache_bypasses");
		return STEP_GO;
	}
	if (cache_key(&c->material, c->res64, r->method, r->host, r->path,
	        r->query, rt->require_auth ? x->key_hash : NULL, NULL,
	        NULL) != 0 ||
	    (rt->require_auth && x->key_hash == NULL)) {
		c->mode = CACHE_OFF;
		return STEP_GO;
	}
	buf_reset(&c->base);
	if (keyspace_cache_base(&c->base, x->cfg->redis.key_prefix, c->res64) !=
	    BUF_OK) {
		c->mode = CACHE_OFF;
		return STEP_GO;
	}
	c->have_pairs = 0;
	if (c->mode == CACHE_REFRESH) {
		local_forget(c, c->res64);
	} else if (x->cfg->cache.local_bytes > 0) {
		c->hit_local = local_find(c, &c->e);
		if (c->hit_local >= 0)
			return STEP_GO; /* decide answers, without Redis */
	}
	/* The copy of a response never outgrows cache.max_object_bytes. */
	c->body.max = x->cfg->cache.max_object_bytes > 0
	    ? (size_t)x->cfg->cache.max_object_bytes
	    : 1;
	/* HEAD never fills (its response has no body): no lock for it. */
	snprintf(c->lock_ms, sizeof c->lock_ms, "%ld",
	    head ? 0L : rt->timeout_ms + CACHE_LOCK_EXTRA_MS);
	c->argv[argc] = c->base.p;
	c->argvlen[argc++] = c->base.len;
	c->argv[argc] = c->mode == CACHE_REFRESH ? "T" : "L";
	c->argvlen[argc++] = 1;
	c->argv[argc] = c->lock_ms;
	c->argvlen[argc++] = strlen(c->lock_ms);
	need_pairs(c);
	for (i = 0; i < c->pairs.n; i++) {
		c->argv[argc] = c->pairs.v[i].name;
		c->argvlen[argc++] = strlen(c->pairs.v[i].name);
		c->argv[argc] = c->pairs.v[i].value;
		c->argvlen[argc++] = strlen(c->pairs.v[i].value);
	}
	c->sent_ms = clock_mono_ms();
	cmd.script = STORE_SCRIPT_CACHE;
	cmd.nkeys = 1;
	cmd.argc = (int)argc;
	cmd.argv = c->argv;
	cmd.argvlen = c->argvlen;
	c->slot = plan_add(x->plan, &cmd);
	if (c->slot < 0)
		c->mode = CACHE_OFF;
	return STEP_GO;
}

/*
 * Another process holds the fill lock: waits for its entry.  Returns 1
 * when r was answered from it.
 */
static int
wait_for_fill(struct cache *c, struct exchange *x)
{
	const struct route *rt = x->r->route;
	long wait_ms = rt->timeout_ms < CACHE_WAIT_MAX_MS ? rt->timeout_ms
	                                                  : CACHE_WAIT_MAX_MS;
	struct timespec ts = {0, CACHE_POLL_MS * 1000000L};
	const char *argv[2] = {"GET", NULL};
	long waited;

	buf_reset(&c->scratch);
	if (keyspace_cache_entry(&c->scratch, x->cfg->redis.key_prefix,
	        c->res64, c->var40) != BUF_OK)
		return 0;
	argv[1] = buf_cstr(&c->scratch);
	c->n.lock_waits++;
	for (waited = 0; waited < wait_ms; waited += CACHE_POLL_MS) {
		const struct store_val *v;
		struct cache_entry e;

		nanosleep(&ts, NULL);
		if (store_command(x->store, &c->poll, NULL, 2, argv) != 0)
			return 0;
		v = store_batch_reply(&c->poll, 0);
		if (v->type != STORE_STR ||
		    entry_parse(v->str, v->len, &e) != 0)
			continue;
		c->now_ms += waited + CACHE_POLL_MS;
		if (entry_freshness(c, &e) != CACHE_FRESH)
			continue;
		respond_entry(x->r, &e, NULL, c->now_ms, CACHE_STATUS_HIT);
		COUNT(c, hits, "cache_hits");
		return 1;
	}
	return 0;
}

static enum step_rc
cache_decide(void *self, struct exchange *x)
{
	struct cache *c = self;
	const struct store_val *v, *e;

	if (c->mode == CACHE_OFF || c->mode == CACHE_BYPASS)
		return STEP_GO;
	if (c->hit_local >= 0) {
		respond_entry(x->r, &c->e, &c->local[c->hit_local].fields,
		    c->now_ms, CACHE_STATUS_HIT);
		COUNT(c, hits, "cache_hits");
		metrics_add("cache_local_hits", 1);
		return STEP_DONE;
	}
	v = plan_reply(x->plan, c->slot);
	if (v == NULL || v->type != STORE_ARR || v->n < 1 ||
	    v->elem[0].type != STORE_INT) {
		/* Redis down or a broken reply: the cache steps aside. */
		if (v != NULL && v->type == STORE_ERR)
			log_warn("cache: %s", v->str);
		set_status(x->r, CACHE_STATUS_BYPASS, NULL);
		COUNT(c, bypasses, "cache_bypasses");
		c->mode = CACHE_BYPASS;
		return STEP_GO;
	}
	c->now_ms = v->elem[0].i;
	if (c->mode == CACHE_REFRESH) {
		c->may_store = 1;
		goto miss;
	}
	if (v->n < 4 || v->elem[1].type != STORE_STR || v->elem[1].len != 40 ||
	    v->elem[3].type != STORE_INT) {
		c->mode = CACHE_BYPASS;
		set_status(x->r, CACHE_STATUS_BYPASS, NULL);
		COUNT(c, bypasses, "cache_bypasses");
		return STEP_GO;
	}
	memcpy(c->var40, v->elem[1].str, 40);
	c->var40[40] = '\0';
	c->locked = v->elem[3].i == 1;
	e = &v->elem[2];
	if (e->type == STORE_STR && entry_parse(e->str, e->len, &c->e) == 0) {
		switch (entry_freshness(c, &c->e)) {
		case CACHE_FRESH:
			local_keep(c, x->cfg, &c->e, e->str, e->len);
			respond_entry(
			    x->r, &c->e, NULL, c->now_ms, CACHE_STATUS_HIT);
			COUNT(c, hits, "cache_hits");
			return STEP_DONE;
		case CACHE_STALE_USABLE: c->have_stale = 1; break;
		case CACHE_EXPIRED: break;
		}
	}
	if (c->locked)
		c->may_store = 1;
	else if (strcmp(x->r->method, "HEAD") != 0 &&
	    x->backend_unavailable == 0 && wait_for_fill(c, x))
		return STEP_DONE;
miss:
	COUNT(c, misses, "cache_misses");
	c->tap.head = tap_head;
	c->tap.body = tap_body;
	c->tap.arg = c;
	x->tap = &c->tap;
	/* Until a head comes back: a gateway error is a plain miss. */
	set_status(x->r, CACHE_STATUS_MISS, NULL);
	return STEP_GO;
}

static enum step_rc
cache_rescue(void *self, struct exchange *x)
{
	struct cache *c = self;

	if (!c->have_stale || x->r->status != 0)
		return STEP_GO;
	c->have_stale = 0;
	c->storing = 0;
	respond_entry(x->r, &c->e, NULL, c->now_ms, CACHE_STATUS_HIT_STALE);
	COUNT(c, stale_hits, "cache_stale_hits");
	return STEP_DONE;
}

/* Queues the entry and its index updates (deferred: nobody waits). */
static void
store_entry(struct cache *c, struct exchange *x)
{
	const char *prefix = x->cfg->redis.key_prefix;
	const struct route *rt = x->r->route;
	struct buf blob, head, entry, lock, vary, live, path, route, member;
	char var40[41], path64[KEYSPACE_HASH_HEX + 1], qh40[41];
	char px[24], exp[24], now[24];
	long stale = rt->cache_stale_if_error_s;
	long long life_ms;
	size_t i;

	buf_init(&blob);
	buf_init(&head);
	buf_init(&entry);
	buf_init(&lock);
	buf_init(&vary);
	buf_init(&live);
	buf_init(&path);
	buf_init(&route);
	buf_init(&member);
	for (i = 0; i < c->resp.n; i++)
		buf_printf(
		    &head, "%s: %s\r\n", c->resp.v[i].name, c->resp.v[i].value);
	if (head.len > CACHE_HEAD_MAX) {
		COUNT(c, store_drops, "cache_store_drops");
		goto out;
	}
	buf_printf(&blob, "APIGW1 %d %lld %ld %ld %zu\n", 200, c->now_ms,
	    c->ttl_s, stale, head.len);
	buf_append(&blob, head.p, head.len);
	buf_append(&blob, c->body.p != NULL ? c->body.p : "", c->body.len);

	variant_hash(c, &c->vary, var40);
	for (i = 0; i < c->vary.n; i++)
		buf_printf(&vary, "%s%s", i ? "," : "", c->vary.name[i]);
	keyspace_cache_entry(&entry, prefix, c->res64, var40);
	keyspace_cache_lock(
	    &lock, prefix, c->res64, c->locked ? c->var40 : var40);
	keyspace_cache_live(&live, prefix);
	keyspace_cache_path_hash(rt->route_id, x->r->path, path64);
	keyspace_cache_path(&path, prefix, path64);
	keyspace_cache_route(&route, prefix, rt->route_id);
	keyspace_cache_query_hash(x->r->query, qh40);
	buf_printf(&member, "%s %s", buf_cstr(&entry), qh40);
	life_ms = ((long long)c->ttl_s + stale) * 1000;
	snprintf(px, sizeof px, "%lld", life_ms);
	snprintf(exp, sizeof exp, "%lld", c->now_ms + life_ms);
	snprintf(now, sizeof now, "%lld", c->now_ms);
	{
		const char *set_e[] = {"SET", entry.p, blob.p, "PX", px};
		const size_t set_el[] = {3, entry.len, blob.len, 2, strlen(px)};
		const char *set_v[] = {
		    "SET", NULL, vary.len ? vary.p : "", "PX", px};
		const char *del_l[] = {"DEL", lock.p};
		const char *zadd_live[] = {"ZADD", live.p, exp, entry.p};
		const char *trim_live[] = {
		    "ZREMRANGEBYSCORE", live.p, "-inf", now};
		const char *zadd_path[] = {"ZADD", path.p, exp, member.p};
		const char *trim_path[] = {
		    "ZREMRANGEBYSCORE", path.p, "-inf", now};
		const char *exp_path[] = {"PEXPIRE", path.p, px, "GT"};
		const char *zadd_route[] = {"ZADD", route.p, exp, path.p};
		const char *trim_route[] = {
		    "ZREMRANGEBYSCORE", route.p, "-inf", now};
		struct store_cmd cmds[11];
		struct buf vkey;
		int k = 0;

		buf_init(&vkey);
		keyspace_cache_base(&vkey, prefix, c->res64);
		buf_puts(&vkey, ":v");
		set_v[1] = vkey.p;
		memset(cmds, 0, sizeof cmds);
#define CMD(a, l)                                                              \
	do {                                                                   \
		cmds[k].script = -1;                                           \
		cmds[k].argc = (int)(sizeof(a) / sizeof((a)[0]));              \
		cmds[k].argv = (a);                                            \
		cmds[k].argvlen = (l);                                         \
		k++;                                                           \
	} while (0)
		CMD(set_e, set_el);
		CMD(set_v, NULL);
		CMD(del_l, NULL);
		CMD(zadd_live, NULL);
		CMD(trim_live, NULL);
		CMD(zadd_path, NULL);
		CMD(trim_path, NULL);
		CMD(exp_path, NULL);
		CMD(zadd_route, NULL);
		CMD(trim_route, NULL);
#undef CMD
		if (store_defer(x->store, cmds, (size_t)k) == 0)
			COUNT(c, stores, "cache_stores");
		else
			COUNT(c, store_drops, "cache_store_drops");
		buf_cleanup(&vkey);
	}
	c->locked = 0;
out:
	buf_cleanup(&blob);
	buf_cleanup(&head);
	buf_cleanup(&entry);
	buf_cleanup(&lock);
	buf_cleanup(&vary);
	buf_cleanup(&live);
	buf_cleanup(&path);
	buf_cleanup(&route);
	buf_cleanup(&member);
}

/* The whole body arrived (Content-Length, when given, is met). */
static int
complete(const struct cache *c, const struct exchange *x)
{
	const char *cl = hdrs_get(&c->resp, "Content-Length");

	if (!x->forwarded || x->outcome == NULL ||
	    x->outcome->result != PROXY_OK || x->r->client_gone ||
	    x->r->aborted || x->r->status != 200)
		return 0;
	return cl == NULL || strtoull(cl, NULL, 10) == c->body.len;
}

static void
cache_after(void *self, struct exchange *x)
{
	struct cache *c = self;

	if (c->mode == CACHE_OFF || c->mode == CACHE_BYPASS)
		goto out;
	if (c->storing && complete(c, x))
		store_entry(c, x);
	else if (c->storing)
		COUNT(c, store_drops, "cache_store_drops");
	if (c->locked) {
		struct buf lock;
		const char *del[2] = {"DEL", NULL};
		struct store_cmd cmd = {-1, 0, 2, del, NULL};

		buf_init(&lock);
		keyspace_cache_lock(
		    &lock, x->cfg->redis.key_prefix, c->res64, c->var40);
		del[1] = buf_cstr(&lock);
		store_defer(x->store, &cmd, 1);
		buf_cleanup(&lock);
	}
	store_send(x->store);
out:
	c->mode = CACHE_OFF;
	c->storing = 0;
	c->locked = 0;
	c->have_stale = 0;
	buf_reset(&c->body);
	/* A large copy is not kept for the next request. */
	if (c->body.cap > (size_t)1 << 20)
		buf_cleanup(&c->body);
	store_batch_reset(&c->poll);
}

const struct step cache_step = {
    .name = "cache",
    .create = cache_create,
    .destroy = cache_destroy,
    .plan = cache_plan,
    .decide = cache_decide,
    .rescue = cache_rescue,
    .after = cache_after,
};
