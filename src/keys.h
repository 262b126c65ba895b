/*
 * keys -- API key secrets and their records.
 *
 * A key is "gw_" + 43 base64url characters: 32 bytes from the kernel's
 * CSPRNG (getrandom).  Only its SHA-256 (64 lower-case hex digits) is ever
 * stored.  A record lives in one Redis hash, found in one command from the
 * hash of the presented key (names from keyspace.h):
 *	<prefix>{k:<sha256 hex>}:rec  ->  id name created expires revoked
 *	                                  alg rps rpm rph rpd burst
 * (alg "" = the default policy's algorithm; a limit 0 = window unused; no
 * limit at all = the key has no own policy).  For the CLI:
 *	<prefix>keyid:<id>   -> sha256 hex   (id: 16 random lower-case hex)
 *	<prefix>keys         -> set of ids
 */
#ifndef APIGW_KEYS_H
#define APIGW_KEYS_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

#define KEYS_SECRET_LEN 46 /* "gw_" + 43 */
#define KEYS_HASH_HEX 64
#define KEYS_ID_LEN 16

struct store;

struct key_record {
	char id[KEYS_ID_LEN + 1];
	char *name;        /* owned */
	long long created; /* Unix seconds */
	long long expires; /* Unix seconds, 0 = never */
	int revoked;
	struct rl_policy policy; /* present == 0: no own policy */
};

/* Fills out with a new key and NUL (KEYS_SECRET_LEN + 1 bytes). 0 or -1. */
int keys_generate(char *out);
/* Fills out with a new random id and NUL (KEYS_ID_LEN + 1). 0 or -1. */
int keys_generate_id(char *out);
/* Returns 1 when s (len bytes) has the shape of a key. */
int keys_format_ok(const char *s, size_t len);
/* Writes the SHA-256 of s as 64 hex digits and NUL into hex. */
void keys_hash(const char *s, size_t len, char hex[KEYS_HASH_HEX + 1]);
/* Returns 1 when s is a well-formed id (KEYS_ID_LEN lower-case hex). */
int keys_id_ok(const char *s);
/* Compares two equal-length secrets or hashes in constant time. 1 = same. */
int keys_equal(const void *a, const void *b, size_t len);
/*
 * Compares two NUL-terminated strings that hold key hashes (or name
 * them) without stopping at the first differing byte: only their lengths
 * can show in the time taken.  1 = same.
 */
int keys_equal_str(const char *a, const char *b);

void key_record_cleanup(struct key_record *r);

/*
 * CLI operations against Redis.  Each returns 0, 1 when the id is unknown,
 * or 2 when Redis failed (a one-line reason in *why, static).
 */
int keys_create(struct store *s, const char *prefix, struct key_record *r,
    char *secret_out, const char **why);
int keys_get(struct store *s, const char *prefix, const char *id,
    struct key_record *out, const char **why);
int keys_list(struct store *s, const char *prefix, struct key_record **out,
    size_t *n, const char **why);
int keys_put(struct store *s, const char *prefix, const struct key_record *r,
    const char **why);
int keys_delete(
    struct store *s, const char *prefix, const char *id, const char **why);

#endif
