/*
 * buf -- a growable byte buffer, always NUL-terminated, with an optional
 * size limit.
 *
 * Embedded in other structs: buf_init() (no limit) or buf_init_limit()
 * before use, buf_reset() to reuse the allocation for the next request,
 * buf_cleanup() to release it.
 *
 *	struct buf b;
 *	buf_init(&b);
 *	buf_printf(&b, "%d", 42);
 *	buf_append(&b, "!", 1);     // b.p == "42!", b.len == 3
 *	buf_cleanup(&b);
 *
 * A limited buffer never holds more than max bytes (the NUL not counted):
 * an append that would pass the limit returns BUF_TOO_BIG and leaves the
 * buffer exactly as it was, so a caller can bound a size a client controls
 * (a body, a cached value) before anything is allocated for it:
 *
 *	buf_init_limit(&b, 4);
 *	buf_puts(&b, "abc");        // BUF_OK, "abc"
 *	buf_puts(&b, "de");         // BUF_TOO_BIG, still "abc"
 *	buf_putc(&b, 'd');          // BUF_OK, "abcd"
 *
 * Without a limit an append only fails when the size would not fit in a
 * size_t; allocation failure aborts (xalloc.h), as before, so existing
 * callers may ignore the result.
 */
#ifndef APIGW_BUF_H
#define APIGW_BUF_H

#include <stddef.h>

#define BUF_OK 0
#define BUF_TOO_BIG (-1)

struct buf {
	char *p;    /* owned; NULL until the first append */
	size_t len; /* bytes used, not counting the terminating NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* 0: no limit; else len never exceeds max */
};

/* An empty buffer without a size limit. */
void buf_init(struct buf *b);
/* An empty buffer that will refuse to hold more than max bytes (0: none). */
void buf_init_limit(struct buf *b, size_t max);
/* Empties b, keeping its allocation and its limit. */
void buf_reset(struct buf *b);
/* Frees b's memory; b is then empty and keeps its limit. */
void buf_cleanup(struct buf *b);
/* Makes room for extra more bytes.  BUF_OK, or BUF_TOO_BIG (b unchanged). */
int buf_reserve(struct buf *b, size_t extra);
/* The appends return BUF_OK, or BUF_TOO_BIG with b unchanged. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns b's text ("" when empty); valid until the next change to b. */
const char *buf_cstr(const struct buf *b);
/*
 * Appends s as the inside of a JSON string (no quotes), so that the result
 * is valid JSON and valid UTF-8 whatever the bytes of s (which often come
 * from the client): '"' and '\' get a backslash, control characters (and
 * DEL, U+2028, U+2029) become \n, \r, \t or \u00XX, well-formed UTF-8 is
 * kept as it is, and each ill-formed part (a stray byte, an overlong form,
 * a surrogate, a code point above U+10FFFF, a truncated sequence) becomes
 * one \ufffd, as WHATWG and Unicode's "maximal subpart" practice say.
 * For example (C notation for the bytes):
 *
 *	in:  "caf\xc3\xa9\x01\xff"
 *	out: "caf\xc3\xa9\\u0001\\ufffd"   (JSON text: caf<U+00E9>\u0001\ufffd)
 *
 * On BUF_TOO_BIG nothing of s was appended.
 */
int buf_json_escape(struct buf *b, const char *s);

#endif
