/*
 * proxy -- forwards a request to its backend with libcurl and streams the
 * answer back.  The only module that includes curl.
 *
 * One CURL easy handle per process, reset and reused for every request, so
 * its connection cache keeps backend connections alive across requests.
 *
 * Attempts: the first try plus up to route->retries more, for idempotent
 * methods only, and only while nothing has reached the client.  A retry
 * follows a connect error, a timeout before the response started, or a
 * status in circuit_breaker.failure_statuses, after a growing backoff
 * (50 ms, 100 ms, 200 ms ... capped at 1 s).  The last attempt's response
 * is passed through as it is, whatever its status.
 *
 * Timeouts: route->connect_timeout_ms to connect, route->timeout_ms for the
 * whole exchange (as Envoy's route timeout).
 */
#ifndef APIGW_PROXY_H
#define APIGW_PROXY_H

#include <stddef.h>

struct config;
struct hdrs;
struct proxy;
struct request;

enum proxy_result {
	PROXY_OK = 0,         /* a response was sent to the client */
	PROXY_CONNECT_FAILED, /* nothing sent: answer 502 */
	PROXY_BAD_RESPONSE,   /* nothing sent: answer 502 */
	PROXY_TIMEOUT,        /* nothing sent: answer 504 */
	PROXY_ABORTED,        /* the response started and was cut short */
	PROXY_CLIENT_GONE,    /* the client went away; transfer stopped */
};

struct proxy_outcome {
	enum proxy_result result;
	int status; /* status sent to the client (0 if none) */
	int attempts;
	int failed_attempts; /* attempts that count as breaker failures (a
	                        failure status passed through included) */
	const char *detail;  /* static text for a gateway error */
};

/*
 * An optional observer of the response that goes to the client (for the
 * cache's bounded copy), so that proxy knows nothing of caching.  head is
 * called once, just before the head is sent (final status and the header
 * fields as forwarded; it may still add to the request's resp_headers);
 * body for every piece of the body as it is written.  A retried attempt's
 * discarded response is never shown.  head may veto a response whose
 * status is one of circuit_breaker.failure_statuses by returning 1: it is
 * then discarded like a failed attempt and the result is
 * PROXY_BAD_RESPONSE (the caller has something better to answer).
 */
struct proxy_tap {
	int (*head)(void *arg, int status, const struct hdrs *h);
	void (*body)(void *arg, const char *data, size_t len);
	void *arg;
};

/* Returns a new proxy with its CURL handle.  Never NULL. */
struct proxy *proxy_new(void);
void proxy_free(struct proxy *p);

/*
 * Forwards r (route already matched, body already read) to url, adding
 * fwd_headers (the filtered request headers) as they are.  Writes the
 * response to r unless the result is a gateway error, which the caller
 * answers.  tap (may be NULL) watches what goes to the client.  out is
 * filled in (it need not be initialized).
 */
void proxy_forward(struct proxy *p, const struct config *cfg, struct request *r,
    const char *url, const struct hdrs *fwd_headers, struct proxy_tap *tap,
    struct proxy_outcome *out);

/* Returns 1 for GET, HEAD, OPTIONS, PUT, DELETE. */
int proxy_method_idempotent(const char *method);

#endif
