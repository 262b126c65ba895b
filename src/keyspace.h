/*
 * keyspace -- the one place that spells the gateway's Redis key names.
 *
 * Every name starts with the configured redis.key_prefix ("apigw:" by
 * default).  Client identities, API keys, URLs and anything else a client
 * controls never appear in a name as such: only their SHA-256 in lower-case
 * hex does, so a name is always printable, bounded and free of glob or
 * hash-tag characters.  Keys that one Lua script touches together share a
 * {hash tag}, so each script call stays within one Redis Cluster slot.
 *
 *	<prefix>{k:<hash64>}:rec                 API key record (hash)
 *	<prefix>{<tag>}:rl:k:<w>                 the key's own policy
 *	<prefix>{<tag>}:rl:r:<route_id>:<w>      a route's policy
 *	<prefix>{<tag>}:rl:d:<w>                 the default policy
 *	<prefix>keyid:<id>                       key id -> hash64 (apigw-keys)
 *	<prefix>keys                             set of key ids (apigw-keys)
 *	<prefix>{c:<res64>}:v                    a cached resource's Vary names
 *	<prefix>{c:<res64>}:e:<var40>            a cache entry (one variant)
 *	<prefix>{c:<res64>}:l:<var40>            its fill lock (stampede bound)
 *	<prefix>c:live                           zset: every entry name, scored
 *	                                         by its expiry (Unix ms)
 *	<prefix>c:p:<path64>                     zset: the entries of one
 *	                                         client-facing path, members
 *	                                         "<entry name> <qh40>"
 *	<prefix>c:r:<route_id>                   zset: the path zsets of a route
 *	<prefix>{b:<url32>}                      circuit breaker of one
 *	                                         backend URL (hash)
 *	<prefix>{b:<url32>}:t                    its half-open trial lease
 *	<prefix>{b:<url32>}:c:<route_id>:<host32>
 *	                                         zset: in-flight requests of
 *	                                         a route on one host (the
 *	                                         bulkhead), scored by expiry
 *	<prefix>m:<name>                         metric counter (reserved)
 *
 * <tag> is "k:<hash64>" (hash64: the SHA-256 of the API key) for an
 * authenticated request and "i:<hash32>" (hash32: the first 32 hex digits
 * of the SHA-256 of the client IP) otherwise; <w> is s, m, h or d (the
 * window); <route_id> is the route's 16 hex digits (config.h); <id> a key
 * id (16 lower-case hex); <name> a metric name made by the code, of
 * [a-z0-9_.:-] only.  "reserved": laid out for modules to come.
 *
 * Breaker names: <url32> is the keyspace_short_hash of the route's backend
 * URL as configured, <host32> that of the host name (gethostname).  The
 * bulkhead set shares the backend's tag so that one script call checks
 * the breaker and takes a slot.
 *
 * Cache names: <res64> is the SHA-256 cache key of the resource (method
 * class, host, normalized path, query, API key hash, route generation;
 * cache_policy.h) without Vary; <var40> the SHA-1 of the Vary-selected
 * request values (computed alike by C and by src/lua/cache.lua); <path64>
 * the SHA-256 of "<route_id>\n<normalized path>"; <qh40> the SHA-1 of
 * "?<query>" ("" when the request had no '?').
 *
 * Each function appends one name to out and returns BUF_OK; BUF_TOO_BIG
 * when out's limit is reached (buf.h), or -1 without touching out when an
 * argument does not have its documented shape.  For example:
 *
 *	keyspace_tag_ip(tag, "192.0.2.1");
 *	keyspace_rl_route(&b, "apigw:", tag, "0011223344556677", RL_MINUTE);
 *	    // "apigw:{i:<32 hex>}:rl:r:0011223344556677:m"
 */
#ifndef APIGW_KEYSPACE_H
#define APIGW_KEYSPACE_H

#include <stddef.h>

#include "config.h"

struct buf;

#define KEYSPACE_HASH_HEX 64                         /* full SHA-256 in hex */
#define KEYSPACE_SHORT_HEX 32                        /* its first half */
#define KEYSPACE_TAG_LEN (2 + KEYSPACE_HASH_HEX + 1) /* "k:" hash NUL */

/* The window letter of a counter name ('s', 'm', 'h' or 'd'). */
char keyspace_window_suffix(enum rl_window w);

/* Writes "k:<key_hash>" into tag.  -1 (tag "") unless key_hash is hash64. */
int keyspace_tag_key(char tag[KEYSPACE_TAG_LEN], const char *key_hash);
/* Writes "i:<hash32 of ip>" into tag; ip is any string (it is hashed). */
void keyspace_tag_ip(char tag[KEYSPACE_TAG_LEN], const char *ip);
/* Returns 1 when tag has the shape of a tag made by the two above. */
int keyspace_tag_ok(const char *tag);
/* Writes the first 32 hex digits of the SHA-256 of data into out. */
void keyspace_short_hash(
    const void *data, size_t len, char out[KEYSPACE_SHORT_HEX + 1]);

/* <prefix>{k:<key_hash>}:rec */
int keyspace_key_record(
    struct buf *out, const char *prefix, const char *key_hash);
/* <prefix>{<tag>}:rec: the record slot named by any tag (the rate-limit
 * script always gets one, so each call names a key of its slot). */
int keyspace_tag_record(struct buf *out, const char *prefix, const char *tag);
/* <prefix>{<tag>}:rl:k:<w> */
int keyspace_rl_key(
    struct buf *out, const char *prefix, const char *tag, enum rl_window w);
/* <prefix>{<tag>}:rl:r:<route_id>:<w> */
int keyspace_rl_route(struct buf *out, const char *prefix, const char *tag,
    const char *route_id, enum rl_window w);
/* <prefix>{<tag>}:rl:d:<w> */
int keyspace_rl_default(
    struct buf *out, const char *prefix, const char *tag, enum rl_window w);
/*
 * A SCAN MATCH pattern for every counter of tag, whatever the policy,
 * route or window: <prefix>{<tag>}:rl:* (glob characters of the prefix
 * escaped).
 */
int keyspace_rl_pattern(struct buf *out, const char *prefix, const char *tag);
/* <prefix>keyid:<id> */
int keyspace_key_index(struct buf *out, const char *prefix, const char *id);
/* <prefix>keys */
int keyspace_key_set(struct buf *out, const char *prefix);
/* <prefix>{c:<res64>}: the base the cache script appends ":v", ":e:<var>"
 * and ":l:<var>" to. */
int keyspace_cache_base(struct buf *out, const char *prefix, const char *res64);
/* <prefix>{c:<res64>}:e:<var40> and <prefix>{c:<res64>}:l:<var40>. */
int keyspace_cache_entry(
    struct buf *out, const char *prefix, const char *res64, const char *var40);
int keyspace_cache_lock(
    struct buf *out, const char *prefix, const char *res64, const char *var40);
/* <prefix>c:live */
int keyspace_cache_live(struct buf *out, const char *prefix);
/* <prefix>c:p:<path64> */
int keyspace_cache_path(
    struct buf *out, const char *prefix, const char *path64);
/* <prefix>c:r:<route_id> */
int keyspace_cache_route(
    struct buf *out, const char *prefix, const char *route_id);
/* path64 of a route id and a normalized path; qh40 of a query (NULL: no
 * '?'); SHA-1 hex of any bytes (var40). */
void keyspace_cache_path_hash(
    const char *route_id, const char *path, char out[KEYSPACE_HASH_HEX + 1]);
void keyspace_cache_query_hash(const char *query, char out[41]);
void keyspace_sha1_hex(const void *data, size_t len, char out[41]);
/* <prefix>{b:<url_hash>}; url_hash: keyspace_short_hash of the URL. */
int keyspace_breaker(struct buf *out, const char *prefix, const char *url_hash);
/* <prefix>{b:<url_hash>}:t */
int keyspace_breaker_lease(
    struct buf *out, const char *prefix, const char *url_hash);
/* <prefix>{b:<url_hash>}:c:<route_id>:<host_hash>; host_hash: hash32. */
int keyspace_bulkhead(struct buf *out, const char *prefix, const char *url_hash,
    const char *route_id, const char *host_hash);
/* <prefix>m:<name> */
int keyspace_metric(struct buf *out, const char *prefix, const char *name);

#endif
