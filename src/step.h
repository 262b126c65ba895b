/*
 * step -- the shape every stateful pipeline step has (lighttpd's plugin
 * phases, cut down to what the gateway needs).  A step is a module with
 * its own per-process state (self) and up to four phases:
 *
 *   plan    before the request's Redis round trip: add commands to
 *           x->plan, or answer at once (a missing API key: 401);
 *   decide  after it: read its replies, answer (401, 429, a cache hit,
 *           an open breaker) or let the request go on;
 *   after   once the response has been handed to the web server
 *           (FCGX_Finish_r): work the client must not wait for (a cache
 *           store, a breaker outcome, counters), with fire-and-forget
 *           Redis writes (store_defer);
 *   rescue  when forwarding failed before anything reached the client
 *           (connect error, timeout, a failure status the step vetoed
 *           through its tap): the step may answer instead of the 502/504
 *           (the cache's stale-if-error entry);
 *   tick    at most once a second from the accept loop, also when idle
 *           (flushes);
 *   finish  before the process exits or adopts a new configuration.
 *
 * Phases return STEP_GO to let the request go on or STEP_DONE when they
 * answered it.  A process serves one request at a time, so a step keeps
 * the request's state in self between its phases.
 */
#ifndef APIGW_STEP_H
#define APIGW_STEP_H

#include <time.h>

struct config;
struct plan;
struct plugins;
struct proxy_outcome;
struct proxy_tap;
struct request;
struct store;

enum step_rc { STEP_GO = 0, STEP_DONE };

/* What a step sees of one request. */
struct exchange {
	const struct config *cfg;
	struct request *r;
	struct store *store;
	struct plan *plan;
	time_t now; /* wall clock at the start of the request */
	/* SHA-256 hex of the request's API key once the access step found a
	 * well-formed one (the key is checked by then only if the access
	 * step's decide let the request go on); NULL otherwise. */
	const char *key_hash;
	/* Set by a step's decide phase to watch the backend's response
	 * (e.g. the cache's bounded copy); NULL: none. */
	struct proxy_tap *tap;
	/* Set by the breaker's decide (breaker.h) when the backend must not
	 * be contacted: the Retry-After seconds, else 0.  A later step may
	 * still answer (the cache, with a stale entry); if none does, the
	 * pipeline answers 503 (breaker_respond_unavailable) instead of
	 * forwarding. */
	long backend_unavailable;
	/* Filled in by the forward step; forwarded == 0 when the request
	 * never reached a backend. */
	int forwarded;
	const struct proxy_outcome *outcome;
};

struct step {
	const char *name;
	void *(*create)(void);
	void (*destroy)(void *self);
	enum step_rc (*plan)(void *self, struct exchange *x);
	enum step_rc (*decide)(void *self, struct exchange *x);
	enum step_rc (*rescue)(void *self, struct exchange *x);
	void (*after)(void *self, struct exchange *x);
	void (*tick)(void *self, struct store *s, time_t now);
	/* The process is about to exit or adopt a new config: hand back
	 * what it holds (rate-limit leases), with deferred commands. */
	void (*finish)(void *self, struct store *s);
};

#endif
