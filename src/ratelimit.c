/*
 * ratelimit -- arguments for src/lua/ratelimit.lua and headers from its
 * answer; the contract is in ratelimit.h, the script's protocol at the top
 * of the script.
 *
 * Which policies apply: the key's own policy (known here
 * on a key-cache hit; found by the script itself in lookup mode), the
 * route's policy, and the default policy only when neither of the others
 * applies (a shadow policy does not count: it never rejects, so it must not
 * lift the default).  In lookup mode the script alone knows whether the key
 * has a policy, so a route without an enforcing one sends the default with
 * flag 2 ("skip if the key has its own").
 *
 * Capacity per window: token_bucket and gcra give the policy's shortest
 * window B = burst_size (0 = its limit) and its longer windows B = limit;
 * the other algorithms get 0 (the script ignores it).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "hdrs.h"
#include "keyspace.h"
#include "ratelimit.h"
#include "store.h"

/* Policy flags of the script protocol. */
#define RL_FLAG_SHADOW 1
#define RL_FLAG_UNLESS_KEY 2

#define RL_REPLY_HEAD 5 /* status, now_ms, retry_after_ms, record, n */
#define RL_REPLY_WIN 9  /* fields per window */
#define RL_RECORD_LEN 9 /* id name expires alg rps rpm rph rpd burst */

/* The argument vector while it is being built. */
struct rl_args {
	struct buf *b;
	size_t *argvlen; /* holds each argument's offset until the end */
	int max;
	int n;
	int bad; /* a key name was refused (keyspace) */
};

/* A policy on its way into the argument vector. */
struct rl_plan {
	const struct rl_policy *p;
	const char *name;
	int flags;
	enum rl_algorithm algorithm;
	int first_key; /* KEYS index (1-based) of its first window */
};

static void rl_arg(struct rl_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one NUL-terminated argument; counts past max to report it. */
static void
rl_arg(struct rl_args *a, const char *fmt, ...)
{
	va_list ap;
	char tmp[32];
	int len;

	if (a->n < a->max)
		a->argvlen[a->n] = a->b->len;
	a->n++;
	if (a->n > a->max)
		return;
	va_start(ap, fmt);
	len = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (len >= 0 && (size_t)len < sizeof tmp) {
		buf_append(a->b, tmp, (size_t)len + 1);
		return;
	}
	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	buf_reserve(a->b, (size_t)len + 1);
	va_start(ap, fmt);
	vsnprintf(a->b->p + a->b->len, (size_t)len + 1, fmt, ap);
	va_end(ap);
	a->b->len += (size_t)len + 1;
}

static int
rl_policy_nwin(const struct rl_policy *p)
{
	int w, n = 0;

	for (w = 0; w < RL_NWINDOWS; w++)
		if (p->limit[w] > 0)
			n++;
	return n;
}

static int
rl_applies(const struct rl_policy *p)
{
	return p != NULL && p->present && rl_policy_nwin(p) > 0;
}

static enum rl_algorithm
rl_policy_algorithm(const struct rl_policy *p, const struct config *cfg)
{
	if (p == &cfg->rate_limit || p->algorithm_set)
		return p->algorithm;
	return cfg->rate_limit.algorithm;
}

static int
rl_has_burst(enum rl_algorithm alg)
{
	return alg == RL_TOKEN_BUCKET || alg == RL_GCRA;
}

/*
 * Opens an argument that the caller appends to a->b itself (a Redis key
 * name from keyspace); returns the buffer, or NULL once past max.
 */
static struct buf *
rl_arg_open(struct rl_args *a)
{
	if (a->n < a->max)
		a->argvlen[a->n] = a->b->len;
	a->n++;
	return a->n > a->max ? NULL : a->b;
}

/* Closes it; rc is what keyspace answered (a bad name fails the build). */
static void
rl_arg_close(struct rl_args *a, int rc)
{
	if (rc != 0)
		a->bad = 1;
	if (a->n <= a->max)
		buf_putc(a->b, '\0');
}

/* Counter keys of one policy's windows, shortest first. */
static void
rl_plan_keys(struct rl_args *a, const char *prefix, const char *tag, char kind,
    const char *route_id, const struct rl_policy *p)
{
	struct buf *b;
	int w, rc = 0;

	for (w = 0; w < RL_NWINDOWS; w++) {
		if (p->limit[w] <= 0)
			continue;
		b = rl_arg_open(a);
		if (b == NULL)
			continue;
		switch (kind) {
		case 'k': rc = keyspace_rl_key(b, prefix, tag, w); break;
		case 'r':
			rc = keyspace_rl_route(b, prefix, tag, route_id, w);
			break;
		default: rc = keyspace_rl_default(b, prefix, tag, w); break;
		}
		rl_arg_close(a, rc);
	}
}

static void
rl_plan_argv(struct rl_args *a, const struct rl_plan *pl)
{
	const struct rl_policy *p = pl->p;
	int w, k = pl->first_key, first = 1;
	long burst;

	rl_arg(a, "%s", pl->name);
	rl_arg(a, "%d", pl->flags);
	rl_arg(a, "%s", rl_algorithm_names[pl->algorithm]);
	rl_arg(a, "%d", rl_policy_nwin(p));
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (p->limit[w] <= 0)
			continue;
		burst = 0;
		if (rl_has_burst(pl->algorithm))
			burst = (first && p->burst_size > 0) ? p->burst_size
			                                     : p->limit[w];
		first = 0;
		rl_arg(a, "%ld", rl_window_seconds[w]);
		rl_arg(a, "%ld", p->limit[w]);
		rl_arg(a, "%ld", burst);
		rl_arg(a, "%d", k++);
	}
}

/* The policies of q in the order the script evaluates them. */
static int
rl_policies(const struct rl_query *q, struct rl_plan plan[3])
{
	const struct config *cfg = q->cfg;
	const struct route *route = q->route;
	int lookup = q->lookup_key && q->key_hash != NULL;
	int nplan = 0, enforced = 0;

	/*
	 * A shadow policy does not displace the default: trying a new limit
	 * must not lift the one in force.
	 */
	if (!lookup && q->key_hash != NULL && rl_applies(q->key_policy)) {
		plan[nplan].p = q->key_policy;
		plan[nplan].name =
		    q->key_policy->name ? q->key_policy->name : "key";
		nplan++;
		enforced |= !q->key_policy->shadow;
	}
	if (rl_applies(&route->rate_limit)) {
		plan[nplan].p = &route->rate_limit;
		plan[nplan].name =
		    route->rate_limit.name ? route->rate_limit.name : "route";
		nplan++;
		enforced |= !route->rate_limit.shadow;
	}
	if (!enforced && rl_applies(&cfg->rate_limit)) {
		plan[nplan].p = &cfg->rate_limit;
		plan[nplan].name =
		    cfg->rate_limit.name ? cfg->rate_limit.name : "default";
		nplan++;
	}
	return nplan;
}

size_t
ratelimit_applicable(const struct rl_query *q, struct rl_applied out[3])
{
	struct rl_plan plan[3];
	struct rl_query nolookup = *q;
	int i, n;

	nolookup.lookup_key = 0;
	n = rl_policies(&nolookup, plan);
	for (i = 0; i < n; i++) {
		out[i].p = plan[i].p;
		out[i].name = plan[i].name;
		out[i].algorithm = rl_policy_algorithm(plan[i].p, q->cfg);
		out[i].kind = plan[i].p == q->key_policy ? 'k'
		    : plan[i].p == &q->route->rate_limit ? 'r'
		                                         : 'd';
	}
	return (size_t)n;
}

void
ratelimit_lease_params(
    const struct rl_query *q, long *max_units, long *lease_ms)
{
	struct rl_plan plan[3];
	int i, n;

	*max_units = 0;
	*lease_ms = 0;
	/* A key looked up in this call has a policy nobody knows yet. */
	if (q->lookup_key && q->key_hash != NULL)
		return;
	n = rl_policies(q, plan);
	for (i = 0; i < n; i++) {
		/* An API key's own policy follows the default group's. */
		const struct rl_policy *p = plan[i].p == q->key_policy
		    ? &q->cfg->rate_limit
		    : plan[i].p;

		if (p->lease_max_units <= 0) {
			*max_units = 0;
			return;
		}
		if (i == 0 || p->lease_max_units < *max_units)
			*max_units = p->lease_max_units;
		if (i == 0 || p->lease_ms < *lease_ms)
			*lease_ms = p->lease_ms;
	}
}

int
ratelimit_build(const struct rl_query *q, struct buf *args, const char **argv,
    size_t *argvlen, int max, int *argc)
{
	const struct config *cfg = q->cfg;
	const struct route *route = q->route;
	const char *prefix = cfg->redis.key_prefix ? cfg->redis.key_prefix : "";
	struct rl_args a = {args, argvlen, max, 0, 0};
	struct rl_plan plan[3];
	char key_tag[KEYSPACE_TAG_LEN];
	struct buf *b;
	const char *tag = q->tag;
	int lookup, nplan = 0, nkeys, i, rc = -1;
	long lease_max, lease_ms;
	size_t end;

	lookup = q->lookup_key && q->key_hash != NULL;
	if (q->key_hash != NULL) {
		if (keyspace_tag_key(key_tag, q->key_hash) == -1)
			goto out;
		if (tag == NULL)
			tag = key_tag;
	}
	/* Only a hashed identity may name a Redis key. */
	if (!keyspace_tag_ok(tag) || max < 0)
		goto out;
	buf_reset(args);

	/* Which policies, and in which order (the key's first). */
	nplan = rl_policies(q, plan);
	ratelimit_lease_params(q, &lease_max, &lease_ms);

	/* KEYS: the record, the key policy's counters, then the others. */
	if ((b = rl_arg_open(&a)) != NULL)
		rl_arg_close(&a,
		    lookup ? keyspace_key_record(b, prefix, q->key_hash)
		           : keyspace_tag_record(b, prefix, tag));
	if (lookup) {
		for (i = 0; i < RL_NWINDOWS; i++)
			if ((b = rl_arg_open(&a)) != NULL)
				rl_arg_close(&a,
				    keyspace_rl_key(
				        b, prefix, key_tag, (enum rl_window)i));
	}
	for (i = 0; i < nplan; i++) {
		const struct rl_policy *p = plan[i].p;

		plan[i].first_key = a.n + 1;
		plan[i].algorithm = rl_policy_algorithm(p, cfg);
		plan[i].flags = p->shadow ? RL_FLAG_SHADOW : 0;
		if (p == q->key_policy)
			rl_plan_keys(&a, prefix, key_tag, 'k', NULL, p);
		else if (p == &route->rate_limit)
			rl_plan_keys(&a, prefix, tag, 'r', route->route_id, p);
		else {
			if (lookup)
				plan[i].flags |= RL_FLAG_UNLESS_KEY;
			rl_plan_keys(&a, prefix, tag, 'd', NULL, p);
		}
	}
	nkeys = a.n;

	/* ARGV */
	rl_arg(&a, "%s", q->now_us ? q->now_us : "");
	rl_arg(&a, "%s", lookup ? "1" : "0");
	rl_arg(&a, "%s", rl_algorithm_names[cfg->rate_limit.algorithm]);
	rl_arg(&a, "%d", lookup ? 2 : 0);
	rl_arg(&a, "%d", nplan);
	for (i = 0; i < nplan; i++)
		rl_plan_argv(&a, &plan[i]);
	if (lease_max > 0 && q->lease_units > 0) {
		rl_arg(&a, "%ld",
		    q->lease_units < lease_max ? q->lease_units : lease_max);
		rl_arg(&a, "%ld", lease_ms);
	}

	if (a.n > max || a.bad)
		goto out;
	/* The buffer has stopped moving: turn offsets into pointers. */
	for (i = 0; i < a.n; i++) {
		end = i + 1 < a.n ? argvlen[i + 1] : args->len;
		argv[i] = args->p + argvlen[i];
		argvlen[i] = end - argvlen[i] - 1;
	}
	*argc = a.n;
	rc = nkeys;
out:
	return rc;
}

int
ratelimit_giveback(const char *const *argv, int argc, int nkeys, long units,
    long long end_us, long long granted_us, char num[3][24], const char **out,
    int max)
{
	int i;

	/* KEYS, then ARGV: now, mode, ..., lease_max, lease_ms. */
	if (argc < nkeys + 7 || argc + 1 > max || units <= 0)
		return -1;
	for (i = 0; i < argc - 2; i++)
		out[i] = argv[i];
	out[nkeys + 1] = "R";
	snprintf(num[0], 24, "%ld", units);
	snprintf(num[1], 24, "%lld", end_us);
	snprintf(num[2], 24, "%lld", granted_us);
	out[argc - 2] = num[0];
	out[argc - 1] = num[1];
	out[argc] = num[2];
	return argc + 1;
}

/* ---- parsing the reply ---- */

/* An integer reply, or a string holding exactly a decimal integer. */
static int
rl_val_ll(const struct store_val *v, long long *out)
{
	char *end;
	long long n;

	if (v->type == STORE_INT) {
		*out = v->i;
		return 0;
	}
	if (v->type != STORE_STR || v->str == NULL || v->len == 0 ||
	    v->len > 20 || strlen(v->str) != v->len)
		return -1;
	if (!(v->str[0] == '-' || (v->str[0] >= '0' && v->str[0] <= '9')))
		return -1;
	errno = 0;
	n = strtoll(v->str, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

/* As rl_val_ll, within [lo, hi], stored in a long. */
static int
rl_val_long(const struct store_val *v, long long lo, long long hi, long *out)
{
	long long n;

	if (rl_val_ll(v, &n) == -1 || n < lo || n > hi)
		return -1;
	*out = (long)n;
	return 0;
}

static int
rl_val_str(const struct store_val *v, const char **s, size_t *len)
{
	if (v->type != STORE_STR || v->str == NULL || strlen(v->str) != v->len)
		return -1;
	*s = v->str;
	*len = v->len;
	return 0;
}

static int
rl_parse_record(const struct store_val *v, struct rl_key_record *r)
{
	const char *s;
	size_t len;
	long n;
	int w, rc = -1;

	if (v->type != STORE_ARR || v->n != RL_RECORD_LEN || v->elem == NULL)
		goto out;
	if (rl_val_str(&v->elem[0], &s, &len) == -1 || len >= sizeof r->id)
		goto out;
	memcpy(r->id, s, len + 1);
	if (rl_val_str(&v->elem[1], &s, &len) == -1)
		goto out;
	/* The name is for display: a long one is cut, not refused. */
	if (len >= sizeof r->name)
		len = sizeof r->name - 1;
	memcpy(r->name, s, len);
	r->name[len] = '\0';
	if (rl_val_ll(&v->elem[2], &r->expires) == -1 || r->expires < 0)
		goto out;
	if (rl_val_str(&v->elem[3], &s, &len) == -1)
		goto out;
	/* An unknown or empty alg means the default's, as in the script. */
	r->policy.algorithm_set =
	    len > 0 && rl_algorithm_parse(s, &r->policy.algorithm) == 0;
	if (!r->policy.algorithm_set)
		r->policy.algorithm = RL_SLIDING_WINDOW;
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (rl_val_long(&v->elem[4 + w], 0, LONG_MAX, &n) == -1)
			goto out;
		r->policy.limit[w] = n;
		if (n > 0)
			r->policy.present = 1;
	}
	if (rl_val_long(&v->elem[8], 0, LONG_MAX, &r->policy.burst_size) == -1)
		goto out;
	rc = 0;
out:
	return rc;
}

static int
rl_parse_window(const struct store_val *v, struct rl_window_result *wr)
{
	const char *s;
	size_t len;
	long n;
	int w, rc = -1;

	if (rl_val_str(&v[0], &s, &len) == -1 || len == 0)
		goto out;
	/* A name too long for the struct is cut (config bounds it anyway). */
	if (len >= sizeof wr->policy)
		len = sizeof wr->policy - 1;
	memcpy(wr->policy, s, len);
	wr->policy[len] = '\0';
	if (rl_val_long(&v[1], 1, LONG_MAX, &n) == -1)
		goto out;
	for (w = 0; w < RL_NWINDOWS; w++)
		if (rl_window_seconds[w] == n)
			break;
	if (w == RL_NWINDOWS)
		goto out;
	wr->window = (enum rl_window)w;
	if (rl_val_str(&v[2], &s, &len) == -1 ||
	    rl_algorithm_parse(s, &wr->algorithm) == -1)
		goto out;
	if (rl_val_long(&v[3], 1, LONG_MAX, &wr->quota) == -1 ||
	    rl_val_long(&v[4], 0, LONG_MAX, &wr->burst) == -1 ||
	    rl_val_long(&v[5], 0, LONG_MAX, &wr->remaining) == -1 ||
	    rl_val_long(&v[6], 0, LONG_MAX, &wr->reset_ms) == -1)
		goto out;
	if (rl_val_long(&v[7], 0, 1, &n) == -1)
		goto out;
	wr->shadow = (int)n;
	if (rl_val_long(&v[8], 0, 1, &n) == -1)
		goto out;
	wr->rejected = (int)n;
	rc = 0;
out:
	return rc;
}

int
ratelimit_parse(const struct store_val *reply, struct rl_result *out)
{
	const struct store_val *e;
	long long now_ms;
	long n;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (reply == NULL || reply->type != STORE_ARR ||
	    reply->n < RL_REPLY_HEAD || reply->elem == NULL)
		goto out;
	e = reply->elem;
	if (rl_val_long(&e[0], RL_ADMITTED, RL_KEY_EXPIRED, &n) == -1)
		goto out;
	out->status = (enum rl_status)n;
	if (rl_val_ll(&e[1], &now_ms) == -1 || now_ms < 0)
		goto out;
	out->now_ms = now_ms;
	if (rl_val_long(&e[2], 0, LONG_MAX, &out->retry_after_ms) == -1)
		goto out;
	if (e[3].type != STORE_ARR)
		goto out;
	if (e[3].n > 0) {
		if (rl_parse_record(&e[3], &out->record) == -1)
			goto out;
		out->have_record = 1;
	}
	if (out->status == RL_KEY_UNKNOWN && out->have_record)
		goto out;
	if (rl_val_long(&e[4], 0, RL_MAX_WINDOWS, &n) == -1)
		goto out;
	/* Four more fields when a lease was asked for. */
	if (reply->n == RL_REPLY_HEAD + (size_t)n * RL_REPLY_WIN + 4) {
		const struct store_val *l =
		    &e[RL_REPLY_HEAD + (size_t)n * RL_REPLY_WIN];

		if (rl_val_long(&l[0], 0, 1000000, &out->lease_units) == -1 ||
		    rl_val_ll(&l[1], &out->lease_until_ms) == -1 ||
		    rl_val_ll(&l[2], &out->lease_end_us) == -1 ||
		    rl_val_ll(&l[3], &out->lease_granted_us) == -1)
			goto out;
	} else if (reply->n != RL_REPLY_HEAD + (size_t)n * RL_REPLY_WIN)
		goto out;
	if (n > 0 && out->status >= RL_KEY_UNKNOWN)
		goto out;
	for (i = 0; i < (size_t)n; i++)
		if (rl_parse_window(&e[RL_REPLY_HEAD + i * RL_REPLY_WIN],
		        &out->win[i]) == -1)
			goto out;
	out->n = (size_t)n;
	rc = 0;
out:
	if (rc == -1) {
		ratelimit_result_cleanup(out);
		memset(out, 0, sizeof *out);
	}
	return rc;
}

void
ratelimit_result_cleanup(struct rl_result *res)
{
	free(res->record.policy.name);
	res->record.policy.name = NULL;
}

/* ---- headers ---- */

/*
 * a / b rounded up, for a >= 0 and b > 0.  Not (a + b - 1) / b: the parser
 * accepts any long, and a near LONG_MAX would overflow.
 */
static long
rl_ceil_div(long long a, long long b)
{
	return (long)(a / b + (a % b != 0));
}

/* Appends the window's name as the inside of a Structured Field string. */
static void
rl_sf_name(struct buf *b, const struct rl_window_result *wr)
{
	const unsigned char *s;

	for (s = (const unsigned char *)wr->policy; *s != '\0'; s++) {
		if (*s < 0x20 || *s > 0x7e)
			continue;
		if (*s == '"' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, (char)*s);
	}
	buf_printf(b, "-%s", rl_window_names[wr->window]);
}

/* Is a more binding than b for X-RateLimit-*? */
static int
rl_tighter(const struct rl_window_result *a, const struct rl_window_result *b)
{
	if (a->remaining != b->remaining)
		return a->remaining < b->remaining;
	if (a->shadow != b->shadow)
		return !a->shadow;
	return a->reset_ms > b->reset_ms;
}

void
ratelimit_headers(const struct rl_result *res, struct hdrs *h)
{
	const struct rl_window_result *wr, *min;
	struct buf pol, cur;
	char num[32];
	size_t i;

	if (res->n == 0)
		return;
	buf_init(&pol);
	buf_init(&cur);
	min = &res->win[0];
	for (i = 0; i < res->n; i++) {
		wr = &res->win[i];
		if (rl_tighter(wr, min))
			min = wr;
		if (i > 0) {
			buf_puts(&pol, ", ");
			buf_puts(&cur, ", ");
		}
		buf_putc(&pol, '"');
		rl_sf_name(&pol, wr);
		buf_printf(&pol, "\";q=%ld;w=%ld", wr->quota,
		    rl_window_seconds[wr->window]);
		if (rl_has_burst(wr->algorithm))
			buf_printf(&pol, ";apigw-burst=%ld", wr->burst);
		buf_putc(&cur, '"');
		rl_sf_name(&cur, wr);
		buf_printf(&cur, "\";r=%ld;t=%ld", wr->remaining,
		    rl_ceil_div(wr->reset_ms, 1000));
	}

	snprintf(num, sizeof num, "%ld",
	    rl_has_burst(min->algorithm) ? min->burst : min->quota);
	hdrs_add(h, "X-RateLimit-Limit", num);
	snprintf(num, sizeof num, "%ld", min->remaining);
	hdrs_add(h, "X-RateLimit-Remaining", num);
	/* Seconds rounded up, summed per part so that nothing overflows. */
	snprintf(num, sizeof num, "%lld",
	    res->now_ms / 1000 + min->reset_ms / 1000 +
	        rl_ceil_div(res->now_ms % 1000 + min->reset_ms % 1000, 1000));
	hdrs_add(h, "X-RateLimit-Reset", num);
	hdrs_add(h, "RateLimit-Policy", buf_cstr(&pol));
	hdrs_add(h, "RateLimit", buf_cstr(&cur));
	if (res->status == RL_REJECTED) {
		long s = rl_ceil_div(res->retry_after_ms, 1000);

		snprintf(num, sizeof num, "%ld", s < 1 ? 1 : s);
		hdrs_add(h, "Retry-After", num);
	}
	buf_cleanup(&pol);
	buf_cleanup(&cur);
}

void
ratelimit_violated_json(const struct rl_result *res, struct buf *out)
{
	const struct rl_window_result *wr;
	struct buf name;
	size_t i;
	int first = 1;

	buf_init(&name);
	buf_putc(out, '[');
	for (i = 0; i < res->n; i++) {
		wr = &res->win[i];
		if (!wr->rejected || wr->shadow)
			continue;
		buf_reset(&name);
		buf_printf(
		    &name, "%s-%s", wr->policy, rl_window_names[wr->window]);
		buf_puts(out, first ? "\"" : ", \"");
		buf_json_escape(out, buf_cstr(&name));
		buf_putc(out, '"');
		first = 0;
	}
	buf_putc(out, ']');
	buf_cleanup(&name);
}
