/*
 * local_limit -- per-process rate limits while Redis is unreachable; the
 * contract is in local_limit.h.
 *
 * Times are microseconds, as in src/lua/ratelimit.lua, whose arithmetic
 * the fixed window and the buckets repeat: a bucket's state is the debt d,
 * L times the time until it is full again, so one request adds exactly W
 * and the capacity is B W, whatever L divides.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "local_limit.h"
#include "ratelimit.h"
#include "xalloc.h"

#define LL_SETS (LOCAL_LIMIT_ENTRIES / LOCAL_LIMIT_WAYS)
#define LL_RING (LOCAL_LIMIT_SLOTS + 1)

/* One window's state; which fields mean what depends on the algorithm. */
struct ll_window {
	long long a; /* fixed: window index; sliding: newest slot index;
	              * bucket: the instant it is full again (us) */
	long long b; /* fixed: admitted in it; bucket: remainder (< L) */
	unsigned int slot[LL_RING]; /* sliding: admitted per slot */
};

struct ll_entry {
	char id[LOCAL_LIMIT_ID_LEN]; /* "" = free */
	unsigned long long used;     /* for least recently used */
	enum rl_algorithm algorithm;
	long limit[RL_NWINDOWS], burst[RL_NWINDOWS]; /* the state is for */
	struct ll_window win[RL_NWINDOWS];
};

struct local_limit {
	struct ll_entry *table; /* LOCAL_LIMIT_ENTRIES, at first use */
	unsigned long long clock;
};

/* A window being decided. */
struct ll_eval {
	struct ll_window *w;
	enum rl_algorithm algorithm;
	long long span; /* W in us */
	long limit, burst;
	int shadow, ok;
	long long d;    /* bucket: debt; fixed: admitted; sliding: counted */
	long long wait; /* us until it would admit, when !ok */
};

struct local_limit *
local_limit_new(void)
{
	return xcalloc(1, sizeof(struct local_limit));
}

void
local_limit_free(struct local_limit *ll)
{
	if (ll == NULL)
		return;
	free(ll->table);
	free(ll);
}

long
local_limit_share(long limit, long share)
{
	long n = share > 1 ? limit / share : limit;

	if (n > LOCAL_LIMIT_MAX)
		n = LOCAL_LIMIT_MAX;
	return n < 1 ? 1 : n;
}

static long long
ll_cdiv(long long a, long long b)
{
	return (a + b - 1) / b;
}

/* The entry for id, found or taken over from the least recently used. */
static struct ll_entry *
ll_find(struct local_limit *ll, const char *id)
{
	char key[LOCAL_LIMIT_ID_LEN];
	unsigned long h = 5381;
	struct ll_entry *set, *e = NULL;
	size_t i;

	if (ll->table == NULL)
		ll->table = xcalloc(LOCAL_LIMIT_ENTRIES, sizeof *ll->table);
	/* Cut as the entry would store it, so a long id still matches. */
	strncpy(key, id, sizeof key - 1);
	key[sizeof key - 1] = '\0';
	for (i = 0; key[i] != '\0'; i++)
		h = h * 33 + (unsigned char)key[i];
	set = &ll->table[(h % LL_SETS) * LOCAL_LIMIT_WAYS];
	for (i = 0; i < LOCAL_LIMIT_WAYS; i++)
		if (keys_equal_str(set[i].id, key)) {
			e = &set[i];
			goto out;
		}
	e = &set[0];
	for (i = 1; i < LOCAL_LIMIT_WAYS; i++)
		if (set[i].used < e->used)
			e = &set[i];
	memset(e, 0, sizeof *e);
	memcpy(e->id, key, sizeof key);
out:
	e->used = ++ll->clock;
	return e;
}

/* ---- fixed_window ---- */

static void
fixed_load(struct ll_eval *v, long long now)
{
	long long k = now / v->span;

	if (v->w->a != k) {
		v->w->a = k;
		v->w->b = 0;
	}
	v->d = v->w->b;
	v->ok = v->d < v->limit;
	v->wait = (k + 1) * v->span - now;
}

static void
fixed_report(
    const struct ll_eval *v, long long now, long *remaining, long long *reset)
{
	*remaining = v->w->b < v->limit ? (long)(v->limit - v->w->b) : 0;
	*reset = (v->w->a + 1) * v->span - now;
}

/* ---- sliding_window, in slots ---- */

/* Slot j's place in the ring (j < 0 only on a clock near 0, in tests). */
static size_t
ll_ring(long long j)
{
	long long i = j % LL_RING;

	return (size_t)(i < 0 ? i + LL_RING : i);
}

/*
 * The window (now - W, now] touches the slots s - SLOTS .. s of now's slot
 * s; all of them count, so LL_RING slots are kept.
 */
static void
sliding_load(struct ll_eval *v, long long now)
{
	long long g = v->span / LOCAL_LIMIT_SLOTS, s = now / g, j, left;
	struct ll_window *w = v->w;
	int i;

	/* A clock stepped back counts at the newest slot. */
	if (s < w->a)
		s = w->a;
	if (s - w->a >= LL_RING)
		memset(w->slot, 0, sizeof w->slot);
	else
		for (j = w->a + 1; j <= s; j++)
			w->slot[ll_ring(j)] = 0;
	w->a = s;
	v->d = 0;
	for (i = 0; i < LL_RING; i++)
		v->d += w->slot[i];
	v->ok = v->d < v->limit;
	if (v->ok)
		return;
	/* Admits once the oldest slots holding d - limit + 1 have left. */
	left = v->d - v->limit + 1;
	for (j = s - LOCAL_LIMIT_SLOTS; j <= s; j++) {
		left -= w->slot[ll_ring(j)];
		if (left <= 0)
			break;
	}
	v->wait = (j + LOCAL_LIMIT_SLOTS + 1) * g - now;
	if (v->wait < 1)
		v->wait = 1;
}

static void
sliding_report(
    const struct ll_eval *v, long long now, long *remaining, long long *reset)
{
	long long g = v->span / LOCAL_LIMIT_SLOTS, j, n = 0;
	const struct ll_window *w = v->w;

	*reset = 0;
	for (j = w->a - LOCAL_LIMIT_SLOTS; j <= w->a; j++) {
		n += w->slot[ll_ring(j)];
		if (w->slot[ll_ring(j)] > 0 && *reset == 0)
			*reset = (j + LOCAL_LIMIT_SLOTS + 1) * g - now;
	}
	if (*reset < 0)
		*reset = 0;
	*remaining = n < v->limit ? (long)(v->limit - n) : 0;
}

/* ---- token_bucket and gcra ---- */

static void
bucket_load(struct ll_eval *v, long long now)
{
	long long cap = v->burst * v->span, t = v->w->a, r = v->w->b;

	v->d = 0;
	if (t > now || (t == now && r > 0))
		v->d = (t - now) * v->limit + r;
	v->ok = v->d + v->span <= cap;
	if (!v->ok)
		v->wait = ll_cdiv(v->d + v->span - cap, v->limit);
}

static void
bucket_report(
    const struct ll_eval *v, long long now, long *remaining, long long *reset)
{
	long long cap = v->burst * v->span, d = 0;

	if (v->w->a > now || (v->w->a == now && v->w->b > 0))
		d = (v->w->a - now) * v->limit + v->w->b;
	*remaining = d <= cap ? (long)((cap - d) / v->span) : 0;
	*reset = ll_cdiv(d, v->limit);
}

static int
ll_bucket(enum rl_algorithm alg)
{
	return alg == RL_TOKEN_BUCKET || alg == RL_GCRA;
}

static void
ll_load(struct ll_eval *v, long long now)
{
	switch (v->algorithm) {
	case RL_FIXED_WINDOW: fixed_load(v, now); break;
	case RL_SLIDING_WINDOW: sliding_load(v, now); break;
	case RL_TOKEN_BUCKET:
	case RL_GCRA: bucket_load(v, now); break;
	}
}

static void
ll_commit(struct ll_eval *v, long long now)
{
	long long d, q;

	switch (v->algorithm) {
	case RL_FIXED_WINDOW: v->w->b++; break;
	case RL_SLIDING_WINDOW: v->w->slot[ll_ring(v->w->a)]++; break;
	case RL_TOKEN_BUCKET:
	case RL_GCRA:
		d = v->d + v->span;
		q = d / v->limit;
		v->w->a = now + q;
		v->w->b = d - q * v->limit;
		break;
	}
}

static void
ll_report(
    const struct ll_eval *v, long long now, long *remaining, long long *reset)
{
	*remaining = 0;
	*reset = 0;
	switch (v->algorithm) {
	case RL_FIXED_WINDOW: fixed_report(v, now, remaining, reset); break;
	case RL_SLIDING_WINDOW: sliding_report(v, now, remaining, reset); break;
	case RL_TOKEN_BUCKET:
	case RL_GCRA: bucket_report(v, now, remaining, reset); break;
	}
}

/*
 * The windows of one policy into v (shortest first), their state reset
 * when the policy changed since it was written (a reload).
 */
static size_t
ll_policy(struct local_limit *ll, const struct local_policy *pol, long share,
    struct ll_eval *v)
{
	const struct rl_policy *p = pol->p;
	struct ll_entry *e = ll_find(ll, pol->id);
	long limit[RL_NWINDOWS], burst[RL_NWINDOWS];
	int w, first = 1;
	size_t n = 0;

	for (w = 0; w < RL_NWINDOWS; w++) {
		limit[w] = burst[w] = 0;
		if (p->limit[w] <= 0)
			continue;
		limit[w] = local_limit_share(p->limit[w], share);
		if (ll_bucket(pol->algorithm))
			burst[w] = local_limit_share(first && p->burst_size > 0
			        ? p->burst_size
			        : p->limit[w],
			    share);
		first = 0;
	}
	if (e->algorithm != pol->algorithm ||
	    memcmp(e->limit, limit, sizeof limit) != 0 ||
	    memcmp(e->burst, burst, sizeof burst) != 0) {
		memset(e->win, 0, sizeof e->win);
		e->algorithm = pol->algorithm;
		memcpy(e->limit, limit, sizeof limit);
		memcpy(e->burst, burst, sizeof burst);
	}
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (limit[w] == 0)
			continue;
		memset(&v[n], 0, sizeof v[n]);
		v[n].w = &e->win[w];
		v[n].algorithm = pol->algorithm;
		v[n].span = rl_window_seconds[w] * 1000000LL;
		v[n].limit = limit[w];
		v[n].burst = burst[w];
		v[n].shadow = p->shadow;
		n++;
	}
	return n;
}

int
local_limit_check(struct local_limit *ll, const struct local_policy *pol,
    size_t npol, long share, long long now_us, struct rl_result *res)
{
	struct ll_eval v[RL_MAX_WINDOWS];
	size_t n = 0, i, k, m;
	long long wait = 0, reset;
	int admitted = 1, w;

	memset(res, 0, sizeof *res);
	if (now_us < 0)
		now_us = 0;
	for (i = 0; i < npol && i < 3; i++) {
		m = ll_policy(ll, &pol[i], share, &v[n]);
		/* Fill the report's fixed fields while the policy is at hand.
		 */
		for (k = n, w = 0; k < n + m; k++) {
			struct rl_window_result *wr = &res->win[k];

			strncpy(wr->policy, pol[i].name, sizeof wr->policy - 1);
			while (pol[i].p->limit[w] <= 0)
				w++;
			wr->window = (enum rl_window)w++;
			wr->algorithm = pol[i].algorithm;
			wr->quota = v[k].limit;
			wr->burst =
			    ll_bucket(pol[i].algorithm) ? v[k].burst : 0;
			wr->shadow = v[k].shadow;
		}
		n += m;
	}

	/* Decide on every window, write nothing (as the script does). */
	for (i = 0; i < n; i++) {
		ll_load(&v[i], now_us);
		if (!v[i].ok && !v[i].shadow) {
			admitted = 0;
			if (v[i].wait > wait)
				wait = v[i].wait;
		}
	}
	/* Admitted: one unit from every window that admits on its own. */
	if (admitted)
		for (i = 0; i < n; i++)
			if (v[i].ok)
				ll_commit(&v[i], now_us);

	res->status = admitted ? RL_ADMITTED : RL_REJECTED;
	res->now_ms = now_us / 1000;
	res->retry_after_ms = admitted ? 0 : (long)ll_cdiv(wait, 1000);
	res->n = n;
	for (i = 0; i < n; i++) {
		ll_report(&v[i], now_us, &res->win[i].remaining, &reset);
		res->win[i].reset_ms = (long)ll_cdiv(reset, 1000);
		res->win[i].rejected = !v[i].ok;
	}
	return (int)res->status;
}
