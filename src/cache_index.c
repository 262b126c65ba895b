/*
 * cache_index -- checks on the cache's index members (see cache_index.h).
 */
#include <string.h>

#include "cache_index.h"

#define CACHE_INDEX_RES_HEX 64 /* <res64>, <path64> */
#define CACHE_INDEX_VAR_HEX 40 /* <var40>, <qh40> */

/* Are the n bytes at s all lower-case hex digits? */
static int
cache_index_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/*
 * Does name (len bytes) start with prefix then lit?  Returns the offset
 * after both, or 0 when it does not.
 */
static size_t
cache_index_head(
    const char *prefix, const char *lit, const char *name, size_t len)
{
	size_t pl = strlen(prefix), ll = strlen(lit);

	if (len < pl + ll || memcmp(name, prefix, pl) != 0 ||
	    memcmp(name + pl, lit, ll) != 0)
		return 0;
	return pl + ll;
}

int
cache_index_entry_ok(const char *prefix, const char *name, size_t len)
{
	size_t off = cache_index_head(prefix, "{c:", name, len);

	return off != 0 &&
	    len == off + CACHE_INDEX_RES_HEX + 4 + CACHE_INDEX_VAR_HEX &&
	    cache_index_hex(name + off, CACHE_INDEX_RES_HEX) &&
	    memcmp(name + off + CACHE_INDEX_RES_HEX, "}:e:", 4) == 0 &&
	    cache_index_hex(
	        name + off + CACHE_INDEX_RES_HEX + 4, CACHE_INDEX_VAR_HEX);
}

int
cache_index_path_ok(const char *prefix, const char *name, size_t len)
{
	size_t off = cache_index_head(prefix, "c:p:", name, len);

	return off != 0 && len == off + CACHE_INDEX_RES_HEX &&
	    cache_index_hex(name + off, CACHE_INDEX_RES_HEX);
}

int
cache_index_member(const char *prefix, const char *m, size_t len,
    size_t *name_len, const char **qh40)
{
	size_t nl;

	if (len < CACHE_INDEX_VAR_HEX + 2)
		return 0;
	nl = len - CACHE_INDEX_VAR_HEX - 1;
	if (m[nl] != ' ' || !cache_index_hex(m + nl + 1, CACHE_INDEX_VAR_HEX) ||
	    !cache_index_entry_ok(prefix, m, nl))
		return 0;
	*name_len = nl;
	*qh40 = m + nl + 1;
	return 1;
}
