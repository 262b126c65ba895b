/*
 * ratelimit -- policies to Redis script arguments, and script answers to
 * response headers.  Pure code: no I/O, no clock.
 *
 * One call of src/lua/ratelimit.lua per request checks and consumes every
 * window of every applicable policy atomically, and (on an API-key cache
 * miss) looks the key record up in the same call, so the common path costs
 * one Redis round trip.
 *
 * Redis key names come from keyspace.h and never contain user input: the
 * identity is a hashed tag, "k:<sha256 hex of the API key>" for an
 * authenticated request and "i:<first 32 hex of sha256(client ip)>"
 * otherwise, and every key of one call shares it as its hash tag, so the
 * script is valid on Redis Cluster.
 */
#ifndef APIGW_RATELIMIT_H
#define APIGW_RATELIMIT_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

struct hdrs;
struct store_val;

#define RL_MAX_WINDOWS 12 /* 3 policies x 4 windows */

enum rl_status {
	RL_ADMITTED = 0,
	RL_REJECTED = 1,    /* 429 */
	RL_KEY_UNKNOWN = 2, /* 401 */
	RL_KEY_REVOKED = 3, /* 401 */
	RL_KEY_EXPIRED = 4, /* 401 */
};

/* What the script reports for one window. */
struct rl_window_result {
	char policy[32]; /* policy name, e.g. "route" */
	enum rl_window window;
	enum rl_algorithm algorithm;
	long quota;     /* L */
	long burst;     /* B for token_bucket/gcra, else 0 */
	long remaining; /* >= 0 */
	long reset_ms;  /* ms until the window frees capacity */
	int shadow;
	int rejected; /* this window alone would reject */
};

/* A key record as the script returns it after a lookup. */
struct rl_key_record {
	char id[33];
	char name[129];
	long long expires;       /* Unix seconds, 0 = never */
	struct rl_policy policy; /* present == 0 when the key has none;
	                          * name is NULL (the key policy is "key") */
};

struct rl_result {
	enum rl_status status;
	long long now_ms;    /* Redis server time */
	long retry_after_ms; /* when RL_REJECTED */
	int have_record;     /* the script looked a key up and found it */
	struct rl_key_record record;
	size_t n;
	struct rl_window_result win[RL_MAX_WINDOWS];
	/* A lease granted with this admission (0 units: none): the caller may
	 * admit lease_units more requests of the same identity and policies
	 * until lease_until_ms (Redis time), without asking. */
	long lease_units;
	long long lease_until_ms;
	/* What names the lease in Redis, for giving back unused units
	 * (ratelimit_giveback): its end and the grant, in us. */
	long long lease_end_us, lease_granted_us;
};

/* What the pipeline knows when it asks. */
struct rl_query {
	const struct config *cfg;
	const struct route *route; /* never NULL */
	const char *tag;      /* identity hash tag (keyspace_tag_*), or NULL
	                       * to use the key's when key_hash is set */
	const char *key_hash; /* sha256 hex of the API key, or NULL */
	int lookup_key;       /* 1: read the record in the script */
	const struct rl_policy *key_policy; /* cached key's policy, or NULL */
	const char *now_us; /* tests only: fixed clock, else NULL */
	long lease_units;   /* units to ask a lease for (0: none); never
	                     * more than the policies' lease_max_units */
};

/*
 * Builds the KEYS and ARGV of one ratelimit.lua call for q into args (a
 * caller-owned buffer of NUL-separated strings) and fills argv/argvlen
 * (pointers into args, valid until args changes) with at most max entries.
 * Returns the number of KEYS (>= 1), and *argc; -1 if max is too small or
 * the tag or key hash is not of the shape keyspace.h requires.
 * A request with no applicable window gives argc with zero policies.
 */
int ratelimit_build(const struct rl_query *q, struct buf *args,
    const char **argv, size_t *argvlen, int max, int *argc);

/*
 * The lease q may ask for: the smallest lease_max_units and lease_ms of
 * its policies (an API key's own policy counts with the default group's),
 * or 0 units when any policy has leases off, or when the key's record is
 * looked up in this call.
 */
void ratelimit_lease_params(
    const struct rl_query *q, long *max_units, long *lease_ms);

/*
 * Turns the arguments of a call that was granted a lease (argv[0..argc),
 * nkeys KEYS first, as ratelimit_build made them: the last two are the
 * lease request) into those of the call that gives back units of it:
 * writes up to max pointers to out (borrowing argv's strings and num, a
 * caller buffer of at least 3 x 24 bytes for the numbers) and returns the
 * new argc, or -1.
 */
int ratelimit_giveback(const char *const *argv, int argc, int nkeys, long units,
    long long end_us, long long granted_us, char num[3][24], const char **out,
    int max);

/*
 * The policies that apply to q when its key is not looked up (the key's
 * own, the route's, the default one), in the script's order, with the
 * algorithm each runs and what it is counted per: 'k' the API key, 'r' the
 * identity on the route, 'd' the identity.  For deciding without Redis
 * (local_limit.h).  Fills up to 3 entries (pointers into q's config and
 * key policy) and returns how many.
 */
struct rl_applied {
	const struct rl_policy *p;
	const char *name;
	enum rl_algorithm algorithm;
	char kind;
};
size_t ratelimit_applicable(const struct rl_query *q, struct rl_applied out[3]);

/* Parses the script's reply.  Returns 0, or -1 for a malformed reply. */
int ratelimit_parse(const struct store_val *reply, struct rl_result *out);

/*
 * Adds X-RateLimit-Limit/-Remaining/-Reset (from the window with the fewest
 * remaining), RateLimit-Policy and RateLimit (every window) to h, and
 * Retry-After on a rejection.  Adds nothing when res->n == 0.
 */
void ratelimit_headers(const struct rl_result *res, struct hdrs *h);

/* Appends the names of the windows that rejected, as a JSON array. */
void ratelimit_violated_json(const struct rl_result *res, struct buf *out);

/* Releases what parse allocated inside res (the record's policy name). */
void ratelimit_result_cleanup(struct rl_result *res);

#endif
