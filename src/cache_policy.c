/*
 * cache_policy.c -- the shared cache's decisions; the rules are in
 * cache_policy.h.
 *
 * Header values are parsed in place, never copied: every list walker
 * takes pointers into the hdrs values and lengths.  Case folding is ASCII
 * only, by hand, so the locale cannot change which names are equal.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cache_policy.h"
#include "hdrs.h"
#include "keys.h"

_Static_assert(CACHE_KEY_HEX == KEYS_HASH_HEX, "cache key is a SHA-256");

#define CC_NO_STORE (1u << 0)
#define CC_NO_CACHE (1u << 1)
#define CC_PRIVATE (1u << 2)
#define CC_PUBLIC (1u << 3)
#define CC_MUST_REVALIDATE (1u << 4)
#define CC_PROXY_REVALIDATE (1u << 5)

/* The directives of every Cache-Control field of one message. */
struct cache_cc {
	unsigned flags;
	long long max_age;  /* -1: absent */
	long long s_maxage; /* -1: absent */
};

static unsigned char
cache_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int
cache_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Bounds of one field value without the blanks around it. */
static void
cache_trim(const char *s, const char **start, const char **end)
{
	const char *e;

	while (cache_is_ows(*s))
		s++;
	e = s + strlen(s);
	while (e > s && cache_is_ows(e[-1]))
		e--;
	*start = s;
	*end = e;
}

/* Case-insensitive: do the len bytes at s spell the lower-case word? */
static int
cache_word_eq(const char *s, size_t len, const char *word)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (word[i] == '\0' ||
		    cache_lower((unsigned char)s[i]) != (unsigned char)word[i])
			return 0;
	return word[len] == '\0';
}

/*
 * Parses delta-seconds (RFC 9111 1.2.2): one or more digits, nothing
 * else; a value past CACHE_DELTA_MAX counts as CACHE_DELTA_MAX, so the
 * digits are consumed without ever overflowing.  Returns 0 or -1.
 */
static int
cache_parse_delta(const char *s, size_t len, long long *out)
{
	long long v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v < CACHE_DELTA_MAX)
			v = v * 10 + (s[i] - '0');
		if (v > CACHE_DELTA_MAX)
			v = CACHE_DELTA_MAX;
	}
	*out = v;
	return 0;
}

/* Sets *slot from a directive's seconds; a second, different value is an
 * error (RFC 9111 4.2.1 lets a cache treat that as stale). */
static int
cache_cc_seconds(const char *v, size_t vlen, int quoted, long long *slot)
{
	long long secs;

	/* A quoted-pair inside quoted digits is not worth decoding. */
	if (quoted && memchr(v, '\\', vlen) != NULL)
		return -1;
	if (cache_parse_delta(v, vlen, &secs) != 0)
		return -1;
	if (*slot >= 0 && *slot != secs)
		return -1;
	*slot = secs;
	return 0;
}

/* Records one directive; returns 0, or -1 when its argument is bad. */
static int
cache_cc_directive(struct cache_cc *cc, const char *name, size_t nlen,
    const char *v, size_t vlen, int has_value, int quoted)
{
	if (cache_word_eq(name, nlen, "max-age"))
		return has_value
		    ? cache_cc_seconds(v, vlen, quoted, &cc->max_age)
		    : -1;
	if (cache_word_eq(name, nlen, "s-maxage"))
		return has_value
		    ? cache_cc_seconds(v, vlen, quoted, &cc->s_maxage)
		    : -1;
	/* Arguments of the flags (private="Set-Cookie") are not used. */
	if (cache_word_eq(name, nlen, "no-store"))
		cc->flags |= CC_NO_STORE;
	else if (cache_word_eq(name, nlen, "no-cache"))
		cc->flags |= CC_NO_CACHE;
	else if (cache_word_eq(name, nlen, "private"))
		cc->flags |= CC_PRIVATE;
	else if (cache_word_eq(name, nlen, "public"))
		cc->flags |= CC_PUBLIC;
	else if (cache_word_eq(name, nlen, "must-revalidate"))
		cc->flags |= CC_MUST_REVALIDATE;
	else if (cache_word_eq(name, nlen, "proxy-revalidate"))
		cc->flags |= CC_PROXY_REVALIDATE;
	return 0;
}

/*
 * Parses one Cache-Control field value into cc:
 *	#( token [ "=" ( token / quoted-string ) ] )
 * Returns 0, or -1 at the first thing that does not fit.
 */
static int
cache_cc_field(struct cache_cc *cc, const char *p)
{
	const char *name, *v;
	size_t nlen, vlen;
	int has_value, quoted;

	for (;;) {
		while (cache_is_ows(*p) || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		name = p;
		while (hdrs_is_tchar((unsigned char)*p))
			p++;
		nlen = (size_t)(p - name);
		if (nlen == 0)
			return -1;
		v = NULL;
		vlen = 0;
		has_value = quoted = 0;
		if (*p == '=') {
			p++;
			has_value = 1;
			if (*p == '"') {
				quoted = 1;
				v = ++p;
				while (*p != '"') {
					if (*p == '\0')
						return -1;
					if (*p == '\\' && *++p == '\0')
						return -1;
					p++;
				}
				vlen = (size_t)(p - v);
				p++;
			} else {
				v = p;
				while (hdrs_is_tchar((unsigned char)*p))
					p++;
				vlen = (size_t)(p - v);
				if (vlen == 0)
					return -1;
			}
		}
		while (cache_is_ows(*p))
			p++;
		if (*p != ',' && *p != '\0')
			return -1;
		if (cache_cc_directive(
		        cc, name, nlen, v, vlen, has_value, quoted) != 0)
			return -1;
	}
}

/* Parses every Cache-Control field of h (NULL = none).  0 or -1. */
static int
cache_cc_parse(const struct hdrs *h, struct cache_cc *cc)
{
	size_t i;

	cc->flags = 0;
	cc->max_age = -1;
	cc->s_maxage = -1;
	if (h == NULL)
		return 0;
	for (i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, "Cache-Control") == 0 &&
		    cache_cc_field(cc, h->v[i].value) != 0)
			return -1;
	return 0;
}

/* Returns 1 when a Pragma field of h lists no-cache. */
static int
cache_pragma_no_cache(const struct hdrs *h)
{
	struct cache_cc cc;
	size_t i;

	/* Pragma shares Cache-Control's list syntax (RFC 9111 5.4). */
	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, "Pragma") != 0)
			continue;
		cc.flags = 0;
		cc.max_age = cc.s_maxage = -1;
		if (cache_cc_field(&cc, h->v[i].value) == 0 &&
		    (cc.flags & CC_NO_CACHE))
			return 1;
	}
	return 0;
}

enum cache_mode
cache_request_mode(const char *method, const struct hdrs *req, long ttl_s)
{
	enum cache_mode mode = CACHE_OFF;
	struct cache_cc cc;

	if (method == NULL || ttl_s <= 0)
		goto out;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		goto out;
	/* An unreadable Cache-Control might hold a no-store. */
	if (cache_cc_parse(req, &cc) != 0) {
		mode = CACHE_BYPASS;
		goto out;
	}
	if (cc.flags & CC_NO_STORE)
		mode = CACHE_BYPASS;
	else if ((cc.flags & CC_NO_CACHE) || cc.max_age == 0)
		mode = CACHE_REFRESH;
	else if (req != NULL && hdrs_count(req, "Cache-Control") == 0 &&
	    cache_pragma_no_cache(req))
		mode = CACHE_REFRESH;
	else
		mode = CACHE_LOOKUP;
out:
	return mode;
}

/* qsort comparator over the rows of cache_vary.name. */
static int
cache_vary_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Adds one Vary element (already trimmed, non-empty) to out.  0 or -1. */
static int
cache_vary_add(
    struct cache_vary *out, const char *s, size_t len, const char **why)
{
	char name[CACHE_VARY_NAME_MAX + 1];
	size_t i;

	if (len == 1 && s[0] == '*') {
		*why = "Vary: *";
		return -1;
	}
	if (len > CACHE_VARY_NAME_MAX) {
		*why = "Vary name too long";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (!hdrs_is_tchar((unsigned char)s[i])) {
			*why = "Vary name not a token";
			return -1;
		}
		name[i] = (char)cache_lower((unsigned char)s[i]);
	}
	name[len] = '\0';
	for (i = 0; i < out->n; i++)
		if (strcmp(out->name[i], name) == 0)
			return 0;
	if (out->n == CACHE_VARY_MAX) {
		*why = "too many Vary names";
		return -1;
	}
	memcpy(out->name[out->n++], name, len + 1);
	return 0;
}

int
cache_vary_parse(const struct hdrs *h, struct cache_vary *out, const char **why)
{
	int rc = -1;
	const char *p, *start, *end, *dummy;
	size_t i;

	if (why == NULL)
		why = &dummy;
	*why = "";
	out->n = 0;
	for (i = 0; h != NULL && i < h->n; i++) {
		if (strcasecmp(h->v[i].name, "Vary") != 0)
			continue;
		p = h->v[i].value;
		while (*p != '\0') {
			while (cache_is_ows(*p) || *p == ',')
				p++;
			if (*p == '\0')
				break;
			start = p;
			while (*p != '\0' && *p != ',')
				p++;
			end = p;
			while (end > start && cache_is_ows(end[-1]))
				end--;
			if (cache_vary_add(
			        out, start, (size_t)(end - start), why) != 0)
				goto out;
		}
	}
	qsort(out->name, out->n, sizeof out->name[0], cache_vary_cmp);
	rc = 0;
out:
	if (rc != 0)
		out->n = 0;
	return rc;
}

void
cache_vary_join(const struct cache_vary *v, struct buf *out)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		if (i > 0)
			buf_puts(out, ", ");
		buf_puts(out, v->name[i]);
	}
}

/*
 * Reads Content-Length: 1 with *len set, 0 when absent, -1 when invalid or
 * given twice with different values (message framing is then unclear).
 */
static int
cache_content_length(const struct hdrs *h, long long *len)
{
	const char *v, *end;
	long long n, first = -1;
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, "Content-Length") != 0)
			continue;
		cache_trim(h->v[i].value, &v, &end);
		if (cache_parse_delta(v, (size_t)(end - v), &n) != 0)
			return -1;
		if (first >= 0 && first != n)
			return -1;
		first = n;
	}
	if (first < 0)
		return 0;
	*len = first;
	return 1;
}

/* Age value as delta-seconds with blanks around; -1 when invalid. */
static long long
cache_parse_age(const char *s)
{
	const char *end;
	long long v;

	if (s == NULL)
		return -1;
	cache_trim(s, &s, &end);
	if (cache_parse_delta(s, (size_t)(end - s), &v) != 0)
		return -1;
	return v;
}

int
cache_storable(const char *method, int status, const struct hdrs *resp,
    const struct hdrs *req, long ttl_s, long max_object_bytes,
    struct cache_vary *vary, long *ttl_out, const char **why)
{
	int rc = 0;
	struct cache_cc cc, req_cc;
	struct cache_vary vary_local;
	const char *reason = "", *age_v;
	long long life, clen, age;
	int has_len;

	if (vary == NULL)
		vary = &vary_local;
	vary->n = 0;
	if (ttl_s <= 0) {
		reason = "caching off for the route";
		goto out;
	}
	if (method == NULL || strcmp(method, "GET") != 0) {
		reason = "not a GET";
		goto out;
	}
	if (cache_cc_parse(req, &req_cc) != 0 || (req_cc.flags & CC_NO_STORE)) {
		reason = "request Cache-Control forbids storing";
		goto out;
	}
	if (status != 200) {
		reason = "status not 200";
		goto out;
	}
	if (resp == NULL) {
		reason = "no response headers";
		goto out;
	}
	if (cache_cc_parse(resp, &cc) != 0) {
		reason = "malformed Cache-Control";
		goto out;
	}
	if (cc.flags & CC_NO_STORE) {
		reason = "Cache-Control: no-store";
		goto out;
	}
	if (cc.flags & CC_PRIVATE) {
		reason = "Cache-Control: private";
		goto out;
	}
	if (cc.flags & CC_NO_CACHE) {
		reason = "Cache-Control: no-cache";
		goto out;
	}
	if (hdrs_count(resp, "Set-Cookie") > 0) {
		reason = "Set-Cookie";
		goto out;
	}
	if (cache_vary_parse(resp, vary, &reason) != 0)
		goto out;
	has_len = cache_content_length(resp, &clen);
	if (has_len < 0) {
		reason = "invalid Content-Length";
		goto out;
	}
	if (has_len > 0 && (max_object_bytes < 0 || clen > max_object_bytes)) {
		reason = "body larger than max_object_bytes";
		goto out;
	}
	if (req != NULL && hdrs_count(req, "Authorization") > 0 &&
	    !(cc.flags & CC_PUBLIC) && cc.s_maxage < 0) {
		reason = "Authorization without public or s-maxage";
		goto out;
	}
	life = ttl_s > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : ttl_s;
	/*
	 * cppcheck takes cc's ages for the -1 that cache_cc_parse() starts
	 * from, missing that cache_cc_field() sets them.
	 */
	if (cc.s_maxage >= 0) {
		/* cppcheck-suppress knownConditionTrueFalse */
		if (cc.s_maxage < life)
			life = cc.s_maxage;
		/* cppcheck-suppress knownConditionTrueFalse */
	} else if (cc.max_age >= 0 && cc.max_age < life) {
		life = cc.max_age;
	}
	if (life <= 0) {
		reason = "lifetime 0";
		goto out;
	}
	age_v = hdrs_count(resp, "Age") == 1 ? hdrs_get(resp, "Age") : NULL;
	age = cache_parse_age(age_v);
	if (age >= life) {
		reason = "stale on arrival (Age)";
		goto out;
	}
	if (ttl_out != NULL)
		*ttl_out = (long)life;
	rc = 1;
out:
	if (rc != 1)
		vary->n = 0;
	if (why != NULL)
		*why = reason;
	return rc;
}

/* Appends "<tag><len>:<bytes>\n", or "<tag>-\n" when s is NULL. */
static void
cache_key_field(struct buf *b, char tag, const char *s, size_t len)
{
	if (s == NULL) {
		buf_printf(b, "%c-\n", tag);
		return;
	}
	buf_printf(b, "%c%zu:", tag, len);
	buf_append(b, s, len);
	buf_putc(b, '\n');
}

/*
 * Appends the request's value for one Vary name: every field of that
 * name, each trimmed of blanks, joined with ", " in the order received,
 * as "=<len>:<value>\n"; "-\n" when there is none.  Two passes, the first
 * for the length prefix, so nothing is copied twice.
 */
static void
cache_key_vary_value(struct buf *b, const struct hdrs *req, const char *name)
{
	const char *s, *end;
	size_t i, total = 0, nfields = 0;

	for (i = 0; req != NULL && i < req->n; i++) {
		if (strcasecmp(req->v[i].name, name) != 0)
			continue;
		cache_trim(req->v[i].value, &s, &end);
		total += (nfields++ > 0 ? 2 : 0) + (size_t)(end - s);
	}
	if (nfields == 0) {
		buf_puts(b, "-\n");
		return;
	}
	buf_printf(b, "=%zu:", total);
	nfields = 0;
	for (i = 0; i < req->n; i++) {
		if (strcasecmp(req->v[i].name, name) != 0)
			continue;
		cache_trim(req->v[i].value, &s, &end);
		if (nfields++ > 0)
			buf_puts(b, ", ");
		buf_append(b, s, (size_t)(end - s));
	}
	buf_putc(b, '\n');
}

int
cache_key(struct buf *material, char hex[CACHE_KEY_HEX + 1], const char *method,
    const char *host, const char *path, const char *query, const char *key_hash,
    const struct cache_vary *vary, const struct hdrs *req)
{
	int rc = -1;
	size_t i, len;

	buf_reset(material);
	hex[0] = '\0';
	if (method == NULL || host == NULL || path == NULL)
		goto out;
	/* HEAD is answered from GET's entry. */
	if (strcmp(method, "HEAD") == 0)
		method = "GET";

	/* Bump the version when the layout changes: old entries then
	 * simply stop matching. */
	buf_puts(material, "apigw-cache-1\n");
	cache_key_field(material, 'm', method, strlen(method));
	/* Host names are case-insensitive (RFC 9110 4.2.3). */
	len = strlen(host);
	buf_printf(material, "h%zu:", len);
	for (i = 0; i < len; i++)
		buf_putc(material, (char)cache_lower((unsigned char)host[i]));
	buf_putc(material, '\n');
	cache_key_field(material, 'p', path, strlen(path));
	cache_key_field(
	    material, 'q', query, query != NULL ? strlen(query) : 0);
	cache_key_field(
	    material, 'k', key_hash, key_hash != NULL ? strlen(key_hash) : 0);
	for (i = 0; vary != NULL && i < vary->n; i++) {
		len = strlen(vary->name[i]);
		buf_printf(material, "v%zu:%s", len, vary->name[i]);
		cache_key_vary_value(material, req, vary->name[i]);
	}
	keys_hash(buf_cstr(material), material->len, hex);
	rc = 0;
out:
	return rc;
}

long long
cache_age(long long stored_at, long long now, const char *upstream_age)
{
	long long resident = 0, upstream;

	/*
	 * now - stored_at is only computed when now is later, and each
	 * term is capped before the sum: the result fits in any case.
	 */
	if (now > stored_at) {
		if (stored_at < 0 && now > CACHE_DELTA_MAX + stored_at)
			resident = CACHE_DELTA_MAX;
		else if (now - stored_at > CACHE_DELTA_MAX)
			resident = CACHE_DELTA_MAX;
		else
			resident = now - stored_at;
	}
	upstream = cache_parse_age(upstream_age);
	if (upstream > 0)
		resident += upstream;
	return resident > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : resident;
}

enum cache_freshness
cache_freshness(long long age, long ttl_s, long stale_if_error_s)
{
	long long ttl, stale;

	ttl =
	    ttl_s < 0 ? 0 : (ttl_s > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : ttl_s);
	stale = stale_if_error_s < 0
	    ? 0
	    : (stale_if_error_s > CACHE_DELTA_MAX ? CACHE_DELTA_MAX
	                                          : stale_if_error_s);
	if (age < ttl)
		return CACHE_FRESH;
	if (age < ttl + stale)
		return CACHE_STALE_USABLE;
	return CACHE_EXPIRED;
}

int
cache_stale_allowed(const struct hdrs *resp)
{
	struct cache_cc cc;

	if (cache_cc_parse(resp, &cc) != 0)
		return 0;
	if (cc.flags & (CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE))
		return 0;
	return cc.s_maxage < 0;
}

const char *
cache_status_str(enum cache_status s)
{
	switch (s) {
	case CACHE_STATUS_HIT: return "apigw; hit";
	case CACHE_STATUS_MISS_STORED: return "apigw; fwd=miss; stored";
	case CACHE_STATUS_MISS: return "apigw; fwd=miss";
	case CACHE_STATUS_BYPASS: return "apigw; fwd=bypass";
	case CACHE_STATUS_HIT_STALE: return "apigw; hit; detail=stale";
	}
	return "apigw; fwd=miss";
}

const char *
cache_status_xcache(enum cache_status s)
{
	switch (s) {
	case CACHE_STATUS_HIT:
	case CACHE_STATUS_HIT_STALE: return "HIT";
	case CACHE_STATUS_BYPASS: return "BYPASS";
	case CACHE_STATUS_MISS_STORED:
	case CACHE_STATUS_MISS: return "MISS";
	}
	return "MISS";
}
