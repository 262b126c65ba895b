/*
 * xalloc -- allocation that never returns NULL.
 *
 * On allocation failure the process logs and aborts: the process manager
 * (the web server or the apigw master) respawns it, and no half-built state
 * is ever used.  Every function returns memory the caller owns and frees
 * with free().
 */
#ifndef APIGW_XALLOC_H
#define APIGW_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
