/*
 * auth.c -- key extraction and the in-process key record cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hdrs.h"
#include "keys.h"
#include "ratelimit.h"
#include "request.h"
#include "xalloc.h"

struct auth_cache {
	struct auth_entry *slot; /* direct-mapped; hash[0] == 0: empty */
	size_t n;
};

enum auth_key_state
auth_key_from_request(const struct request *r, const char *header_name,
    char hash[KEYS_HASH_HEX + 1])
{
	const char *v;
	size_t n = hdrs_count(&r->headers, header_name);

	if (n == 0)
		return AUTH_KEY_MISSING;
	v = hdrs_get(&r->headers, header_name);
	/* A web server may fold repeated fields into one "a, b" value. */
	if (n > 1 || strchr(v, ',') != NULL)
		return AUTH_KEY_DUPLICATE;
	if (*v == '\0')
		return AUTH_KEY_MISSING;
	if (!keys_format_ok(v, strlen(v)))
		return AUTH_KEY_MALFORMED;
	keys_hash(v, strlen(v), hash);
	return AUTH_KEY_OK;
}

struct auth_cache *
auth_cache_new(size_t slots)
{
	struct auth_cache *c = xcalloc(1, sizeof *c);

	c->n = slots > 0 ? slots : 1;
	c->slot = xcalloc(c->n, sizeof *c->slot);
	return c;
}

void
auth_cache_free(struct auth_cache *c)
{
	if (c == NULL)
		return;
	free(c->slot);
	free(c);
}

static struct auth_entry *
slot_for(struct auth_cache *c, const char *hash)
{
	/* The hash is uniformly distributed: its first 8 hex digits index. */
	unsigned long v = 0;
	int i;

	for (i = 0; i < 8; i++) {
		char ch = hash[i];

		v = v * 16 +
		    (unsigned long)(ch >= 'a' ? ch - 'a' + 10
		            : ch >= 'A'       ? ch - 'A' + 10
		                              : ch - '0');
	}
	return &c->slot[v % c->n];
}

const struct auth_entry *
auth_cache_get(struct auth_cache *c, const char *hash, time_t now, long ttl_s)
{
	struct auth_entry *e = slot_for(c, hash);

	if (e->hash[0] == '\0' || !keys_equal(e->hash, hash, KEYS_HASH_HEX))
		return NULL;
	if (now - e->fetched >= ttl_s || now < e->fetched) {
		e->hash[0] = '\0';
		return NULL;
	}
	return e;
}

void
auth_cache_put(struct auth_cache *c, const char *hash,
    const struct rl_key_record *rec, time_t now)
{
	struct auth_entry *e = slot_for(c, hash);

	memset(e, 0, sizeof *e);
	memcpy(e->hash, hash, KEYS_HASH_HEX);
	snprintf(e->id, sizeof e->id, "%s", rec->id);
	snprintf(e->name, sizeof e->name, "%s", rec->name);
	e->expires = rec->expires;
	e->policy = rec->policy;
	e->policy.name = NULL;
	e->fetched = now;
}
