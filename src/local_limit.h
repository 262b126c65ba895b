/*
 * local_limit -- rate limits a process enforces alone, in its own memory,
 * while Redis is unreachable and redis.on_failure is "local".  Pure code:
 * the caller passes the clock.
 *
 * Each process then applies every applicable policy with every window's
 * limit (and bucket capacity) divided by redis.local_share, the number of
 * processes expected to share the load, at least 1 each:
 *
 *	route policy 60/min, local_share 4: each process admits 15 a minute,
 *	so the pool of 4 admits at most 60 however the clients spread.
 *
 * A client whose requests all reach one process gets only its share; one
 * spread over more processes than local_share expects gets more than the
 * limit.  That is the price of deciding without Redis: the outage neither
 * opens the gates nor closes the service.
 *
 * The four algorithms follow src/lua/ratelimit.lua, each window on its own
 * state, with one difference: sliding_window counts admissions in
 * LOCAL_LIMIT_SLOTS slots per window instead of a log of timestamps, and
 * counts a slot as long as any part of it is inside the window, so it
 * never admits more than the limit in any interval of the window's length;
 * capacity comes back up to 1/LOCAL_LIMIT_SLOTS of the window late.
 *
 * Memory is bounded: LOCAL_LIMIT_ENTRIES counters (one per identity and
 * policy, each with its four windows, about 400 bytes), allocated at the
 * first use (the first outage), kept in sets of LOCAL_LIMIT_WAYS where the
 * least recently used gives way.  An identity that gives way starts again
 * with a full allowance, so beyond that many active identities per process
 * the local limits are approximate.  Limits above LOCAL_LIMIT_MAX (per
 * process) are cut to it so the arithmetic stays in a long long.
 */
#ifndef APIGW_LOCAL_LIMIT_H
#define APIGW_LOCAL_LIMIT_H

#include <stddef.h>

#include "config.h"

struct rl_result;
struct local_limit;

#define LOCAL_LIMIT_ENTRIES 1024
#define LOCAL_LIMIT_WAYS 4
#define LOCAL_LIMIT_SLOTS 20
#define LOCAL_LIMIT_ID_LEN 112
#define LOCAL_LIMIT_MAX 100000000L

/* One applicable policy, as the caller found it. */
struct local_policy {
	const char *id;   /* whose counters: identity and policy, e.g.
	                   * "r <tag> <route_id>"; cut at ID_LEN - 1 bytes */
	const char *name; /* for the headers, e.g. "route" */
	enum rl_algorithm algorithm;
	const struct rl_policy *p; /* limits, burst_size, shadow */
};

/* Returns a new, empty limiter (no table yet); free with local_limit_free. */
struct local_limit *local_limit_new(void);
void local_limit_free(struct local_limit *ll);

/* A window's share: max(1, min(limit / share, LOCAL_LIMIT_MAX)). */
long local_limit_share(long limit, long share);

/*
 * Decides one request at now_us (Unix time in microseconds) under the
 * npol policies (at most 3): admitted iff no window of a policy that is not
 * shadow rejects; then one unit is taken from every window that admits.
 * Fills res as ratelimit_parse would (status RL_ADMITTED or RL_REJECTED,
 * now_ms, retry_after_ms, one entry per window with the local quota), so
 * ratelimit_headers can describe the decision; res owns nothing.
 * Returns res->status.
 */
int local_limit_check(struct local_limit *ll, const struct local_policy *pol,
    size_t npol, long share, long long now_us, struct rl_result *res);

#endif
