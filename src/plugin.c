/*
 * plugin.c -- dlopen, the host callbacks and the hook runners.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apigw/plugin.h>

#include "config.h"
#include "forward.h"
#include "hdrs.h"
#include "log.h"
#include "plugin.h"
#include "request.h"
#include "xalloc.h"

struct plugin {
	void *dl;
	const struct apigw_plugin *api; /* inside dl */
	void *state;                    /* from init */
	const char *name;               /* api->name, or the path */
};

struct plugins {
	struct plugin *v; /* owned array, config order */
	size_t n;
};

/*
 * What a plugin gets as its request: the request plus what the current
 * call may do with it, so that a hook cannot answer twice or answer from
 * on_response (the head is being written then).
 */
struct apigw_req {
	struct request *r;
	const struct plugin *pl;
	int in_on_request; /* set_header and respond allowed */
	int responded;
};

/* The plugin being called, named in its host->log lines.  Processes are
 * single-threaded and call one plugin at a time. */
static const char *current_name;

/* ---- host callbacks ------------------------------------------------------ */

static const char *
host_method(const struct apigw_req *q)
{
	return q->r->method;
}

static const char *
host_path(const struct apigw_req *q)
{
	return q->r->path != NULL ? q->r->path : q->r->raw_path;
}

static const char *
host_client_ip(const struct apigw_req *q)
{
	return q->r->client_ip;
}

static const char *
host_header(const struct apigw_req *q, const char *name)
{
	return name != NULL ? request_header(q->r, name) : NULL;
}

static const char *
host_request_id(const struct apigw_req *q)
{
	return q->r->request_id;
}

static int
host_set_header(struct apigw_req *q, const char *name, const char *value)
{
	/* The gateway reads the framing fields itself (r->host borrows the
	 * Host value; the others frame the body): a plugin must not change
	 * them under it. */
	if (!q->in_on_request || name == NULL || value == NULL ||
	    forward_header_class(NULL, name) == FORWARD_FRAMING)
		return -1;
	if (*value != '\0')
		return hdrs_set(&q->r->headers, name, value);
	/* Removal: hdrs_set checks the name, so a bad one is refused here
	 * as it would be when setting. */
	if (hdrs_set(&q->r->headers, name, "") != 0)
		return -1;
	hdrs_del(&q->r->headers, name);
	return 0;
}

static int
host_add_response_header(
    struct apigw_req *q, const char *name, const char *value)
{
	if (name == NULL || value == NULL)
		return -1;
	return hdrs_add(&q->r->resp_headers, name, value);
}

static void
host_respond(struct apigw_req *q, int status, const char *content_type,
    const char *body, size_t len)
{
	struct request *r = q->r;
	struct hdrs h;
	char clen[32];
	int nobody;

	if (!q->in_on_request || q->responded || r->status != 0) {
		log_error("plugin %s: respond() outside on_request or twice; "
		          "ignored",
		    q->pl->name);
		return;
	}
	q->responded = 1;
	if (status < 200 || status > 599) {
		log_error("plugin %s: respond() with status %d; sending 500",
		    q->pl->name, status);
		request_respond_problem(r, 500, "internal error",
		    "a plugin produced an invalid response", NULL, NULL);
		return;
	}
	if (status >= 400)
		r->error = q->pl->name;
	nobody = status == 204 || status == 304;
	hdrs_init(&h);
	if (content_type != NULL && !nobody &&
	    hdrs_add(&h, "Content-Type", content_type) != 0)
		log_warn("plugin %s: bad Content-Type dropped", q->pl->name);
	if (!nobody) {
		snprintf(clen, sizeof clen, "%zu", body != NULL ? len : 0);
		hdrs_add(&h, "Content-Length", clen);
	}
	if (request_send_head(r, status, &h) == 0 && !nobody && body != NULL &&
	    len > 0 && strcmp(r->method, "HEAD") != 0)
		request_write(r, body, len);
	hdrs_cleanup(&h);
}

static const char *
host_config_string(const void *conf, const char *name)
{
	return config_plugin_string(conf, name);
}

static int
host_config_int(const void *conf, const char *name, long long *out)
{
	return config_plugin_int(conf, name, out);
}

static void
host_log(int level, const char *msg)
{
	if (level < LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	if (level > LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	log_msg((enum log_level)level, "plugin %s: %s",
	    current_name != NULL ? current_name : "?", msg != NULL ? msg : "");
}

static const struct apigw_host host = {
    .abi = APIGW_PLUGIN_ABI,
    .method = host_method,
    .path = host_path,
    .client_ip = host_client_ip,
    .header = host_header,
    .set_header = host_set_header,
    .add_response_header = host_add_response_header,
    .respond = host_respond,
    .config_string = host_config_string,
    .config_int = host_config_int,
    .log = host_log,
    .request_id = host_request_id,
};

/* ---- loading ------------------------------------------------------------- */

static void
plugin_unload(struct plugin *pl)
{
	if (pl->api != NULL && pl->api->fini != NULL) {
		current_name = pl->name;
		pl->api->fini(pl->state);
		current_name = NULL;
	}
	if (pl->dl != NULL)
		dlclose(pl->dl);
	memset(pl, 0, sizeof *pl);
}

/*
 * Loads one plugin into *pl.  Returns 0, or -1 with *why set (owned) and
 * nothing left loaded.
 */
static int
plugin_load(struct plugin *pl, const struct plugin_conf *pc, char **why)
{
	const struct apigw_plugin *api;
	int rc = -1;

	memset(pl, 0, sizeof *pl);
	pl->name = pc->path;
	pl->dl = dlopen(pc->path, RTLD_NOW | RTLD_LOCAL);
	if (pl->dl == NULL) {
		const char *e = dlerror();

		*why = xasprintf("cannot load: %s", e != NULL ? e : "dlopen");
		goto out;
	}
	api = dlsym(pl->dl, "apigw_plugin");
	if (api == NULL) {
		*why = xstrdup("no `apigw_plugin` symbol: not an apigw plugin");
		goto out;
	}
	/* Read abi before anything else: a plugin for another ABI may have
	 * a struct of another shape. */
	if (api->abi != APIGW_PLUGIN_ABI) {
		*why = xasprintf("built for plugin ABI %d, this apigw needs "
		                 "ABI %d: rebuild it against this apigw's "
		                 "<apigw/plugin.h>",
		    api->abi, APIGW_PLUGIN_ABI);
		goto out;
	}
	if (api->init == NULL ||
	    (api->on_request == NULL && api->on_response == NULL)) {
		*why = xstrdup("apigw_plugin needs init and on_request or "
		               "on_response");
		goto out;
	}
	if (api->name != NULL && api->name[0] != '\0')
		pl->name = api->name;
	current_name = pl->name;
	if (api->init(&host, pc->setting, &pl->state) != 0) {
		current_name = NULL;
		*why =
		    xasprintf("plugin %s refused its configuration", pl->name);
		goto out;
	}
	current_name = NULL;
	pl->api = api; /* loaded: from now on fini must run */
	rc = 0;
out:
	if (rc != 0)
		plugin_unload(pl);
	return rc;
}

struct plugins *
plugins_load(const struct config *cfg, char **err)
{
	struct plugins *ps = xcalloc(1, sizeof *ps);
	char *why = NULL;
	size_t i;

	*err = NULL;
	if (cfg->n_plugins > 0)
		ps->v = xcalloc(cfg->n_plugins, sizeof *ps->v);
	for (i = 0; i < cfg->n_plugins; i++) {
		const struct plugin_conf *pc = &cfg->plugins[i];

		if (plugin_load(&ps->v[i], pc, &why) != 0) {
			*err = xasprintf("%s:%d: plugins: %s: %s", cfg->path,
			    pc->line, pc->path, why);
			free(why);
			plugins_free(ps);
			return NULL;
		}
		ps->n++;
	}
	return ps;
}

void
plugins_free(struct plugins *ps)
{
	if (ps == NULL)
		return;
	while (ps->n > 0)
		plugin_unload(&ps->v[--ps->n]);
	free(ps->v);
	free(ps);
}

/* ---- hooks --------------------------------------------------------------- */

enum mw_result
plugins_on_request(struct plugins *ps, struct request *r)
{
	struct apigw_req q;
	enum apigw_plugin_result res;
	size_t i;

	for (i = 0; ps != NULL && i < ps->n; i++) {
		const struct plugin *pl = &ps->v[i];

		if (pl->api->on_request == NULL)
			continue;
		memset(&q, 0, sizeof q);
		q.r = r;
		q.pl = pl;
		q.in_on_request = 1;
		current_name = pl->name;
		res = pl->api->on_request(pl->state, &q);
		current_name = NULL;
		if (res == APIGW_DONE && r->status == 0 && !r->client_gone) {
			log_error("plugin %s: returned done without "
			          "responding",
			    pl->name);
			request_respond_problem(r, 500, "internal error",
			    "a plugin produced no response", NULL, NULL);
		}
		/* A plugin that answered but said continue is done too: the
		 * head is out, nothing else may answer. */
		if (res == APIGW_DONE || r->status != 0)
			return MW_DONE;
	}
	return MW_CONTINUE;
}

void
plugins_on_response(struct plugins *ps, struct request *r, int status)
{
	struct apigw_req q;
	const char *saved;
	size_t i;

	for (i = 0; ps != NULL && i < ps->n; i++) {
		const struct plugin *pl = &ps->v[i];

		if (pl->api->on_response == NULL)
			continue;
		memset(&q, 0, sizeof q);
		q.r = r;
		q.pl = pl;
		/* Restored after: a plugin's respond() runs these hooks
		 * from inside its on_request. */
		saved = current_name;
		current_name = pl->name;
		pl->api->on_response(pl->state, &q, status);
		current_name = saved;
	}
}
