/*
 * breaker -- pipeline step 8: one circuit breaker per backend URL, and
 * the bulkhead (a route's max_concurrent on one host), shared by every
 * process and host through Redis.
 *
 * States (circuit_breaker section of the config):
 *
 *	closed --failure_threshold consecutive failures--> open
 *	open   --recovery_timeout_s passed--------------> half-open
 *	half-open: one trial request at a time (a lease that expires after
 *	    the route's whole exchange can last, plus a second, so a trial
 *	    whose process died or hung cannot wedge it);
 *	    a failed trial -> open again; success_threshold successful
 *	    trials in a row -> closed
 *
 * A failure is a failed backend attempt (proxy_outcome.failed_attempts:
 * connect errors, timeouts, bad or cut responses, failure_statuses): each
 * failed attempt of a retried request counts; an exchange whose last
 * attempt succeeded resets the count.  Requests the gateway answered
 * itself (401, 429, 503, a cache hit) never reach the breaker.
 *
 * Shared state: src/lua/breaker.lua does every transition atomically on
 * the Redis clock.  plan adds one "check" call to the request's batch
 * (it also takes the trial lease when half-open and a bulkhead slot);
 * after reports the outcome with one deferred write (store_defer, never
 * waited for), and only when there is something to say: a healthy
 * backend's successes cost no write unless failures were counted before.
 * Nothing initialises the shared state (absent = closed), so a process
 * that starts never resets a breaker other processes opened.
 *
 * Open or half-open with the trial taken, decide does not answer: it sets
 * x->backend_unavailable (the Retry-After seconds: until half-open, or 1)
 * and lets the later steps run, so that one of them (the cache, with a
 * stale entry) may still answer.  If none does, the pipeline calls
 * breaker_respond_unavailable() instead of forwarding: 503 problem+json,
 * error "circuit breaker open", with Retry-After.  A full bulkhead is
 * answered at once: 503, error "too many concurrent requests",
 * Retry-After: 1.
 *
 * Redis unreachable: each breaker falls back to this process's own copy
 * (struct breaker_sm): the last state Redis reported (an open breaker
 * stays open), then driven by this process's own outcomes with the same
 * thresholds; the next reply from Redis replaces it.  The bulkhead then
 * counts only this process's requests, and a process serves one request
 * at a time: no bound beyond one per process.
 */
#ifndef APIGW_BREAKER_H
#define APIGW_BREAKER_H

#include "step.h"

struct breaker_conf;
struct route;

extern const struct step breaker_step;

/* ---- the state machine of one breaker (pure; the per-process copy) ---- */

enum breaker_state {
	BREAKER_CLOSED = 0,
	BREAKER_OPEN = 1,
	BREAKER_HALF_OPEN = 2, /* derived: open and until_ms reached */
};

enum breaker_verdict {
	BREAKER_ADMIT = 0,
	BREAKER_REJECT_OPEN = 1,  /* open: retry when it turns half-open */
	BREAKER_REJECT_TRIAL = 2, /* half-open, the trial is taken */
	BREAKER_REJECT_FULL = 3,  /* bulkhead: max_concurrent reached */
};

/* All times are milliseconds on the caller's clock. */
struct breaker_sm {
	int open;           /* opened (half-open once until_ms is reached) */
	long long until_ms; /* open: when it turns half-open */
	long failures;      /* closed: consecutive failed attempts */
	long successes;     /* half-open: consecutive successful trials */
	long long trial_until_ms; /* half-open: the trial lease's end */
};

/* Closed, no failures (what an absent Redis record means). */
void breaker_sm_init(struct breaker_sm *sm);
enum breaker_state breaker_sm_state(
    const struct breaker_sm *sm, long long now_ms);
/*
 * Admission at now_ms.  Open: BREAKER_REJECT_OPEN, *wait_ms the time left
 * until half-open.  Half-open: the first caller gets BREAKER_ADMIT with
 * *trial = 1 and holds the trial for hold_ms (until it reports); others
 * BREAKER_REJECT_TRIAL with *wait_ms the lease's time left.  Closed:
 * BREAKER_ADMIT.  wait_ms and trial may not be NULL.
 */
enum breaker_verdict breaker_sm_check(struct breaker_sm *sm, long long now_ms,
    long long hold_ms, long long *wait_ms, int *trial);
/*
 * An outcome at now_ms: failed attempts, whether the last attempt
 * succeeded, whether the request held the trial.  Follows breaker.lua's
 * "report" exactly (see there).
 */
void breaker_sm_report(struct breaker_sm *sm, const struct breaker_conf *c,
    long long now_ms, long failed, int success, int trial);

/*
 * The longest a forwarded request of route can take (every attempt's
 * timeout_ms and the backoffs between them): how long a bulkhead slot
 * lasts.  The trial lease lasts one second more.
 */
long long breaker_exchange_ms(const struct route *route);

/* ---- the step ---------------------------------------------------------- */

/*
 * Answers x->r with the 503 for x->backend_unavailable (Retry-After
 * seconds): for the pipeline, when no step rescued the request.
 */
void breaker_respond_unavailable(struct exchange *x);

/* Rejections since the process started (for metrics). */
struct breaker_counts {
	unsigned long open;     /* kept from the backend: breaker open */
	unsigned long trial;    /* kept from it: half-open, trial taken */
	unsigned long bulkhead; /* 503: max_concurrent reached */
	unsigned long local; /* decided by the per-process copy (Redis down) */
	unsigned long reports; /* outcome reports sent (deferred writes) */
};

/* Copies the counts of the breaker step's state self into *out. */
void breaker_counts(const void *self, struct breaker_counts *out);

#endif
