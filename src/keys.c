/*
 * keys -- API key secrets and their records in Redis (see keys.h).
 *
 * Writes that must not be seen half done (create, update, delete) are one
 * MULTI/EXEC transaction sent as one store_exec() batch.  Update and delete
 * first WATCH what they read, so a concurrent delete can never leave a
 * half-record behind: EXEC then answers nil and the operation starts over.
 *
 * The secret itself is never sent to Redis: only its SHA-256 is.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "keyspace.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

#define KEYS_RAW_LEN 32 /* random bytes in a key */
#define KEYS_PREFIX "gw_"
#define KEYS_PREFIX_LEN 3
#define KEYS_RETRIES 5      /* id collisions, WATCH conflicts */
#define KEYS_LIST_CHUNK 128 /* commands per batch while listing */
#define KEYS_NUM_LEN 24     /* a long long in decimal and NUL */

static const char keys_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char keys_hexdigits[] = "0123456789abcdef";

/* Redis error replies are copied here so *why can point at them. */
static char keys_errbuf[256];

/*
 * Fills buf with len bytes from getrandom(2), retrying on EINTR and on a
 * short read.  Returns 0, or -1 with errno set (buf then holds nothing
 * usable).
 */
static int
keys_random(unsigned char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = getrandom(buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* Encodes len bytes as unpadded base64url into out; returns chars written. */
static size_t
keys_b64url_encode(const unsigned char *in, size_t len, char *out)
{
	size_t i, o = 0;
	unsigned long v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = keys_b64url[(v >> 18) & 63];
		out[o++] = keys_b64url[(v >> 12) & 63];
		out[o++] = keys_b64url[(v >> 6) & 63];
		out[o++] = keys_b64url[v & 63];
	}
	if (len - i == 1) {
		v = (unsigned long)in[i] << 16;
		out[o++] = keys_b64url[(v >> 18) & 63];
		out[o++] = keys_b64url[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		out[o++] = keys_b64url[(v >> 18) & 63];
		out[o++] = keys_b64url[(v >> 12) & 63];
		out[o++] = keys_b64url[(v >> 6) & 63];
	}
	return o;
}

int
keys_generate(char *out)
{
	unsigned char raw[KEYS_RAW_LEN];
	size_t n;
	int rc = -1;

	out[0] = '\0';
	if (keys_random(raw, sizeof raw) == -1)
		goto out;
	memcpy(out, KEYS_PREFIX, KEYS_PREFIX_LEN);
	n = keys_b64url_encode(raw, sizeof raw, out + KEYS_PREFIX_LEN);
	out[KEYS_PREFIX_LEN + n] = '\0';
	rc = 0;
out:
	OPENSSL_cleanse(raw, sizeof raw);
	return rc;
}

int
keys_generate_id(char *out)
{
	unsigned char raw[KEYS_ID_LEN / 2];
	size_t i;

	out[0] = '\0';
	if (keys_random(raw, sizeof raw) == -1)
		return -1;
	for (i = 0; i < sizeof raw; i++) {
		out[2 * i] = keys_hexdigits[raw[i] >> 4];
		out[2 * i + 1] = keys_hexdigits[raw[i] & 15];
	}
	out[KEYS_ID_LEN] = '\0';
	return 0;
}

static int
keys_is_b64url(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int
keys_is_lowerhex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int
keys_format_ok(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || len != KEYS_SECRET_LEN ||
	    memcmp(s, KEYS_PREFIX, KEYS_PREFIX_LEN) != 0)
		return 0;
	for (i = KEYS_PREFIX_LEN; i < len; i++) {
		if (!keys_is_b64url((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/*
 * OpenSSL 3 looks an implementation up (a locked property query) on every
 * digest made with EVP_sha256(); fetched once, hashing a key per request
 * costs a fraction of that.  Kept for the life of the process.
 */
static const EVP_MD *
keys_sha256(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	static EVP_MD *md;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (md != NULL)
		return md;
#endif
	return EVP_sha256();
}

void
keys_hash(const char *s, size_t len, char hex[KEYS_HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned int i;

	/*
	 * SHA-256 cannot fail short of a broken libcrypto; a wrong hash
	 * could match the wrong record, so stop rather than go on.
	 */
	if (EVP_Digest(s, len, md, &mdlen, keys_sha256(), NULL) != 1 ||
	    mdlen != KEYS_HASH_HEX / 2) {
		log_error("keys: SHA-256 failed in libcrypto");
		abort();
	}
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = keys_hexdigits[md[i] >> 4];
		hex[2 * i + 1] = keys_hexdigits[md[i] & 15];
	}
	hex[KEYS_HASH_HEX] = '\0';
}

/* Returns 1 when s is exactly n lower-case hex digits. */
static int
keys_hex_ok(const char *s, size_t n)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (!keys_is_lowerhex((unsigned char)s[i]))
			return 0;
	}
	return s[n] == '\0';
}

int
keys_id_ok(const char *s)
{
	return keys_hex_ok(s, KEYS_ID_LEN);
}

int
keys_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

int
keys_equal_str(const char *a, const char *b)
{
	size_t len = strlen(a);

	return len == strlen(b) && keys_equal(a, b, len);
}

void
key_record_cleanup(struct key_record *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->policy.name);
	memset(r, 0, sizeof *r);
}

/* ---- Redis helpers ---- */

/* Makes *why a copy of a Redis error reply (control characters dropped). */
static void
keys_why_reply(const struct store_val *v, const char **why)
{
	size_t i, o = 0;
	const char *p = "unexpected reply";

	if (v->type == STORE_ERR && v->str != NULL)
		p = v->str;
	o = (size_t)snprintf(keys_errbuf, sizeof keys_errbuf, "redis: ");
	for (i = 0; p[i] != '\0' && o + 1 < sizeof keys_errbuf; i++) {
		if ((unsigned char)p[i] >= 0x20 && p[i] != 0x7f)
			keys_errbuf[o++] = p[i];
	}
	keys_errbuf[o] = '\0';
	*why = keys_errbuf;
}

/* Makes *why, as left by a failed store call, say that Redis failed. */
static void
keys_why_store(const char **why)
{
	const char *w = *why;

	if (w == NULL || w[0] == '\0')
		w = "unreachable";
	if (strncasecmp(w, "redis", 5) == 0) {
		*why = w;
		return;
	}
	snprintf(keys_errbuf, sizeof keys_errbuf, "redis: %s", w);
	*why = keys_errbuf;
}

/*
 * Runs one command; *reply is its answer, owned by b (valid until b is
 * next used).  -1 (and *why) when Redis failed or answered an error.
 */
static int
keys_cmd(struct store *s, struct store_batch *b, const struct store_val **reply,
    const char **why, int argc, const char **argv)
{
	*reply = store_batch_reply(b, 0);
	if (store_command(s, b, why, argc, argv) == -1) {
		keys_why_store(why);
		return -1;
	}
	*reply = store_batch_reply(b, 0);
	if ((*reply)->type == STORE_ERR) {
		keys_why_reply(*reply, why);
		return -1;
	}
	return 0;
}

static void
keys_unwatch(struct store *s)
{
	struct store_batch b;
	const char *argv[] = {"UNWATCH"};
	const char *ignored = NULL;

	store_batch_init(&b);
	(void)store_command(s, &b, &ignored, 1, argv);
	store_batch_cleanup(&b);
}

/*
 * Runs cmds (MULTI, ..., EXEC) as one batch.  Returns 0 when EXEC ran
 * every command without error, 1 when a WATCHed key changed (EXEC nil),
 * -1 with *why on any failure.
 */
static int
keys_transaction(
    struct store *s, const struct store_cmd *cmds, size_t n, const char **why)
{
	struct store_batch b;
	const struct store_val *ex;
	size_t i;
	int rc = -1;

	store_batch_init(&b);
	if (store_exec(s, cmds, n, &b, why) == -1) {
		keys_why_store(why);
		goto out;
	}
	for (i = 0; i + 1 < n; i++) {
		if (store_batch_reply(&b, i)->type == STORE_ERR) {
			keys_why_reply(store_batch_reply(&b, i), why);
			goto out;
		}
	}
	ex = store_batch_reply(&b, n - 1);
	if (ex->type == STORE_NIL) {
		rc = 1;
		goto out;
	}
	if (ex->type != STORE_ARR || ex->n != n - 2) {
		keys_why_reply(ex, why);
		goto out;
	}
	for (i = 0; i < ex->n; i++) {
		if (ex->elem[i].type == STORE_ERR) {
			keys_why_reply(&ex->elem[i], why);
			goto out;
		}
	}
	rc = 0;
out:
	store_batch_cleanup(&b);
	return rc;
}

static void
keys_cmd_set(struct store_cmd *c, int argc, const char **argv)
{
	c->script = -1;
	c->nkeys = 0;
	c->argc = argc;
	c->argv = argv;
	c->argvlen = NULL;
}

/* ---- records ---- */

/* The HSET command that writes every field of r into the hash recname. */
struct keys_hset {
	char created[KEYS_NUM_LEN];
	char expires[KEYS_NUM_LEN];
	char limit[RL_NWINDOWS][KEYS_NUM_LEN];
	char burst[KEYS_NUM_LEN];
	const char *argv[2 + 2 * 11];
	int argc;
};

static const char *const keys_limit_fields[RL_NWINDOWS] = {
    "rps", "rpm", "rph", "rpd"};

static void
keys_hset_build(
    struct keys_hset *h, const char *recname, const struct key_record *r)
{
	const struct rl_policy *p = &r->policy;
	int i, n = 0;

	snprintf(h->created, sizeof h->created, "%lld", r->created);
	snprintf(h->expires, sizeof h->expires, "%lld", r->expires);
	for (i = 0; i < RL_NWINDOWS; i++) {
		snprintf(h->limit[i], sizeof h->limit[i], "%ld",
		    p->present && p->limit[i] > 0 ? p->limit[i] : 0L);
	}
	snprintf(h->burst, sizeof h->burst, "%ld",
	    p->present && p->burst_size > 0 ? p->burst_size : 0L);

	h->argv[n++] = "HSET";
	h->argv[n++] = recname;
	h->argv[n++] = "id";
	h->argv[n++] = r->id;
	h->argv[n++] = "name";
	h->argv[n++] = r->name != NULL ? r->name : "";
	h->argv[n++] = "created";
	h->argv[n++] = h->created;
	h->argv[n++] = "expires";
	h->argv[n++] = h->expires;
	h->argv[n++] = "revoked";
	h->argv[n++] = r->revoked ? "1" : "0";
	h->argv[n++] = "alg";
	h->argv[n++] = p->present && p->algorithm_set
	    ? rl_algorithm_names[p->algorithm]
	    : "";
	for (i = 0; i < RL_NWINDOWS; i++) {
		h->argv[n++] = keys_limit_fields[i];
		h->argv[n++] = h->limit[i];
	}
	h->argv[n++] = "burst";
	h->argv[n++] = h->burst;
	h->argc = n;
}

/* Parses a non-negative decimal integer that fills the whole string. */
static int
keys_parse_num(const char *s, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Fills out from an HGETALL reply.  Returns 0, 1 when the hash is empty
 * (no record), -1 when it is malformed.  out is cleaned up on failure.
 */
static int
keys_record_parse(const struct store_val *v, struct key_record *out)
{
	const struct store_val *f, *val;
	long long num;
	size_t i;
	int w, have_id = 0, have_name = 0, rc = -1;

	memset(out, 0, sizeof *out);
	if (v->type != STORE_ARR || v->n % 2 != 0)
		goto out;
	if (v->n == 0) {
		rc = 1;
		goto out;
	}
	for (i = 0; i < v->n; i += 2) {
		f = &v->elem[i];
		val = &v->elem[i + 1];
		if (f->type != STORE_STR || val->type != STORE_STR ||
		    f->str == NULL || val->str == NULL)
			goto out;
		if (strcmp(f->str, "id") == 0) {
			if (!keys_id_ok(val->str))
				goto out;
			memcpy(out->id, val->str, KEYS_ID_LEN + 1);
			have_id = 1;
		} else if (strcmp(f->str, "name") == 0) {
			free(out->name);
			out->name = xstrndup(val->str, val->len);
			have_name = 1;
		} else if (strcmp(f->str, "created") == 0) {
			if (keys_parse_num(val->str, LLONG_MAX, &num) == -1)
				goto out;
			out->created = num;
		} else if (strcmp(f->str, "expires") == 0) {
			if (keys_parse_num(val->str, LLONG_MAX, &num) == -1)
				goto out;
			out->expires = num;
		} else if (strcmp(f->str, "revoked") == 0) {
			out->revoked =
			    strcmp(val->str, "0") != 0 && val->str[0] != '\0';
		} else if (strcmp(f->str, "alg") == 0) {
			if (val->str[0] == '\0')
				out->policy.algorithm_set = 0;
			else if (rl_algorithm_parse(
			             val->str, &out->policy.algorithm) == 0)
				out->policy.algorithm_set = 1;
			else
				goto out;
		} else if (strcmp(f->str, "burst") == 0) {
			if (keys_parse_num(val->str, LONG_MAX, &num) == -1)
				goto out;
			out->policy.burst_size = (long)num;
		} else {
			for (w = 0; w < RL_NWINDOWS; w++) {
				if (strcmp(f->str, keys_limit_fields[w]) == 0)
					break;
			}
			if (w == RL_NWINDOWS)
				continue; /* a field from a newer version */
			if (keys_parse_num(val->str, LONG_MAX, &num) == -1)
				goto out;
			out->policy.limit[w] = (long)num;
		}
	}
	if (!have_id || !have_name)
		goto out;
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (out->policy.limit[w] > 0)
			out->policy.present = 1;
	}
	if (!out->policy.present) {
		out->policy.algorithm_set = 0;
		out->policy.burst_size = 0;
	}
	rc = 0;
out:
	if (rc != 0)
		key_record_cleanup(out);
	return rc;
}

/*
 * Reads "<prefix>keyid:<id>" into hex.  Returns 0, 1 when absent, -1 on a
 * Redis failure, -2 when the stored value is not a hash.
 */
static int
keys_lookup_hash(struct store *s, const char *prefix, const char *id, int watch,
    char hex[KEYS_HASH_HEX + 1], const char **why)
{
	struct store_cmd cmds[2];
	struct store_batch rep;
	struct buf idx;
	const char *watch_argv[2], *get_argv[2];
	const struct store_val *v;
	size_t n = 0, i;
	int rc = -1;

	buf_init(&idx);
	store_batch_init(&rep);
	if (keyspace_key_index(&idx, prefix, id) != 0) {
		*why = "malformed key id";
		goto out;
	}
	if (watch) {
		watch_argv[0] = "WATCH";
		watch_argv[1] = buf_cstr(&idx);
		keys_cmd_set(&cmds[n++], 2, watch_argv);
	}
	get_argv[0] = "GET";
	get_argv[1] = buf_cstr(&idx);
	keys_cmd_set(&cmds[n++], 2, get_argv);
	if (store_exec(s, cmds, n, &rep, why) == -1) {
		keys_why_store(why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (store_batch_reply(&rep, i)->type == STORE_ERR) {
			keys_why_reply(store_batch_reply(&rep, i), why);
			goto out;
		}
	}
	v = store_batch_reply(&rep, n - 1);
	if (v->type == STORE_NIL) {
		rc = 1;
		goto out;
	}
	if (v->type != STORE_STR || !keys_hex_ok(v->str, KEYS_HASH_HEX)) {
		rc = -2;
		goto out;
	}
	memcpy(hex, v->str, KEYS_HASH_HEX + 1);
	rc = 0;
out:
	store_batch_cleanup(&rep);
	buf_cleanup(&idx);
	return rc;
}

/*
 * Stores a new key for r (name, expires, revoked and policy as the caller
 * set them; created is set to now when 0) and fills r->id and secret_out
 * (KEYS_SECRET_LEN + 1 bytes).  On failure secret_out is wiped.
 */
int
keys_create(struct store *s, const char *prefix, struct key_record *r,
    char *secret_out, const char **why)
{
	char hex[KEYS_HASH_HEX + 1];
	struct keys_hset h;
	struct store_cmd cmds[5];
	struct store_batch vb;
	const struct store_val *v;
	struct buf rec, idx, set;
	const char *exists_argv[3];
	const char *multi_argv[] = {"MULTI"};
	const char *exec_argv[] = {"EXEC"};
	const char *set_argv[3], *sadd_argv[3];
	int tries, t, rc = 2;

	*why = NULL;
	secret_out[0] = '\0';
	buf_init(&rec);
	buf_init(&idx);
	buf_init(&set);
	store_batch_init(&vb);
	if (r->name == NULL) {
		*why = "key has no name";
		goto out;
	}
	if (r->created == 0)
		r->created = (long long)time(NULL);

	/* A fresh id; 64 random bits make a collision all but impossible. */
	for (tries = 0;; tries++) {
		if (tries == KEYS_RETRIES) {
			*why = "could not find an unused key id";
			goto out;
		}
		if (keys_generate_id(r->id) == -1) {
			*why = "getrandom failed";
			goto out;
		}
		buf_reset(&idx);
		keyspace_key_index(&idx, prefix, r->id);
		exists_argv[0] = "EXISTS";
		exists_argv[1] = buf_cstr(&idx);
		if (keys_cmd(s, &vb, &v, why, 2, exists_argv) == -1)
			goto out;
		if (v->type == STORE_INT && v->i == 0)
			break;
	}

	if (keys_generate(secret_out) == -1) {
		*why = "getrandom failed";
		goto out;
	}
	keys_hash(secret_out, KEYS_SECRET_LEN, hex);
	keyspace_key_record(&rec, prefix, hex);
	keyspace_key_set(&set, prefix);

	keys_hset_build(&h, buf_cstr(&rec), r);
	set_argv[0] = "SET";
	set_argv[1] = buf_cstr(&idx);
	set_argv[2] = hex;
	sadd_argv[0] = "SADD";
	sadd_argv[1] = buf_cstr(&set);
	sadd_argv[2] = r->id;
	keys_cmd_set(&cmds[0], 1, multi_argv);
	keys_cmd_set(&cmds[1], h.argc, h.argv);
	keys_cmd_set(&cmds[2], 3, set_argv);
	keys_cmd_set(&cmds[3], 3, sadd_argv);
	keys_cmd_set(&cmds[4], 1, exec_argv);
	t = keys_transaction(s, cmds, 5, why);
	if (t != 0) {
		if (t == 1)
			*why = "redis: transaction aborted";
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		OPENSSL_cleanse(secret_out, KEYS_SECRET_LEN + 1);
	OPENSSL_cleanse(hex, sizeof hex);
	store_batch_cleanup(&vb);
	buf_cleanup(&rec);
	buf_cleanup(&idx);
	buf_cleanup(&set);
	return rc;
}

int
keys_get(struct store *s, const char *prefix, const char *id,
    struct key_record *out, const char **why)
{
	char hex[KEYS_HASH_HEX + 1];
	struct store_batch vb;
	const struct store_val *v;
	struct buf rec;
	const char *argv[2];
	int l, rc = 2;

	*why = NULL;
	memset(out, 0, sizeof *out);
	store_batch_init(&vb);
	buf_init(&rec);
	if (!keys_id_ok(id)) {
		rc = 1; /* never let raw input form a key name */
		goto out;
	}
	l = keys_lookup_hash(s, prefix, id, 0, hex, why);
	if (l == 1) {
		rc = 1;
		goto out;
	}
	if (l == -2) {
		*why = "malformed key index in Redis";
		goto out;
	}
	if (l != 0)
		goto out;
	keyspace_key_record(&rec, prefix, hex);
	argv[0] = "HGETALL";
	argv[1] = buf_cstr(&rec);
	if (keys_cmd(s, &vb, &v, why, 2, argv) == -1)
		goto out;
	switch (keys_record_parse(v, out)) {
	case 0: break;
	case 1:
		rc = 1; /* the index outlived its record */
		goto out;
	default: *why = "malformed key record in Redis"; goto out;
	}
	if (strcmp(out->id, id) != 0) {
		key_record_cleanup(out);
		*why = "malformed key record in Redis";
		goto out;
	}
	rc = 0;
out:
	store_batch_cleanup(&vb);
	buf_cleanup(&rec);
	return rc;
}

static int
keys_record_cmp(const void *a, const void *b)
{
	const struct key_record *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int
keys_str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Fills *out with every key record (sorted by creation time, then id) and
 * *n with their count; the caller cleans each up with key_record_cleanup()
 * and frees *out.  Ids in the set whose index or record has gone are
 * skipped, as are records that do not parse.
 */
int
keys_list(struct store *s, const char *prefix, struct key_record **out,
    size_t *n, const char **why)
{
	struct store_batch members, rep;
	const struct store_val *m, *v;
	struct store_cmd *cmds = NULL;
	const char **ids = NULL, **argv = NULL;
	struct buf names, set;
	struct key_record *recs = NULL;
	size_t nids = 0, nrecs = 0, i, j, start, cnt, off;
	const char *smembers_argv[2];
	int rc = 2;

	*why = NULL;
	*out = NULL;
	*n = 0;
	/* ids point into members' replies: it lives to the end. */
	store_batch_init(&members);
	store_batch_init(&rep);
	buf_init(&names);
	buf_init(&set);

	keyspace_key_set(&set, prefix);
	smembers_argv[0] = "SMEMBERS";
	smembers_argv[1] = buf_cstr(&set);
	if (keys_cmd(s, &members, &m, why, 2, smembers_argv) == -1)
		goto out;
	if (m->type != STORE_ARR) {
		keys_why_reply(m, why);
		goto out;
	}
	ids = xcalloc(m->n ? m->n : 1, sizeof *ids);
	for (i = 0; i < m->n; i++) {
		if (m->elem[i].type == STORE_STR && keys_id_ok(m->elem[i].str))
			ids[nids++] = m->elem[i].str;
	}
	qsort(ids, nids, sizeof *ids, keys_str_cmp);
	recs = xcalloc(nids ? nids : 1, sizeof *recs);
	cmds = xcalloc(KEYS_LIST_CHUNK, sizeof *cmds);
	argv = xcalloc(2 * KEYS_LIST_CHUNK, sizeof *argv);

	for (start = 0; start < nids; start += cnt) {
		cnt = nids - start;
		if (cnt > KEYS_LIST_CHUNK)
			cnt = KEYS_LIST_CHUNK;

		/* The hash of each id, then each record, a batch apiece. */
		buf_reset(&names);
		for (i = 0; i < cnt; i++) {
			keyspace_key_index(&names, prefix, ids[start + i]);
			buf_putc(&names, '\0');
		}
		for (i = 0, off = 0; i < cnt; i++) {
			argv[2 * i] = "GET";
			argv[2 * i + 1] = names.p + off;
			off += strlen(names.p + off) + 1;
			keys_cmd_set(&cmds[i], 2, &argv[2 * i]);
		}
		if (store_exec(s, cmds, cnt, &rep, why) == -1) {
			keys_why_store(why);
			goto out;
		}
		buf_reset(&names);
		for (i = 0, j = 0; i < cnt; i++) {
			v = store_batch_reply(&rep, i);
			if (v->type == STORE_ERR) {
				keys_why_reply(v, why);
				goto out;
			}
			if (v->type != STORE_STR ||
			    !keys_hex_ok(v->str, KEYS_HASH_HEX))
				continue;
			keyspace_key_record(&names, prefix, v->str);
			buf_putc(&names, '\0');
			/* remember which id this record answers for */
			ids[start + j++] = ids[start + i];
		}

		for (i = 0, off = 0; i < j; i++) {
			argv[2 * i] = "HGETALL";
			argv[2 * i + 1] = names.p + off;
			off += strlen(names.p + off) + 1;
			keys_cmd_set(&cmds[i], 2, &argv[2 * i]);
		}
		if (j > 0 && store_exec(s, cmds, j, &rep, why) == -1) {
			keys_why_store(why);
			goto out;
		}
		for (i = 0; i < j; i++) {
			v = store_batch_reply(&rep, i);
			if (v->type == STORE_ERR) {
				keys_why_reply(v, why);
				goto out;
			}
			if (keys_record_parse(v, &recs[nrecs]) != 0)
				continue;
			if (strcmp(recs[nrecs].id, ids[start + i]) != 0) {
				key_record_cleanup(&recs[nrecs]);
				continue;
			}
			nrecs++;
		}
	}

	qsort(recs, nrecs, sizeof *recs, keys_record_cmp);
	*out = recs;
	*n = nrecs;
	recs = NULL;
	nrecs = 0;
	rc = 0;
out:
	for (i = 0; i < nrecs; i++)
		key_record_cleanup(&recs[i]);
	free(recs);
	free(ids);
	free(cmds);
	free(argv);
	store_batch_cleanup(&rep);
	store_batch_cleanup(&members);
	buf_cleanup(&names);
	buf_cleanup(&set);
	return rc;
}

/*
 * Rewrites every field of the record r->id (name, expires, revoked and the
 * policy; id and created are kept as r has them).  The record is WATCHed
 * between reading and writing it, so a concurrent delete is never undone.
 */
int
keys_put(struct store *s, const char *prefix, const struct key_record *r,
    const char **why)
{
	char hex[KEYS_HASH_HEX + 1];
	struct keys_hset h;
	struct store_cmd cmds[3];
	struct store_batch vb;
	const struct store_val *v;
	struct buf rec;
	const char *multi_argv[] = {"MULTI"};
	const char *exec_argv[] = {"EXEC"};
	const char *check_argv[3];
	int tries, l, t, rc = 2;

	*why = NULL;
	buf_init(&rec);
	store_batch_init(&vb);
	if (!keys_id_ok(r->id)) {
		rc = 1;
		goto out;
	}
	for (tries = 0; tries < KEYS_RETRIES; tries++) {
		l = keys_lookup_hash(s, prefix, r->id, 0, hex, why);
		if (l == 1) {
			rc = 1;
			goto out;
		}
		if (l == -2) {
			*why = "malformed key index in Redis";
			goto out;
		}
		if (l != 0)
			goto out;
		buf_reset(&rec);
		keyspace_key_record(&rec, prefix, hex);

		/* WATCH, then check that the record is still this key's. */
		check_argv[0] = "WATCH";
		check_argv[1] = buf_cstr(&rec);
		if (keys_cmd(s, &vb, &v, why, 2, check_argv) == -1)
			goto out;
		check_argv[0] = "HGET";
		check_argv[2] = "id";
		if (keys_cmd(s, &vb, &v, why, 3, check_argv) == -1)
			goto out;
		if (v->type != STORE_STR || strcmp(v->str, r->id) != 0) {
			keys_unwatch(s);
			rc = 1;
			goto out;
		}

		keys_hset_build(&h, buf_cstr(&rec), r);
		keys_cmd_set(&cmds[0], 1, multi_argv);
		keys_cmd_set(&cmds[1], h.argc, h.argv);
		keys_cmd_set(&cmds[2], 1, exec_argv);
		t = keys_transaction(s, cmds, 3, why);
		if (t == -1)
			goto out;
		if (t == 0) {
			rc = 0;
			goto out;
		}
		/* t == 1: the record changed under us; look again */
	}
	*why = "redis: key record kept changing, try again";
out:
	store_batch_cleanup(&vb);
	buf_cleanup(&rec);
	return rc;
}

/*
 * Appends to names (each name followed by a NUL) every rate-limit counter
 * of the key with hash hex, whatever its policy, route or window (routes
 * of an older config included), and counts them in *count.  SCAN, not a
 * fixed list: the route ids are not all known here.  -1 with *why when
 * Redis failed.
 */
static int
keys_scan_counters(struct store *s, const char *prefix, const char *hex,
    struct buf *names, size_t *count, const char **why)
{
	char tag[KEYSPACE_TAG_LEN], cursor[32];
	struct store_batch vb;
	const struct store_val *v, *found;
	struct buf pattern;
	const char *argv[6];
	size_t i;
	int rc = -1;

	store_batch_init(&vb);
	buf_init(&pattern);
	if (keyspace_tag_key(tag, hex) == -1 ||
	    keyspace_rl_pattern(&pattern, prefix, tag) != 0) {
		*why = "malformed key hash";
		goto out;
	}
	snprintf(cursor, sizeof cursor, "0");
	do {
		argv[0] = "SCAN";
		argv[1] = cursor;
		argv[2] = "MATCH";
		argv[3] = buf_cstr(&pattern);
		argv[4] = "COUNT";
		argv[5] = "1000";
		if (keys_cmd(s, &vb, &v, why, 6, argv) == -1)
			goto out;
		if (v->type != STORE_ARR || v->n != 2 ||
		    v->elem[0].type != STORE_STR ||
		    v->elem[0].len >= sizeof cursor ||
		    v->elem[1].type != STORE_ARR) {
			keys_why_reply(v, why);
			goto out;
		}
		found = &v->elem[1];
		for (i = 0; i < found->n; i++) {
			if (found->elem[i].type != STORE_STR ||
			    found->elem[i].len == 0 ||
			    memchr(found->elem[i].str, '\0',
			        found->elem[i].len) != NULL)
				continue;
			buf_append(
			    names, found->elem[i].str, found->elem[i].len + 1);
			(*count)++;
		}
		memcpy(cursor, v->elem[0].str, v->elem[0].len + 1);
	} while (strcmp(cursor, "0") != 0);
	rc = 0;
out:
	store_batch_cleanup(&vb);
	buf_cleanup(&pattern);
	return rc;
}

/*
 * Removes the record, its index entry, its id from the set and every
 * rate-limit counter of the key.  An id left in the set without an index
 * (a record removed by hand) is dropped from the set, and that counts as
 * success.
 */
int
keys_delete(
    struct store *s, const char *prefix, const char *id, const char **why)
{
	char hex[KEYS_HASH_HEX + 1];
	struct store_cmd cmds[4];
	struct store_batch vb;
	const struct store_val *v;
	struct buf names, set, idx;
	const char *multi_argv[] = {"MULTI"};
	const char *exec_argv[] = {"EXEC"};
	const char **del_argv = NULL;
	const char *srem_argv[3];
	size_t off, count, i;
	int tries, l, t, ndel, rc = 2;

	*why = NULL;
	store_batch_init(&vb);
	buf_init(&names);
	buf_init(&set);
	buf_init(&idx);
	if (!keys_id_ok(id)) {
		rc = 1;
		goto out;
	}
	keyspace_key_set(&set, prefix);
	keyspace_key_index(&idx, prefix, id);
	srem_argv[0] = "SREM";
	srem_argv[1] = buf_cstr(&set);
	srem_argv[2] = id;

	for (tries = 0; tries < KEYS_RETRIES; tries++) {
		l = keys_lookup_hash(s, prefix, id, 1, hex, why);
		if (l == -1)
			goto out;
		if (l == 1) {
			keys_unwatch(s);
			if (keys_cmd(s, &vb, &v, why, 3, srem_argv) == -1)
				goto out;
			rc = v->type == STORE_INT && v->i > 0 ? 0 : 1;
			goto out;
		}

		/* The index is WATCHed: a concurrent change aborts EXEC. */
		buf_reset(&names);
		count = 0;
		if (l == 0) {
			keyspace_key_record(&names, prefix, hex);
			buf_putc(&names, '\0');
			count = 1;
			if (keys_scan_counters(
			        s, prefix, hex, &names, &count, why) == -1) {
				keys_unwatch(s);
				goto out;
			}
		}
		free(del_argv);
		del_argv = xcalloc(2 + count, sizeof *del_argv);
		ndel = 0;
		del_argv[ndel++] = "DEL";
		del_argv[ndel++] = buf_cstr(&idx);
		for (i = 0, off = 0; i < count; i++) {
			del_argv[ndel++] = names.p + off;
			off += strlen(names.p + off) + 1;
		}
		keys_cmd_set(&cmds[0], 1, multi_argv);
		keys_cmd_set(&cmds[1], ndel, del_argv);
		keys_cmd_set(&cmds[2], 3, srem_argv);
		keys_cmd_set(&cmds[3], 1, exec_argv);
		t = keys_transaction(s, cmds, 4, why);
		if (t == -1)
			goto out;
		if (t == 0) {
			rc = 0;
			goto out;
		}
	}
	*why = "redis: key index kept changing, try again";
out:
	OPENSSL_cleanse(hex, sizeof hex);
	free(del_argv);
	store_batch_cleanup(&vb);
	buf_cleanup(&names);
	buf_cleanup(&set);
	buf_cleanup(&idx);
	return rc;
}
