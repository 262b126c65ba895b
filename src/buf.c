/*
 * buf -- a growable byte buffer; the contract is in buf.h.
 *
 * Every append checks the limit (and size_t overflow) before it touches
 * the buffer, so a refused append needs no undo; only buf_json_escape,
 * made of many small appends, truncates back to where it started.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

#define BUF_MIN_CAP 64

void
buf_init(struct buf *b)
{
	buf_init_limit(b, 0);
}

void
buf_init_limit(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
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
	buf_init_limit(b, b->max);
}

/* Would extra more bytes (and the NUL) pass the limit or size_t? */
static int
buf_fits(const struct buf *b, size_t extra)
{
	if (b->max > 0)
		return b->len <= b->max && extra <= b->max - b->len;
	return extra < SIZE_MAX - b->len;
}

int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (!buf_fits(b, extra))
		return BUF_TOO_BIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return BUF_OK;
	cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* A limited buffer never allocates past what the limit can use. */
	if (b->max > 0 && cap > b->max + 1)
		cap = b->max + 1 > need ? b->max + 1 : need;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
	return BUF_OK;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) != BUF_OK)
		return BUF_TOO_BIG;
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return BUF_OK;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return BUF_OK;
	if (buf_reserve(b, (size_t)n) != BUF_OK)
		return BUF_TOO_BIG;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return BUF_OK;
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

int
buf_json_escape(struct buf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = b->len;
	int rc = BUF_OK, n;

	while (*u != '\0' && rc == BUF_OK) {
		if (*u >= 0x80) {
			n = utf8_sequence(u);
			if (n < 0) {
				rc = buf_puts(b, "\\ufffd");
				u += -n;
			} else if (u[0] == 0xe2 && u[1] == 0x80 &&
			    (u[2] == 0xa8 || u[2] == 0xa9)) {
				/* Line and paragraph separators: valid JSON,
				 * but line breaks to JavaScript and some log
				 * readers. */
				rc = buf_printf(
				    b, "\\u%04x", 0x2000 + (u[2] - 0x80));
				u += n;
			} else {
				rc = buf_append(b, u, (size_t)n);
				u += n;
			}
			continue;
		}
		switch (*u) {
		case '"': rc = buf_puts(b, "\\\""); break;
		case '\\': rc = buf_puts(b, "\\\\"); break;
		case '\n': rc = buf_puts(b, "\\n"); break;
		case '\r': rc = buf_puts(b, "\\r"); break;
		case '\t': rc = buf_puts(b, "\\t"); break;
		default:
			if (*u < 0x20 || *u == 0x7f)
				rc = buf_printf(b, "\\u%04x", *u);
			else
				rc = buf_putc(b, (char)*u);
		}
		u++;
	}
	if (rc != BUF_OK) {
		b->len = start;
		if (b->p != NULL)
			b->p[start] = '\0';
	}
	return rc;
}
