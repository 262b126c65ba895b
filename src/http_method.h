/*
 * http_method -- the request methods a route may allow, as bits of a mask.
 *
 * Names are case-sensitive (RFC 9110 9.1): "GET" is a method, "get" is
 * not.  A route's methods are a mask of these bits, M_ALL when the config
 * names none; http_method_list turns a mask back into the text of an Allow
 * header, in the order of the enum: M_GET | M_POST gives "GET, POST".
 */
#ifndef APIGW_HTTP_METHOD_H
#define APIGW_HTTP_METHOD_H

#include <stddef.h>

enum http_method {
	M_GET = 1 << 0,
	M_HEAD = 1 << 1,
	M_POST = 1 << 2,
	M_PUT = 1 << 3,
	M_DELETE = 1 << 4,
	M_PATCH = 1 << 5,
	M_OPTIONS = 1 << 6,
	M_TRACE = 1 << 7,
	M_CONNECT = 1 << 8,
};
#define M_ALL 0x1ff

/* Returns the bit for an upper-case method name, or 0 if unknown. */
unsigned http_method_bit(const char *name);
/*
 * Writes "GET, POST" for a mask into out (at most outlen bytes, always
 * NUL-ended when outlen > 0), cut after the last name that fits whole.
 */
void http_method_list(unsigned mask, char *out, size_t outlen);

#endif
