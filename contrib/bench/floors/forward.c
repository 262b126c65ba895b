/*
 * forward -- floors f2 and f3 of `make bench`: the least a FastCGI
 * gateway in front of an HTTP backend has to do, so that the bench can
 * say how far apigw is from it.
 *
 *	forward BACKEND_URL                 f2: libcurl forwarder
 *	forward BACKEND_URL REDIS_SOCKET    f3: the same plus one EVALSHA
 *
 * Each request's REQUEST_URI is appended to BACKEND_URL and fetched with
 * GET on one CURL handle kept for the life of the process (so the
 * backend connection is reused); the status, Content-Type, Content-Length
 * and body go back to the web server as the body arrives, never buffered
 * whole.  With REDIS_SOCKET, each request first runs a trivial script
 * (INCR and PEXPIRE of one counter per client address, loaded once at
 * start) over a unix socket: one Redis round trip, the least a shared
 * rate limit costs.
 *
 * A measurement tool, not part of apigw: no request headers are
 * forwarded, no method other than GET, no error page beyond a status
 * (502: backend failed; 503: Redis failed; 414: URI too long).  It takes
 * its listening socket on fd 0 from the web server and never exits on
 * its own.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <fcgiapp.h>
#include <hiredis/hiredis.h>

#define URL_MAX 4096
#define COUNTER_KEY_MAX 128
#define COUNTER_TTL_MS "60000"

/* INCR + PEXPIRE: the shape of a fixed-window counter, without the
 * decision (the bench's limits are never reached anyway). */
static const char counter_script[] = "local n = redis.call('INCR', KEYS[1]) "
                                     "redis.call('PEXPIRE', KEYS[1], ARGV[1]) "
                                     "return n";

struct counter {
	const char *path;  /* unix socket of Redis */
	redisContext *ctx; /* NULL until connected, again after an error */
	char sha[41];      /* counter_script's SHA-1, hex */
};

struct exchange {
	FCGX_Request *req;
	CURL *curl;
	int head_sent;
};

/* Connects and loads the script; 0 on success.  On failure c->ctx is
 * NULL and the next request tries again. */
static int
counter_connect(struct counter *c)
{
	redisReply *reply = NULL;
	int rc = -1;

	c->ctx = redisConnectUnix(c->path);
	if (c->ctx == NULL || c->ctx->err)
		goto out;
	reply = redisCommand(c->ctx, "SCRIPT LOAD %s", counter_script);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING ||
	    reply->len != 40)
		goto out;
	memcpy(c->sha, reply->str, 40);
	c->sha[40] = '\0';
	rc = 0;
out:
	if (reply != NULL)
		freeReplyObject(reply);
	if (rc != 0 && c->ctx != NULL) {
		if (c->ctx->err)
			fprintf(stderr, "forward: redis %s: %s\n", c->path,
			    c->ctx->errstr);
		redisFree(c->ctx);
		c->ctx = NULL;
	}
	return rc;
}

/* One EVALSHA (one round trip) for the client; 0 when Redis answered
 * with the counter. */
static int
counter_hit(struct counter *c, const char *client)
{
	redisReply *reply = NULL;
	char key[COUNTER_KEY_MAX];
	int rc = -1;

	if (c->ctx == NULL && counter_connect(c) != 0)
		goto out;
	snprintf(key, sizeof(key), "bench:floor:%s", client);
	reply = redisCommand(
	    c->ctx, "EVALSHA %s 1 %s %s", c->sha, key, COUNTER_TTL_MS);
	if (reply == NULL) {
		/* The connection is unusable: start over on the next
		 * request. */
		redisFree(c->ctx);
		c->ctx = NULL;
		goto out;
	}
	if (reply->type != REDIS_REPLY_INTEGER)
		goto out;
	rc = 0;
out:
	if (reply != NULL)
		freeReplyObject(reply);
	return rc;
}

/* The CGI response head, from what libcurl knows once the backend's
 * headers are in. */
static void
exchange_send_head(struct exchange *x)
{
	long status = 0;
	char *type = NULL;
	curl_off_t length = -1;

	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->curl, CURLINFO_CONTENT_TYPE, &type);
	curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	FCGX_FPrintF(x->req->out, "Status: %ld\r\n", status);
	if (type != NULL)
		FCGX_FPrintF(x->req->out, "Content-Type: %s\r\n", type);
	if (length >= 0)
		FCGX_FPrintF(x->req->out,
		    "Content-Length: %" CURL_FORMAT_CURL_OFF_T "\r\n", length);
	FCGX_PutS("\r\n", x->req->out);
	x->head_sent = 1;
}

/* libcurl's write callback: each piece of the body goes straight to the
 * web server.  A failed write (the client went away) aborts the
 * transfer. */
static size_t
exchange_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t n = size * nmemb;

	if (!x->head_sent)
		exchange_send_head(x);
	if (FCGX_PutStr(data, (int)n, x->req->out) != (int)n)
		return 0;
	return n;
}

static void
respond_status(FCGX_Request *req, const char *status)
{
	FCGX_FPrintF(
	    req->out, "Status: %s\r\nContent-Length: 0\r\n\r\n", status);
}

static void
serve(
    FCGX_Request *req, CURL *curl, const char *backend, struct counter *counter)
{
	struct exchange x = {req, curl, 0};
	char url[URL_MAX];
	const char *uri = FCGX_GetParam("REQUEST_URI", req->envp);
	const char *client = FCGX_GetParam("REMOTE_ADDR", req->envp);
	int n;

	if (uri == NULL)
		uri = "/";
	n = snprintf(url, sizeof(url), "%s%s", backend, uri);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		respond_status(req, "414 URI Too Long");
		return;
	}
	if (counter != NULL && counter_hit(counter, client ? client : "-")) {
		respond_status(req, "503 Service Unavailable");
		return;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
	if (curl_easy_perform(curl) != CURLE_OK && !x.head_sent)
		respond_status(req, "502 Bad Gateway");
	else if (!x.head_sent)
		exchange_send_head(&x); /* an empty body */
}

int
main(int argc, char **argv)
{
	struct counter counter = {0};
	struct counter *use_counter = NULL;
	FCGX_Request req;
	CURL *curl = NULL;
	int rc = 1;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: forward BACKEND_URL [REDIS_SOCKET]\n");
		goto out;
	}
	if (argc == 3) {
		counter.path = argv[2];
		use_counter = &counter;
		if (counter_connect(&counter) != 0)
			goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out;
	curl = curl_easy_init();
	if (curl == NULL)
		goto out;
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	/* Never take a proxy from the environment (a request's Proxy:
	 * header reaches the process as HTTP_PROXY). */
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, exchange_on_body);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		goto out;
	while (FCGX_Accept_r(&req) >= 0) {
		serve(&req, curl, argv[1], use_counter);
		FCGX_Finish_r(&req);
	}
	rc = 0;
out:
	if (curl != NULL)
		curl_easy_cleanup(curl);
	if (counter.ctx != NULL)
		redisFree(counter.ctx);
	return rc;
}
