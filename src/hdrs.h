/*
 * hdrs -- an ordered list of HTTP header fields and the rules applied to
 * them on the way through the gateway.
 *
 * Names are kept as received (lookups ignore case).  Values never contain
 * CR or LF: hdrs_add() refuses them, so no header the gateway emits can
 * split a response.
 *
 * Hop-by-hop fields (RFC 9110 7.6.1) are Connection, every field named in a
 * Connection value, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade and Proxy-Authorization.
 */
#ifndef APIGW_HDRS_H
#define APIGW_HDRS_H

#include <stddef.h>

struct hdr {
	char *name;  /* owned */
	char *value; /* owned */
};

struct hdrs {
	struct hdr *v; /* owned array */
	size_t n;
	size_t cap;
};

void hdrs_init(struct hdrs *h);
/* Frees every field but keeps the array for reuse. */
void hdrs_reset(struct hdrs *h);
void hdrs_cleanup(struct hdrs *h);

/* 1 when c may stand in a field name or token (RFC 9110 5.6.2: tchar). */
int hdrs_is_tchar(unsigned char c);

/*
 * Appends a copy of name/value.  Returns 0, or -1 (nothing added) when the
 * name is not an RFC 9110 token or the value holds CR, LF or NUL.
 */
int hdrs_add(struct hdrs *h, const char *name, const char *value);
/* Like hdrs_add with the value given as a length-delimited string. */
int hdrs_addn(struct hdrs *h, const char *name, size_t name_len,
    const char *value, size_t value_len);
/* Replaces every field called name with one field (or adds it). */
int hdrs_set(struct hdrs *h, const char *name, const char *value);
/* Removes every field called name (case-insensitive); returns how many. */
size_t hdrs_del(struct hdrs *h, const char *name);
/* Returns the first value of name, or NULL.  Borrowed from h. */
const char *hdrs_get(const struct hdrs *h, const char *name);
/* Returns how many fields are called name. */
size_t hdrs_count(const struct hdrs *h, const char *name);

/* Returns 1 when two fields called name have different values. */
int hdrs_conflict(const struct hdrs *h, const char *name);

/* Returns 1 for the fixed hop-by-hop names listed above (any case). */
int hdrs_is_hop_by_hop(const char *name);
/*
 * Removes hop-by-hop fields from h: the fixed list, plus every field named
 * in any Connection value (comma-separated tokens, any case).
 */
void hdrs_strip_hop_by_hop(struct hdrs *h);

/*
 * Converts a CGI/FastCGI parameter name to a header name:
 * "HTTP_X_FORWARDED_FOR" -> "X-Forwarded-For", "CONTENT_TYPE" ->
 * "Content-Type".  Writes at most outlen bytes (NUL-terminated) and returns
 * 0, or -1 when param is not a header parameter or does not fit.
 */
int hdrs_name_from_cgi(const char *param, char *out, size_t outlen);

#endif
