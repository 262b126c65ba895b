/*
 * auth -- API-key authentication support for pipeline step 5: finding the
 * key in the request, and the process's cache of key records.
 *
 * The record itself is fetched by the rate-limit script in the same Redis
 * call (ratelimit.h), so a cache miss costs no extra round trip and a hit
 * costs none for the lookup.  Entries live api_keys.cache_ttl_s seconds, so
 * a revoked key stops working within that time.  The cache is keyed by the
 * SHA-256 of the key; the secret itself is never kept.
 */
#ifndef APIGW_AUTH_H
#define APIGW_AUTH_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "keys.h"

struct request;
struct rl_key_record;

enum auth_key_state {
	AUTH_KEY_OK = 0, /* exactly one well-formed key */
	AUTH_KEY_MISSING,
	AUTH_KEY_DUPLICATE, /* the header appears more than once */
	AUTH_KEY_MALFORMED, /* cannot be a key: no lookup needed */
};

/*
 * Finds the key in r's header called header_name and, when it is OK,
 * writes its SHA-256 hex into hash.
 */
enum auth_key_state auth_key_from_request(const struct request *r,
    const char *header_name, char hash[KEYS_HASH_HEX + 1]);

struct auth_entry {
	char hash[KEYS_HASH_HEX + 1];
	char id[33];
	char name[129];
	long long expires;       /* Unix seconds, 0 = never */
	struct rl_policy policy; /* present == 0: none; name is NULL */
	time_t fetched;
};

struct auth_cache;

/* Returns a cache with room for slots entries.  Never NULL. */
struct auth_cache *auth_cache_new(size_t slots);
void auth_cache_free(struct auth_cache *c);
/* Returns the fresh entry for hash, or NULL.  Borrowed until the next put. */
const struct auth_entry *auth_cache_get(
    struct auth_cache *c, const char *hash, time_t now, long ttl_s);
void auth_cache_put(struct auth_cache *c, const char *hash,
    const struct rl_key_record *rec, time_t now);

#endif
