/*
 * request -- one FastCGI request: its parameters parsed once into a struct,
 * its body, and the functions that write the response.
 *
 * Only request.c and main.c include fcgiapp.h.  The struct is embedded in
 * the worker loop and reused: request_begin() fills it after each accept,
 * request_end() releases what the request allocated (the nginx r->pool
 * idea: every request-scoped allocation hangs off this struct).
 *
 * Response writing is one-way: request_send_head() once, then any number of
 * request_write() calls.  A failed write means the client went away;
 * client_gone is then set and later writes are dropped.
 */
#ifndef APIGW_REQUEST_H
#define APIGW_REQUEST_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "hdrs.h"

struct route;

struct request {
	void *fcgx; /* FCGX_Request *, opaque outside request.c */

	/* Parameters, borrowed from the FastCGI environment. */
	const char *method;       /* "GET" */
	const char *request_uri;  /* raw, as the client sent it */
	const char *query;        /* after '?' (maybe ""), NULL without '?' */
	const char *remote_addr;  /* the peer: web server's client */
	const char *scheme;       /* "http" or "https" */
	const char *host;         /* Host header, or SERVER_NAME, or "" */
	long long content_length; /* -1 when absent */

	/* Derived. */
	char *raw_path;     /* owned: REQUEST_URI before '?' */
	char *path;         /* owned: normalized path, or NULL */
	char client_ip[64]; /* resolved through trusted proxies */
	char request_id[129];
	struct hdrs headers;   /* request header fields */
	struct buf body;       /* request body, read on demand */
	struct timespec start; /* CLOCK_MONOTONIC at accept */
	time_t start_wall;     /* time() at accept */

	/* Set by the pipeline. */
	const struct route *route; /* borrowed from the live config */
	char key_id[33];           /* authenticated API key id, or "" */
	char key_name[129];
	const char *cache_status; /* "HIT", "MISS", "BYPASS" or NULL */
	const char *error;        /* short reason the gateway answered */
	struct hdrs resp_headers; /* added to whatever response is sent */
	/* Called once, by the first request_send_head(), before the head is
	 * formatted: the last chance to add to resp_headers (plugins'
	 * on_response).  Set per request; request_end() clears it. */
	void (*before_head)(struct request *r, int status, void *arg);
	void *before_head_arg;

	/* Response state. */
	int status;          /* 0 until a head was sent */
	long long bytes_out; /* body bytes written */
	int client_gone;
	int aborted;           /* request_abort() cut the connection */
	int redis_round_trips; /* Redis round trips the request waited for */
	int body_read;         /* the whole body was read */
};

/* One-time set-up of an embedded request (before the first begin). */
void request_init(struct request *r);
/*
 * Fills r from an accepted FCGX_Request (passed as void * so callers need
 * not include fcgiapp.h).  Never fails: malformed parameters are left for
 * the pipeline to reject.
 */
void request_begin(struct request *r, void *fcgx);
/* Releases the request's allocations, keeping buffers for reuse. */
void request_end(struct request *r);
void request_cleanup(struct request *r);

/* Returns the first value of a request header, or NULL. Borrowed. */
const char *request_header(const struct request *r, const char *name);

/*
 * Reads the whole body into r->body when it is at most max bytes.  Returns
 * 0, 1 when the body is larger than max (nothing more is read), or -1 on a
 * read error.  Content-Length is checked before anything is allocated.
 */
int request_read_body(struct request *r, long long max);

/*
 * Reads and drops what is left of the request body, at most max bytes.
 * Returns 0 when the body's end was reached, -1 when it was longer or
 * could not be read.  For a connection the web server keeps open: the
 * next request on it must not start in this one's body.
 */
int request_drain_input(struct request *r, long long max);

/*
 * Returns 1 when nothing of the request's input is left unread (no body,
 * or the body was read), so the connection can be closed at once.
 */
int request_input_done(const struct request *r);

/*
 * Runs r->before_head (once), then sends the status line and h (may be
 * NULL) plus r->resp_headers.  Returns 0, or -1 when the client is gone.
 */
int request_send_head(struct request *r, int status, const struct hdrs *h);
/* Writes body bytes; 0, or -1 when the client is gone. */
int request_write(struct request *r, const void *data, size_t len);
/* Pushes buffered output to the web server; 0 or -1. */
int request_flush(struct request *r);

/*
 * Hands the complete response to the web server (end of stream and
 * FCGI_END_REQUEST) while the request's parameters stay readable: the
 * after phase runs between this and FCGX_Finish_r(), so the client never
 * waits for it.
 */
void request_complete(struct request *r);

/*
 * Ends a response that started but cannot be completed (the backend's body
 * was cut short): flushes what was written, then closes the connection to
 * the web server without a clean end of request, so that the web server
 * drops the client connection instead of presenting a complete-looking
 * response.  Later writes are dropped.
 */
void request_abort(struct request *r);

/*
 * Answers with an RFC 9457 problem document:
 *	{"type":..., "title":..., "status":..., "detail":..., "error":...,
 *	 "request_id":..., <extra members>}
 * type NULL means "about:blank"; extra_json (may be NULL) is inserted as
 * more members, e.g. "\"violated-policies\":[\"route-minute\"]".
 * Also records error for the access log.
 */
void request_respond_problem(struct request *r, int status, const char *error,
    const char *detail, const char *type, const char *extra_json);

/* Answers with a JSON body (already serialized). */
void request_respond_json(
    struct request *r, int status, const char *json, size_t len);

/* The standard reason phrase for status ("Not Found"), or "Unknown". */
const char *http_reason(int status);

#endif
