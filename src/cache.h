/*
 * cache -- the shared response cache as a pipeline step (pipeline steps 7
 * and 10), on top of the rules in cache_policy.h and the Redis layout in
 * keyspace.h.
 *
 * plan: a GET or HEAD on a route with cache_ttl_s > 0 adds one call of
 * src/lua/cache.lua to the request's Redis batch (next to the rate-limit
 * script: still one round trip).  The script finds the resource's Vary
 * names, the variant the request selects, the entry, and on a miss takes
 * the variant's fill lock.
 * decide (after authentication and rate limiting: a hit is a request like
 * any other):
 *   fresh entry    -> answered from Redis: stored status, headers and
 *                     body, Age, X-Cache: HIT, Cache-Status: apigw; hit;
 *                     HEAD gets the head only;
 *   miss, lock     -> forwarded; the response streams to the client while
 *                     a copy bounded by cache.max_object_bytes is kept;
 *   miss, no lock  -> another process is fetching it: wait for its entry
 *                     (polling, up to 1 s or the route's timeout_ms if
 *                     shorter), then serve it, or forward without storing;
 *   Redis down     -> forwarded, X-Cache: BYPASS (never an error).
 * A request with Cache-Control: no-cache skips the lookup and refreshes
 * the entry; no-store bypasses the cache entirely.
 * rescue: when the backend fails (connect error, timeout, a failure
 * status), an entry expired no longer ago than the route's
 * cache_stale_if_error_s is served (Cache-Status: apigw; hit;
 * detail=stale).
 * after: a complete, storable response (cache_storable) is written with
 * deferred commands (no round trip, never waited for), with the indexes
 * that keep the live count and make purges cheap; the lock is released.
 */
#ifndef APIGW_CACHE_H
#define APIGW_CACHE_H

#include "step.h"

extern const struct step cache_step;

/* In-process counts since the process started (for metrics). */
struct cache_counts {
	unsigned long hits, stale_hits, misses, bypasses;
	unsigned long stores, store_drops; /* written; refused or dropped */
	unsigned long lock_waits;          /* misses that waited for a fill */
};
void cache_get_counts(const void *self, struct cache_counts *out);

#endif
