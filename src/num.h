/*
 * num -- strict parsing of the small numbers found inside config values:
 * a CIDR's prefix length, a URL's port, a Redis database number, a
 * percent-escape's hex digits.
 *
 * Unlike strtol, nothing is skipped or guessed: no sign, no spaces, no
 * base prefix, and a value above the caller's maximum is refused before
 * it can overflow.  num_parse_digits("8", 1, 32, &v) sets v = 8;
 * num_parse_digits("33", 2, 32, &v) fails.
 */
#ifndef APIGW_NUM_H
#define APIGW_NUM_H

#include <stddef.h>

/*
 * Parses exactly n decimal digits at s (1 <= n <= 18) into *out, refusing
 * a value above max.  Returns 0, or -1 without touching *out.
 */
int num_parse_digits(const char *s, size_t n, long max, long *out);
/* Parses the port in [s, end): 1 to 65535.  Returns 0 or -1. */
int num_parse_port(const char *s, const char *end, int *out);
/* Returns the value of a hex digit (0 to 15), or -1 for any other byte. */
int num_hex_val(unsigned char c);

#endif
