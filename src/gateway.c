/*
 * gateway.c -- the request pipeline.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "gateway.h"
#include "hdrs.h"
#include "keys.h"
#include "keyspace.h"
#include "log.h"
#include "mw.h"
#include "normalize.h"
#include "plugin.h"
#include "proxy.h"
#include "ratelimit.h"
#include "request.h"
#include "router.h"
#include "store.h"
#include "xalloc.h"

#define QUOTA_EXCEEDED_TYPE                                                    \
	"https://iana.org/assignments/http-problem-types#quota-exceeded"
#define RL_MAX_ARGS 160

struct gateway {
	struct config *cfg;
	struct store *store;
	struct proxy *proxy;
	struct access_log *alog;
	struct plugins *plugins; /* loaded for cfg; freed before it */
	struct auth_cache *keys;
	uint64_t rng[2]; /* xorshift128+ state for request ids */
	/* Scratch space reused by every request. */
	struct buf scratch;
	struct buf url;
	struct buf rlargs;
	struct hdrs fwd;
	unsigned long redis_bypassed; /* requests let through, Redis down */
};

static uint64_t
rng_next(struct gateway *gw)
{
	uint64_t s1 = gw->rng[0];
	const uint64_t s0 = gw->rng[1];

	gw->rng[0] = s0;
	s1 ^= s1 << 23;
	gw->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return gw->rng[1] + s0;
}

struct gateway *
gateway_new(struct config *cfg, char **err)
{
	struct gateway *gw;
	struct plugins *ps;

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
	gw->keys = auth_cache_new(1024);
	if (getrandom(gw->rng, sizeof gw->rng, 0) != sizeof gw->rng) {
		gw->rng[0] = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		gw->rng[1] = (uint64_t)(uintptr_t)gw;
	}
	gw->rng[0] |= 1;
	buf_init(&gw->scratch);
	buf_init(&gw->url);
	buf_init(&gw->rlargs);
	hdrs_init(&gw->fwd);
	log_set_level((enum log_level)cfg->log.level);
	return gw;
}

void
gateway_free(struct gateway *gw)
{
	if (gw == NULL)
		return;
	store_free(gw->store);
	proxy_free(gw->proxy);
	access_log_close(gw->alog);
	auth_cache_free(gw->keys);
	buf_cleanup(&gw->scratch);
	buf_cleanup(&gw->url);
	buf_cleanup(&gw->rlargs);
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

/* ---- small steps -----------------------------------------------------------
 */

static int
is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/*
 * The client is REMOTE_ADDR, unless that is a trusted proxy: then the
 * rightmost X-Forwarded-For address that is not itself a trusted proxy.
 */
static void
resolve_client(const struct config *cfg, struct request *r)
{
	const char *xff, *end, *start;
	char hop[64];

	snprintf(r->client_ip, sizeof r->client_ip, "%s", r->remote_addr);
	if (!cidr_list_match(cfg->gateway.trusted_proxies,
	        cfg->gateway.n_trusted_proxies, r->remote_addr))
		return;
	xff = request_header(r, "X-Forwarded-For");
	if (xff == NULL)
		return;
	end = xff + strlen(xff);
	while (end > xff) {
		size_t n;

		start = end;
		while (start > xff && start[-1] != ',')
			start--;
		n = (size_t)(end - start);
		end = start > xff ? start - 1 : xff;
		while (n > 0 && (*start == ' ' || *start == '\t')) {
			start++;
			n--;
		}
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof hop)
			return;
		memcpy(hop, start, n);
		hop[n] = '\0';
		if (!is_ip(hop))
			return; /* garbage: trust nothing further left */
		snprintf(r->client_ip, sizeof r->client_ip, "%s", hop);
		if (!cidr_list_match(cfg->gateway.trusted_proxies,
		        cfg->gateway.n_trusted_proxies, hop))
			return;
	}
}

static int
request_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= 128 ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == ':' || c == '-'))
			return 0;
	}
	return n > 0;
}

static void
assign_request_id(struct gateway *gw, struct request *r)
{
	const char *name = gw->cfg->gateway.request_id_header;
	const char *v = request_header(r, name);

	if (v != NULL && hdrs_count(&r->headers, name) == 1 && request_id_ok(v))
		snprintf(r->request_id, sizeof r->request_id, "%s", v);
	else
		snprintf(r->request_id, sizeof r->request_id, "%016llx%016llx",
		    (unsigned long long)rng_next(gw),
		    (unsigned long long)rng_next(gw));
	hdrs_add(&r->resp_headers, name, r->request_id);
}

static int
respond_health_or_continue(struct gateway *gw, struct request *r)
{
	int up;
	struct buf *b = &gw->scratch;

	if (strcmp(r->raw_path, "/_health") != 0 ||
	    !cidr_list_match(gw->cfg->gateway.internal_allow,
	        gw->cfg->gateway.n_internal_allow, r->client_ip))
		return 0;
	up = store_ping(gw->store);
	buf_reset(b);
	buf_printf(b,
	    "{\"status\":\"%s\",\"redis\":\"%s\",\"version\":\"%s\","
	    "\"pid\":%ld,\"routes\":%zu}\n",
	    up ? "ok" : "degraded", up ? "up" : "down", PACKAGE_VERSION,
	    (long)getpid(), gw->cfg->n_routes);
	request_respond_json(r, up ? 200 : 503, b->p, b->len);
	return 1;
}

/* ---- authentication and rate limiting (steps 5 and 6) ----------------------
 */

static void
respond_unauthorized(struct gateway *gw, struct request *r, const char *error,
    const char *detail)
{
	char v[160];

	snprintf(v, sizeof v, "ApiKey header=\"%s\"", gw->cfg->api_keys.header);
	hdrs_add(&r->resp_headers, "WWW-Authenticate", v);
	request_respond_problem(r, 401, error, detail, NULL, NULL);
}

/*
 * Steps 5 and 6.  Returns 1 when the request may go on, 0 when it was
 * answered.
 */
static int
auth_and_limit_or_respond(struct gateway *gw, struct request *r)
{
	const struct config *cfg = gw->cfg;
	const struct route *rt = r->route;
	const struct auth_entry *cached = NULL;
	char hash[KEYS_HASH_HEX + 1], tag[KEYSPACE_TAG_LEN];
	const char *argv[RL_MAX_ARGS];
	size_t argvlen[RL_MAX_ARGS];
	struct rl_query q;
	struct rl_result res;
	struct store_cmd cmd;
	struct store_batch batch;
	const struct store_val *reply;
	const char *why = NULL;
	int nkeys, argc, ok = 0;
	time_t now = time(NULL);

	memset(&q, 0, sizeof q);
	memset(&res, 0, sizeof res);
	store_batch_init(&batch);
	reply = store_batch_reply(&batch, 0);
	q.cfg = cfg;
	q.route = rt;

	if (rt->require_auth) {
		switch (auth_key_from_request(r, cfg->api_keys.header, hash)) {
		case AUTH_KEY_OK: break;
		case AUTH_KEY_MISSING:
			respond_unauthorized(gw, r, "missing API key",
			    "this route requires an API key");
			return 0;
		case AUTH_KEY_DUPLICATE:
			respond_unauthorized(gw, r, "invalid API key",
			    "the API key header must appear once");
			return 0;
		case AUTH_KEY_MALFORMED:
			respond_unauthorized(gw, r, "invalid API key",
			    "the API key is not valid");
			return 0;
		}
		cached = auth_cache_get(
		    gw->keys, hash, now, cfg->api_keys.cache_ttl_s);
		if (cached != NULL && cached->expires > 0 &&
		    now >= cached->expires) {
			respond_unauthorized(gw, r, "invalid API key",
			    "the API key has expired");
			return 0;
		}
		keyspace_tag_key(tag, hash);
		q.key_hash = hash;
		q.lookup_key = cached == NULL;
		q.key_policy = cached != NULL && cached->policy.present
		    ? &cached->policy
		    : NULL;
		if (cached != NULL) {
			snprintf(r->key_id, sizeof r->key_id, "%s", cached->id);
			snprintf(r->key_name, sizeof r->key_name, "%s",
			    cached->name);
		}
	} else
		keyspace_tag_ip(tag, r->client_ip);
	q.tag = tag;

	buf_reset(&gw->rlargs);
	nkeys =
	    ratelimit_build(&q, &gw->rlargs, argv, argvlen, RL_MAX_ARGS, &argc);
	if (nkeys < 0) {
		request_respond_problem(r, 500, "internal error",
		    "rate-limit arguments do not fit", NULL, NULL);
		return 0;
	}
	cmd.script = STORE_SCRIPT_RATELIMIT;
	cmd.nkeys = nkeys;
	cmd.argc = argc;
	cmd.argv = argv;
	cmd.argvlen = argvlen;
	if (store_exec(gw->store, &cmd, 1, &batch, &why) == 0)
		reply = store_batch_reply(&batch, 0);
	if (why != NULL || reply->type == STORE_ERR ||
	    ratelimit_parse(reply, &res) != 0) {
		static time_t last;

		log_ratelimited(&last, LOG_LVL_ERROR, "redis: %s",
		    reply->type == STORE_ERR ? reply->str
		        : why != NULL        ? why
		                             : "malformed rate-limit reply");
		if (q.lookup_key) {
			/* Authentication never fails open. */
			request_respond_problem(r, 503, "service unavailable",
			    "the API key cannot be checked right now", NULL,
			    NULL);
			goto out;
		}
		if (cfg->redis.fail_closed) {
			request_respond_problem(r, 503, "service unavailable",
			    "the rate limiter is unavailable", NULL, NULL);
			goto out;
		}
		gw->redis_bypassed++;
		ok = 1;
		goto out;
	}

	switch (res.status) {
	case RL_KEY_UNKNOWN:
		respond_unauthorized(
		    gw, r, "invalid API key", "the API key is not valid");
		goto out;
	case RL_KEY_REVOKED:
		respond_unauthorized(
		    gw, r, "invalid API key", "the API key has been revoked");
		goto out;
	case RL_KEY_EXPIRED:
		respond_unauthorized(
		    gw, r, "invalid API key", "the API key has expired");
		goto out;
	case RL_ADMITTED:
	case RL_REJECTED: break;
	}
	if (res.have_record) {
		auth_cache_put(gw->keys, hash, &res.record, now);
		snprintf(r->key_id, sizeof r->key_id, "%s", res.record.id);
		snprintf(
		    r->key_name, sizeof r->key_name, "%s", res.record.name);
	}
	ratelimit_headers(&res, &r->resp_headers);
	if (res.status == RL_REJECTED) {
		struct buf *b = &gw->scratch;

		buf_reset(b);
		buf_puts(b, "\"violated-policies\":");
		ratelimit_violated_json(&res, b);
		request_respond_problem(r, 429, "rate limit exceeded",
		    "too many requests; retry after the time in Retry-After",
		    QUOTA_EXCEEDED_TYPE, b->p);
		goto out;
	}
	ok = 1;
out:
	store_batch_cleanup(&batch);
	ratelimit_result_cleanup(&res);
	return ok;
}

/* ---- forwarding (step 9)
 * ------------------------------------------------------ */

/* Percent-encodes what may not stand raw in a URL path. */
static void
append_path(struct buf *b, const char *p)
{
	static const char ok[] = "-._~!$&'()*+,;=:@/%";
	const unsigned char *u = (const unsigned char *)p;

	for (; *u != '\0'; u++) {
		if ((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
		    (*u >= '0' && *u <= '9') || strchr(ok, *u) != NULL)
			buf_putc(b, (char)*u);
		else
			buf_printf(b, "%%%02X", *u);
	}
}

static int
drop_on_forward(const struct config *cfg, const char *name)
{
	static const char *const fixed[] = {
	    "Host",
	    "Content-Length",
	    "Expect",
	    "Proxy",
	    "X-Forwarded-For",
	    "X-Forwarded-Proto",
	    "X-Forwarded-Host",
	};
	size_t i;

	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (strcasecmp(name, fixed[i]) == 0)
			return 1;
	return strcasecmp(name, cfg->api_keys.header) == 0 ||
	    strcasecmp(name, cfg->gateway.request_id_header) == 0 ||
	    strncasecmp(name, "X-Consumer-", 11) == 0;
}

static void
build_forward_headers(struct gateway *gw, struct request *r)
{
	const struct config *cfg = gw->cfg;
	struct hdrs *f = &gw->fwd;
	const char *xff;
	size_t i;

	hdrs_reset(f);
	for (i = 0; i < r->headers.n; i++)
		if (!drop_on_forward(cfg, r->headers.v[i].name))
			hdrs_add(
			    f, r->headers.v[i].name, r->headers.v[i].value);
	hdrs_strip_hop_by_hop(f);

	xff = request_header(r, "X-Forwarded-For");
	buf_reset(&gw->scratch);
	if (xff != NULL && *xff != '\0')
		buf_printf(&gw->scratch, "%s, %s", xff, r->remote_addr);
	else
		buf_puts(&gw->scratch, r->remote_addr);
	hdrs_add(f, "X-Forwarded-For", buf_cstr(&gw->scratch));
	hdrs_add(f, "X-Forwarded-Proto", r->scheme);
	if (r->host[0] != '\0')
		hdrs_add(f, "X-Forwarded-Host", r->host);
	hdrs_add(f, cfg->gateway.request_id_header, r->request_id);
	if (r->key_id[0] != '\0') {
		hdrs_add(f, "X-Consumer-ID", r->key_id);
		hdrs_add(f, "X-Consumer-Name", r->key_name);
	}
}

static void
forward(struct gateway *gw, struct request *r)
{
	const struct config *cfg = gw->cfg;
	const struct route *rt = r->route;
	struct proxy_outcome out;
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
	buf_puts(&gw->url, rt->backend);
	append_path(&gw->url, router_forward_path(rt, r->path));
	if (r->query != NULL) {
		buf_putc(&gw->url, '?');
		buf_puts(&gw->url, r->query);
	}
	build_forward_headers(gw, r);

	proxy_forward(gw->proxy, cfg, r, gw->url.p, &gw->fwd, &out);
	switch (out.result) {
	case PROXY_OK:
	case PROXY_ABORTED:
	case PROXY_CLIENT_GONE: break;
	case PROXY_TIMEOUT:
		request_respond_problem(
		    r, 504, "backend timeout", out.detail, NULL, NULL);
		break;
	case PROXY_CONNECT_FAILED:
		request_respond_problem(
		    r, 502, "backend unreachable", out.detail, NULL, NULL);
		break;
	case PROXY_BAD_RESPONSE:
		request_respond_problem(
		    r, 502, "bad backend response", out.detail, NULL, NULL);
		break;
	}
	if (out.result == PROXY_CLIENT_GONE)
		r->error = "client went away";
	else if (out.result == PROXY_ABORTED)
		r->error = "backend response cut short";
}

/* ---- the pipeline
 * ------------------------------------------------------------- */

static void
pipeline(struct gateway *gw, struct request *r)
{
	const struct config *cfg = gw->cfg;
	enum normalize_result nr;
	char allow[128];

	/* 1: internal endpoints */
	if (respond_health_or_continue(gw, r))
		return;

	/* 2: normalization */
	nr = normalize_path(r->raw_path, strlen(r->raw_path), &r->path);
	if (nr != NORMALIZE_OK) {
		request_respond_problem(
		    r, 400, "bad path", normalize_strerror(nr), NULL, NULL);
		return;
	}

	/* 3: route and method */
	r->route = router_match(cfg, r->path);
	if (r->route == NULL) {
		request_respond_problem(r, 404, "route not found",
		    "no route matches this path", NULL, NULL);
		return;
	}
	if (!router_method_allowed(r->route, r->method) &&
	    !mw_is_preflight(cfg, r)) {
		http_method_list(r->route->methods, allow, sizeof allow);
		hdrs_add(&r->resp_headers, "Allow", allow);
		request_respond_problem(r, 405, "method not allowed",
		    "this route does not allow the method", NULL, NULL);
		return;
	}

	/* 4: middleware */
	if (mw_run(cfg, gw->plugins, r) == MW_DONE)
		return;

	/* 5, 6: authentication and rate limiting */
	if (!auth_and_limit_or_respond(gw, r))
		return;

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
	double ms;

	resolve_client(gw->cfg, r);
	assign_request_id(gw, r);
	/* Every response, from any step, passes the plugins' on_response;
	 * the hook keeps request.c free of plugin knowledge. */
	r->before_head = run_on_response;
	r->before_head_arg = gw->plugins;
	pipeline(gw, r);
	if (r->status == 0 && !r->client_gone)
		request_respond_problem(r, 500, "internal error",
		    "the gateway produced no response", NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	ms = (double)(end.tv_sec - r->start.tv_sec) * 1e3 +
	    (double)(end.tv_nsec - r->start.tv_nsec) / 1e6;
	access_log_write(gw->alog, r, ms, &gw->scratch);
}
