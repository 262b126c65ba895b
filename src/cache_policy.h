/*
 * cache_policy -- what the shared response cache may look up, store and
 * serve, decided from headers alone.  Pure code: no I/O, no clock (the
 * caller passes `now`, Redis time in Unix seconds), no allocation but the
 * growth of the caller's buf in cache_key().
 *
 * The cache is shared by every client of the gateway, so it follows the
 * rules RFC 9111 sets for a shared cache, always choosing "do not store"
 * or "do not serve" when a header is unclear: a miss costs one backend
 * request, a wrong hit leaks one client's response to another.
 *
 * Request side (cache_request_mode):
 *	GET or HEAD on a route with cache_ttl_s > 0 is looked up, unless
 *	the request's Cache-Control says
 *	  no-store              -> BYPASS: neither looked up nor stored
 *	                           (the client asks that its exchange be kept
 *	                           nowhere);
 *	  no-cache, max-age=0   -> REFRESH: no lookup, but the fresh response
 *	                           replaces the entry (a client's "reload").
 *	"Pragma: no-cache" counts as no-cache only when the request has no
 *	Cache-Control field (RFC 9111 5.4, HTTP/1.0 clients).  A request
 *	Cache-Control that cannot be parsed gives BYPASS: it might hold a
 *	no-store.  Other request directives (max-age > 0,
 *	max-stale, min-fresh, only-if-cached) are ignored: the entry's life
 *	is the operator's route setting.  Any other method, or a route with
 *	cache_ttl_s <= 0, is OFF.
 *
 * Response side (cache_storable): stored only when every one holds:
 *	- the request was GET (a HEAD response has no body, and HEAD is
 *	  answered from GET's entry) and its Cache-Control parses and has
 *	  no no-store;
 *	- status 200;
 *	- the response's Cache-Control parses (below) and has none of
 *	  no-store, private, no-cache (with or without a field list: the
 *	  field-list forms would need the listed fields stripped, and are
 *	  simply not stored);
 *	- no Set-Cookie (a cookie is one client's, never everyone's);
 *	- a Vary that parses (below) and is not "*";
 *	- a valid Content-Length (repeated only with the same value) no
 *	  larger than max_object_bytes
 *	  (absent is allowed: the body is then measured while it streams,
 *	  and the caller must drop the copy once it passes the bound);
 *	- if the request carried Authorization, the response says public or
 *	  s-maxage (RFC 9111 3.5: the origin opts in to sharing an
 *	  authenticated answer; must-revalidate alone is not taken as that
 *	  opt-in here);
 *	- a lifetime above 0 (next).
 *
 * Lifetime: the route's cache_ttl_s, shortened by the response's s-maxage
 * when present (it is the directive meant for shared caches, so a
 * max-age next to it is ignored), else by max-age; never lengthened.
 * max-age=0 or s-maxage=0 means not stored.  Expires is ignored entirely:
 * the route's TTL is the upper bound and origins that want less send
 * max-age (which overrides Expires anyway).  A response whose Age already
 * reaches the lifetime is not stored (it would be stale on arrival).
 *
 * Cache-Control syntax (RFC 9111 5.2): comma-separated directives over
 * every Cache-Control field, empty elements skipped, names case-
 * insensitive, each `token [ "=" ( token / quoted-string ) ]` with no
 * space around "=".  Unknown directives are ignored.  Seconds are digits
 * only (quoted digits accepted); a value past 2^31 counts as 2^31 (RFC
 * 9111 1.2.2), so no arithmetic overflows.  Anything else (a stray
 * character, an unclosed quote, "max-age=1e3", "max-age=-1", a max-age
 * given twice with different values) makes the response not storable
 * rather than guessing what the origin meant.
 *
 * Vary: the field names of every Vary field, lower-cased, duplicates
 * removed, sorted, so "Accept-Encoding, accept" and "ACCEPT" +
 * "accept-encoding" give the same list ("accept", "accept-encoding").
 * Each must be a token of at most CACHE_VARY_NAME_MAX bytes and there
 * may be at most CACHE_VARY_MAX distinct names; otherwise (say, 1,000
 * names) the response is not stored, which bounds the key's size.
 *
 * Key (cache_key): an unambiguous, length-prefixed byte string of
 *	method class (HEAD is GET), host (ASCII lower-case), normalized
 *	path, query (NULL, "no query", differs from ""), the SHA-256 of the
 *	API key or none, and for each Vary name in sorted order the
 *	request's value (several fields joined with ", ", each trimmed of
 *	surrounding blanks; an absent header differs from an empty one),
 * and its SHA-256 in hex, which alone names the entry in Redis: user
 * input never forms a Redis key name.  Different API keys never share an
 * entry, and request header order does not change the key.  Example:
 *	GET example.com /a?x=1, no API key, Vary: accept-encoding, request
 *	"Accept-Encoding: gzip" gives
 *	"apigw-cache-1\nm3:GET\nh11:example.com\np2:/a\nq3:x=1\nk-\n"
 *	"v15:accept-encoding=4:gzip\n".
 *
 * Age and freshness: an entry records stored_at (Redis time) and its
 * lifetime.  Its age is max(0, now - stored_at) plus the Age the backend
 * sent when that is valid (RFC 9111 4.2.3 without the request/response
 * delay correction), so a clock that went backwards gives age 0, never a
 * negative or wrapped one; every term is capped at 2^31 s.  Fresh while
 * age < lifetime; usable stale (stale-if-error, RFC 5861) while age <
 * lifetime + the route's cache_stale_if_error_s, unless the response
 * said must-revalidate, proxy-revalidate or s-maxage (cache_stale_allowed).
 */
#ifndef APIGW_CACHE_POLICY_H
#define APIGW_CACHE_POLICY_H

#include <stddef.h>

struct buf;
struct hdrs;

#define CACHE_VARY_MAX 16      /* distinct names in a stored response's Vary */
#define CACHE_VARY_NAME_MAX 64 /* bytes of one Vary name */
#define CACHE_KEY_HEX 64       /* SHA-256 in hex */
#define CACHE_DELTA_MAX 2147483648LL /* 2^31 s: cap of every age/lifetime */

enum cache_mode {
	CACHE_OFF = 0, /* not a cacheable method, or caching off */
	CACHE_LOOKUP,  /* look up; on a miss store what is storable */
	CACHE_REFRESH, /* skip the lookup; store what is storable */
	CACHE_BYPASS,  /* neither look up nor store */
};

/* The normalized Vary of a response: sorted, lower-case, no duplicates. */
struct cache_vary {
	size_t n;
	char name[CACHE_VARY_MAX][CACHE_VARY_NAME_MAX + 1];
};

enum cache_freshness {
	CACHE_FRESH = 0,    /* serve as a hit */
	CACHE_STALE_USABLE, /* serve only when the backend failed */
	CACHE_EXPIRED,      /* never serve */
};

/* RFC 9211 Cache-Status outcomes. */
enum cache_status {
	CACHE_STATUS_HIT = 0,     /* "apigw; hit" */
	CACHE_STATUS_MISS_STORED, /* "apigw; fwd=miss; stored" */
	CACHE_STATUS_MISS,        /* "apigw; fwd=miss" */
	CACHE_STATUS_BYPASS,      /* "apigw; fwd=bypass" */
	CACHE_STATUS_HIT_STALE,   /* "apigw; hit; detail=stale" */
};

/*
 * What to do with a request: method as received (case-sensitive), req its
 * headers (NULL = none), ttl_s the route's cache_ttl_s.
 */
enum cache_mode cache_request_mode(
    const char *method, const struct hdrs *req, long ttl_s);

/*
 * Decides whether the response to a request may be stored.  method and
 * req describe the request (req NULL = no headers), status and resp the
 * response, ttl_s the route's cache_ttl_s, max_object_bytes the bound on
 * a stored body.  Returns 1 with *ttl_out set to the entry's lifetime in
 * seconds (1 to ttl_s) and *vary the normalized Vary for cache_key(), or
 * 0 with *why set to a short static reason (also set to "" on success).
 * vary, ttl_out and why may each be NULL.
 */
int cache_storable(const char *method, int status, const struct hdrs *resp,
    const struct hdrs *req, long ttl_s, long max_object_bytes,
    struct cache_vary *vary, long *ttl_out, const char **why);

/*
 * Parses every Vary field of h into *out (emptied first).  Returns 0, or
 * -1 with *why (static) set when Vary is "*", names something that is not
 * a token, a name longer than CACHE_VARY_NAME_MAX, or more than
 * CACHE_VARY_MAX distinct names.  No Vary field gives 0 and n == 0.
 */
int cache_vary_parse(
    const struct hdrs *h, struct cache_vary *out, const char **why);

/*
 * Appends v's names to out as one Vary value ("accept, accept-encoding"),
 * the form to keep with an entry; cache_vary_parse() reads it back.
 */
void cache_vary_join(const struct cache_vary *v, struct buf *out);

/*
 * Builds the key of a request's entry.  method is the request's (HEAD
 * becomes GET), host and path (already normalized) must not be NULL,
 * query is NULL when the request had no '?', key_hash is the 64-hex
 * SHA-256 of the API key on a route that authenticates (else NULL), vary
 * the entry's names (NULL = none) and req the request headers whose
 * values they select.  Resets material to the key's bytes (owned by the
 * caller, for tests and logs) and writes their SHA-256, 64 lower-case hex
 * digits and NUL, to hex.  Returns 0, or -1 when an argument is missing
 * (material and hex are then empty).
 */
int cache_key(struct buf *material, char hex[CACHE_KEY_HEX + 1],
    const char *method, const char *host, const char *path, const char *query,
    const char *key_hash, const struct cache_vary *vary,
    const struct hdrs *req);

/*
 * Seconds since the entry's response left the origin: max(0, now -
 * stored_at) plus upstream_age (the stored response's Age value, NULL
 * when it had none; ignored unless it is digits only, blanks around
 * allowed), capped at CACHE_DELTA_MAX.  Never negative.
 */
long long cache_age(
    long long stored_at, long long now, const char *upstream_age);

/*
 * Classifies an entry of age age (cache_age()) and lifetime ttl_s: fresh
 * below ttl_s, usable stale below ttl_s + stale_if_error_s, else expired.
 * Pass stale_if_error_s 0 when cache_stale_allowed() said no.
 */
enum cache_freshness cache_freshness(
    long long age, long ttl_s, long stale_if_error_s);

/*
 * Returns 1 when a stored response may be served stale after a backend
 * failure: its Cache-Control parses and has none of must-revalidate,
 * proxy-revalidate or s-maxage (each forbids a shared cache to serve it
 * stale, RFC 9111 5.2.2).
 */
int cache_stale_allowed(const struct hdrs *resp);

/* The Cache-Status field value for an outcome (static string). */
const char *cache_status_str(enum cache_status s);
/* The X-Cache value for an outcome: "HIT", "MISS" or "BYPASS" (static). */
const char *cache_status_xcache(enum cache_status s);

#endif
