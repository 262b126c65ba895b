/*
 * buf -- a growable byte buffer, always NUL-terminated.
 *
 * Embedded in other structs: buf_init() before use, buf_reset() to reuse
 * the allocation for the next request, buf_cleanup() to release it.
 *
 *	struct buf b;
 *	buf_init(&b);
 *	buf_printf(&b, "%d", 42);
 *	buf_append(&b, "!", 1);     // b.p == "42!", b.len == 3
 *	buf_cleanup(&b);
 */
#ifndef APIGW_BUF_H
#define APIGW_BUF_H

#include <stddef.h>

struct buf {
	char *p;    /* owned; NULL until the first append */
	size_t len; /* bytes used, not counting the terminating NUL */
	size_t cap; /* bytes allocated */
};

void buf_init(struct buf *b);
void buf_reset(struct buf *b);
void buf_cleanup(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
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
 */
void buf_json_escape(struct buf *b, const char *s);

#endif
