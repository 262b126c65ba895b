/*
 * access.c -- API key check and rate limits in one script call; see
 * access.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "hdrs.h"
#include "keys.h"
#include "keyspace.h"
#include "local_limit.h"
#include "log.h"
#include "plan.h"
#include "ratelimit.h"
#include "request.h"
#include "store.h"
#include "xalloc.h"

#define QUOTA_EXCEEDED_TYPE                                                    \
	"https://iana.org/assignments/http-problem-types#quota-exceeded"
#define RL_MAX_ARGS 160
#define LEASE_SLOTS 128

/*
 * A lease held by this process: units it may admit for one identity and
 * route without asking Redis, until a local deadline (CLOCK_MONOTONIC ms).
 * snap is the script's answer at the grant, for the headers.
 */
struct lease {
	char id[KEYSPACE_TAG_LEN + 24]; /* "<tag> <route_id>", "" = free */
	long units;                     /* left */
	long granted; /* units of the last grant; 0 once settled */
	long want;    /* units to ask for next time */
	long long until_ms, granted_ms;
	struct rl_result snap;
	/* The grant's call, to give unused units back (ratelimit_giveback). */
	struct buf call; /* argc NUL-terminated strings */
	int argc, nkeys;
	long long end_us, granted_us;
};

/*
 * How many units to ask for: a lease's units are charged in Redis when
 * granted, and those a process does not use before the lease ends are
 * lost, so a process asks for about what it used last time: twice as many
 * when a lease ran out early, a quarter more than it used otherwise.
 */
#define LEASE_FIRST 8
#define LEASE_MIN 2

struct access {
	struct auth_cache *keys;
	struct buf args; /* backing store of argv, reused */
	struct buf scratch;
	unsigned long bypassed;
	unsigned long leased;   /* admissions from a lease (no round trip) */
	unsigned long returned; /* lease units given back unused */
	unsigned long local; /* decided alone, Redis down (on_failure local) */
	struct lease leases[LEASE_SLOTS];
	struct local_limit *limits; /* for on_failure local, at first use */

	/* The request in flight (one at a time per process). */
	const char *argv[RL_MAX_ARGS];
	size_t argvlen[RL_MAX_ARGS];
	char hash[KEYS_HASH_HEX + 1];
	char tag[KEYSPACE_TAG_LEN];
	int slot;        /* in the plan, or -1 */
	int lookup_key;  /* the record comes from Redis, not the cache */
	int argc, nkeys; /* of the call in the plan */
	char lease_id[KEYSPACE_TAG_LEN + 24];
	long long lease_cap_ms; /* a lease must end by then (key cache) */
	struct rl_query q; /* what was asked, to decide alone without Redis */
};

static struct lease *
lease_slot(struct access *a, const char *id)
{
	unsigned long h = 5381;
	const unsigned char *p;

	for (p = (const unsigned char *)id; *p != '\0'; p++)
		h = h * 33 + *p;
	return &a->leases[h % LEASE_SLOTS];
}

/*
 * Gives back the units l has left (deferred: nobody waits), and ends it.
 * Safe at any time: they were never used, and the script gives back only
 * what its algorithm allows.
 */
static void
lease_giveback(struct access *a, struct lease *l, struct store *s)
{
	const char *argv[RL_MAX_ARGS], *gv[RL_MAX_ARGS + 1];
	char num[3][24];
	struct store_cmd cmd;
	const char *p = l->call.p;
	int i, n;

	if (l->units > 0 && l->argc > 0 && l->argc <= RL_MAX_ARGS &&
	    p != NULL) {
		for (i = 0; i < l->argc; i++) {
			argv[i] = p;
			p += strlen(p) + 1;
		}
		n = ratelimit_giveback(argv, l->argc, l->nkeys, l->units,
		    l->end_us, l->granted_us, num, gv, RL_MAX_ARGS + 1);
		if (n > 0) {
			cmd.script = STORE_SCRIPT_RATELIMIT;
			cmd.nkeys = l->nkeys;
			cmd.argc = n;
			cmd.argv = gv;
			cmd.argvlen = NULL;
			if (store_defer(s, &cmd, 1) == 0)
				a->returned += (unsigned long)l->units;
		}
	}
	l->units = 0;
	l->argc = 0;
}

/* A lease that ended: learn from it what to ask next, give the rest back. */
static void
lease_settle(struct access *a, struct lease *l, struct store *s)
{
	if (l->granted > 0) {
		long used = l->granted - l->units;

		l->want = l->units <= 0 ? 2 * l->granted
		                        : used + used / 2 + LEASE_MIN;
		l->granted = 0;
	}
	lease_giveback(a, l, s);
}

/*
 * Admits r from a live lease of its identity and route.  Returns 1 when it
 * did: the headers are the grant's (Redis's own figures then, which never
 * show more than Redis would), reset times moved on by the time passed.
 */
static int
lease_admit(struct access *a, struct request *r, struct store *s)
{
	struct lease *l = lease_slot(a, a->lease_id);
	long long now = clock_mono_ms(), passed;
	struct rl_result res;
	size_t i;

	if (!keys_equal_str(l->id, a->lease_id))
		return 0;
	if (l->units <= 0 || now >= l->until_ms) {
		lease_settle(a, l, s);
		return 0;
	}
	l->units--;
	a->leased++;
	res = l->snap;
	passed = now - l->granted_ms;
	for (i = 0; i < res.n; i++)
		res.win[i].reset_ms = res.win[i].reset_ms > passed
		    ? res.win[i].reset_ms - (long)passed
		    : 0;
	ratelimit_headers(&res, &r->resp_headers);
	return 1;
}

/* Units to ask for with this request's call. */
static long
lease_ask(struct access *a, long max)
{
	const struct lease *l = lease_slot(a, a->lease_id);
	long want = keys_equal_str(l->id, a->lease_id) && l->want > 0
	    ? l->want
	    : LEASE_FIRST;

	if (want < LEASE_MIN)
		want = LEASE_MIN;
	return want < max ? want : max;
}

/* Keeps the lease the script granted with res. */
static void
lease_keep(struct access *a, const struct rl_result *res, struct store *s)
{
	struct lease *l;
	long long now = clock_mono_ms(), until;
	int i;

	if (res->lease_units <= 0 || a->lease_id[0] == '\0')
		return;
	until = now + (res->lease_until_ms - res->now_ms);
	if (until > a->lease_cap_ms)
		until = a->lease_cap_ms;
	if (until <= now)
		return;
	l = lease_slot(a, a->lease_id);
	if (!keys_equal_str(l->id, a->lease_id)) {
		/* Another identity's lease had this slot: it ends here. */
		lease_giveback(a, l, s);
		l->want = LEASE_FIRST;
	} else
		lease_settle(a, l, s);
	snprintf(l->id, sizeof l->id, "%s", a->lease_id);
	l->units = res->lease_units;
	l->granted = res->lease_units;
	l->until_ms = until;
	l->granted_ms = now;
	l->snap = *res;
	l->snap.have_record = 0;
	memset(&l->snap.record, 0, sizeof l->snap.record);
	l->end_us = res->lease_end_us;
	l->granted_us = res->lease_granted_us;
	buf_reset(&l->call);
	for (i = 0; i < a->argc; i++) {
		buf_append(&l->call, a->argv[i], a->argvlen[i]);
		buf_putc(&l->call, '\0');
	}
	l->argc = a->argc;
	l->nkeys = a->nkeys;
}

static void *
access_create(void)
{
	struct access *a = xcalloc(1, sizeof *a);

	a->keys = auth_cache_new(1024);
	buf_init(&a->args);
	buf_init(&a->scratch);
	a->slot = -1;
	return a;
}

static void
access_destroy(void *self)
{
	struct access *a = self;
	size_t i;

	if (a == NULL)
		return;
	auth_cache_free(a->keys);
	local_limit_free(a->limits);
	buf_cleanup(&a->args);
	buf_cleanup(&a->scratch);
	for (i = 0; i < LEASE_SLOTS; i++)
		buf_cleanup(&a->leases[i].call);
	free(a);
}

/* Once a second: leases that ended give back what they did not use. */
static void
access_tick(void *self, struct store *s, time_t now)
{
	struct access *a = self;
	long long mono = clock_mono_ms();
	size_t i;

	(void)now;
	for (i = 0; i < LEASE_SLOTS; i++)
		if (a->leases[i].units > 0 && mono >= a->leases[i].until_ms)
			lease_settle(a, &a->leases[i], s);
	store_send(s);
}

/* The process exits or reloads: every lease ends now. */
static void
access_finish(void *self, struct store *s)
{
	struct access *a = self;
	size_t i;

	for (i = 0; i < LEASE_SLOTS; i++)
		if (a->leases[i].units > 0)
			lease_giveback(a, &a->leases[i], s);
	for (i = 0; i < LEASE_SLOTS; i++)
		a->leases[i].id[0] = '\0';
}

unsigned long
access_bypassed_count(const void *self)
{
	return ((const struct access *)self)->bypassed;
}

unsigned long
access_leased_count(const void *self)
{
	return ((const struct access *)self)->leased;
}

unsigned long
access_local_count(const void *self)
{
	return ((const struct access *)self)->local;
}

static enum step_rc
respond_unauthorized(struct exchange *x, const char *error, const char *detail)
{
	char v[160];

	snprintf(v, sizeof v, "ApiKey header=\"%s\"", x->cfg->api_keys.header);
	hdrs_add(&x->r->resp_headers, "WWW-Authenticate", v);
	request_respond_problem(x->r, 401, error, detail, NULL, NULL);
	return STEP_DONE;
}

static enum step_rc
access_plan(void *self, struct exchange *x)
{
	struct access *a = self;
	const struct config *cfg = x->cfg;
	struct request *r = x->r;
	const struct auth_entry *cached = NULL;
	struct rl_query q;
	struct store_cmd cmd;
	int nkeys, argc;

	a->slot = -1;
	a->lookup_key = 0;
	memset(&q, 0, sizeof q);
	q.cfg = cfg;
	q.route = r->route;

	if (r->route->require_auth) {
		switch (
		    auth_key_from_request(r, cfg->api_keys.header, a->hash)) {
		case AUTH_KEY_OK: break;
		case AUTH_KEY_MISSING:
			return respond_unauthorized(x, "missing API key",
			    "this route requires an API key");
		case AUTH_KEY_DUPLICATE:
			return respond_unauthorized(x, "invalid API key",
			    "the API key header must appear once");
		case AUTH_KEY_MALFORMED:
			return respond_unauthorized(
			    x, "invalid API key", "the API key is not valid");
		}
		cached = auth_cache_get(
		    a->keys, a->hash, x->now, cfg->api_keys.cache_ttl_s);
		if (cached != NULL && cached->expires > 0 &&
		    x->now >= cached->expires)
			return respond_unauthorized(
			    x, "invalid API key", "the API key has expired");
		if (keyspace_tag_key(a->tag, a->hash) != 0) {
			request_respond_problem(r, 500, "internal error",
			    "the API key hash is malformed", NULL, NULL);
			return STEP_DONE;
		}
		q.key_hash = a->hash;
		x->key_hash = a->hash;
		q.lookup_key = a->lookup_key = cached == NULL;
		q.key_policy = cached != NULL && cached->policy.present
		    ? &cached->policy
		    : NULL;
		if (cached != NULL) {
			snprintf(r->key_id, sizeof r->key_id, "%s", cached->id);
			snprintf(r->key_name, sizeof r->key_name, "%s",
			    cached->name);
		}
	} else
		keyspace_tag_ip(a->tag, r->client_ip);
	q.tag = a->tag;

	a->lease_id[0] = '\0';
	{
		long lease_max, lease_ms;

		ratelimit_lease_params(&q, &lease_max, &lease_ms);
		if (lease_max > 0) {
			snprintf(a->lease_id, sizeof a->lease_id, "%s %s",
			    a->tag, r->route->route_id);
			/* A lease never outlives the key record it was granted
			 * with: a revoked key stops within cache_ttl_s. */
			a->lease_cap_ms = clock_mono_ms() +
			    (cached != NULL
			            ? ((long long)cached->fetched +
			                  cfg->api_keys.cache_ttl_s - x->now) *
			                1000
			            : (long long)lease_ms);
			if (lease_admit(a, r, x->store))
				return STEP_GO;
			q.lease_units = lease_ask(a, lease_max);
		}
	}

	a->q = q;
	buf_reset(&a->args);
	nkeys = ratelimit_build(
	    &q, &a->args, a->argv, a->argvlen, RL_MAX_ARGS, &argc);
	if (nkeys < 0) {
		request_respond_problem(r, 500, "internal error",
		    "rate-limit arguments do not fit", NULL, NULL);
		return STEP_DONE;
	}
	a->argc = argc;
	a->nkeys = nkeys;
	cmd.script = STORE_SCRIPT_RATELIMIT;
	cmd.nkeys = nkeys;
	cmd.argc = argc;
	cmd.argv = a->argv;
	cmd.argvlen = a->argvlen;
	a->slot = plan_add(x->plan, &cmd);
	if (a->slot < 0) {
		request_respond_problem(r, 500, "internal error",
		    "the request's Redis batch is full", NULL, NULL);
		return STEP_DONE;
	}
	return STEP_GO;
}

/* The 429 of a rejected request; res has given the headers already. */
static void
respond_limited(
    struct access *a, struct exchange *x, const struct rl_result *res)
{
	struct buf *b = &a->scratch;

	buf_reset(b);
	buf_puts(b, "\"violated-policies\":");
	ratelimit_violated_json(res, b);
	request_respond_problem(x->r, 429, "rate limit exceeded",
	    "too many requests; retry after the time in Retry-After",
	    QUOTA_EXCEEDED_TYPE, b->p);
}

/*
 * on_failure local: this process decides alone, each limit divided by
 * local_share, on the counters it keeps per identity and policy.  The key
 * (if any) came from the key cache: a looked-up one never gets here.
 */
static enum step_rc
local_decide(struct access *a, struct exchange *x)
{
	struct rl_applied ap[3];
	struct local_policy lp[3];
	char id[3][LOCAL_LIMIT_ID_LEN];
	struct rl_result res;
	struct timespec ts;
	size_t i, n;

	n = ratelimit_applicable(&a->q, ap);
	for (i = 0; i < n; i++) {
		snprintf(id[i], sizeof id[i], "%c %s %s", ap[i].kind, a->tag,
		    ap[i].kind == 'r' ? a->q.route->route_id : "");
		lp[i].id = id[i];
		lp[i].name = ap[i].name;
		lp[i].algorithm = ap[i].algorithm;
		lp[i].p = ap[i].p;
	}
	if (a->limits == NULL)
		a->limits = local_limit_new();
	clock_gettime(CLOCK_REALTIME, &ts);
	local_limit_check(a->limits, lp, n, x->cfg->redis.local_share,
	    (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, &res);
	a->local++;
	ratelimit_headers(&res, &x->r->resp_headers);
	if (res.status == RL_REJECTED) {
		respond_limited(a, x, &res);
		return STEP_DONE;
	}
	return STEP_GO;
}

/* Redis could not answer: the failure policy decides. */
static enum step_rc
redis_down(struct access *a, struct exchange *x, const char *why)
{
	static time_t last;

	log_ratelimited(&last, LOG_LVL_ERROR, "redis: %s", why);
	if (a->lookup_key) {
		/* Authentication never fails open. */
		request_respond_problem(x->r, 503, "service unavailable",
		    "the API key cannot be checked right now", NULL, NULL);
		return STEP_DONE;
	}
	if (x->cfg->redis.on_failure == REDIS_FAIL_LOCAL)
		return local_decide(a, x);
	if (x->cfg->redis.on_failure == REDIS_FAIL_CLOSED) {
		request_respond_problem(x->r, 503, "service unavailable",
		    "the rate limiter is unavailable", NULL, NULL);
		return STEP_DONE;
	}
	a->bypassed++;
	return STEP_GO;
}

static enum step_rc
access_decide(void *self, struct exchange *x)
{
	struct access *a = self;
	struct request *r = x->r;
	const struct store_val *reply;
	struct rl_result res;
	enum step_rc rc = STEP_DONE;

	if (a->slot < 0)
		return STEP_GO;
	memset(&res, 0, sizeof res);
	reply = plan_reply(x->plan, a->slot);
	if (reply == NULL)
		return redis_down(
		    a, x, x->plan->why != NULL ? x->plan->why : "unreachable");
	if (reply->type == STORE_ERR)
		return redis_down(a, x, reply->str);
	if (ratelimit_parse(reply, &res) != 0) {
		rc = redis_down(a, x, "malformed rate-limit reply");
		goto out;
	}

	switch (res.status) {
	case RL_KEY_UNKNOWN:
		respond_unauthorized(
		    x, "invalid API key", "the API key is not valid");
		goto out;
	case RL_KEY_REVOKED:
		respond_unauthorized(
		    x, "invalid API key", "the API key has been revoked");
		goto out;
	case RL_KEY_EXPIRED:
		respond_unauthorized(
		    x, "invalid API key", "the API key has expired");
		goto out;
	case RL_ADMITTED:
	case RL_REJECTED: break;
	}
	if (res.status == RL_ADMITTED)
		lease_keep(a, &res, x->store);
	if (res.have_record) {
		auth_cache_put(a->keys, a->hash, &res.record, x->now);
		snprintf(r->key_id, sizeof r->key_id, "%s", res.record.id);
		snprintf(
		    r->key_name, sizeof r->key_name, "%s", res.record.name);
	}
	ratelimit_headers(&res, &r->resp_headers);
	if (res.status == RL_REJECTED) {
		respond_limited(a, x, &res);
		goto out;
	}
	rc = STEP_GO;
out:
	ratelimit_result_cleanup(&res);
	return rc;
}

const struct step access_step = {
    .name = "access",
    .create = access_create,
    .destroy = access_destroy,
    .plan = access_plan,
    .decide = access_decide,
    .tick = access_tick,
    .finish = access_finish,
};
