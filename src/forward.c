/*
 * forward.c -- building the forwarded request; see forward.h.
 */
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config.h"
#include "forward.h"
#include "hdrs.h"
#include "request.h"

enum forward_class
forward_header_class(const struct config *cfg, const char *name)
{
	static const char *const framing[] = {
	    "Host",
	    "Content-Length",
	    "Transfer-Encoding",
	};
	static const char *const gateway[] = {
	    "Expect",
	    "Proxy",     /* httpoxy: never meaningful to a backend */
	    "Forwarded", /* the client's word for its own address: the */
	    "X-Real-IP", /* gateway's X-Forwarded-For is the one to trust */
	    "X-Forwarded-For",
	    "X-Forwarded-Proto",
	    "X-Forwarded-Host",
	};
	size_t i;

	for (i = 0; i < sizeof framing / sizeof framing[0]; i++)
		if (strcasecmp(name, framing[i]) == 0)
			return FORWARD_FRAMING;
	for (i = 0; i < sizeof gateway / sizeof gateway[0]; i++)
		if (strcasecmp(name, gateway[i]) == 0)
			return FORWARD_GATEWAY;
	if (cfg == NULL)
		return strncasecmp(name, "X-Consumer-", 11) == 0
		    ? FORWARD_GATEWAY
		    : FORWARD_PASS;
	if (strcasecmp(name, cfg->api_keys.header) == 0 ||
	    strcasecmp(name, cfg->gateway.request_id_header) == 0 ||
	    strncasecmp(name, "X-Consumer-", 11) == 0)
		return FORWARD_GATEWAY;
	return FORWARD_PASS;
}

void
forward_url(
    struct buf *b, const char *backend, const char *path, const char *query)
{
	static const char ok[] = "-._~!$&'()*+,;=:@/%";
	const unsigned char *u = (const unsigned char *)path;

	buf_puts(b, backend);
	for (; *u != '\0'; u++) {
		if ((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
		    (*u >= '0' && *u <= '9') || strchr(ok, *u) != NULL)
			buf_putc(b, (char)*u);
		else
			buf_printf(b, "%%%02X", *u);
	}
	if (query != NULL) {
		buf_putc(b, '?');
		buf_puts(b, query);
	}
}

void
forward_headers(const struct config *cfg, const struct request *r,
    struct hdrs *out, struct buf *scratch)
{
	const char *xff;
	size_t i;

	hdrs_reset(out);
	for (i = 0; i < r->headers.n; i++)
		if (forward_header_class(cfg, r->headers.v[i].name) ==
		    FORWARD_PASS)
			hdrs_add(
			    out, r->headers.v[i].name, r->headers.v[i].value);
	hdrs_strip_hop_by_hop(out);

	xff = hdrs_get(&r->headers, "X-Forwarded-For");
	buf_reset(scratch);
	if (xff != NULL && *xff != '\0')
		buf_printf(scratch, "%s, %s", xff, r->remote_addr);
	else
		buf_puts(scratch, r->remote_addr);
	hdrs_add(out, "X-Forwarded-For", buf_cstr(scratch));
	hdrs_add(out, "X-Forwarded-Proto", r->scheme);
	if (r->host[0] != '\0')
		hdrs_add(out, "X-Forwarded-Host", r->host);
	hdrs_add(out, cfg->gateway.request_id_header, r->request_id);
	if (r->key_id[0] != '\0') {
		hdrs_add(out, "X-Consumer-ID", r->key_id);
		hdrs_add(out, "X-Consumer-Name", r->key_name);
	}
}
