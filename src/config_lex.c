/*
 * config_lex.c -- pre-scan of the config text (see config_lex.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_lex.h"
#include "num.h"

/* Where a scan reports to. */
struct lex {
	config_lex_report_fn report;
	void *arg;
};

static int
is_hex(unsigned char c)
{
	return num_hex_val(c) >= 0;
}

static int
is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*';
}

static int
is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '_' ||
	    c == '-';
}

/*
 * Checks one integer literal t[0..n) (with an optional sign) that libconfig
 * will read: without an L suffix it keeps only 32 bits, so a bigger value
 * would silently wrap (4294967396 reads as 100).
 */
static void
check_int_literal(
    struct lex *lx, unsigned line, const char *t, size_t n, int is64)
{
	char lit[64], reason[160], *end;
	int neg = 0, hex = 0, bad = 0;
	unsigned long long u;
	const char *d = t;

	if (n >= sizeof lit) {
		bad = 1;
		goto out;
	}
	if (*d == '-' || *d == '+')
		neg = *d++ == '-';
	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X'))
		hex = 1;
	memcpy(lit, d, n - (size_t)(d - t));
	lit[n - (size_t)(d - t)] = '\0';
	errno = 0;
	u = strtoull(lit, &end, hex ? 16 : 10);
	if (errno == ERANGE)
		bad = 1;
	else if (is64)
		bad = u > (unsigned long long)LLONG_MAX + (neg && !hex);
	else
		bad = u > (unsigned long long)INT_MAX + (neg && !hex);
out:
	if (bad) {
		snprintf(lit, sizeof lit, "%.*s", n > 40 ? 40 : (int)n, t);
		snprintf(reason, sizeof reason,
		    "integer %s%s is out of range (%s)", lit,
		    n > 40 ? "..." : "",
		    is64 ? "64-bit" : "at most 2147483647 without an L suffix");
		lx->report(lx->arg, line, reason);
	}
}

int
config_lex_prescan(
    const char *t, size_t len, config_lex_report_fn report, void *arg)
{
	struct lex lx;
	size_t i = 0, start;
	unsigned line = 1;
	const char *nul, *eol;
	int is64, fatal = 0;

	lx.report = report;
	lx.arg = arg;
	if ((nul = memchr(t, '\0', len)) != NULL) {
		for (i = 0; t + i < nul; i++)
			if (t[i] == '\n')
				line++;
		report(arg, line, "NUL byte in the file");
		return -1;
	}
	for (i = 0; i < len; line++) {
		start = i + strspn(t + i, " \t");
		if (strncmp(t + start, "@include", 8) == 0) {
			report(arg, line,
			    "@include is not supported "
			    "(the configuration is one file)");
			fatal = 1;
		}
		if ((eol = memchr(t + i, '\n', len - i)) == NULL)
			break;
		i = (size_t)(eol - t) + 1;
	}
	if (fatal)
		return -1;
	i = 0;
	line = 1;
	while (i < len) {
		unsigned char c = (unsigned char)t[i];

		if (c == '\n') {
			line++;
			i++;
		} else if (c == '#' || (c == '/' && t[i + 1] == '/')) {
			while (i < len && t[i] != '\n')
				i++;
		} else if (c == '/' && t[i + 1] == '*') {
			for (i += 2;
			     i < len && !(t[i] == '*' && t[i + 1] == '/'); i++)
				if (t[i] == '\n')
					line++;
			i = i < len ? i + 2 : len;
		} else if (c == '"') {
			for (i++; i < len && t[i] != '"'; i++) {
				if (t[i] == '\\' && i + 1 < len)
					i++;
				if (t[i] == '\n')
					line++;
			}
			i++;
		} else if (c == '.') {
			/* the rest of a float such as .5e3 */
			for (i++; i < len &&
			     ((t[i] >= '0' && t[i] <= '9') || t[i] == 'e' ||
			         t[i] == 'E' || t[i] == '-' || t[i] == '+');
			     i++)
				;
		} else if (is_name_start(c)) {
			while (i < len && is_name_char((unsigned char)t[i]))
				i++;
		} else if ((c >= '0' && c <= '9') ||
		    ((c == '-' || c == '+') && t[i + 1] >= '0' &&
		        t[i + 1] <= '9')) {
			start = i;
			if (c == '-' || c == '+')
				i++;
			if (t[i] == '0' &&
			    (t[i + 1] == 'x' || t[i + 1] == 'X')) {
				for (i += 2;
				     i < len && is_hex((unsigned char)t[i]);
				     i++)
					;
			} else {
				for (; i < len && t[i] >= '0' && t[i] <= '9';
				     i++)
					;
				if (t[i] == '.' || t[i] == 'e' || t[i] == 'E') {
					/* a float: skip it */
					while (i < len &&
					    (is_hex((unsigned char)t[i]) ||
					        t[i] == '.' || t[i] == '-' ||
					        t[i] == '+'))
						i++;
					continue;
				}
			}
			is64 = t[i] == 'L';
			check_int_literal(
			    &lx, line, t + start, i - start, is64);
			while (i < len && t[i] == 'L')
				i++;
		} else
			i++;
	}
	return 0;
}
