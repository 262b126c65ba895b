/*
 * http_method.c -- method names and bits (see http_method.h).
 */
#include <stdio.h>
#include <string.h>

#include "http_method.h"

/* clang-format off */
static const struct {
	const char *name;
	unsigned bit;
} method_table[] = {
	{ "GET", M_GET }, { "HEAD", M_HEAD }, { "POST", M_POST },
	{ "PUT", M_PUT }, { "DELETE", M_DELETE }, { "PATCH", M_PATCH },
	{ "OPTIONS", M_OPTIONS }, { "TRACE", M_TRACE },
	{ "CONNECT", M_CONNECT },
};
#define N_METHODS (sizeof method_table / sizeof method_table[0])
/* clang-format on */

unsigned
http_method_bit(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < N_METHODS; i++)
		if (strcmp(name, method_table[i].name) == 0)
			return method_table[i].bit;
	return 0;
}

void
http_method_list(unsigned mask, char *out, size_t outlen)
{
	size_t i, len = 0, n;
	const char *sep = "";

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < N_METHODS; i++) {
		if ((mask & method_table[i].bit) == 0)
			continue;
		n = strlen(sep) + strlen(method_table[i].name);
		if (len + n + 1 > outlen)
			break; /* truncate at a whole name */
		snprintf(
		    out + len, outlen - len, "%s%s", sep, method_table[i].name);
		len += n;
		sep = ", ";
	}
}
