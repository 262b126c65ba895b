/*
 * access -- pipeline steps 5 and 6 as one step: the API key check and the
 * rate limits, decided by one script call (ratelimit.lua) in the request's
 * Redis batch.
 *
 * plan: on require_auth routes, finds the key (missing, twice or malformed:
 * 401 at once), takes its record from the process's key cache when fresh
 * (expired: 401), and adds the script call with the key's hash (the script
 * fetches the record itself on a cache miss, so a miss costs no extra
 * round trip) or the client's hashed address as the identity.
 * decide: unknown, revoked or expired key: 401; rejected: 429 with the
 * rate-limit headers and the violated policies; admitted: the headers,
 * X-Consumer-* for the backend.  Redis down: an uncached key gets 503
 * (authentication never fails open), otherwise redis.on_failure: "closed"
 * 503, "open" lets the request through (counted), "local" has this process
 * decide alone with every limit divided by redis.local_share
 * (local_limit.h), with the same headers and 429 as Redis's answer.  The
 * next request that reaches Redis is decided by Redis again.
 *
 * Leases: when every applicable policy has lease_max_units > 0, the script
 * may grant this process k more units with an admission; the next k
 * requests of the same identity and route are then admitted here, without
 * a round trip, until the lease ends (lease_ms at most, and never after
 * the cached key record it was granted with expires).
 */
#ifndef APIGW_ACCESS_H
#define APIGW_ACCESS_H

#include "step.h"

extern const struct step access_step;

/* Requests let through unlimited because Redis was down (on_failure open). */
unsigned long access_bypassed_count(const void *self);
/* Requests admitted from a rate-limit lease, without a round trip. */
unsigned long access_leased_count(const void *self);
/* Requests decided by this process alone, Redis down (on_failure local). */
unsigned long access_local_count(const void *self);

#endif
