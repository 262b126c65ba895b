/*
 * proxy.c -- libcurl forwarding with streaming and retries.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "config.h"
#include "hdrs.h"
#include "log.h"
#include "proxy.h"
#include "request.h"
#include "xalloc.h"

struct proxy {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
};

/* State of one attempt, shared with the curl callbacks. */
struct xfer {
	struct request *r;
	const struct config *cfg;
	struct proxy_outcome *out;
	struct proxy_tap *tap; /* may be NULL */
	CURL *curl;
	int may_retry;       /* a failure status may be swallowed */
	int status;          /* status of the response being read */
	int discard;         /* swallowing a response to retry */
	int sent;            /* a head reached the client */
	long long clen;      /* the response's Content-Length, or -1 */
	long long body_sent; /* body bytes of this response written */
	struct hdrs resp;
};

struct proxy *
proxy_new(void)
{
	struct proxy *p = xcalloc(1, sizeof *p);

	p->curl = curl_easy_init();
	if (p->curl == NULL) {
		log_error("curl_easy_init failed");
		abort();
	}
	return p;
}

void
proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	curl_easy_cleanup(p->curl);
	free(p);
}

int
proxy_method_idempotent(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0 || strcmp(m, "PUT") == 0 ||
	    strcmp(m, "DELETE") == 0;
}

static int
is_failure_status(const struct config *cfg, int status)
{
	size_t i;

	for (i = 0; i < cfg->circuit_breaker.n_failure_statuses; i++)
		if (cfg->circuit_breaker.failure_statuses[i] == status)
			return 1;
	return 0;
}

/* Sends the collected response head to the client. */
static int
send_head(struct xfer *x)
{
	struct request *r = x->r;
	const char *cl;

	hdrs_strip_hop_by_hop(&x->resp);
	/* "Status" means something to FastCGI; our request id header is
	 * already in r->resp_headers. */
	hdrs_del(&x->resp, "Status");
	hdrs_del(&x->resp, x->cfg->gateway.request_id_header);
	x->sent = 1;
	x->out->status = x->status;
	x->clen = -1;
	x->body_sent = 0;
	cl = hdrs_get(&x->resp, "Content-Length");
	if (cl != NULL && *cl >= '0' && *cl <= '9')
		x->clen = strtoll(cl, NULL, 10);
	if (x->tap != NULL && x->tap->head != NULL &&
	    x->tap->head(x->tap->arg, x->status, &x->resp) != 0 &&
	    is_failure_status(x->cfg, x->status)) {
		/* Vetoed: swallowed like a failed attempt, nothing sent. */
		x->sent = 0;
		x->out->status = 0;
		x->discard = 1;
		return 0;
	}
	if (request_send_head(r, x->status, &x->resp) != 0)
		return -1;
	/*
	 * Every flush is a write to the web server, and syscalls are most of
	 * a request's cost.  A response of known length goes out with its
	 * body (or at the end of the request); an open-ended one (chunked,
	 * server-sent events) shows its head at once.
	 */
	if (x->clen < 0 && request_flush(r) != 0)
		return -1;
	return 0;
}

static size_t
on_header(char *line, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nitems, n = len;
	const char *colon, *v, *end;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx, or the first). */
		hdrs_reset(&x->resp);
		x->status = 0;
		return len;
	}
	if (n == 0) {
		long code = 0;

		/* libcurl has parsed the status line (and refused a malformed
		 * one); take the status from it. */
		if (curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code) !=
		        CURLE_OK ||
		    code < 0 || code > 999)
			code = 0;
		x->status = (int)code;
		/* End of a header block; 1xx blocks are followed by more,
		 * except 101: no upgrade was asked for, so it is invalid. */
		if (x->status == 101)
			return 0;
		if (x->status >= 100 && x->status < 200)
			return len;
		if (x->status < 200 || x->status > 599)
			return 0; /* invalid response: abort, 502 */
		if (x->may_retry && is_failure_status(x->cfg, x->status)) {
			x->discard = 1;
			return len;
		}
		return send_head(x) == 0 ? len : 0;
	}
	if (line[0] == ' ' || line[0] == '\t')
		return len; /* obsolete line folding: dropped */
	colon = memchr(line, ':', n);
	if (colon == NULL)
		return len;
	v = colon + 1;
	end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	hdrs_addn(&x->resp, line, (size_t)(colon - line), v, (size_t)(end - v));
	return len;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nmemb;

	if (x->discard)
		return len;
	if (!x->sent)
		return 0;
	if (request_write(x->r, data, len) != 0)
		return 0;
	if (x->tap != NULL && x->tap->body != NULL)
		x->tap->body(x->tap->arg, data, len);
	x->body_sent += (long long)len;
	/* Stream as it arrives, but leave the last piece of a response of
	 * known length to go out with the end of the request. */
	if (x->body_sent != x->clen && request_flush(x->r) != 0)
		return 0;
	return len;
}

static struct curl_slist *
build_headers(const struct request *r, const struct hdrs *h, int has_body)
{
	struct curl_slist *list = NULL, *tmp;
	struct buf line;
	size_t i;

	buf_init(&line);
	for (i = 0; i < h->n; i++) {
		buf_reset(&line);
		if (h->v[i].value[0] == '\0')
			buf_printf(&line, "%s;", h->v[i].name);
		else
			buf_printf(
			    &line, "%s: %s", h->v[i].name, h->v[i].value);
		tmp = curl_slist_append(list, line.p);
		if (tmp == NULL)
			goto oom;
		list = tmp;
	}
	/* Stop curl from adding headers the client did not send. */
	if ((tmp = curl_slist_append(list, "Expect:")) == NULL)
		goto oom;
	list = tmp;
	if (hdrs_get(h, "Accept") == NULL) {
		if ((tmp = curl_slist_append(list, "Accept:")) == NULL)
			goto oom;
		list = tmp;
	}
	if (has_body && hdrs_get(h, "Content-Type") == NULL) {
		if ((tmp = curl_slist_append(list, "Content-Type:")) == NULL)
			goto oom;
		list = tmp;
	}
	buf_cleanup(&line);
	(void)r;
	return list;
oom:
	log_error("curl_slist_append: out of memory");
	abort();
}

static void
backoff(int attempt)
{
	long ms = 50L << (attempt > 5 ? 5 : attempt - 1);
	struct timespec ts;

	if (ms > 1000)
		ms = 1000;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void
set_method(CURL *c, const struct request *r, int has_body)
{
	const char *m = r->method;

	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		return;
	}
	if (has_body) {
		curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
		curl_easy_setopt(
		    c, CURLOPT_POSTFIELDS, r->body.p != NULL ? r->body.p : "");
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
		return;
	}
	if (strcmp(m, "GET") == 0)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
}

void
proxy_forward(struct proxy *p, const struct config *cfg, struct request *r,
    const char *url, const struct hdrs *fwd_headers, struct proxy_tap *tap,
    struct proxy_outcome *out)
{
	const struct route *rt = r->route;
	CURL *c = p->curl;
	struct curl_slist *hl;
	struct xfer x;
	int has_body, idempotent, max_attempts;
	CURLcode rc;

	has_body = r->body.len > 0 || strcmp(r->method, "POST") == 0 ||
	    strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0;
	idempotent = proxy_method_idempotent(r->method);
	max_attempts = idempotent ? 1 + rt->retries : 1;
	hl = build_headers(r, fwd_headers, has_body);

	memset(out, 0, sizeof *out);
	memset(&x, 0, sizeof x);
	x.r = r;
	x.cfg = cfg;
	x.out = out;
	x.tap = tap;
	x.curl = c;
	hdrs_init(&x.resp);

	for (;;) {
		int retryable = 0;

		out->attempts++;
		x.may_retry = out->attempts < max_attempts;
		x.status = 0;
		x.discard = 0;
		hdrs_reset(&x.resp);

		curl_easy_reset(c);
		p->errbuf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_PROXY, "");
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(
		    c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(
		    c, CURLOPT_CONNECTTIMEOUT_MS, rt->connect_timeout_ms);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rt->timeout_ms);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
		set_method(c, r, has_body);

		rc = curl_easy_perform(c);

		if (x.sent) {
			if (rc == CURLE_OK) {
				out->result = PROXY_OK;
				/* A failure status passed through (no retry
				 * left) is a failed attempt too. */
				if (is_failure_status(cfg, x.status))
					out->failed_attempts++;
			} else if (r->client_gone)
				out->result = PROXY_CLIENT_GONE;
			else {
				out->result = PROXY_ABORTED;
				out->failed_attempts++;
				log_warn("backend %s: response cut short: %s",
				    rt->backend,
				    p->errbuf[0] ? p->errbuf
				                 : curl_easy_strerror(rc));
			}
			break;
		}
		if (r->client_gone) {
			out->result = PROXY_CLIENT_GONE;
			break;
		}
		switch (rc) {
		case CURLE_OK:
			/* Only a swallowed failure status gets here. */
			out->result = PROXY_BAD_RESPONSE;
			out->detail = "backend answered with a failure status";
			retryable = 1;
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
			out->result = PROXY_CONNECT_FAILED;
			out->detail = "could not connect to the backend";
			retryable = 1;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			out->result = PROXY_TIMEOUT;
			out->detail = "the backend did not answer in time";
			retryable = 1;
			break;
		case CURLE_GOT_NOTHING:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
			out->result = PROXY_BAD_RESPONSE;
			out->detail = "the backend closed the connection";
			retryable = 1;
			break;
		default:
			out->result = PROXY_BAD_RESPONSE;
			out->detail = "the backend sent an invalid response";
			break;
		}
		out->failed_attempts++;
		log_debug("backend %s attempt %d: %s", rt->backend,
		    out->attempts,
		    p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc));
		if (!retryable || out->attempts >= max_attempts)
			break;
		backoff(out->attempts);
	}
	/* Never keep a pointer to this request's body in the handle. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(hl);
	hdrs_cleanup(&x.resp);
}
