/*
 * cache_index -- reading the response cache's purge indexes back.
 *
 * The gateway files every cache entry it stores under three names
 * (keyspace.h): the zset <prefix>c:live (entry names, scored by expiry),
 * the zset <prefix>c:p:<path64> of its client-facing path, whose members
 * are "<entry name> <qh40>", and the zset <prefix>c:r:<route_id> of its
 * route, whose members are the names of the route's path zsets.  apigw-cache
 * walks these to purge and count entries.  Redis holds what it is given, so
 * a member is checked before its name is used for anything: a purge
 * deletes only names that have the exact shape of a cache entry or a path
 * zset under the configured prefix, never some other key a damaged or
 * foreign member happens to spell.  For example, with the prefix "apigw:":
 *
 *	"apigw:{c:<64 hex>}:e:<40 hex> <40 hex>"   entry name, query hash
 *	"apigw:c:p:<64 hex>"                       a path zset
 *
 * The prefix never holds a space (config.c refuses one), so a member's
 * only space is the one before its query hash.
 */
#ifndef APIGW_CACHE_INDEX_H
#define APIGW_CACHE_INDEX_H

#include <stddef.h>

/* Returns 1 when the len bytes at name are <prefix>{c:<64 hex>}:e:<40 hex>. */
int cache_index_entry_ok(const char *prefix, const char *name, size_t len);

/* Returns 1 when the len bytes at name are <prefix>c:p:<64 hex>. */
int cache_index_path_ok(const char *prefix, const char *name, size_t len);

/*
 * Splits the path-zset member m (len bytes) into its entry name, the
 * first *name_len bytes of m, and its query hash, the 40 bytes at *qh40
 * (in m, not NUL-terminated unless m ends there).  Returns 1 when the
 * member is "<entry name> <40 lower-case hex>" and the name passes
 * cache_index_entry_ok, else 0 (*name_len and *qh40 then unset).
 */
int cache_index_member(const char *prefix, const char *m, size_t len,
    size_t *name_len, const char **qh40);

#endif
