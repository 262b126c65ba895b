/*
 * gateway.c -- the request pipeline: the order of the steps, and the
 * per-process state they share.  The steps themselves live in their own
 * modules; those that need Redis follow step.h (plan into the request's
 * one batch, decide from their replies, work after the response).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "breaker.h"
#include "buf.h"
#include "cache.h"
#include "client.h"
#include "config.h"
#include "forward.h"
#include "gateway.h"
#include "hdrs.h"
#include "internal.h"
#include "log.h"
#include "metrics.h"
#include "mw.h"
#include "normalize.h"
#include "plan.h"
#include "plugin.h"
#include "proxy.h"
#include "request.h"
#include "router.h"
#include "step.h"
#include "store.h"
#include "xalloc.h"

/*
 * The steps that take part in the request's Redis round trip, in pipeline
 * order (auth and rate limit; the cache lookup and the circuit breaker join
 * here).  Each plans, then each decides, then each works after the
 * response.
 */
static const struct step *const steps[] = {
    &access_step, &breaker_step,
    &cache_step,   /* after the breaker: may stand in for an open one */
    &metrics_step, /* last: counts what the others decided */
};
#define NSTEPS (sizeof steps / sizeof steps[0])

struct gateway {
	struct config *cfg;
	struct store *store;
	struct proxy *proxy;
	struct access_log *alog;
	struct plugins *plugins; /* loaded for cfg; freed before it */
	struct client_ids ids;
	void *self[NSTEPS]; /* each step's state */
	time_t last_tick;

	/* The request in flight, kept for the after phase. */
	struct plan plan;
	struct exchange x;
	struct proxy_outcome outcome;
	double ms; /* duration until the response was complete */

	/* Scratch space reused by every request. */
	struct buf scratch;
	struct buf url;
	struct hdrs fwd;
};

/* Every step hands back what it holds (before exit or reload). */
static void
gateway_finish(struct gateway *gw)
{
	size_t i;

	for (i = 0; i < NSTEPS; i++)
		if (steps[i]->finish != NULL)
			steps[i]->finish(gw->self[i], gw->store);
}

struct gateway *
gateway_new(struct config *cfg, char **err)
{
	struct gateway *gw;
	struct plugins *ps;
	size_t i;

	/* First, so that a worker that cannot serve as configured exits
	 * before it opened anything. */
	ps = plugins_load(cfg, err);
	if (ps == NULL) {
		config_free(cfg);
		return NULL;
	}
	gw = xcalloc(1, sizeof *gw);
	gw->cfg = cfg;
	gw->plugins = ps;
	gw->store = store_new(cfg);
	gw->proxy = proxy_new();
	gw->alog = access_log_open(cfg);
	client_ids_seed(&gw->ids);
	for (i = 0; i < NSTEPS; i++)
		gw->self[i] = steps[i]->create();
	/* metrics: the requests the access step (steps[0]) let through
	 * unlimited. */
	metrics_watch("fail_open", access_bypassed_count, gw->self[0]);
	metrics_counter_register("local_decisions",
	    "Rate-limit decisions made by a process alone (Redis down, "
	    "on_failure local).");
	metrics_watch("local_decisions", access_local_count, gw->self[0]);
	metrics_counter_register("leased",
	    "Requests admitted from a rate-limit lease (no Redis round trip).");
	metrics_watch("leased", access_leased_count, gw->self[0]);
	plan_init(&gw->plan);
	buf_init(&gw->scratch);
	buf_init(&gw->url);
	hdrs_init(&gw->fwd);
	gw->last_tick = time(NULL);
	log_set_level((enum log_level)cfg->log.level);
	return gw;
}

void
gateway_free(struct gateway *gw)
{
	size_t i;

	if (gw == NULL)
		return;
	gateway_finish(gw);
	gateway_tick(gw, 1);    /* last flush */
	store_flush(gw->store); /* and wait for it: the exit drops the rest */
	for (i = 0; i < NSTEPS; i++)
		steps[i]->destroy(gw->self[i]);
	plan_cleanup(&gw->plan);
	store_free(gw->store);
	proxy_free(gw->proxy);
	access_log_close(gw->alog);
	buf_cleanup(&gw->scratch);
	buf_cleanup(&gw->url);
	hdrs_cleanup(&gw->fwd);
	plugins_free(gw->plugins); /* they may read gw->cfg until fini */
	config_free(gw->cfg);
	free(gw);
}

int
gateway_maybe_reload(struct gateway *gw, int force)
{
	struct config_errors errs = {NULL, 0};
	struct config *ncfg;
	struct access_log *nlog;
	struct plugins *nplugins;
	char *err = NULL;
	size_t i;

	/* config_changed() also remembers a file it found broken, so a bad
	 * edit is reported once, not once a second. */
	if (!force && !config_changed(gw->cfg, time(NULL)))
		return 0;
	ncfg = config_load(gw->cfg->path, &errs);
	if (ncfg == NULL) {
		for (i = 0; i < errs.n; i++)
			log_error("reload: %s", errs.msg[i]);
		log_error("reload: keeping the previous configuration");
		config_errors_cleanup(&errs);
		return 0;
	}
	nlog = access_log_open(ncfg);
	if (nlog == NULL) {
		log_error("reload: keeping the previous configuration");
		config_free(ncfg);
		return 0;
	}
	/* The new plugins load while the old ones are still in force, so a
	 * plugin that fails keeps the old set serving. */
	nplugins = plugins_load(ncfg, &err);
	if (nplugins == NULL) {
		log_error("reload: %s", err);
		log_error("reload: keeping the previous configuration");
		free(err);
		access_log_close(nlog);
		config_refuse(ncfg); /* not again until the file changes */
		config_free(ncfg);
		return 0;
	}
	/* What was counted under the old config goes out under its names
	 * (key prefix, Redis) before they change. */
	gateway_finish(gw);
	gateway_tick(gw, 1);
	store_flush(gw->store);
	access_log_close(gw->alog);
	gw->alog = nlog;
	plugins_free(gw->plugins);
	gw->plugins = nplugins;
	store_reconfigure(gw->store, ncfg);
	config_free(gw->cfg);
	gw->cfg = ncfg;
	log_set_level((enum log_level)ncfg->log.level);
	log_info("configuration reloaded from %s", ncfg->path);
	return 1;
}

/* ---- the pipeline ------------------------------------------------------- */

static void
assign_request_id(struct gateway *gw, struct request *r)
{
	const char *name = gw->cfg->gateway.request_id_header;
	const char *v = request_header(r, name);

	if (v != NULL && hdrs_count(&r->headers, name) == 1 &&
	    client_request_id_ok(v))
		snprintf(r->request_id, sizeof r->request_id, "%s", v);
	else
		client_request_id_new(
		    &gw->ids, r->request_id, sizeof r->request_id);
	hdrs_add(&r->resp_headers, name, r->request_id);
}

/*
 * Returns the name of a header field the gateway decides on that arrived
 * more than once with different values, or NULL (lighttpd passes a body's
 * Content-Length both as CONTENT_LENGTH and HTTP_CONTENT_LENGTH).  FastCGI
 * gives no way to tell "X-Forwarded-For" from its underscore alias
 * "X_Forwarded_For" (both are HTTP_X_FORWARDED_FOR) and web servers merge
 * genuine repeats into one field, so a second copy is a client trying to choose
 * which value counts.
 */
static const char *
duplicate_decision_header(const struct config *cfg, const struct request *r)
{
	static const char *const names[] = {
	    "Host",
	    "Content-Length",
	    "Content-Type",
	    "Transfer-Encoding",
	    "Authorization",
	    "X-Forwarded-For",
	    "X-Forwarded-Proto",
	    "X-Forwarded-Host",
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (hdrs_conflict(&r->headers, names[i]))
			return names[i];
	if (hdrs_conflict(&r->headers, cfg->gateway.request_id_header))
		return cfg->gateway.request_id_header;
	return NULL;
}

/* Steps 2 to 4: path, route, method, middleware. 1 to go on, 0 answered. */
static int
route_or_respond(struct gateway *gw, struct request *r)
{
	const struct config *cfg = gw->cfg;
	enum normalize_result nr;
	char allow[128];

	/* 2: normalization, first: internal endpoints are matched on the
	 * normalized path too ("//_health" is "/_health"). */
	nr = normalize_path(r->raw_path, strlen(r->raw_path), &r->path);
	if (nr != NORMALIZE_OK) {
		request_respond_problem(
		    r, 400, "bad path", normalize_strerror(nr), NULL, NULL);
		return 0;
	}
	/* 1: internal endpoints */
	if (internal_respond_or_continue(cfg, gw->store, r))
		return 0;
	/* 3: route and method */
	r->route = router_match(cfg, r->path);
	if (r->route == NULL) {
		request_respond_problem(r, 404, "route not found",
		    "no route matches this path", NULL, NULL);
		return 0;
	}
	if (!router_method_allowed(r->route, r->method) &&
	    !mw_is_preflight(cfg, r)) {
		http_method_list(r->route->methods, allow, sizeof allow);
		hdrs_add(&r->resp_headers, "Allow", allow);
		request_respond_problem(r, 405, "method not allowed",
		    "this route does not allow the method", NULL, NULL);
		return 0;
	}
	/* 4: middleware */
	return mw_run(cfg, gw->plugins, r) != MW_DONE;
}

/*
 * Forwarding failed before anything reached the client: a step may answer
 * instead (the cache's stale entry).  Returns 1 when one did.
 */
static int
rescued(struct gateway *gw)
{
	size_t i;

	for (i = 0; i < NSTEPS; i++)
		if (steps[i]->rescue != NULL &&
		    steps[i]->rescue(gw->self[i], &gw->x) == STEP_DONE)
			return 1;
	return 0;
}

/* Step 9: forward and stream. */
static void
forward(struct gateway *gw, struct request *r)
{
	const struct config *cfg = gw->cfg;
	struct proxy_outcome *out = &gw->outcome;
	int rc;

	rc = request_read_body(r, cfg->gateway.max_body_bytes);
	if (rc == 1) {
		request_respond_problem(r, 413, "request body too large",
		    "the request body exceeds the gateway's limit", NULL, NULL);
		return;
	}
	if (rc < 0) {
		request_respond_problem(r, 400, "bad request",
		    "the request body could not be read", NULL, NULL);
		return;
	}
	buf_reset(&gw->url);
	forward_url(&gw->url, r->route->backend,
	    router_forward_path(r->route, r->path), r->query);
	forward_headers(cfg, r, &gw->fwd, &gw->scratch);

	proxy_forward(gw->proxy, cfg, r, gw->url.p, &gw->fwd, gw->x.tap, out);
	gw->x.forwarded = 1;
	gw->x.outcome = out;
	switch (out->result) {
	case PROXY_OK:
	case PROXY_CLIENT_GONE: break;
	case PROXY_ABORTED:
		/* The head went out: the client must see a cut, not an end. */
		r->error = "backend response cut short";
		request_abort(r);
		break;
	case PROXY_TIMEOUT:
		if (!rescued(gw))
			request_respond_problem(
			    r, 504, "backend timeout", out->detail, NULL, NULL);
		break;
	case PROXY_CONNECT_FAILED:
		if (!rescued(gw))
			request_respond_problem(r, 502, "backend unreachable",
			    out->detail, NULL, NULL);
		break;
	case PROXY_BAD_RESPONSE:
		if (!rescued(gw))
			request_respond_problem(r, 502, "bad backend response",
			    out->detail, NULL, NULL);
		break;
	}
	if (out->result == PROXY_CLIENT_GONE)
		r->error = "client went away";
}

static void
pipeline(struct gateway *gw, struct request *r)
{
	struct exchange *x = &gw->x;
	size_t i;

	if (!route_or_respond(gw, r))
		return;
	/* 5 to 8: every step plans into one batch, one round trip, then
	 * each decides from its own replies. */
	for (i = 0; i < NSTEPS; i++)
		if (steps[i]->plan != NULL &&
		    steps[i]->plan(gw->self[i], x) == STEP_DONE)
			return;
	plan_run(&gw->plan, gw->store);
	for (i = 0; i < NSTEPS; i++)
		if (steps[i]->decide != NULL &&
		    steps[i]->decide(gw->self[i], x) == STEP_DONE)
			return;
	/* 8: the breaker keeps the backend out: a stale cache entry may
	 * stand in, else 503 */
	if (x->backend_unavailable > 0) {
		if (!rescued(gw))
			breaker_respond_unavailable(x);
		return;
	}
	/* 9: forward */
	forward(gw, r);
}

static void
run_on_response(struct request *r, int status, void *arg)
{
	plugins_on_response(arg, r, status);
}

void
gateway_handle(struct gateway *gw, struct request *r)
{
	struct timespec end;
	const char *dup;

	plan_reset(&gw->plan);
	memset(&gw->x, 0, sizeof gw->x);
	memset(&gw->outcome, 0, sizeof gw->outcome);
	gw->x.cfg = gw->cfg;
	gw->x.r = r;
	gw->x.store = gw->store;
	gw->x.plan = &gw->plan;
	gw->x.now = r->start_wall;

	assign_request_id(gw, r);
	/* Every response, from any step, passes the plugins' on_response;
	 * the hook keeps request.c free of plugin knowledge. */
	r->before_head = run_on_response;
	r->before_head_arg = gw->plugins;
	dup = duplicate_decision_header(gw->cfg, r);
	if (dup != NULL) {
		/* The client stays REMOTE_ADDR: nothing it sent is believed. */
		char detail[160];

		snprintf(detail, sizeof detail,
		    "the %s header field must appear once", dup);
		request_respond_problem(
		    r, 400, "duplicate header field", detail, NULL, NULL);
	} else {
		const struct config *cfg = gw->cfg;

		client_resolve(r->remote_addr,
		    request_header(r, "X-Forwarded-For"),
		    cfg->gateway.trusted_proxies,
		    cfg->gateway.n_trusted_proxies, r->client_ip,
		    sizeof r->client_ip);
		pipeline(gw, r);
	}
	if (r->status == 0 && !r->client_gone)
		request_respond_problem(r, 500, "internal error",
		    "the gateway produced no response", NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	gw->ms = (double)(end.tv_sec - r->start.tv_sec) * 1e3 +
	    (double)(end.tv_nsec - r->start.tv_nsec) / 1e6;
	r->redis_round_trips = gw->plan.ran ? 1 : 0;
}

void
gateway_after(struct gateway *gw, struct request *r)
{
	size_t i;

	for (i = 0; i < NSTEPS; i++)
		if (steps[i]->after != NULL)
			steps[i]->after(gw->self[i], &gw->x);
	access_log_write(gw->alog, r, gw->ms, &gw->scratch);
	plan_reset(&gw->plan);
	gateway_tick(gw, 0);
}

void
gateway_tick(struct gateway *gw, int force)
{
	time_t now = time(NULL);
	size_t i;

	if (!force && now == gw->last_tick)
		return;
	gw->last_tick = now;
	for (i = 0; i < NSTEPS; i++)
		if (steps[i]->tick != NULL)
			steps[i]->tick(gw->self[i], gw->store, now);
}
