/*
 * num.c -- strict parsing of small numbers (see num.h).
 */
#include "num.h"

int
num_parse_digits(const char *s, size_t n, long max, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

int
num_parse_port(const char *s, const char *end, int *out)
{
	long v;

	if (num_parse_digits(s, (size_t)(end - s), 65535, &v) == -1 || v == 0)
		return -1;
	*out = (int)v;
	return 0;
}

int
num_hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
