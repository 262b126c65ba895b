/*
 * internal.c -- /_health; see internal.h.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "internal.h"
#include "request.h"
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

int
internal_respond_or_continue(
    const struct config *cfg, struct store *store, struct request *r)
{
	if (r->path == NULL || strncmp(r->path, "/_", 2) != 0 ||
	    !cidr_list_match(cfg->gateway.internal_allow,
	        cfg->gateway.n_internal_allow, r->client_ip))
		return 0;
	if (strcmp(r->path, "/_health") == 0) {
		respond_health(cfg, store, r);
		return 1;
	}
	return 0;
}
