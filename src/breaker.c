/*
 * breaker.c -- circuit breakers and bulkheads; see breaker.h and
 * src/lua/breaker.lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "breaker.h"
#include "buf.h"
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

#define LEASE_MARGIN_MS 1000  /* the trial lease outlives the exchange */
#define BREAKER_FRESH_MS 1000 /* a copy Redis confirmed may decide alone */
#define CHECK_ARGS 9          /* 3 keys + 6 args */
#define REPORT_ARGS 13        /* 3 keys + 10 args */
#define NUM_LEN 24

/* ---- the state machine ------------------------------------------------- */

void
breaker_sm_init(struct breaker_sm *sm)
{
	memset(sm, 0, sizeof *sm);
}

enum breaker_state
breaker_sm_state(const struct breaker_sm *sm, long long now_ms)
{
	if (!sm->open)
		return BREAKER_CLOSED;
	return now_ms >= sm->until_ms ? BREAKER_HALF_OPEN : BREAKER_OPEN;
}

enum breaker_verdict
breaker_sm_check(struct breaker_sm *sm, long long now_ms, long long hold_ms,
    long long *wait_ms, int *trial)
{
	*wait_ms = 0;
	*trial = 0;
	switch (breaker_sm_state(sm, now_ms)) {
	case BREAKER_CLOSED: break;
	case BREAKER_OPEN:
		*wait_ms = sm->until_ms - now_ms;
		return BREAKER_REJECT_OPEN;
	case BREAKER_HALF_OPEN:
		if (sm->trial_until_ms > now_ms) {
			*wait_ms = sm->trial_until_ms - now_ms;
			return BREAKER_REJECT_TRIAL;
		}
		sm->trial_until_ms = now_ms + hold_ms;
		*trial = 1;
		break;
	}
	return BREAKER_ADMIT;
}

static void
sm_open(struct breaker_sm *sm, const struct breaker_conf *c, long long now_ms)
{
	breaker_sm_init(sm);
	sm->open = 1;
	sm->until_ms = now_ms + c->recovery_timeout_s * 1000;
}

void
breaker_sm_report(struct breaker_sm *sm, const struct breaker_conf *c,
    long long now_ms, long failed, int success, int trial)
{
	enum breaker_state st = breaker_sm_state(sm, now_ms);

	if (trial)
		sm->trial_until_ms = 0;
	switch (st) {
	case BREAKER_CLOSED:
		if (failed > 0) {
			sm->failures += failed;
			if (sm->failures >= c->failure_threshold) {
				sm_open(sm, c, now_ms);
				break;
			}
		}
		if (success)
			sm->failures = 0;
		break;
	case BREAKER_HALF_OPEN:
		/* Late reports of requests admitted before it opened say
		 * nothing about the backend now: only the trial counts. */
		if (!trial)
			break;
		if (failed > 0)
			sm_open(sm, c, now_ms);
		else if (success && ++sm->successes >= c->success_threshold)
			breaker_sm_init(sm);
		break;
	case BREAKER_OPEN: break;
	}
}

long long
breaker_exchange_ms(const struct route *route)
{
	long long ms = (long long)route->timeout_ms * (1 + route->retries);
	int i;

	/* proxy.c's backoff: 50 ms doubling, at most 1 s. */
	for (i = 1; i <= route->retries; i++)
		ms += i > 5 ? 1000 : 50LL << (i - 1);
	return ms;
}

/* ---- the step ---------------------------------------------------------- */

/* The per-process copy of one backend's breaker. */
struct breaker_entry {
	char url_hash[KEYSPACE_SHORT_HEX + 1];
	struct breaker_sm sm;
	long long synced_ms; /* when Redis last told its state (mono ms) */
};

struct breaker {
	struct breaker_entry *e; /* grows; backends come from the config */
	size_t n, cap;
	char host_hash[KEYSPACE_SHORT_HEX + 1];
	char *url;                             /* the last backend hashed */
	char url_hash[KEYSPACE_SHORT_HEX + 1]; /* and its hash */
	unsigned long seq; /* makes each request's token unique */
	struct breaker_counts counts;
	struct buf names; /* the request's three key names, NUL-separated */

	/* The request in flight (one at a time per process). */
	int active; /* plan ran: the fields below are this request's */
	size_t cur; /* its backend's entry */
	int slot;   /* in the plan, or -1 */
	int parsed; /* the check's answer was taken in */
	int from_redis;
	int cached;     /* decided by a copy Redis confirmed < 1 s ago */
	long long v[6]; /* the check's reply (breaker.lua) */
	int trial;      /* holds the half-open trial */
	int held_slot;  /* holds a bulkhead slot in Redis */
	long long hold_ms;
	char token[KEYSPACE_SHORT_HEX + 48];
	const char *argv[REPORT_ARGS];
	char num[REPORT_ARGS][NUM_LEN];
};

/*
 * /_metrics: every backend's breaker as Redis holds it (one pipelined
 * batch of HMGET; /_metrics is not on the proxied path).  A backend whose
 * record is absent is closed with 0 failures.
 */
static void
report_states(const struct config *cfg, struct store *s,
    metrics_breaker_emit emit, void *ctx)
{
	struct store_batch batch;
	struct store_cmd *cmds;
	struct buf names;
	const char **argv;
	size_t i, j, n = 0, *off;
	struct timespec ts;
	long long now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	cmds = xcalloc(cfg->n_routes + 1, sizeof *cmds);
	argv = xcalloc(6 * (cfg->n_routes + 1), sizeof *argv);
	off = xcalloc(cfg->n_routes + 1, sizeof *off);
	buf_init(&names);
	store_batch_init(&batch);
	/* One entry per distinct backend URL, in route order. */
	for (i = 0; i < cfg->n_routes; i++) {
		const char *url = cfg->routes[i].backend;
		char h[KEYSPACE_SHORT_HEX + 1];

		for (j = 0; j < i; j++)
			if (strcmp(cfg->routes[j].backend, url) == 0)
				break;
		if (j < i)
			continue;
		keyspace_short_hash(url, strlen(url), h);
		off[n] = names.len;
		if (keyspace_breaker(&names, cfg->redis.key_prefix, h) !=
		        BUF_OK ||
		    buf_putc(&names, '\0') != BUF_OK)
			goto out;
		cmds[n].script = -1;
		cmds[n].argc = 6;
		cmds[n].argv = &argv[6 * n];
		argv[6 * n] = "HMGET";
		argv[6 * n + 2] = "s";
		argv[6 * n + 3] = "u";
		argv[6 * n + 4] = "f";
		argv[6 * n + 5] = "k";
		cmds[n].nkeys = (int)i; /* the route, kept for the URL below */
		n++;
	}
	for (i = 0; i < n; i++)
		argv[6 * i + 1] = names.p + off[i];
	if (n == 0 || store_exec(s, cmds, n, &batch, NULL) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		const struct store_val *v = store_batch_reply(&batch, i);
		struct metrics_breaker b;
		long long until = 0;

		b.backend = cfg->routes[cmds[i].nkeys].backend;
		b.state = "closed";
		b.failures = 0;
		if (v->type == STORE_ARR && v->n == 4) {
			if (v->elem[1].type == STORE_STR)
				until = strtoll(v->elem[1].str, NULL, 10);
			if (v->elem[2].type == STORE_STR)
				b.failures = strtoll(v->elem[2].str, NULL, 10);
			if (v->elem[0].type == STORE_STR &&
			    strcmp(v->elem[0].str, "open") == 0)
				b.state = now >= until ? "half_open" : "open";
		}
		emit(ctx, &b);
	}
out:
	store_batch_cleanup(&batch);
	buf_cleanup(&names);
	free(off);
	free(argv);
	free(cmds);
}

static void *
breaker_create(void)
{
	struct breaker *b = xcalloc(1, sizeof *b);
	char host[256];

	/* The bulkhead is per host: processes on one host share its pool. */
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	keyspace_short_hash(host, strlen(host), b->host_hash);
	buf_init(&b->names);
	metrics_breakers_provider(report_states);
	metrics_counter_register("breaker_rejections",
	    "Requests answered 503 because a circuit breaker was open or its "
	    "trial taken.");
	metrics_counter_register("bulkhead_rejections",
	    "Requests answered 503 because a route's max_concurrent was "
	    "reached.");
	b->slot = -1;
	return b;
}

static void
breaker_destroy(void *self)
{
	struct breaker *b = self;

	if (b == NULL)
		return;
	free(b->e);
	free(b->url);
	buf_cleanup(&b->names);
	free(b);
}

void
breaker_counts(const void *self, struct breaker_counts *out)
{
	*out = ((const struct breaker *)self)->counts;
}

/* The entry of the backend whose URL hashes to h (created closed). */
static size_t
entry_for(struct breaker *b, const char *h)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->e[i].url_hash, h) == 0)
			return i;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		b->e = xrealloc(b->e, b->cap * sizeof *b->e);
	}
	memcpy(b->e[b->n].url_hash, h, KEYSPACE_SHORT_HEX + 1);
	breaker_sm_init(&b->e[b->n].sm);
	b->e[b->n].synced_ms = 0;
	return b->n++;
}

static void
request_reset(struct breaker *b)
{
	b->active = 0;
	b->slot = -1;
	b->parsed = 0;
	b->from_redis = 0;
	b->cached = 0;
	b->trial = 0;
	b->held_slot = 0;
	memset(b->v, 0, sizeof b->v);
}

static const char *
num(struct breaker *b, int i, long long v)
{
	snprintf(b->num[i], NUM_LEN, "%lld", v);
	return b->num[i];
}

/* argv[0..2] = the three key names kept in b->names. */
static void
set_keys(struct breaker *b)
{
	const char *p = b->names.p;
	int i;

	for (i = 0; i < 3; i++) {
		b->argv[i] = p;
		p += strlen(p) + 1;
	}
}

static int
build_names(struct breaker *b, const struct config *cfg, const struct route *rt,
    const char *url_hash)
{
	const char *prefix = cfg->redis.key_prefix;
	struct buf *n = &b->names;

	buf_reset(n);
	if (keyspace_breaker(n, prefix, url_hash) != BUF_OK ||
	    buf_putc(n, '\0') != BUF_OK ||
	    keyspace_breaker_lease(n, prefix, url_hash) != BUF_OK ||
	    buf_putc(n, '\0') != BUF_OK ||
	    keyspace_bulkhead(
	        n, prefix, url_hash, rt->route_id, b->host_hash) != BUF_OK)
		return -1;
	set_keys(b);
	return 0;
}

static enum step_rc
breaker_plan(void *self, struct exchange *x)
{
	struct breaker *b = self;
	const struct route *rt = x->r->route;
	struct store_cmd cmd;
	static time_t last;

	request_reset(b);
	/* Most requests go to the backend of the one before: hash it once. */
	if (b->url == NULL || strcmp(b->url, rt->backend) != 0) {
		free(b->url);
		b->url = xstrdup(rt->backend);
		keyspace_short_hash(
		    rt->backend, strlen(rt->backend), b->url_hash);
	}
	b->cur = entry_for(b, b->url_hash);
	b->active = 1;
	b->hold_ms = breaker_exchange_ms(rt);
	snprintf(b->token, sizeof b->token, "%s:%ld:%lu", b->host_hash,
	    (long)getpid(), ++b->seq);
	if (build_names(b, x->cfg, rt, b->url_hash) != 0) {
		log_ratelimited(&last, LOG_LVL_ERROR, "breaker: bad key names");
		return STEP_GO; /* decided by the process's own copy */
	}
	/*
	 * A closed breaker whose state Redis confirmed less than a second
	 * ago decides from this process's copy: the request's batch (if it
	 * has one) carries no check, and a request a rate-limit lease
	 * admitted costs no round trip at all.  Failures are still reported
	 * at once (after), and the first request after the second asks
	 * again.  A bulkhead needs Redis's count of every request.
	 */
	if (rt->max_concurrent == 0 && b->e[b->cur].synced_ms > 0 &&
	    clock_mono_ms() - b->e[b->cur].synced_ms < BREAKER_FRESH_MS &&
	    breaker_sm_state(&b->e[b->cur].sm, clock_mono_ms()) ==
	        BREAKER_CLOSED) {
		b->cached = 1;
		return STEP_GO;
	}
	b->argv[3] = "check";
	b->argv[4] = "";
	b->argv[5] = num(b, 5, b->hold_ms + LEASE_MARGIN_MS);
	b->argv[6] = num(b, 6, rt->max_concurrent);
	b->argv[7] = b->token;
	b->argv[8] = num(b, 8, b->hold_ms);
	cmd.script = STORE_SCRIPT_BREAKER;
	cmd.nkeys = 3;
	cmd.argc = CHECK_ARGS;
	cmd.argv = b->argv;
	cmd.argvlen = NULL;
	b->slot = plan_add(x->plan, &cmd);
	if (b->slot < 0)
		log_ratelimited(&last, LOG_LVL_ERROR,
		    "breaker: the request's Redis batch is full");
	return STEP_GO;
}

/* Takes the shared answer into the process's copy. */
static void
adopt(struct breaker_sm *sm, const long long v[6], long long now,
    long long hold_ms)
{
	switch (v[1]) {
	case BREAKER_CLOSED:
		breaker_sm_init(sm);
		sm->failures = (long)v[2];
		break;
	case BREAKER_OPEN:
		breaker_sm_init(sm);
		sm->open = 1;
		sm->until_ms = now + v[3];
		break;
	default: /* half-open */
		if (breaker_sm_state(sm, now) != BREAKER_HALF_OPEN) {
			breaker_sm_init(sm);
			sm->open = 1;
			sm->until_ms = now;
		}
		if (v[0] == BREAKER_REJECT_TRIAL)
			sm->trial_until_ms = now + v[3];
		else if (v[4])
			sm->trial_until_ms = now + hold_ms;
		break;
	}
}

/*
 * Reads the check's answer once (decide, or after when an earlier step
 * answered first): from Redis, or from the process's copy when Redis
 * could not answer.
 */
static void
take_answer(struct breaker *b, struct exchange *x, int deciding)
{
	struct breaker_sm *sm = &b->e[b->cur].sm;
	const struct store_val *rv = NULL;
	long long now = clock_mono_ms();
	static time_t last;
	size_t i;
	int trial;

	if (b->parsed)
		return;
	b->parsed = 1;
	if (b->slot >= 0)
		rv = plan_reply(x->plan, b->slot);
	if (rv != NULL && rv->type == STORE_ARR && rv->n == 6) {
		for (i = 0; i < 6; i++) {
			if (rv->elem[i].type != STORE_INT)
				break;
			b->v[i] = rv->elem[i].i;
		}
		if (i == 6 && b->v[0] >= BREAKER_ADMIT &&
		    b->v[0] <= BREAKER_REJECT_FULL && b->v[1] >= 0 &&
		    b->v[1] <= BREAKER_HALF_OPEN) {
			b->from_redis = 1;
			b->trial = b->v[4] != 0;
			b->held_slot = b->v[5] != 0;
			adopt(sm, b->v, now, b->hold_ms + LEASE_MARGIN_MS);
			b->e[b->cur].synced_ms = now;
			return;
		}
	}
	if (rv != NULL)
		log_ratelimited(&last, LOG_LVL_ERROR, "breaker: %s",
		    rv->type == STORE_ERR ? rv->str : "malformed reply");
	if (!deciding)
		return; /* an earlier step answered: nothing to admit */
	/* Redis could not answer (or was not asked: the copy is fresh and
	 * closed): this process's copy decides. */
	if (!b->cached)
		b->counts.local++;
	memset(b->v, 0, sizeof b->v);
	b->v[0] = breaker_sm_check(
	    sm, now, b->hold_ms + LEASE_MARGIN_MS, &b->v[3], &trial);
	b->v[1] = breaker_sm_state(sm, now);
	b->v[2] = sm->failures;
	b->trial = trial;
}

static long
retry_after_s(long long ms)
{
	long s = (long)((ms + 999) / 1000);

	return s < 1 ? 1 : s;
}

void
breaker_respond_unavailable(struct exchange *x)
{
	char v[24];

	snprintf(v, sizeof v, "%ld",
	    x->backend_unavailable > 0 ? x->backend_unavailable : 1);
	hdrs_add(&x->r->resp_headers, "Retry-After", v);
	request_respond_problem(x->r, 503, "circuit breaker open",
	    "the backend is failing; retry after the time in Retry-After", NULL,
	    NULL);
}

static enum step_rc
breaker_decide(void *self, struct exchange *x)
{
	struct breaker *b = self;

	if (!b->active)
		return STEP_GO;
	take_answer(b, x, 1);
	switch ((enum breaker_verdict)b->v[0]) {
	case BREAKER_ADMIT: break;
	case BREAKER_REJECT_OPEN:
		b->counts.open++;
		metrics_add("breaker_rejections", 1);
		x->backend_unavailable = retry_after_s(b->v[3]);
		break;
	case BREAKER_REJECT_TRIAL:
		b->counts.trial++;
		metrics_add("breaker_rejections", 1);
		x->backend_unavailable = 1;
		break;
	case BREAKER_REJECT_FULL:
		b->counts.bulkhead++;
		metrics_add("bulkhead_rejections", 1);
		hdrs_add(&x->r->resp_headers, "Retry-After", "1");
		request_respond_problem(x->r, 503,
		    "too many concurrent requests",
		    "the route has reached its limit of requests in flight",
		    NULL, NULL);
		return STEP_DONE;
	}
	return STEP_GO;
}

/* The deferred "report" call (breaker.lua): one command, never waited for. */
static void
report(struct breaker *b, struct exchange *x, long failed, int success)
{
	const struct breaker_conf *c = &x->cfg->circuit_breaker;
	struct store_cmd cmd;

	set_keys(b);
	b->argv[3] = "report";
	b->argv[4] = "";
	b->argv[5] = num(b, 5, failed);
	b->argv[6] = success ? "1" : "0";
	b->argv[7] = b->trial ? "1" : "0";
	b->argv[8] = b->held_slot ? "1" : "0";
	b->argv[9] = b->token;
	b->argv[10] = num(b, 10, c->failure_threshold);
	b->argv[11] = num(b, 11, c->success_threshold);
	b->argv[12] = num(b, 12, c->recovery_timeout_s * 1000);
	cmd.script = STORE_SCRIPT_BREAKER;
	cmd.nkeys = 3;
	cmd.argc = REPORT_ARGS;
	cmd.argv = b->argv;
	cmd.argvlen = NULL;
	b->counts.reports++;
	/* Dropped when Redis went away meanwhile: counted by the store, and
	 * the slot and lease expire on their own. */
	if (store_defer(x->store, &cmd, 1) == 0)
		store_send(x->store);
}

static void
breaker_after(void *self, struct exchange *x)
{
	struct breaker *b = self;
	const struct proxy_outcome *o = x->outcome;
	long failed = 0;
	int success = 0;

	if (!b->active)
		return;
	if (!b->parsed && !x->plan->ran) {
		/* A later step answered while planning: nothing was taken. */
		request_reset(b);
		return;
	}
	take_answer(b, x, 0);
	if (x->forwarded && o != NULL) {
		failed = o->failed_attempts;
		success =
		    o->result == PROXY_OK && o->failed_attempts < o->attempts;
	}
	breaker_sm_report(&b->e[b->cur].sm, &x->cfg->circuit_breaker,
	    clock_mono_ms(), failed, success, b->trial);
	/* A success on a closed breaker with no failures counted changes
	 * nothing: no write.  (A failure another process counts between
	 * our check and this success is then not reset: the count errs
	 * towards opening, never towards hammering.) */
	if ((b->from_redis || b->cached) &&
	    (failed > 0 || b->trial || b->held_slot ||
	        (success && b->v[1] == BREAKER_CLOSED && b->v[2] > 0)))
		report(b, x, failed, success);
	request_reset(b);
}

const struct step breaker_step = {
    .name = "breaker",
    .create = breaker_create,
    .destroy = breaker_destroy,
    .plan = breaker_plan,
    .decide = breaker_decide,
    .after = breaker_after,
};
