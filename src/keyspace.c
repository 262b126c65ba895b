/*
 * keyspace -- Redis key names; the layout is documented in keyspace.h.
 *
 * The shape checks are cheap and run on every name: a caller that passes
 * a raw string where a hash belongs gets -1, never a name made of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "keyspace.h"

static const char keyspace_suffix[RL_NWINDOWS] = {'s', 'm', 'h', 'd'};

char
keyspace_window_suffix(enum rl_window w)
{
	return (unsigned)w < RL_NWINDOWS ? keyspace_suffix[w] : '?';
}

/* Is s exactly n lower-case hex digits? */
static int
keyspace_hex_ok(const char *s, size_t n)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return s[n] == '\0';
}

static int
keyspace_window_ok(enum rl_window w)
{
	return (unsigned)w < RL_NWINDOWS;
}

static const char *
keyspace_prefix(const char *prefix)
{
	return prefix != NULL ? prefix : "";
}

int
keyspace_tag_key(char tag[KEYSPACE_TAG_LEN], const char *key_hash)
{
	tag[0] = '\0';
	if (!keyspace_hex_ok(key_hash, KEYSPACE_HASH_HEX))
		return -1;
	snprintf(tag, KEYSPACE_TAG_LEN, "k:%s", key_hash);
	return 0;
}

void
keyspace_short_hash(
    const void *data, size_t len, char out[KEYSPACE_SHORT_HEX + 1])
{
	char hex[KEYS_HASH_HEX + 1];

	keys_hash(data, len, hex);
	memcpy(out, hex, KEYSPACE_SHORT_HEX);
	out[KEYSPACE_SHORT_HEX] = '\0';
}

void
keyspace_tag_ip(char tag[KEYSPACE_TAG_LEN], const char *ip)
{
	char hex[KEYSPACE_SHORT_HEX + 1];

	keyspace_short_hash(ip, strlen(ip), hex);
	snprintf(tag, KEYSPACE_TAG_LEN, "i:%s", hex);
}

int
keyspace_tag_ok(const char *tag)
{
	if (tag == NULL)
		return 0;
	if (strncmp(tag, "k:", 2) == 0)
		return keyspace_hex_ok(tag + 2, KEYSPACE_HASH_HEX);
	if (strncmp(tag, "i:", 2) == 0)
		return keyspace_hex_ok(tag + 2, KEYSPACE_SHORT_HEX);
	return 0;
}

int
keyspace_key_record(struct buf *out, const char *prefix, const char *key_hash)
{
	if (!keyspace_hex_ok(key_hash, KEYSPACE_HASH_HEX))
		return -1;
	return buf_printf(
	    out, "%s{k:%s}:rec", keyspace_prefix(prefix), key_hash);
}

int
keyspace_tag_record(struct buf *out, const char *prefix, const char *tag)
{
	if (!keyspace_tag_ok(tag))
		return -1;
	return buf_printf(out, "%s{%s}:rec", keyspace_prefix(prefix), tag);
}

/* <prefix>{<tag>}:rl:<kind>:<w> for the three policies. */
static int
keyspace_rl(struct buf *out, const char *prefix, const char *tag,
    const char *kind, enum rl_window w)
{
	if (!keyspace_tag_ok(tag) || !keyspace_window_ok(w))
		return -1;
	return buf_printf(out, "%s{%s}:rl:%s:%c", keyspace_prefix(prefix), tag,
	    kind, keyspace_suffix[w]);
}

int
keyspace_rl_key(
    struct buf *out, const char *prefix, const char *tag, enum rl_window w)
{
	return keyspace_rl(out, prefix, tag, "k", w);
}

int
keyspace_rl_route(struct buf *out, const char *prefix, const char *tag,
    const char *route_id, enum rl_window w)
{
	char kind[2 + 16 + 1];

	if (!keyspace_hex_ok(route_id, 16))
		return -1;
	snprintf(kind, sizeof kind, "r:%s", route_id);
	return keyspace_rl(out, prefix, tag, kind, w);
}

int
keyspace_rl_default(
    struct buf *out, const char *prefix, const char *tag, enum rl_window w)
{
	return keyspace_rl(out, prefix, tag, "d", w);
}

int
keyspace_rl_pattern(struct buf *out, const char *prefix, const char *tag)
{
	size_t start = out->len;
	const char *p;
	int rc = BUF_OK;

	if (!keyspace_tag_ok(tag))
		return -1;
	for (p = keyspace_prefix(prefix); *p != '\0' && rc == BUF_OK; p++) {
		if (strchr("*?[]\\", *p) != NULL)
			rc = buf_putc(out, '\\');
		if (rc == BUF_OK)
			rc = buf_putc(out, *p);
	}
	if (rc == BUF_OK)
		rc = buf_printf(out, "{%s}:rl:*", tag);
	if (rc != BUF_OK) {
		out->len = start;
		if (out->p != NULL)
			out->p[start] = '\0';
	}
	return rc;
}

int
keyspace_key_index(struct buf *out, const char *prefix, const char *id)
{
	if (!keys_id_ok(id))
		return -1;
	return buf_printf(out, "%skeyid:%s", keyspace_prefix(prefix), id);
}

int
keyspace_key_set(struct buf *out, const char *prefix)
{
	return buf_printf(out, "%skeys", keyspace_prefix(prefix));
}

int
keyspace_cache_base(struct buf *out, const char *prefix, const char *res64)
{
	if (!keyspace_hex_ok(res64, KEYSPACE_HASH_HEX))
		return -1;
	return buf_printf(out, "%s{c:%s}", keyspace_prefix(prefix), res64);
}

static int
keyspace_cache_variant(struct buf *out, const char *prefix, const char *res64,
    const char *var40, char part)
{
	if (!keyspace_hex_ok(res64, KEYSPACE_HASH_HEX) ||
	    !keyspace_hex_ok(var40, 40))
		return -1;
	return buf_printf(
	    out, "%s{c:%s}:%c:%s", keyspace_prefix(prefix), res64, part, var40);
}

int
keyspace_cache_entry(
    struct buf *out, const char *prefix, const char *res64, const char *var40)
{
	return keyspace_cache_variant(out, prefix, res64, var40, 'e');
}

int
keyspace_cache_lock(
    struct buf *out, const char *prefix, const char *res64, const char *var40)
{
	return keyspace_cache_variant(out, prefix, res64, var40, 'l');
}

int
keyspace_cache_live(struct buf *out, const char *prefix)
{
	return buf_printf(out, "%sc:live", keyspace_prefix(prefix));
}

int
keyspace_cache_path(struct buf *out, const char *prefix, const char *path64)
{
	if (!keyspace_hex_ok(path64, KEYSPACE_HASH_HEX))
		return -1;
	return buf_printf(out, "%sc:p:%s", keyspace_prefix(prefix), path64);
}

int
keyspace_cache_route(struct buf *out, const char *prefix, const char *route_id)
{
	if (!keyspace_hex_ok(route_id, 16))
		return -1;
	return buf_printf(out, "%sc:r:%s", keyspace_prefix(prefix), route_id);
}

/* Fetched once, as keys_sha256() in keys.c, for the same reason. */
static const EVP_MD *
keyspace_sha1(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	static EVP_MD *md;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA1", NULL);
	if (md != NULL)
		return md;
#endif
	return EVP_sha1();
}

void
keyspace_sha1_hex(const void *data, size_t len, char out[41])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(data, len, md, &mdlen, keyspace_sha1(), NULL) != 1 ||
	    mdlen != 20)
		abort(); /* libcrypto without SHA-1: nothing sane to do */
	for (i = 0; i < 20; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[40] = '\0';
}

void
keyspace_cache_path_hash(
    const char *route_id, const char *path, char out[KEYSPACE_HASH_HEX + 1])
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s\n%s", route_id, path);
	keys_hash(b.p, b.len, out);
	buf_cleanup(&b);
}

void
keyspace_cache_query_hash(const char *query, char out[41])
{
	struct buf b;

	buf_init(&b);
	if (query != NULL)
		buf_printf(&b, "?%s", query);
	keyspace_sha1_hex(b.len > 0 ? b.p : "", b.len, out);
	buf_cleanup(&b);
}

int
keyspace_breaker(struct buf *out, const char *prefix, const char *url_hash)
{
	if (!keyspace_hex_ok(url_hash, KEYSPACE_SHORT_HEX))
		return -1;
	return buf_printf(out, "%s{b:%s}", keyspace_prefix(prefix), url_hash);
}

int
keyspace_breaker_lease(
    struct buf *out, const char *prefix, const char *url_hash)
{
	if (!keyspace_hex_ok(url_hash, KEYSPACE_SHORT_HEX))
		return -1;
	return buf_printf(out, "%s{b:%s}:t", keyspace_prefix(prefix), url_hash);
}

int
keyspace_bulkhead(struct buf *out, const char *prefix, const char *url_hash,
    const char *route_id, const char *host_hash)
{
	if (!keyspace_hex_ok(url_hash, KEYSPACE_SHORT_HEX) ||
	    !keyspace_hex_ok(route_id, 16) ||
	    !keyspace_hex_ok(host_hash, KEYSPACE_SHORT_HEX))
		return -1;
	return buf_printf(out, "%s{b:%s}:c:%s:%s", keyspace_prefix(prefix),
	    url_hash, route_id, host_hash);
}

int
keyspace_metric(struct buf *out, const char *prefix, const char *name)
{
	const char *p;

	if (name == NULL || name[0] == '\0')
		return -1;
	for (p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == '.' || *p == ':' || *p == '-'))
			return -1;
	}
	return buf_printf(out, "%sm:%s", keyspace_prefix(prefix), name);
}
