/*
 * normalize -- request path normalization.
 *
 * The path that is matched is the path that is forwarded, so it is
 * normalized once, before routing:
 *   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are
 *     decoded; other escapes are kept with upper-case hex ("%2f" -> 400,
 *     "%7e" -> "~", "%c3%a9" -> "%C3%A9");
 *   - path parameters are dropped: every segment loses its ';' and all
 *     that follows up to the next '/' ("/api/admin;jsessionid=1" ->
 *     "/api/admin", "/a/..;x/b" -> "/b"), before dot segments are
 *     resolved, so routing, authentication, rate limiting and the
 *     backend all see one plain path;
 *   - "." and ".." segments are resolved, repeated slashes merged;
 *   - a trailing slash is kept ("/a/b/" stays "/a/b/").
 * Rejected (400): %2F, %5C, %3B, %00 (any case), a raw backslash, a raw NUL or
 * control byte, a bad escape ("%", "%4", "%zz"), a ".." that climbs above
 * the root (also when formed by decoding, "/%2e%2e/"), a path not starting
 * with '/'.
 *
 *	"/api//users/./7/../8?x" is not a path (query is split off before).
 *	"/api//users/./7/../8"   -> "/api/users/8"
 *	"/api/public/../admin"   -> "/api/admin" (never "/api/public")
 *	"/../etc/passwd"         -> 400
 */
#ifndef APIGW_NORMALIZE_H
#define APIGW_NORMALIZE_H

#include <stddef.h>

enum normalize_result {
	NORMALIZE_OK = 0,
	NORMALIZE_BAD_ESCAPE,       /* "%" not followed by two hex digits */
	NORMALIZE_FORBIDDEN_ESCAPE, /* %2F, %5C, %3B or %00 */
	NORMALIZE_BACKSLASH,        /* raw '\' */
	NORMALIZE_CONTROL,          /* raw byte < 0x20 or 0x7f */
	NORMALIZE_TRAVERSAL,        /* ".." above the root */
	NORMALIZE_NOT_ABSOLUTE,     /* empty or not starting with '/' */
};

/*
 * Normalizes the len bytes at in (the path part of REQUEST_URI, without the
 * query).  On NORMALIZE_OK, *out is a new NUL-terminated string the caller
 * frees; the result is never longer than the input.  On error *out is NULL.
 */
enum normalize_result normalize_path(const char *in, size_t len, char **out);

/* A short human-readable reason for a result ("bad percent escape"...). */
const char *normalize_strerror(enum normalize_result r);

#endif
