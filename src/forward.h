/*
 * forward -- the request as the backend gets it: URL and header fields.
 *
 * URL: the route's backend + the normalized path (minus the prefix with
 * strip_prefix), with every byte that may not stand raw in a path
 * percent-encoded, + '?' and the query exactly as received.
 *
 * Header fields: the client's, minus hop-by-hop fields (Connection and the
 * fields it names, Keep-Alive, TE, ...) and minus the fields the gateway
 * owns, then the gateway's own:
 *	X-Forwarded-For    the client's value (if any) + ", " + REMOTE_ADDR
 *	X-Forwarded-Proto  http or https
 *	X-Forwarded-Host   the client's Host
 *	<request id>       the request's id
 *	X-Consumer-ID, X-Consumer-Name   when an API key was accepted
 * Host and Content-Length are libcurl's; the API key header never leaves.
 */
#ifndef APIGW_FORWARD_H
#define APIGW_FORWARD_H

struct buf;
struct config;
struct hdrs;
struct request;

/* How the gateway treats a header field name (forward_header_class). */
enum forward_class {
	FORWARD_PASS = 0, /* the client's field goes to the backend */
	FORWARD_GATEWAY,  /* dropped; the gateway sets its own */
	FORWARD_FRAMING,  /* Host, Content-Length, Transfer-Encoding:
	                     frame the request; plugins may not touch them */
};

/* The one list of fields the gateway owns (any case).  cfg may be NULL:
 * the configured names (API key, request id) are then not checked. */
enum forward_class forward_header_class(
    const struct config *cfg, const char *name);

/* Appends the backend URL for path and query (query may be NULL). */
void forward_url(
    struct buf *b, const char *backend, const char *path, const char *query);

/*
 * Fills out (reset first) with the forwarded header fields of r.  scratch
 * is working space.  Values with CR/LF never get in (hdrs_add refuses
 * them).
 */
void forward_headers(const struct config *cfg, const struct request *r,
    struct hdrs *out, struct buf *scratch);

#endif
