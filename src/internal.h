/*
 * internal -- the gateway's own endpoints (pipeline step 1), answered only
 * for clients in gateway.internal_allow (the address as resolved through
 * trusted proxies) and matched on the normalized path; for anyone else
 * they are ordinary paths that go through routing.
 *
 *   GET /_health  200 {"status":"ok","redis":"up",...}, or 503 with
 *                 "redis":"down" when Redis does not answer a PING.
 *   GET /_metrics 200 the pool's counters as JSON (metrics.h), or as
 *                 Prometheus text with ?format=prometheus or an Accept
 *                 naming text/plain; 503 (same document, "redis":"down")
 *                 when Redis cannot be read.
 *   GET /_status  200 an HTML page polling /_metrics (status.h).
 */
#ifndef APIGW_INTERNAL_H
#define APIGW_INTERNAL_H

struct config;
struct request;
struct store;

/* Returns 1 when r names an internal endpoint and its client may use it
 * (so that counting can leave such requests out). */
int internal_is_endpoint(const struct config *cfg, const struct request *r);

/* Returns 1 when r was an internal endpoint and has been answered. */
int internal_respond_or_continue(
    const struct config *cfg, struct store *store, struct request *r);

#endif
