/*
 * status.c -- GET /_status; see status.h.
 */
#include <stdio.h>
#include <string.h>

#include "hdrs.h"
#include "request.h"
#include "status.h"

/* The page's script and style are inline, and it only talks to its own
 * origin: everything else stays forbidden.  Its icon is an empty data:
 * URL, so that browsers do not ask for /favicon.ico (a counted 404). */
#define STATUS_CSP                                                             \
	"default-src 'none'; script-src 'unsafe-inline'; "                     \
	"style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "       \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

void
status_respond(const struct config *cfg, struct store *store, struct request *r)
{
	struct hdrs h;
	char clen[32];
	size_t len = strlen(status_page_html);

	(void)cfg;
	(void)store;
	hdrs_init(&h);
	hdrs_add(&h, "Content-Type", "text/html; charset=utf-8");
	snprintf(clen, sizeof clen, "%zu", len);
	hdrs_add(&h, "Content-Length", clen);
	hdrs_add(&h, "Cache-Control", "no-store");
	hdrs_add(&h, "Content-Security-Policy", STATUS_CSP);
	hdrs_add(&h, "X-Content-Type-Options", "nosniff");
	hdrs_add(&h, "Referrer-Policy", "no-referrer");
	if (request_send_head(r, 200, &h) == 0 &&
	    strcmp(r->method, "HEAD") != 0)
		request_write(r, status_page_html, len);
	hdrs_cleanup(&h);
}
