/*
 * metrics -- counters for the whole pool of gateway processes, kept in
 * Redis, and the /_metrics document built from them.
 *
 * Counting costs the request nothing in Redis: the step's after phase
 * counts in process memory (a small table of named deltas), and its tick
 * phase (at most once a second, also when idle, once more at exit and
 * before a configuration reload) sends the deltas as HINCRBY commands
 * through store_defer() + store_send().  A flush is one write with no
 * reply awaited; the replies are read by the process's next round trip.
 * A process with nothing new to report sends nothing.
 *
 * Redis layout (keyspace_metric):
 *
 *	<prefix>m:counters   hash: field -> count, the sum over every process
 *	                     and host; fields below
 *	<prefix>m:routes     hash: route_id -> route prefix (display only;
 *	                     HSETNX: an id is a hash of its prefix)
 *	<prefix>m:procs:<n>  hash: "<host>:<pid>" -> flushes, for the 5 s of
 *	                     wall time n (time / 5), expiring after 30 s:
 *	                     "processes" counts the fields of this and the
 *	                     previous one
 *
 *	requests_total, requests_success (< 400), requests_failed (>= 500),
 *	requests_rate_limited (429), requests_client_error (4xx)
 *	class:<c>                  c: 1xx 2xx 3xx 4xx 5xx other (no status)
 *	route:<route_id>:<c>       per route and status class
 *	dur:<le>, dur_count, dur_sum_us      request duration histogram (non-
 *	rrt:<le>, rrt_count, rrt_sum_us      cumulative buckets; le in seconds
 *	                                     or "inf"), Redis round trips
 *	redis_errors, fail_open    from store_error_count and the access step
 *	rl:<policy>:<w>:<d>        rate-limit windows: policy key, route or
 *	                           default, w s/m/h/d, d allowed, rejected or
 *	                           shadow_rejected
 *	<name>                     a counter another module registered
 *
 * Nothing a client sends becomes a field: routes are named by their
 * configured id, so the number of fields is bounded by the configuration.
 * Internal endpoint requests (/_health, /_metrics) are not counted.
 *
 * Other modules publish through the registration API below: a counter
 * (metrics_counter_register, then metrics_add from anywhere in the
 * process), a running total they already keep (metrics_watch), a gauge
 * read when /_metrics is asked (metrics_gauge_register), and the circuit
 * breakers' states (metrics_breakers_provider).  Registrations are
 * process-wide and made once, e.g. from a step's create; names are
 * [a-z0-9_] and at most METRICS_NAME_MAX - 1 bytes.
 *
 *	metrics_counter_register("cache_stale", "Stale cache entries served.");
 *	...
 *	metrics_add("cache_stale", 1);
 */
#ifndef APIGW_METRICS_H
#define APIGW_METRICS_H

#include "step.h"

struct buf;
struct config;
struct store;

#define METRICS_NAME_MAX 48

/* The counting step: after and tick only; registered last in steps[]. */
extern const struct step metrics_step;

/*
 * Declares a counter, shown as "<name>" in the JSON document and as
 * apigw_<name>_total (a counter, with help as its HELP) in the Prometheus
 * exposition, 0 until counted.  help is borrowed for the life of the
 * process (a string literal).  Returns 0, or -1 for a malformed name or a
 * full registry.  Declaring a name again is a no-op (0).
 */
int metrics_counter_register(const char *name, const char *help);

/* Adds delta to a counter of this process (sent at the next flush).
 * Unregistered or malformed names are ignored. */
void metrics_add(const char *name, long long delta);

/*
 * Watches a running total that another module keeps (fn(arg) never
 * decreases while arg lives): at each flush the growth since the last
 * one is added to the counter name.  arg is borrowed until the metrics
 * step is destroyed (watches end with it).  Returns 0 or -1 (full).
 */
typedef unsigned long (*metrics_total_fn)(const void *arg);
int metrics_watch(const char *name, metrics_total_fn fn, const void *arg);

/*
 * A gauge read when /_metrics is asked (it may take its own Redis round
 * trip: /_metrics is not on the proxied path).  Shown as "<name>" in the
 * JSON document and as prom_name (a gauge) in the exposition; fn NULL
 * declares it with the value 0 until a module provides fn.  Strings are
 * borrowed for the life of the process.  Returns 0 or -1.
 */
typedef long long (*metrics_gauge_fn)(
    const struct config *cfg, struct store *s);
int metrics_gauge_register(const char *name, const char *prom_name,
    const char *help, metrics_gauge_fn fn);

/* One backend's circuit breaker, as the breaker module reports it. */
struct metrics_breaker {
	const char *backend; /* the backend URL */
	const char *state;   /* "closed", "open" or "half_open" */
	long long failures;
};
typedef void (*metrics_breaker_emit)(
    void *ctx, const struct metrics_breaker *b);
/*
 * Sets the function that reports every breaker (calling emit once per
 * backend; the strings need only live during the call).  Until one is
 * set, "circuit_breakers" is {}.
 */
typedef void (*metrics_breakers_fn)(const struct config *cfg, struct store *s,
    metrics_breaker_emit emit, void *ctx);
void metrics_breakers_provider(metrics_breakers_fn fn);

enum metrics_format { METRICS_JSON, METRICS_PROMETHEUS };

/*
 * Builds the /_metrics document for the whole pool into out: this
 * process's unsent counts first ride along, then the totals are read
 * back from Redis.  Returns 0, or -1 when Redis could not be read (out
 * then holds a document saying "redis": "down" / apigw_redis_up 0).
 */
int metrics_render(const struct config *cfg, struct store *s,
    enum metrics_format fmt, struct buf *out);

#endif
