/*
 * request.c -- FastCGI parameters in, HTTP response out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <fcgiapp.h>

#include "log.h"
#include "request.h"
#include "xalloc.h"

/* How long a cut response waits before its connection ends (see
 * request_abort). */
#define ABORT_SETTLE_MS 100

/* Bytes read from the web server per FCGX_GetStr call. */
#define BODY_CHUNK 65536

void
request_init(struct request *r)
{
	memset(r, 0, sizeof *r);
	hdrs_init(&r->headers);
	hdrs_init(&r->resp_headers);
	buf_init(&r->body);
	r->content_length = -1;
}

static long long
parse_length(const char *s)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return -1;
	return v;
}

/*
 * Adds the header field that the parameter param (nlen bytes of name,
 * then '=' and val) stands for, if it stands for one.  Names of any
 * length are kept: the web server has bounded the parameters already, and
 * a field dropped here would reach neither the checks nor the backend.
 */
static void
add_header_param(
    struct request *r, const char *param, size_t nlen, const char *val)
{
	char sbuf[2][256];
	char *name = sbuf[0], *hname = sbuf[1];

	if (nlen >= sizeof sbuf[0]) {
		name = xmalloc(nlen + 1);
		hname = xmalloc(nlen + 1);
	}
	memcpy(name, param, nlen);
	name[nlen] = '\0';
	if (hdrs_name_from_cgi(name, hname, nlen + 1) == 0)
		hdrs_add(&r->headers, hname, val);
	if (name != sbuf[0]) {
		free(name);
		free(hname);
	}
}

void
request_begin(struct request *r, void *fcgx)
{
	FCGX_Request *fr = fcgx;
	const char *uri_query = NULL, *query_string = NULL, *https = NULL;
	const char *server_name = NULL, *req_scheme = NULL;
	const char *orig_connection = NULL;
	char **e;
	int have_uri = 0;

	r->fcgx = fcgx;
	r->method = "GET";
	r->request_uri = "/";
	r->remote_addr = "";
	r->host = "";
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->start_wall = time(NULL);

	for (e = fr->envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		size_t nlen;
		const char *val;

		if (eq == NULL)
			continue;
		nlen = (size_t)(eq - *e);
		val = eq + 1;
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(*e, lit, nlen) == 0)
		if (IS("REQUEST_METHOD"))
			r->method = val;
		else if (IS("REQUEST_URI")) {
			r->request_uri = val;
			have_uri = 1;
		} else if (IS("QUERY_STRING"))
			query_string = val;
		else if (IS("REMOTE_ADDR"))
			r->remote_addr = val;
		else if (IS("HTTPS"))
			https = val;
		else if (IS("REQUEST_SCHEME"))
			req_scheme = val;
		else if (IS("SERVER_NAME"))
			server_name = val;
		else if (IS("CONTENT_LENGTH"))
			r->content_length = *val ? parse_length(val) : -1;
		else if (IS("APIGW_CONNECTION"))
			orig_connection = val;
		if (!(IS("CONTENT_LENGTH") || IS("CONTENT_TYPE")) ||
		    *val != '\0')
			add_header_param(r, *e, nlen, val);
#undef IS
	}

	/*
	 * Apache replaces the client's Connection field with "close" before
	 * FastCGI; its recipe copies the original into APIGW_CONNECTION
	 * (SetEnvIf), so that the fields it names are still dropped as
	 * hop-by-hop.  Only the web server sets such variables: a client's
	 * header arrives as HTTP_*.
	 */
	if (orig_connection != NULL)
		hdrs_set(&r->headers, "Connection", orig_connection);

	uri_query = strchr(r->request_uri, '?');
	if (uri_query != NULL) {
		r->raw_path = xstrndup(
		    r->request_uri, (size_t)(uri_query - r->request_uri));
		r->query = uri_query + 1;
	} else {
		r->raw_path = xstrdup(r->request_uri);
		/* Without REQUEST_URI (a minimal web server), fall back. */
		r->query =
		    !have_uri && query_string != NULL && *query_string != '\0'
		    ? query_string
		    : NULL;
	}
	if ((https != NULL && strcasecmp(https, "on") == 0) ||
	    (req_scheme != NULL && strcmp(req_scheme, "https") == 0))
		r->scheme = "https";
	else
		r->scheme = "http";
	r->host = hdrs_get(&r->headers, "Host");
	if (r->host == NULL)
		r->host = server_name != NULL ? server_name : "";
	snprintf(r->client_ip, sizeof r->client_ip, "%s", r->remote_addr);
}

void
request_end(struct request *r)
{
	free(r->raw_path);
	free(r->path);
	hdrs_reset(&r->headers);
	hdrs_reset(&r->resp_headers);
	buf_reset(&r->body);
	/* A large body's buffer is not kept for the next request. */
	if (r->body.cap > 4 * BODY_CHUNK)
		buf_cleanup(&r->body);
	r->fcgx = NULL;
	r->raw_path = NULL;
	r->path = NULL;
	r->query = NULL;
	r->route = NULL;
	r->key_id[0] = '\0';
	r->key_name[0] = '\0';
	r->request_id[0] = '\0';
	r->cache_status = NULL;
	r->error = NULL;
	r->before_head = NULL;
	r->before_head_arg = NULL;
	r->status = 0;
	r->bytes_out = 0;
	r->client_gone = 0;
	r->aborted = 0;
	r->redis_round_trips = 0;
	r->body_read = 0;
	r->content_length = -1;
}

void
request_cleanup(struct request *r)
{
	request_end(r);
	hdrs_cleanup(&r->headers);
	hdrs_cleanup(&r->resp_headers);
	buf_cleanup(&r->body);
}

const char *
request_header(const struct request *r, const char *name)
{
	return hdrs_get(&r->headers, name);
}

int
request_read_body(struct request *r, long long max)
{
	FCGX_Request *fr = r->fcgx;
	long long want;
	int n;

	if (r->content_length > max)
		return 1;
	want = r->content_length >= 0 ? r->content_length : max + 1;
	if (r->content_length >= 0)
		buf_reserve(&r->body, (size_t)r->content_length);
	while ((long long)r->body.len < want) {
		size_t chunk = BODY_CHUNK;

		if ((long long)chunk > want - (long long)r->body.len)
			chunk = (size_t)(want - (long long)r->body.len);
		buf_reserve(&r->body, chunk);
		n = FCGX_GetStr(r->body.p + r->body.len, (int)chunk, fr->in);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		r->body.len += (size_t)n;
		r->body.p[r->body.len] = '\0';
		if ((long long)r->body.len > max)
			return 1;
	}
	if (r->content_length >= 0 &&
	    (long long)r->body.len < r->content_length)
		return -1;
	r->body_read = 1;
	return 0;
}

int
request_drain_input(struct request *r, long long max)
{
	FCGX_Request *fr = r->fcgx;
	char sink[16384];
	long long n = 0;
	int got;

	while ((got = FCGX_GetStr(sink, (int)sizeof sink, fr->in)) > 0) {
		n += got;
		if (n > max)
			return -1;
	}
	if (got < 0)
		return -1;
	r->body_read = 1;
	return 0;
}

int
request_input_done(const struct request *r)
{
	return r->body_read || r->content_length == 0 ||
	    (r->content_length < 0 &&
	        hdrs_get(&r->headers, "Transfer-Encoding") == NULL);
}

static int
put(struct request *r, const void *data, size_t len)
{
	FCGX_Request *fr = r->fcgx;

	if (r->client_gone)
		return -1;
	while (len > 0) {
		int chunk = len > (1u << 30) ? (1 << 30) : (int)len;

		if (FCGX_PutStr(data, chunk, fr->out) != chunk) {
			r->client_gone = 1;
			return -1;
		}
		data = (const char *)data + chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static void
put_fields(struct buf *b, const struct hdrs *h)
{
	size_t i;

	for (i = 0; h != NULL && i < h->n; i++)
		buf_printf(b, "%s: %s\r\n", h->v[i].name, h->v[i].value);
}

int
request_send_head(struct request *r, int status, const struct hdrs *h)
{
	void (*hook)(struct request *, int, void *) = r->before_head;
	struct buf b;
	int rc;

	/* Cleared before the call: the hook runs once per request even if
	 * it, or a second head, comes back here. */
	r->before_head = NULL;
	if (hook != NULL)
		hook(r, status, r->before_head_arg);
	buf_init(&b);
	buf_printf(&b, "Status: %d %s\r\n", status, http_reason(status));
	put_fields(&b, h);
	put_fields(&b, &r->resp_headers);
	buf_puts(&b, "\r\n");
	r->status = status;
	rc = put(r, b.p, b.len);
	buf_cleanup(&b);
	return rc;
}

int
request_write(struct request *r, const void *data, size_t len)
{
	if (put(r, data, len) != 0)
		return -1;
	r->bytes_out += (long long)len;
	return 0;
}

int
request_flush(struct request *r)
{
	FCGX_Request *fr = r->fcgx;

	if (r->client_gone)
		return -1;
	if (FCGX_FFlush(fr->out) != 0) {
		r->client_gone = 1;
		return -1;
	}
	return 0;
}

void
request_complete(struct request *r)
{
	FCGX_Request *fr = r->fcgx;

	/* Closing stderr then stdout writes the end-of-stream records and
	 * FCGI_END_REQUEST (libfcgi sends it with the last writer closed);
	 * FCGX_Finish_r() later finds both closed and only frees. */
	(void)FCGX_FClose(fr->err);
	(void)FCGX_FClose(fr->out);
}

void
request_abort(struct request *r)
{
	FCGX_Request *fr = r->fcgx;

	if (r->aborted)
		return;
	r->aborted = 1;
	/* What the client can still get of the body goes out first. */
	if (!r->client_gone) {
		struct timespec ts = {0, ABORT_SETTLE_MS * 1000000L};

		(void)FCGX_FFlush(fr->out);
		/*
		 * A web server that reads the head, the body and the end of the
		 * connection at once may decide, before it writes the head, to
		 * send the response close-delimited instead of chunked: then
		 * the client cannot tell the cut from the end.  Give it a
		 * moment to send the head as it would for a live response
		 * (chunked) first.
		 */
		nanosleep(&ts, NULL);
	}
	/*
	 * The web server sees the FastCGI connection end without an
	 * FCGI_END_REQUEST record: lighttpd and mod_fcgid treat that as a
	 * backend failure after the response started and close the client's
	 * connection, so the client sees a truncated transfer (not a short
	 * body followed by a hang on keep-alive, nor a clean end of a
	 * chunked body).  libfcgi's own closing writes then fail harmlessly.
	 */
	if (fr->ipcFd >= 0)
		(void)shutdown(fr->ipcFd, SHUT_RDWR);
	r->client_gone = 1;
}

void
request_respond_json(
    struct request *r, int status, const char *json, size_t len)
{
	struct hdrs h;
	char clen[32];

	hdrs_init(&h);
	hdrs_add(&h, "Content-Type", "application/json");
	snprintf(clen, sizeof clen, "%zu", len);
	hdrs_add(&h, "Content-Length", clen);
	hdrs_add(&h, "Cache-Control", "no-store");
	if (request_send_head(r, status, &h) == 0 &&
	    strcmp(r->method, "HEAD") != 0)
		request_write(r, json, len);
	hdrs_cleanup(&h);
}

void
request_respond_problem(struct request *r, int status, const char *error,
    const char *detail, const char *type, const char *extra_json)
{
	struct buf b;
	struct hdrs h;
	char clen[32];

	r->error = error;
	buf_init(&b);
	buf_puts(&b, "{\"type\":\"");
	buf_json_escape(&b, type != NULL ? type : "about:blank");
	buf_printf(&b, "\",\"title\":\"%s\",\"status\":%d,\"detail\":\"",
	    http_reason(status), status);
	buf_json_escape(&b, detail != NULL ? detail : error);
	buf_puts(&b, "\",\"error\":\"");
	buf_json_escape(&b, error);
	buf_puts(&b, "\",\"request_id\":\"");
	buf_json_escape(&b, r->request_id);
	buf_putc(&b, '"');
	if (extra_json != NULL && *extra_json != '\0') {
		buf_putc(&b, ',');
		buf_puts(&b, extra_json);
	}
	buf_puts(&b, "}\n");

	hdrs_init(&h);
	hdrs_add(&h, "Content-Type", "application/problem+json");
	snprintf(clen, sizeof clen, "%zu", b.len);
	hdrs_add(&h, "Content-Length", clen);
	hdrs_add(&h, "Cache-Control", "no-store");
	if (request_send_head(r, status, &h) == 0 &&
	    strcmp(r->method, "HEAD") != 0)
		request_write(r, b.p, b.len);
	hdrs_cleanup(&h);
	buf_cleanup(&b);
}

const char *
http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
