/*
 * normalize -- request path normalization; the contract is in normalize.h.
 *
 * One pass, no recursion.  Each segment is decoded straight into the
 * output and only looked at once it is complete, so a "." or ".." spelled
 * with escapes ("%2e%2E") is resolved exactly like a literal one and can
 * never slip past the traversal check.  Every output byte stands for at
 * least one input byte (an escape is 3 bytes in and 1 or 3 out, a '/' is
 * 1 for 1), so the output never outgrows the input and a single allocation
 * of len + 1 bytes is enough.
 */
#include <stddef.h>
#include <stdlib.h>

#include "normalize.h"
#include "xalloc.h"

/*
 * Plain comparisons rather than <ctype.h>: the locale must never change
 * what the gateway considers a hex digit or an unreserved character.
 */
static int
normalize_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3986 2.3: the only characters whose escapes may be decoded. */
static int
normalize_is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

enum normalize_result
normalize_path(const char *in, size_t len, char **out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)in;
	enum normalize_result rc = NORMALIZE_NOT_ABSOLUTE;
	char *o = NULL;
	size_t i, olen, seg;
	int hi, lo;
	unsigned char c;

	*out = NULL;
	if (in == NULL || len == 0 || s[0] != '/')
		goto out;

	o = xmalloc(len + 1);
	o[0] = '/';
	olen = 1;
	i = 1;
	for (;;) {
		/*
		 * Here o[olen - 1] == '/' and s[i] starts a segment (or i is
		 * at the end).  Copy the segment, decoded, to o[seg..olen).
		 */
		seg = olen;
		while (i < len && s[i] != '/') {
			c = s[i];
			if (c == ';') {
				/*
				 * Path parameters ("admin;jsessionid=1") are
				 * dropped up to the segment's end: servlet
				 * containers and Spring route on the segment
				 * without them, so we match, authorize, limit
				 * and forward that same plain segment.
				 */
				while (i < len && s[i] != '/')
					i++;
				break;
			}
			if (c == '%') {
				if (len - i < 3 ||
				    (hi = normalize_hexval(s[i + 1])) < 0 ||
				    (lo = normalize_hexval(s[i + 2])) < 0) {
					rc = NORMALIZE_BAD_ESCAPE;
					goto out;
				}
				c = (unsigned char)(hi << 4 | lo);
				/*
				 * A decoded '/' or '\' would change the
				 * segment structure behind the router's back,
				 * a ';' would start path parameters for a
				 * backend that decodes before it strips them,
				 * and a NUL would cut the path short.
				 */
				if (c == '/' || c == '\\' || c == ';' ||
				    c == '\0') {
					rc = NORMALIZE_FORBIDDEN_ESCAPE;
					goto out;
				}
				i += 3;
				if (normalize_is_unreserved(c))
					o[olen++] = (char)c;
				else {
					/* Kept, but in one canonical spelling.
					 */
					o[olen++] = '%';
					o[olen++] = hex[c >> 4];
					o[olen++] = hex[c & 0xf];
				}
				continue;
			}
			if (c == '\\') {
				/* Some backends treat '\' as a separator. */
				rc = NORMALIZE_BACKSLASH;
				goto out;
			}
			if (c < 0x20 || c == 0x7f) {
				rc = NORMALIZE_CONTROL;
				goto out;
			}
			/* Anything else, bytes >= 0x80 included, is kept. */
			o[olen++] = (char)c;
			i++;
		}

		if (olen - seg == 1 && o[seg] == '.') {
			/* "." names the directory itself: drop it. */
			olen = seg;
		} else if (olen - seg == 2 && o[seg] == '.' &&
		    o[seg + 1] == '.') {
			if (seg == 1) {
				rc = NORMALIZE_TRAVERSAL;
				goto out;
			}
			/*
			 * Drop ".." and the segment before it: step over that
			 * segment's trailing '/' and back to the '/' that
			 * starts it.  o[0] is '/', so this stops in bounds.
			 */
			olen = seg - 1;
			while (o[olen - 1] != '/')
				olen--;
		} else if (olen > seg && i < len) {
			o[olen++] = '/';
		}
		/*
		 * An empty segment adds nothing: in the middle that merges
		 * "//", at the end it leaves the trailing '/' in place.
		 */
		if (i >= len)
			break;
		i++; /* the '/' that ended the segment */
	}
	o[olen] = '\0';

	*out = o;
	o = NULL;
	rc = NORMALIZE_OK;
out:
	free(o);
	return rc;
}

const char *
normalize_strerror(enum normalize_result r)
{
	switch (r) {
	case NORMALIZE_OK: return "ok";
	case NORMALIZE_BAD_ESCAPE: return "bad percent escape";
	case NORMALIZE_FORBIDDEN_ESCAPE:
		return "forbidden escape (%2F, %5C, %3B or %00)";
	case NORMALIZE_BACKSLASH: return "backslash in path";
	case NORMALIZE_CONTROL: return "control character in path";
	case NORMALIZE_TRAVERSAL: return "path climbs above the root";
	case NORMALIZE_NOT_ABSOLUTE: return "path is not absolute";
	}
	return "unknown path error";
}
