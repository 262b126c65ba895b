/*
 * internal.c -- /_health, /_metrics and /_status; see internal.h.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "internal.h"
#include "metrics.h"
#include "request.h"
#include "status.h"
#include "store.h"

static void
respond_health(const struct config *cfg, struct store *store, struct request *r)
{
	struct buf b;
	int up = store_ping(store);

	buf_init(&b);
	buf_printf(&b,
	    "{\"status\":\"%s\",\"redis\":\"%s\",\"version\":\"%s\","
	    "\"pid\":%ld,\"routes\":%zu}\n",
	    up ? "ok" : "degraded", up ? "up" : "down", PACKAGE_VERSION,
	    (long)getpid(), cfg->n_routes);
	request_respond_json(r, up ? 200 : 503, b.p, b.len);
	buf_cleanup(&b);
}

/* ---- /_metrics ---------------------------------------------------------- */

/* Prometheus text when asked by ?format=prometheus or Accept: text/plain. */
static int
wants_prometheus(const struct request *r)
{
	const char *q = r->query, *accept = request_header(r, "Accept");
	size_t n;

	while (q != NULL && *q != '\0') {
		n = strcspn(q, "&");
		if (n == sizeof "format=prometheus" - 1 &&
		    strncmp(q, "format=prometheus", n) == 0)
			return 1;
		if (n == sizeof "format=json" - 1 &&
		    strncmp(q, "format=json", n) == 0)
			return 0;
		q += n;
		if (*q == '&')
			q++;
	}
	return accept != NULL && strstr(accept, "text/plain") != NULL;
}

static void
respond_metrics(
    const struct config *cfg, struct store *store, struct request *r)
{
	struct buf b;
	struct hdrs h;
	char clen[32];
	int status;

	buf_init(&b);
	if (!wants_prometheus(r)) {
		status = metrics_render(cfg, store, METRICS_JSON, &b) == 0
		    ? 200
		    : 503;
		request_respond_json(r, status, b.p, b.len);
		goto out;
	}
	status =
	    metrics_render(cfg, store, METRICS_PROMETHEUS, &b) == 0 ? 200 : 503;
	hdrs_init(&h);
	hdrs_add(
	    &h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	snprintf(clen, sizeof clen, "%zu", b.len);
	hdrs_add(&h, "Content-Length", clen);
	hdrs_add(&h, "Cache-Control", "no-store");
	if (request_send_head(r, status, &h) == 0 &&
	    strcmp(r->method, "HEAD") != 0)
		request_write(r, b.p, b.len);
	hdrs_cleanup(&h);
out:
	buf_cleanup(&b);
}

/* ---- the table ---------------------------------------------------------- */

static const struct {
	const char *path;
	void (*respond)(
	    const struct config *cfg, struct store *store, struct request *r);
} endpoints[] = {
    {"/_health", respond_health}, {"/_metrics", respond_metrics},
    {"/_status", status_respond}, /* status.h */
};
#define NENDPOINTS (sizeof endpoints / sizeof endpoints[0])

/* The endpoint r asks for, or -1 when r is an ordinary request. */
static int
internal_find(const struct config *cfg, const struct request *r)
{
	size_t i;

	if (r->path == NULL || strncmp(r->path, "/_", 2) != 0 ||
	    !cidr_list_match(cfg->gateway.internal_allow,
	        cfg->gateway.n_internal_allow, r->client_ip))
		return -1;
	for (i = 0; i < NENDPOINTS; i++)
		if (strcmp(r->path, endpoints[i].path) == 0)
			return (int)i;
	return -1;
}

int
internal_is_endpoint(const struct config *cfg, const struct request *r)
{
	return internal_find(cfg, r) >= 0;
}

int
internal_respond_or_continue(
    const struct config *cfg, struct store *store, struct request *r)
{
	int i = internal_find(cfg, r);

	if (i < 0)
		return 0;
	endpoints[i].respond(cfg, store, r);
	return 1;
}
