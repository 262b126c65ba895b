#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

void
buf_init(struct buf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
buf_cleanup(struct buf *b)
{
	free(b->p);
	buf_init(b);
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;

	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *
buf_cstr(const struct buf *b)
{
	return b->p != NULL ? b->p : "";
}

/*
 * Length of the well-formed UTF-8 sequence at u (2 to 4), or, when it is
 * ill-formed, minus the number of bytes of its maximal subpart (the lead
 * byte and the continuation bytes that were still acceptable), which one
 * U+FFFD replaces.  u[0] >= 0x80.  The ranges of the second byte are those
 * of Unicode's table 3-7 (no overlong forms, surrogates or > U+10FFFF).
 */
static int
utf8_sequence(const unsigned char *u)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int n, i;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		n = 3;
		if (u[0] == 0xe0)
			lo = 0xa0;
		else if (u[0] == 0xed)
			hi = 0x9f;
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		n = 4;
		if (u[0] == 0xf0)
			lo = 0x90;
		else if (u[0] == 0xf4)
			hi = 0x8f;
	} else
		return -1; /* continuation byte, C0, C1 or F5..FF */
	for (i = 1; i < n; i++) {
		/* The terminating NUL fails here too: no read past it. */
		if (u[i] < lo || u[i] > hi)
			return -i;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

void
buf_json_escape(struct buf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	int n;

	while (*u != '\0') {
		if (*u >= 0x80) {
			n = utf8_sequence(u);
			if (n < 0) {
				buf_puts(b, "\\ufffd");
				u += -n;
			} else if (u[0] == 0xe2 && u[1] == 0x80 &&
			    (u[2] == 0xa8 || u[2] == 0xa9)) {
				/* Line and paragraph separators: valid JSON,
				 * but line breaks to JavaScript and some log
				 * readers. */
				buf_printf(
				    b, "\\u%04x", 0x2000 + (u[2] - 0x80));
				u += n;
			} else {
				buf_append(b, u, (size_t)n);
				u += n;
			}
			continue;
		}
		switch (*u) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default:
			if (*u < 0x20 || *u == 0x7f)
				buf_printf(b, "\\u%04x", *u);
			else
				buf_putc(b, (char)*u);
		}
		u++;
	}
}
