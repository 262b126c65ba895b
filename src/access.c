/*
 * access.c -- API key check and rate limits in one script call; see
 * access.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "hdrs.h"
#include "keys.h"
#include "keyspace.h"
#include "log.h"
#include "plan.h"
#include "ratelimit.h"
#include "request.h"
#include "store.h"
#include "xalloc.h"

#define QUOTA_EXCEEDED_TYPE                                                    \
	"https://iana.org/assignments/http-problem-types#quota-exceeded"
#define RL_MAX_ARGS 160

struct access {
	struct auth_cache *keys;
	struct buf args; /* backing store of argv, reused */
	struct buf scratch;
	unsigned long bypassed;

	/* The request in flight (one at a time per process). */
	const char *argv[RL_MAX_ARGS];
	size_t argvlen[RL_MAX_ARGS];
	char hash[KEYS_HASH_HEX + 1];
	char tag[KEYSPACE_TAG_LEN];
	int slot;       /* in the plan, or -1 */
	int lookup_key; /* the record comes from Redis, not the cache */
};

static void *
access_create(void)
{
	struct access *a = xcalloc(1, sizeof *a);

	a->keys = auth_cache_new(1024);
	buf_init(&a->args);
	buf_init(&a->scratch);
	a->slot = -1;
	return a;
}

static void
access_destroy(void *self)
{
	struct access *a = self;

	if (a == NULL)
		return;
	auth_cache_free(a->keys);
	buf_cleanup(&a->args);
	buf_cleanup(&a->scratch);
	free(a);
}

unsigned long
access_bypassed_count(const void *self)
{
	return ((const struct access *)self)->bypassed;
}

static enum step_rc
respond_unauthorized(struct exchange *x, const char *error, const char *detail)
{
	char v[160];

	snprintf(v, sizeof v, "ApiKey header=\"%s\"", x->cfg->api_keys.header);
	hdrs_add(&x->r->resp_headers, "WWW-Authenticate", v);
	request_respond_problem(x->r, 401, error, detail, NULL, NULL);
	return STEP_DONE;
}

static enum step_rc
access_plan(void *self, struct exchange *x)
{
	struct access *a = self;
	const struct config *cfg = x->cfg;
	struct request *r = x->r;
	const struct auth_entry *cached = NULL;
	struct rl_query q;
	struct store_cmd cmd;
	int nkeys, argc;

	a->slot = -1;
	a->lookup_key = 0;
	memset(&q, 0, sizeof q);
	q.cfg = cfg;
	q.route = r->route;

	if (r->route->require_auth) {
		switch (
		    auth_key_from_request(r, cfg->api_keys.header, a->hash)) {
		case AUTH_KEY_OK: break;
		case AUTH_KEY_MISSING:
			return respond_unauthorized(x, "missing API key",
			    "this route requires an API key");
		case AUTH_KEY_DUPLICATE:
			return respond_unauthorized(x, "invalid API key",
			    "the API key header must appear once");
		case AUTH_KEY_MALFORMED:
			return respond_unauthorized(
			    x, "invalid API key", "the API key is not valid");
		}
		cached = auth_cache_get(
		    a->keys, a->hash, x->now, cfg->api_keys.cache_ttl_s);
		if (cached != NULL && cached->expires > 0 &&
		    x->now >= cached->expires)
			return respond_unauthorized(
			    x, "invalid API key", "the API key has expired");
		if (keyspace_tag_key(a->tag, a->hash) != 0) {
			request_respond_problem(r, 500, "internal error",
			    "the API key hash is malformed", NULL, NULL);
			return STEP_DONE;
		}
		q.key_hash = a->hash;
		x->key_hash = a->hash;
		q.lookup_key = a->lookup_key = cached == NULL;
		q.key_policy = cached != NULL && cached->policy.present
		    ? &cached->policy
		    : NULL;
		if (cached != NULL) {
			snprintf(r->key_id, sizeof r->key_id, "%s", cached->id);
			snprintf(r->key_name, sizeof r->key_name, "%s",
			    cached->name);
		}
	} else
		keyspace_tag_ip(a->tag, r->client_ip);
	q.tag = a->tag;

	buf_reset(&a->args);
	nkeys = ratelimit_build(
	    &q, &a->args, a->argv, a->argvlen, RL_MAX_ARGS, &argc);
	if (nkeys < 0) {
		request_respond_problem(r, 500, "internal error",
		    "rate-limit arguments do not fit", NULL, NULL);
		return STEP_DONE;
	}
	cmd.script = STORE_SCRIPT_RATELIMIT;
	cmd.nkeys = nkeys;
	cmd.argc = argc;
	cmd.argv = a->argv;
	cmd.argvlen = a->argvlen;
	a->slot = plan_add(x->plan, &cmd);
	if (a->slot < 0) {
		request_respond_problem(r, 500, "internal error",
		    "the request's Redis batch is full", NULL, NULL);
		return STEP_DONE;
	}
	return STEP_GO;
}

/* Redis could not answer: the failure policy decides. */
static enum step_rc
redis_down(struct access *a, struct exchange *x, const char *why)
{
	static time_t last;

	log_ratelimited(&last, LOG_LVL_ERROR, "redis: %s", why);
	if (a->lookup_key) {
		/* Authentication never fails open. */
		request_respond_problem(x->r, 503, "service unavailable",
		    "the API key cannot be checked right now", NULL, NULL);
		return STEP_DONE;
	}
	if (x->cfg->redis.fail_closed) {
		request_respond_problem(x->r, 503, "service unavailable",
		    "the rate limiter is unavailable", NULL, NULL);
		return STEP_DONE;
	}
	a->bypassed++;
	return STEP_GO;
}

static enum step_rc
access_decide(void *self, struct exchange *x)
{
	struct access *a = self;
	struct request *r = x->r;
	const struct store_val *reply;
	struct rl_result res;
	enum step_rc rc = STEP_DONE;

	if (a->slot < 0)
		return STEP_GO;
	memset(&res, 0, sizeof res);
	reply = plan_reply(x->plan, a->slot);
	if (reply == NULL)
		return redis_down(
		    a, x, x->plan->why != NULL ? x->plan->why : "unreachable");
	if (reply->type == STORE_ERR)
		return redis_down(a, x, reply->str);
	if (ratelimit_parse(reply, &res) != 0) {
		rc = redis_down(a, x, "malformed rate-limit reply");
		goto out;
	}

	switch (res.status) {
	case RL_KEY_UNKNOWN:
		respond_unauthorized(
		    x, "invalid API key", "the API key is not valid");
		goto out;
	case RL_KEY_REVOKED:
		respond_unauthorized(
		    x, "invalid API key", "the API key has been revoked");
		goto out;
	case RL_KEY_EXPIRED:
		respond_unauthorized(
		    x, "invalid API key", "the API key has expired");
		goto out;
	case RL_ADMITTED:
	case RL_REJECTED: break;
	}
	if (res.have_record) {
		auth_cache_put(a->keys, a->hash, &res.record, x->now);
		snprintf(r->key_id, sizeof r->key_id, "%s", res.record.id);
		snprintf(
		    r->key_name, sizeof r->key_name, "%s", res.record.name);
	}
	ratelimit_headers(&res, &r->resp_headers);
	if (res.status == RL_REJECTED) {
		struct buf *b = &a->scratch;

		buf_reset(b);
		buf_puts(b, "\"violated-policies\":");
		ratelimit_violated_json(&res, b);
		request_respond_problem(r, 429, "rate limit exceeded",
		    "too many requests; retry after the time in Retry-After",
		    QUOTA_EXCEEDED_TYPE, b->p);
		goto out;
	}
	rc = STEP_GO;
out:
	ratelimit_result_cleanup(&res);
	return rc;
}

const struct step access_step = {
    .name = "access",
    .create = access_create,
    .destroy = access_destroy,
    .plan = access_plan,
    .decide = access_decide,
};
