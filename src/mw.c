/*
 * mw.c -- CORS, the plugins' turn, and the access log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "hdrs.h"
#include "log.h"
#include "mw.h"
#include "plugin.h"
#include "request.h"
#include "xalloc.h"

/* ---- CORS ---------------------------------------------------------------- */

/* Returns the Access-Control-Allow-Origin value for origin, or NULL. */
static const char *
cors_allow_origin(const struct config *cfg, const char *origin)
{
	size_t i;

	for (i = 0; i < cfg->cors.n_allow_origins; i++) {
		if (strcmp(cfg->cors.allow_origins[i], "*") == 0)
			return "*";
		if (strcasecmp(cfg->cors.allow_origins[i], origin) == 0)
			return origin;
	}
	return NULL;
}

int
mw_is_preflight(const struct config *cfg, const struct request *r)
{
	return cfg->cors.enabled && strcmp(r->method, "OPTIONS") == 0 &&
	    request_header(r, "Origin") != NULL &&
	    request_header(r, "Access-Control-Request-Method") != NULL;
}

static enum mw_result
mw_cors(const struct config *cfg, struct request *r)
{
	const char *origin, *allow;
	struct hdrs h;
	char age[32];

	if (!cfg->cors.enabled)
		return MW_CONTINUE;
	origin = request_header(r, "Origin");
	if (origin == NULL)
		return MW_CONTINUE;
	allow = cors_allow_origin(cfg, origin);
	if (allow != NULL) {
		hdrs_set(
		    &r->resp_headers, "Access-Control-Allow-Origin", allow);
		if (strcmp(allow, "*") != 0)
			hdrs_add(&r->resp_headers, "Vary", "Origin");
	}
	if (!mw_is_preflight(cfg, r))
		return MW_CONTINUE;

	/* A preflight is answered here, allowed or not: a disallowed origin
	 * simply gets no Access-Control-Allow-* fields, which the browser
	 * treats as a refusal. */
	hdrs_init(&h);
	if (allow != NULL) {
		hdrs_add(&h, "Access-Control-Allow-Methods",
		    cfg->cors.allow_methods);
		hdrs_add(&h, "Access-Control-Allow-Headers",
		    cfg->cors.allow_headers);
		snprintf(age, sizeof age, "%ld", cfg->cors.max_age_s);
		hdrs_add(&h, "Access-Control-Max-Age", age);
	}
	hdrs_add(&h, "Content-Length", "0");
	request_send_head(r, 204, &h);
	hdrs_cleanup(&h);
	return MW_DONE;
}

static const struct {
	/* Names the entry for the reader; nothing looks it up (yet). */
	/* cppcheck-suppress unusedStructMember */
	const char *name;
	enum mw_result (*handle)(const struct config *, struct request *);
} mw_builtin[] = {
    {"cors", mw_cors},
};

enum mw_result
mw_run(const struct config *cfg, struct plugins *ps, struct request *r)
{
	size_t i;

	for (i = 0; i < sizeof mw_builtin / sizeof mw_builtin[0]; i++)
		if (mw_builtin[i].handle(cfg, r) == MW_DONE)
			return MW_DONE;
	return plugins_on_request(ps, r);
}

/* ---- access log ------------------------------------------------------------
 */

struct access_log {
	int fd; /* -1: off */
	int close_fd;
	enum log_format format;
};

struct access_log *
access_log_open(const struct config *cfg)
{
	struct access_log *al = xcalloc(1, sizeof *al);
	const char *dest = cfg->log.access;

	al->format = cfg->log.format;
	al->fd = -1;
	if (strcmp(dest, "off") == 0)
		return al;
	if (strcmp(dest, "stderr") == 0) {
		al->fd = STDERR_FILENO;
		return al;
	}
	al->fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (al->fd < 0) {
		int e = errno;

		log_error("access log %s: %s", dest, strerror(e));
		free(al);
		return NULL;
	}
	al->close_fd = 1;
	return al;
}

void
access_log_close(struct access_log *al)
{
	if (al == NULL)
		return;
	if (al->close_fd)
		close(al->fd);
	free(al);
}

/* Appends s for a combined-format field: '"', '\' and bytes outside
 * printable ASCII become \xHH, as Apache and lighttpd do. */
static void
clf_escape(struct buf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	for (; *u != '\0'; u++) {
		if (*u < 0x20 || *u >= 0x7f || *u == '"' || *u == '\\')
			buf_printf(b, "\\x%02x", *u);
		else
			buf_putc(b, (char)*u);
	}
}

/* Appends "name":"value" (null for NULL); any bytes in value, a client's
 * included, give valid JSON. */
static void
json_field(struct buf *b, const char *name, const char *value, int comma)
{
	if (comma)
		buf_putc(b, ',');
	buf_printf(b, "\"%s\":", name);
	if (value == NULL) {
		buf_puts(b, "null");
		return;
	}
	buf_putc(b, '"');
	buf_json_escape(b, value);
	buf_putc(b, '"');
}

void
access_log_write(struct access_log *al, const struct request *r,
    double duration_ms, struct buf *b)
{
	const char *path = r->path != NULL ? r->path : r->raw_path;
	const char *route = r->route != NULL ? r->route->prefix : NULL;
	const char *ref = request_header(r, "Referer");
	const char *ua = request_header(r, "User-Agent");
	struct tm tm;
	char ts[64];
	ssize_t n;

	if (al == NULL || al->fd < 0)
		return;
	buf_reset(b);
	localtime_r(&r->start_wall, &tm);
	if (al->format == LOG_FORMAT_JSON) {
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S%z", &tm);
		buf_putc(b, '{');
		json_field(b, "time", ts, 0);
		json_field(b, "client", r->client_ip, 1);
		json_field(b, "method", r->method, 1);
		json_field(b, "path", path != NULL ? path : "", 1);
		json_field(b, "query", r->query != NULL ? r->query : "", 1);
		buf_printf(b,
		    ",\"status\":%d,\"bytes\":%lld,\"duration_ms\":%.3f"
		    ",\"redis_rt\":%d",
		    r->status, r->bytes_out, duration_ms, r->redis_round_trips);
		json_field(b, "route", route, 1);
		json_field(b, "key_id", r->key_id[0] ? r->key_id : NULL, 1);
		json_field(b, "cache", r->cache_status, 1);
		json_field(b, "request_id", r->request_id, 1);
		json_field(b, "error", r->error, 1);
		json_field(b, "referer", ref, 1);
		json_field(b, "user_agent", ua, 1);
		buf_puts(b, "}\n");
	} else {
		strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S %z", &tm);
		clf_escape(b, r->client_ip);
		buf_puts(b, " - ");
		clf_escape(b, r->key_id[0] ? r->key_id : "-");
		buf_printf(b, " [%s] \"", ts);
		clf_escape(b, r->method);
		buf_putc(b, ' ');
		clf_escape(b, r->request_uri);
		buf_printf(
		    b, " HTTP/1.1\" %d %lld \"", r->status, r->bytes_out);
		clf_escape(b, ref != NULL ? ref : "-");
		buf_puts(b, "\" \"");
		clf_escape(b, ua != NULL ? ua : "-");
		buf_printf(b, "\" %.3fms route=", duration_ms);
		clf_escape(b, route != NULL ? route : "-");
		buf_puts(b, " cache=");
		clf_escape(b, r->cache_status != NULL ? r->cache_status : "-");
		buf_puts(b, " rid=");
		clf_escape(b, r->request_id);
		buf_printf(b, " rt=%d\n", r->redis_round_trips);
	}
	n = write(al->fd, b->p, b->len);
	(void)n; /* a full disk must not fail the request */
}
