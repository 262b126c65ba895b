/*
 * gateway -- the request pipeline and the per-process
 * state it uses (config, Redis connection, CURL handle, key cache, access
 * log).  main.c accepts requests and hands each to gateway_handle().
 *
 * Steps, each of which may answer and end the request:
 *   1 internal endpoints (/_health) for internal_allow clients
 *   2 path normalization            (400)
 *   3 route match and method check  (404, 405)
 *   4 middleware: CORS, plugins     (204 preflight)
 *   5 authentication  \  steps that plan into one Redis batch, one
 *   6 rate limiting   /  round trip, then decide (401, 429, 503);
 *                        the cache lookup and circuit breaker join them
 *   9 forward and stream            (413, 502, 504)
 * and the access log line for every request.
 */
#ifndef APIGW_GATEWAY_H
#define APIGW_GATEWAY_H

struct config;
struct gateway;
struct request;

/*
 * Takes ownership of cfg (freed on failure too) and loads its plugins.
 * Returns NULL with *err set (owned, free it) when a plugin cannot be
 * loaded: a worker without its configured plugins must not serve.
 */
struct gateway *gateway_new(struct config *cfg, char **err);
void gateway_free(struct gateway *gw);

/* Runs the pipeline for r, up to a complete response. */
void gateway_handle(struct gateway *gw, struct request *r);

/*
 * The after phase: called once the response has been handed to the web
 * server (after FCGX_Finish_r), before r is released.  Runs the steps'
 * after work and writes the access log line; the client never waits for
 * it.
 */
void gateway_after(struct gateway *gw, struct request *r);

/*
 * Periodic work (flushes), at most once a second unless force is set;
 * main.c calls it between requests and when idle.
 */
void gateway_tick(struct gateway *gw, int force);

/*
 * Between requests: when the config file changed (checked at most once a
 * second) or force is set, loads it and its plugins and swaps them in if
 * valid; an invalid file or a plugin that fails to load is logged and the
 * old config and plugins stay.  Returns 1 if swapped.
 */
int gateway_maybe_reload(struct gateway *gw, int force);

#endif
